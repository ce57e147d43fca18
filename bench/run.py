"""Benchmark visgate_sdk.py against the published reference client (visgate-sdk==0.0.3).

    python3 bench/run.py            # full run (a few minutes); rewrites BENCHMARKS.md
    python3 bench/run.py --smoke    # a few calls each, for CI (no BENCHMARKS.md)

The reference is installed from PyPI into bench/.venv-ref (reused when it is
already there) with the interpreter running this script. Every workload runs
in fresh child processes of that venv's python, ours with the repository root
first on PYTHONPATH, the two clients interleaved round by round, against a
loopback server (bench/server.py) in its own process. The table reports
medians and ratios ours / reference. Exit status: 0 when every workload ran,
even if a target was missed; 1 when a workload crashed.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import workloads as W  # bench/ is sys.path[0] when run as a script

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
VENV = os.path.join(BENCH, ".venv-ref")
REFERENCE = ("visgate-sdk", "0.0.3")


class Workload(NamedTuple):
    sides: dict  # side name -> child snippet; "ours" and "ref" always, plus a "raw"/"bare" baseline
    full: tuple  # (processes per side, calls per process, warm-up calls) in a full run
    smoke: tuple  # the same for --smoke
    timed: bool = False  # the parent times the whole process (plus one discarded warm-up round)
    https: bool = False
    slow_ms: int = 0  # the server delays every response by this much


SYNC = {"ours": W.SYNC_SEQUENTIAL, "ref": W.SYNC_SEQUENTIAL, "raw": W.RAW_HTTP_CLIENT}
FAN_OUT = {"ours": W.FAN_OUT, "ref": W.FAN_OUT}
WORKLOADS = {
    "import": Workload({"ours": W.IMPORT, "ref": W.IMPORT, "bare": W.BARE}, (30, 0, 0), (3, 0, 0), timed=True),
    "memory": Workload({"ours": W.MEMORY, "ref": W.MEMORY, "bare": W.BARE_MEMORY}, (10, 0, 0), (3, 0, 0)),
    "cold": Workload({"ours": W.COLD_START, "ref": W.COLD_START}, (30, 0, 0), (3, 0, 0), timed=True),
    "sync_http": Workload(SYNC, (7, 1500, 150), (1, 200, 20)),
    "sync_https": Workload(SYNC, (7, 1500, 150), (1, 200, 20), https=True),
    "async_http": Workload({"ours": W.ASYNC_SEQUENTIAL, "ref": W.ASYNC_SEQUENTIAL}, (7, 1500, 150), (1, 200, 20)),
    "fanout_10": Workload(FAN_OUT, (5, 10, 0), (1, 10, 0), slow_ms=500),
    "fanout_50": Workload(FAN_OUT, (5, 50, 0), (1, 50, 0), slow_ms=500),
    "fanout_100": Workload(FAN_OUT, (5, 100, 0), (1, 100, 0), slow_ms=500),
}


class Row(NamedTuple):
    label: str
    workload: str
    metric: str  # "wall": whole process timed by the parent; "value": reported by the child
    a: str  # the side in the "ours" column
    b: str  # the side in the "reference" column (a == b: an information row)
    unit: str
    target: tuple = ()  # (op, bound) on the ratio a / b
    limit: float = 0.0  # absolute upper bound on a, when set


ROWS = [
    Row("import visgate_sdk (whole process)", "import", "wall", "ours", "ref", "ms", ("<=", 0.40)),
    Row("bare interpreter `python -c pass`", "import", "wall", "bare", "bare", "ms"),
    Row("cold start: import + Client() + health()", "cold", "wall", "ours", "ref", "ms", ("<=", 0.45)),
    Row("peak RSS after import", "memory", "value", "ours", "ref", "MiB", ("<=", 0.85)),
    Row("peak RSS, bare interpreter", "memory", "value", "bare", "bare", "MiB"),
    Row("peak RSS after cold start", "cold", "value", "ours", "ref", "MiB"),
    Row("sync sequential health(), HTTP", "sync_http", "value", "ours", "ref", "req/s", (">=", 2.0)),
    Row("sync sequential health(), HTTPS", "sync_https", "value", "ours", "ref", "req/s", (">=", 2.0)),
    Row("async sequential await health(), HTTP", "async_http", "value", "ours", "ref", "req/s", (">=", 2.0)),
    Row("async fan-out 10 x 500 ms (wall)", "fanout_10", "value", "ours", "ref", "s"),
    Row("async fan-out 50 x 500 ms (wall)", "fanout_50", "value", "ours", "ref", "s"),
    Row("async fan-out 100 x 500 ms (wall)", "fanout_100", "value", "ours", "ref", "s", ("<=", 1.0), 0.7),
    Row("per call, HTTP: ours vs raw http.client", "sync_http", "value", "ours", "raw", "us/call", ("<=", 1.3)),
    Row("per call, HTTPS: ours vs raw http.client", "sync_https", "value", "ours", "raw", "us/call"),
]


class WorkloadError(Exception):
    """A child process failed or imported the wrong visgate_sdk."""


def sh(cmd: list, **kw) -> str:
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, universal_newlines=True, **kw).stdout


def venv_python() -> str:
    sub = ("Scripts", "python.exe") if os.name == "nt" else ("bin", "python")
    return os.path.join(VENV, *sub)


def ensure_reference_venv() -> str:
    """Create or reuse bench/.venv-ref with the reference client and trustme; return its python."""
    py = venv_python()
    probe = (
        "import sys, json, importlib.metadata as m, importlib.util as u\n"
        "try: v = m.version(%r)\nexcept Exception: v = None\n"
        "print(json.dumps([sys.version, sys.base_prefix, v, u.find_spec('trustme') is not None]))"
        % REFERENCE[0]
    )
    want = [sys.version, sys.base_prefix, REFERENCE[1], True]
    try:
        if json.loads(sh([py, "-c", probe])) == want:
            return py
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    log("installing %s==%s into %s" % (REFERENCE + (os.path.relpath(VENV),)))
    for cmd in ([sys.executable, "-m", "venv", "--clear", VENV],
                [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "%s==%s" % REFERENCE,
                 "trustme"]):
        if subprocess.run(cmd).returncode:
            raise SystemExit("bench: could not set up the reference venv: %s failed" % " ".join(cmd[:4]))
    return py


def make_certs(py: str, directory: str) -> tuple:
    """Issue a throwaway CA and a 127.0.0.1/localhost certificate with trustme."""
    ca, server = os.path.join(directory, "ca.pem"), os.path.join(directory, "server.pem")
    sh([py, "-c", "import sys, trustme; ca = trustme.CA(); ca.cert_pem.write_to_path(sys.argv[1]);"
        "ca.issue_cert('127.0.0.1', 'localhost').private_key_and_cert_chain_pem.write_to_path(sys.argv[2])",
        ca, server])
    return ca, server


def start_server(cert: str) -> tuple:
    """Start bench/server.py in its own process; return (process, {"http": port, "https": port})."""
    proc = subprocess.Popen([sys.executable, os.path.join(BENCH, "server.py"), "--cert", cert],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("bench: the loopback server did not start")
    return proc, json.loads(line)


def server_stats(port: int) -> tuple:
    """(CPU seconds, requests served) of the loopback server so far."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/_bench/stats")
    stats = json.loads(conn.getresponse().read())
    conn.close()
    return stats["cpu"], stats["requests"]


