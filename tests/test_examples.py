"""The examples, run end to end against the local emulator exactly as a new user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from visgate_emulator import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
RUN_ALL = os.path.join(EXAMPLES, "run_all_capabilities.py")
RUN_WITH_ENV = os.path.join(EXAMPLES, "run_with_env.py")

FullRun = Tuple["subprocess.CompletedProcess[str]", str]  # the runner's process and the outputs folder


def clean_env(outputs: str, **extra: str) -> Dict[str, str]:
    """The caller's environment without any VISGATE_* setting or PYTHONPATH, outputs to a tmp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISGATE_") and k != "PYTHONPATH"}
    env["VISGATE_SAMPLE_OUTPUTS"] = outputs
    env.update(extra)
    return env


def run(args: List[str], env: Dict[str, str], cwd: str, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    # cwd is a scratch folder: nothing may depend on being started from the repository root.
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, encoding="utf-8", timeout=timeout)


def read(folder: str, name: str) -> str:
    with open(os.path.join(folder, name), encoding="utf-8") as handle:
        return handle.read()


def read_bytes(folder: str, name: str) -> bytes:
    with open(os.path.join(folder, name), "rb") as handle:
        return handle.read()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> FullRun:
    """One run of all 18 steps without an API key (so: against the emulator)."""
    outputs = str(tmp_path_factory.mktemp("sample_outputs"))
    proc = run([RUN_ALL], clean_env(outputs), cwd=outputs)
    return proc, outputs


def test_run_all_passes_against_the_emulator(full_run: FullRun) -> None:
    proc, _ = full_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("No VISGATE_API_KEY set: running against the local visgate emulator at http://127.0.0.1:")
    assert "(no real generation, no cost)" in lines[0]
    assert lines[-1] == "18 passed, 0 failed"
    steps = [line.split()[1] for line in lines if line.startswith("PASS ")]
    assert steps[:4] == ["00_smoke_sdk", "01_live_api_smoke", "02_auth_identity", "03_models_catalog"]
    assert steps[-1] == "17_batch" and len(steps) == 18


def test_every_step_wrote_its_output_file(full_run: FullRun) -> None:
    _, outputs = full_run
    names = sorted(n for n in os.listdir(EXAMPLES) if n[:2].isdigit() and n.endswith(".py"))
    assert len(names) == 18
    for name in names:
        assert read(outputs, "out_%s.txt" % name[:-3]).strip(), name


def test_key_lines_in_the_outputs(full_run: FullRun) -> None:
    _, outputs = full_run
    assert "OK /health: status=ok, version=" in read(outputs, "out_01_live_api_smoke.txt")
    auth = read(outputs, "out_02_auth_identity.txt")
    assert "auth_ok=true" in auth and "organization_id=org_emulator" in auth and "role=api-key" in auth
    assert "mode=managed" in read(outputs, "out_04_generate_unified.txt")
    assert "byok: mode=byok" in read(outputs, "out_04_generate_unified.txt")
    assert "images_saved=3" in read(outputs, "out_05_images_all_providers.txt")
    assert "videos_completed=3" in read(outputs, "out_06_videos_all_providers.txt")
    assert "usage_total_requests=" in read(outputs, "out_07_usage_history_verify.txt")
    balances = read(outputs, "out_08_provider_balances.txt")
    assert "provider_balance_items=3" in balances
    assert all(p + ": configured=" in balances for p in ("fal", "replicate", "runway"))
    cache = read(outputs, "out_09_cache_demo.txt")
    assert "request_2: cache_hit=True" in cache and "cache_hit=True" in cache.splitlines()
    semantic = read(outputs, "out_10_semantic_cache_demo.txt")
    assert "semantic_cache_hit=True" in semantic and "hit (semantic)" in semantic
    keys = read(outputs, "out_11_provider_keys.txt")
    assert "fal: valid=True" in keys and "provider_keys_after_delete=0" in keys
    assert "api_keys_count=1" in read(outputs, "out_12_api_keys.txt")
    assert "billing_status=active" in read(outputs, "out_13_billing_readonly.txt")
    assert "veo_model=fal-ai/veo3" in read(outputs, "out_14_veo_from_catalog.txt")
    assert "async_generation_ok=true" in read(outputs, "out_15_async_generation.txt")
    assert "regression_checks_passed=6/6" in read(outputs, "out_16_live_regression_smoke.txt")
    batch = read(outputs, "out_17_batch.txt")
    assert "run 1: succeeded=20 failed=0 not_run=0" in batch and "billed_twice=0" in batch
    assert "run 2 new requests=0" in batch


