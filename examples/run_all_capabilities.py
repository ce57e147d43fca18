"""Run every example in order, each in its own process, and print one PASS/FAIL line per step.

    python examples/run_all_capabilities.py                 # no key: the local emulator, no cost
    VISGATE_API_KEY=vg-... python examples/run_all_capabilities.py          # the live API
    VISGATE_API_KEY=vg-... python examples/run_all_capabilities.py --cheap  # only the free steps
    python examples/run_all_capabilities.py --emulator 09_cache_demo 15     # a few steps

Without VISGATE_API_KEY (or with --emulator) it starts the visgate emulator from the repository
root on a free local port and points the examples at it: placeholder media, simulated costs.
Exit status: 0 only if every step passed. Outputs: examples/sample_outputs/ (or
$VISGATE_SAMPLE_OUTPUTS), one out_<step>.txt per step plus the downloaded media.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (step, purpose, free): "free" steps make no generation call, so they cost nothing (--cheap).
STEPS: List[Tuple[str, str, bool]] = [
    ("00_smoke_sdk", "SDK version and resources (no network)", True),
    ("01_live_api_smoke", "Health + models (no auth)", True),
    ("02_auth_identity", "Auth /auth/me", True),
    ("03_models_catalog", "List, search, get models", True),
    ("04_generate_unified", "Unified generate (managed + BYOK)", False),
    ("05_images_all_providers", "Images: Fal, Replicate, Runway", False),
    ("06_videos_all_providers", "Videos: all providers", False),
    ("07_usage_history_verify", "Usage, logs, dashboard", True),
    ("08_provider_balances", "Provider limits and balances", True),
    ("09_cache_demo", "Exact cache (identical requests)", False),
    ("10_semantic_cache_demo", "Semantic cache (similar prompts)", False),
    ("11_provider_keys", "List and validate BYOK keys", True),
    ("12_api_keys", "List API keys", True),
    ("13_billing_readonly", "Billing stats, info, pricing", True),
    ("14_veo_from_catalog", "Veo from catalog -> generate -> write", False),
    ("15_async_generation", "Async 202 + poll", False),
    ("16_live_regression_smoke", "Managed + exact/semantic cache + async image/video (assertive)", False),
    ("17_batch", "Batch of 20 with a budget; rerun bills nothing twice", False),
]

# Format-valid stand-ins so the BYOK code paths run against the emulator (it never calls a provider).
EMULATOR_BYOK_KEYS = {
    "VISGATE_FAL_API_KEY": "fal_emulator_example_key",
    "VISGATE_REPLICATE_API_KEY": "r8_emulator_example_key",
    "VISGATE_RUNWAY_API_KEY": "rw_emulator_example_key",
}


def select(names: List[str], cheap: bool) -> List[str]:
    """The steps to run, in the canonical order; names may be exact, end in .py, or be a unique prefix."""
    allowed = [s for s, _, free in STEPS if free or not cheap]
    if not names:
        return allowed
    chosen = set()
    for name in names:
        name = os.path.basename(name)[:-3] if name.endswith(".py") else name
        matches = [s for s, _, _ in STEPS if s == name] or [s for s, _, _ in STEPS if s.startswith(name)]
        if len(matches) != 1:
            known = ", ".join(s for s, _, _ in STEPS)
            raise ValueError("%r %s" % (name, "is ambiguous: " + ", ".join(matches) if matches else "is not a step; steps: " + known))
        if matches[0] not in allowed:
            raise ValueError("%s generates media (it costs credits): drop --cheap to run it" % matches[0])
        chosen.add(matches[0])
    return [s for s in allowed if s in chosen]


def child_env(base_url: Optional[str], api_key: Optional[str], byok: Optional[Dict[str, str]]) -> Dict[str, str]:
    env = dict(os.environ)
    # The examples import visgate_sdk (and nothing else) from the repository root: no install needed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONIOENCODING"] = "utf-8"  # output goes to a pipe; keep it UTF-8 on every platform
    if base_url is not None:
        env["VISGATE_BASE_URL"] = base_url
    if api_key is not None:
        env["VISGATE_API_KEY"] = api_key
    if byok is not None:
        env.update(byok)
    return env


def start_emulator() -> object:
    sys.path.insert(0, ROOT)
    from visgate_emulator import Emulator

    emulator = Emulator(host="127.0.0.1", port=0, quiet=True).start()
    # The emulator is local: make sure no HTTP proxy from the environment gets in between.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(p for p in (os.environ.get(name), "127.0.0.1", "localhost") if p)
    return emulator


def run_step(step: str, env: Dict[str, str], timeout: float, verbose: bool) -> Tuple[bool, str]:
    """Run one example; (passed, the lines worth showing when it failed)."""
    command = [sys.executable, os.path.join(HERE, step + ".py")]
    try:
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        output = (exc.output or b"").decode("utf-8", "replace")
        return False, output + "\n(timed out after %gs; --timeout raises the limit)" % timeout
    output = proc.stdout.decode("utf-8", "replace")
    if verbose:
        sys.stdout.write("".join("    | " + line + "\n" for line in output.splitlines()))
    return proc.returncode == 0, output


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run the visgate examples in order and report PASS/FAIL per step.")
    parser.add_argument("steps", nargs="*", help="steps to run (default: all), e.g. 09_cache_demo or 15")
    parser.add_argument("--cheap", action="store_true", help="only the steps that generate nothing (no cost)")
    parser.add_argument("--emulator", action="store_true", help="use the local emulator even if VISGATE_API_KEY is set")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per step (default: 60 on the emulator, 900 live)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every step's output, not only failures'")
    args = parser.parse_args(argv)
    try:
        steps = select(args.steps, args.cheap)
    except ValueError as exc:
        parser.error(str(exc))

    emulator = None
    has_key = bool(os.environ.get("VISGATE_API_KEY", "").strip())
    if args.emulator or not has_key:
        emulator = start_emulator()
        from visgate_emulator import DEMO_API_KEY

        base_url = emulator.base_url  # type: ignore[attr-defined]
        reason = "--emulator given" if has_key else "No VISGATE_API_KEY set"
        print("%s: running against the local visgate emulator at %s (no real generation, no cost)" % (reason, base_url))
        env = child_env(base_url, DEMO_API_KEY, EMULATOR_BYOK_KEYS)
        timeout = args.timeout or 60.0
    else:
        base_url = os.environ.get("VISGATE_BASE_URL") or "https://visgateai.com/api/v1"
        cost = "--cheap: only the steps that generate nothing" if args.cheap else "generation steps use credits; --cheap skips them"
        print("Running against the visgate API at %s (%s)" % (base_url, cost))
        env = child_env(None, None, None)
        timeout = args.timeout or 900.0
    outputs = os.environ.get("VISGATE_SAMPLE_OUTPUTS") or os.path.join(HERE, "sample_outputs")
    print("Outputs: %s" % outputs, flush=True)

    passed = failed = 0
    try:
        for step in steps:
            started = time.monotonic()
            ok, output = run_step(step, env, timeout, args.verbose)
            print("%s %s (%.1fs)" % ("PASS" if ok else "FAIL", step, time.monotonic() - started), flush=True)
            if ok:
                passed += 1
            else:
                failed += 1
                if not args.verbose:  # the last lines usually say why
                    sys.stdout.write("".join("    | " + line + "\n" for line in output.splitlines()[-8:]))
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    finally:
        if emulator is not None:
            emulator.stop()  # type: ignore[attr-defined]
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