def child_env(pycache: str, ours_dir: str | None) -> dict:
    """A clean environment: no PYTHON*/SSL_*/proxy variables leak in from the caller."""
    drop = ("PYTHON", "SSL_CERT", "VIRTUAL_ENV", "VISGATE_")
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(drop) and not k.lower().endswith("_proxy")}
    env.update(PYTHONPYCACHEPREFIX=pycache, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    if ours_dir:
        env["PYTHONPATH"] = ours_dir
    return env


class Runner:
    """Runs snippets in child processes for each side and checks what they imported."""

    def __init__(self, py: str, ours_dir: str, strict: bool, ca: str, workdir: str, ports: dict, timeout: float):
        pycache = os.path.join(BENCH, ".pycache")
        self.py, self.ca, self.workdir, self.ports, self.strict = py, ca, workdir, ports, strict
        self.timeout = timeout  # per child process
        self.env = {side: child_env(pycache, ours_dir if side == "ours" else None)
                    for side in ("ours", "ref", "raw", "bare")}
        self.expect = {"ours": os.path.realpath(ours_dir), "ref": os.path.realpath(VENV)}

    def run(self, side: str, snippet: str, params: dict, https: bool) -> tuple:
        """Run one child; return (whole-process wall seconds, child-reported value or None)."""
        env = dict(self.env[side], SSL_CERT_FILE=self.ca) if https else self.env[side]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([self.py, "-c", snippet, json.dumps(params)], env=env, cwd=self.workdir,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise WorkloadError("%s: timed out after %d s" % (side, self.timeout)) from None
        wall = time.perf_counter() - t0
        if proc.returncode:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-12:]
            raise WorkloadError("%s: exit %d\n    %s" % (side, proc.returncode, "\n    ".join(tail)))
        fields = (proc.stdout.decode().split("\t") + ["", ""])[:3]
        where = self.expect.get(side)
        if where and not os.path.realpath(fields[0]).startswith(where + os.sep):
            raise WorkloadError("%s imported visgate_sdk from %r, expected under %s" % (side, fields[0], where))
        if side == "ours" and fields[2]:
            msg = "ours imported third-party modules: %s" % fields[2]
            if self.strict:
                raise WorkloadError(msg)
            log("warning: " + msg)
        return wall, float(fields[1]) if fields[1] else None

    def workload(self, name: str, smoke: bool) -> dict:
        """Run all sides of one workload interleaved; return {side: {"wall": [...], "value": [...]}}."""
        spec = WORKLOADS[name]
        runs, calls, warmup = spec.smoke if smoke else spec.full
        scheme = "https" if spec.https else "http"
        slow = "/slow%d" % spec.slow_ms if spec.slow_ms else ""
        url = "%s://127.0.0.1:%d%s/api/v1" % (scheme, self.ports[scheme], slow)
        sides = list(spec.sides)
        samples = {side: {"wall": [], "value": []} for side in sides}
        for rnd in range(-1 if spec.timed else 0, runs):  # round -1 warms caches and is discarded
            for side in sides[rnd % len(sides):] + sides[:rnd % len(sides)]:  # rotate who goes first
                ours_kwargs = {}
                if side == "ours":
                    ours_kwargs = {"verify": self.ca} if spec.https else {}
                    if spec.slow_ms:
                        ours_kwargs["max_concurrency"] = 100
                params = {"url": url, "calls": calls, "warmup": warmup, "ca": self.ca, "ours_kwargs": ours_kwargs}
                wall, value = self.run(side, spec.sides[side], params, spec.https)
                if rnd >= 0:
                    samples[side]["wall"].append(wall)
                    if value is not None:
                        samples[side]["value"].append(value)
        return samples


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def convert(unit: str, x: float) -> float:
    """Convert a raw median (seconds, KiB, req/s) to the display unit."""
    if unit == "ms":
        return x * 1000.0
    if unit == "MiB":
        return x / 1024.0  # children report KiB
    if unit == "us/call":
        return 1e6 / x
    return x


def build_rows(results: dict, errors: dict) -> list:
    """Turn medians into table rows: label, ours, reference, ratio, target, result."""
    rows = []
    for row in ROWS:
        if row.workload in errors:
            rows.append([row.label, "-", "-", "-", fmt_target(row), "CRASH"])
        if row.workload not in results:
            continue  # crashed, or not selected with --only
        va, vb = (convert(row.unit, statistics.median(results[row.workload][side][row.metric]))
                  for side in (row.a, row.b))
        if row.a == row.b:
            rows.append([row.label, fmt(va, row.unit), fmt(vb, row.unit), "", "", "info"])
            continue
        ratio, result = va / vb, "info"
        if row.target:
            ok = ratio <= row.target[1] if row.target[0] == "<=" else ratio >= row.target[1]
            result = "pass" if ok and (not row.limit or va <= row.limit) else "MISS"
        rows.append([row.label, fmt(va, row.unit), fmt(vb, row.unit) + (" (raw)" if row.b == "raw" else ""),
                     "%.2f" % ratio, fmt_target(row), result])
    return rows


def fmt(x: float, unit: str) -> str:
    digits = 0 if unit == "req/s" else (1 if x >= 10 else 2)
    return "%.*f %s" % (digits, x, unit)


def fmt_target(row: Row) -> str:
    if not row.target:
        return ""
    text = "%s %.2f" % ("≤" if row.target[0] == "<=" else "≥", row.target[1])
    return text + (", ours ≤ %.2f s" % row.limit if row.limit else "")


def table(rows: list) -> str:
    header = ["workload", "ours", "reference", "ratio", "target", "result"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in [header] + rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine_info(py: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        commit = sh(["git", "-C", ROOT, "describe", "--always", "--dirty"], stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "uncommitted"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": "%s %s" % (platform.python_implementation(), platform.python_version()),
        "os": platform.platform(),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "httpx": sh([py, "-c", "import importlib.metadata as m; print(m.version('httpx'))"]).strip(),
        "commit": commit,
    }


def markdown(rows: list, info: dict, floors: str, seconds: float) -> str:
    runs = {name: spec.full for name, spec in WORKLOADS.items()}
    return """# Benchmarks

`visgate_sdk.py` (this repository, standard library only) against the published
reference client `{ref}` (built on httpx {httpx}), measured side by side in one run.

Reproduce: `python3 bench/run.py` (this full run took {seconds:.0f} s; `--smoke` does a few calls each).

Machine: {cpu}, {nproc} cores, {os}; {python}; commit `{commit}`; {date}.

{table}

{floors}

How it is measured (see `bench/`):
- Every workload runs in fresh child processes of one interpreter (the
  reference's venv python; ours with the repository root first on `PYTHONPATH`),
  ours and the reference interleaved round by round; values are medians.
- Import and cold start are whole-process wall times timed by the parent
  ({imp} and {cold} runs); peak RSS is the child's own high-water mark (`VmHWM`,
  {mem} runs; `ru_maxrss` would include the parent's across fork+exec on Linux).
- Sequential workloads make {calls} `health()` calls over one client after {warm}
  warm-up calls ({procs} processes per side); HTTPS uses a trustme certificate.
- Fan-out: N concurrent `AsyncClient.health()` calls via `asyncio.gather` on a
  fresh client against a path the server answers after {slow} ms (ideal {ideal} s).
- The floor is a hand-written keep-alive `http.client` loop doing the same GET
  and `json.loads`; the loopback server (`bench/server.py`) runs in its own process.
""".format(ref="%s==%s" % REFERENCE, seconds=seconds, table=table(rows), floors=floors,
           imp=runs["import"][0], cold=runs["cold"][0], mem=runs["memory"][0], procs=runs["sync_http"][0],
           calls=runs["sync_http"][1], warm=runs["sync_http"][2], slow=WORKLOADS["fanout_100"].slow_ms,
           ideal=WORKLOADS["fanout_100"].slow_ms / 1000.0, **info)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark visgate_sdk.py against visgate-sdk==0.0.3.")
    parser.add_argument("--smoke", action="store_true", help="a few calls each (CI); no BENCHMARKS.md")
    parser.add_argument("--json", metavar="PATH", help="also write raw samples and the table as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="where the full run writes its report "
                        "(default BENCHMARKS.md at the repository root)")
    parser.add_argument("--no-markdown", action="store_true", help="do not write the markdown report")
    parser.add_argument("--only", metavar="NAME", action="append", choices=list(WORKLOADS),
                        help="run only this workload (repeatable)")
    # Hidden: a directory holding some other visgate_sdk, e.g. the reference, to test the harness itself.
    parser.add_argument("--ours-path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    started = time.perf_counter()
    ours_dir = os.path.abspath(args.ours_path or ROOT)
    if not any(os.path.exists(os.path.join(ours_dir, n)) for n in ("visgate_sdk.py", "visgate_sdk")):
        log("bench: no visgate_sdk in %s" % ours_dir)
        return 2
    py = ensure_reference_venv()
    log("reference venv ready after %.1f s" % (time.perf_counter() - started))
    with tempfile.TemporaryDirectory(prefix="visgate-bench-") as workdir:
        ca, cert = make_certs(py, workdir)
        server, ports = start_server(cert)
        try:
            runner = Runner(py, ours_dir, strict=args.ours_path is None, ca=ca, workdir=workdir, ports=ports,
                            timeout=30 if args.smoke else 300)
            results, errors, server_us = {}, {}, {}
            for name in args.only or WORKLOADS:
                t0, (cpu0, n0) = time.perf_counter(), server_stats(ports["http"])
                try:
                    results[name] = runner.workload(name, args.smoke)
                    cpu1, n1 = server_stats(ports["http"])
                    server_us[name] = 1e6 * (cpu1 - cpu0) / max(1, n1 - n0 - 1)  # less the 1st stats call
                    log("%-11s done in %5.1f s" % (name, time.perf_counter() - t0))
                except WorkloadError as exc:
                    errors[name] = str(exc)
                    log("%-11s CRASHED: %s" % (name, str(exc).splitlines()[0]))
        finally:
            server.stdin.close()
            server.wait(timeout=10)
        info = machine_info(py)

    rows = build_rows(results, errors)
    floors = floor_note(results, server_us)
    elapsed = time.perf_counter() - started
    print(table(rows))
    if floors:
        print(floors)
    if not args.smoke and not args.no_markdown and (args.markdown or not (args.ours_path or args.only)):
        path = args.markdown or os.path.join(ROOT, "BENCHMARKS.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(markdown(rows, info, floors, elapsed))
        log("wrote %s" % path)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": info, "smoke": args.smoke, "seconds": elapsed, "errors": errors,
                       "rows": rows, "samples": results}, f, indent=1)
    for name, err in errors.items():
        print("CRASH %s: %s" % (name, err))
    if args.smoke:
        print("bench smoke: %d workloads ran" % len(results))
    log("total %.1f s" % elapsed)
    return 1 if errors else 0


def floor_note(results: dict, server_us: dict) -> str:
    """One line showing the loopback round-trip floor, so the server is visibly not the bottleneck."""
    parts = []
    for name in ("sync_http", "sync_https"):
        if name in results:
            rps = statistics.median(results[name]["raw"]["value"])
            parts.append("%s %.0f us/call (%.0f req/s; server CPU %.0f us/request)"
                         % (name[5:].upper(), 1e6 / rps, rps, server_us[name]))
    return ("Floor, a raw keep-alive http.client loop against the same loopback server: "
            + "; ".join(parts) + ".") if parts else ""


if __name__ == "__main__":
    sys.exit(main())