def test_media_files_are_real_png_and_mp4(full_run: FullRun) -> None:
    _, outputs = full_run
    for name in ("generate_unified.png", "sunset_istanbul.png", "galata_tower.png", "bosphorus_night.png",
                 "cache_demo.png", "semantic_exact.png", "semantic_similar.png"):
        data = read_bytes(outputs, name)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 100, name
    for name in ("06_videos_sample.mp4", "istanbul.mp4", "15_async_video.mp4"):
        data = read_bytes(outputs, name)
        assert data[4:8] == b"ftyp", name
    assert not [n for n in os.listdir(outputs) if n.endswith(".part")]  # no download left half-written


def test_cheap_run_with_a_key_and_forced_emulator(tmp_path: Path) -> None:
    outputs = str(tmp_path)
    proc = run([RUN_ALL, "--emulator", "--cheap"], clean_env(outputs, VISGATE_API_KEY="vg-not-used"), cwd=outputs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("--emulator given: running against the local visgate emulator")
    assert proc.stdout.splitlines()[-1] == "9 passed, 0 failed"
    assert not [n for n in os.listdir(outputs) if n.endswith((".png", ".mp4"))]  # nothing was generated


def test_a_failing_step_fails_the_run(tmp_path: Path, emulator: Emulator) -> None:
    outputs = str(tmp_path)
    env = clean_env(outputs, VISGATE_API_KEY="vg-invalid-key")  # the emulator rejects vg-invalid... keys
    env["VISGATE_BASE_URL"] = emulator.base_url
    proc = run([RUN_ALL, "00_smoke_sdk", "02_auth_identity"], env, cwd=outputs)
    assert proc.returncode == 1
    assert "PASS 00_smoke_sdk" in proc.stdout and "FAIL 02_auth_identity" in proc.stdout
    assert "ERROR AuthenticationError" in proc.stdout  # the child's reason is shown
    assert proc.stdout.splitlines()[-1] == "1 passed, 1 failed"
    assert "auth_ok=false" in read(outputs, "out_02_auth_identity.txt")


def test_unknown_step_is_a_usage_error(tmp_path: Path) -> None:
    proc = run([RUN_ALL, "99_nope"], clean_env(str(tmp_path)), cwd=str(tmp_path))
    assert proc.returncode == 2 and "is not a step" in proc.stderr


def test_run_with_env_loads_the_file_and_never_prints_values(tmp_path: Path, emulator: Emulator) -> None:
    outputs = str(tmp_path)
    secret = "vg-dotenv-secret-0123456789"
    env_file = os.path.join(outputs, "my.env")
    with open(env_file, "w", encoding="utf-8") as handle:
        handle.write("# keys for the examples\n\nexport VISGATE_API_KEY=\"%s\"\n" % secret)
        handle.write("VISGATE_BASE_URL='%s'  \nVISGATE_FAL_API_KEY=fal_example_key # a comment\n" % emulator.base_url)
    env = clean_env(outputs, VISGATE_ENV_FILE=env_file)
    proc = run([RUN_WITH_ENV, "02_auth_identity.py"], env, cwd=outputs)
    keys = run([RUN_WITH_ENV, "11_provider_keys.py"], env, cwd=outputs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loaded 3 variable(s)" in proc.stdout and "VISGATE_API_KEY" in proc.stdout
    assert "auth_ok=true" in proc.stdout
    assert keys.returncode == 0 and "fal: valid=True" in keys.stdout
    for text in (proc.stdout, proc.stderr, keys.stdout, keys.stderr, read(outputs, "out_11_provider_keys.txt")):
        assert secret not in text and "fal_example_key" not in text


def test_env_file_parsing(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_with_env", RUN_WITH_ENV)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = os.path.join(str(tmp_path), ".env")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\ufeff# comment\n\n export A=1\nB = \"two words\"\nC='x # y'\nD=plain # note\nE=\nF=a=b\n")
    assert module.parse_env_file(path) == {"A": "1", "B": "two words", "C": "x # y", "D": "plain", "E": "", "F": "a=b"}
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("not a pair\n")
    with pytest.raises(ValueError, match="expected KEY=value"):
        module.parse_env_file(path)


def test_run_with_env_missing_explicit_file(tmp_path: Path) -> None:
    env = clean_env(str(tmp_path), VISGATE_ENV_FILE=os.path.join(str(tmp_path), "absent.env"))
    proc = run([RUN_WITH_ENV, "00_smoke_sdk.py"], env, cwd=str(tmp_path))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
