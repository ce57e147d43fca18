"""Benchmark visgate_sdk.py against the published reference client (visgate-sdk==0.0.3).

    python3 bench/run.py            # full run (a few minutes); rewrites BENCHMARKS.md and bench/results.svg
    python3 bench/run.py --smoke    # a few calls each, for CI (writes no file unless --svg/--json)

The reference is installed from PyPI into bench/.venv-ref (reused when it is
already there) with the interpreter running this script. Every workload runs
in fresh child processes of that venv's python, ours with the repository root
first on PYTHONPATH, the two clients interleaved round by round, against a
loopback server (bench/server.py) in its own process. The table reports
medians and ratios ours / reference, and bench/results.svg draws them as a
bar chart (chart_svg). Exit status: 0 when every workload ran,
even if a target was missed; 1 when a workload crashed.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

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
    # Ours imports a copy of visgate_sdk.py from a plain directory with -B and
    # PYTHONDONTWRITEBYTECODE=1 (compiled from source every time); the reference
    # imports as pip installed it, with the bytecode pip wrote next to it.
    vendored: bool = False
    batch: tuple = ()  # ((concurrency, server delay ms) full, (the same) smoke); calls = items


SYNC = {"ours": W.SYNC_SEQUENTIAL, "ref": W.SYNC_SEQUENTIAL, "raw": W.RAW_HTTP_CLIENT}
FAN_OUT = {"ours": W.FAN_OUT, "ref": W.FAN_OUT}
WORKLOADS = {
    "import": Workload({"ours": W.IMPORT, "ref": W.IMPORT, "bare": W.BARE}, (30, 0, 0), (3, 0, 0), timed=True),
    "import_vendored": Workload({"ours": W.IMPORT, "ref": W.IMPORT}, (30, 0, 0), (3, 0, 0), timed=True,
                                vendored=True),
    "memory": Workload({"ours": W.MEMORY, "ref": W.MEMORY, "bare": W.BARE_MEMORY}, (10, 0, 0), (3, 0, 0)),
    "cold": Workload({"ours": W.COLD_START, "ref": W.COLD_START}, (30, 0, 0), (3, 0, 0), timed=True),
    "sync_http": Workload(SYNC, (7, 1500, 150), (1, 200, 20)),
    "sync_https": Workload(SYNC, (7, 1500, 150), (1, 200, 20), https=True),
    "async_http": Workload({"ours": W.ASYNC_SEQUENTIAL, "ref": W.ASYNC_SEQUENTIAL}, (7, 1500, 150), (1, 200, 20)),
    "fanout_10": Workload(FAN_OUT, (5, 10, 0), (1, 10, 0), slow_ms=500),
    "fanout_50": Workload(FAN_OUT, (5, 50, 0), (1, 50, 0), slow_ms=500),
    "fanout_100": Workload(FAN_OUT, (5, 100, 0), (1, 100, 0), slow_ms=500),
    "batch": Workload({"ours": W.BATCH_OURS, "ref": W.BATCH_REF}, (5, 200, 0), (1, 20, 0),
                      batch=((50, 200), (10, 50))),
}


class Row(NamedTuple):
    label: str
    workload: str
    metric: str  # "wall": whole process timed by the parent; "value": reported by the child
    a: str  # the side in the "ours" column
    b: str  # the side in the "reference" column (a == b: an information row; "ideal": a batch's ideal wall)
    unit: str
    target: tuple = ()  # (op, bound) on the ratio a / b
    limit: float = 0.0  # absolute upper bound on a, when set


ROWS = [
    Row("import visgate_sdk (whole process)", "import", "wall", "ours", "ref", "ms", ("<=", 0.40)),
    Row("import of a vendored copy with no bytecode", "import_vendored", "wall", "ours", "ref", "ms",
        ("<=", 0.40)),
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
    Row("batch {items} x {ms} ms, concurrency {conc} (wall)", "batch", "value", "ours", "ref", "s"),
    Row("batch {items} x {ms} ms, concurrency {conc}: vs ideal", "batch", "value", "ours", "ideal", "s",
        ("<=", 1.15)),
]
NOT_AVAILABLE = "n/a (generate_many not available)"



class WorkloadError(Exception):
    """A child process failed or imported the wrong visgate_sdk."""


def sh(cmd: list, **kw) -> str:
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def venv_python() -> str:
    sub = ("Scripts", "python.exe") if os.name == "nt" else ("bin", "python")
    return os.path.join(VENV, *sub)


def ensure_reference_venv() -> str:
    """Create or reuse bench/.venv-ref with the reference client and trustme; return its python."""
    py = venv_python()
    probe = (
        "import sys, json, importlib.metadata as m, importlib.util as u\n"
        f"try: v = m.version({REFERENCE[0]!r})\nexcept Exception: v = None\n"
        "print(json.dumps([sys.version, sys.base_prefix, v, u.find_spec('trustme') is not None]))"
    )
    want = [sys.version, sys.base_prefix, REFERENCE[1], True]
    try:
        if json.loads(sh([py, "-c", probe])) == want:
            return py
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    log("installing %s==%s into %s" % (*REFERENCE, os.path.relpath(VENV)))
    for cmd in ([sys.executable, "-m", "venv", "--clear", VENV],
                [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "{}=={}".format(*REFERENCE),
                 "trustme"]):
        if subprocess.run(cmd).returncode:
            raise SystemExit("bench: could not set up the reference venv: {} failed".format(" ".join(cmd[:4])))
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
    line = proc.stdout.readline() if proc.stdout else ""
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


def child_env(pycache: str | None, ours_dir: str | None) -> dict:
    """A clean environment: no PYTHON*/SSL_*/proxy variables leak in from the caller.

    In particular PYTHONDONTWRITEBYTECODE (set on many CI and developer machines)
    is dropped, so the import rows measure imports with bytecode: the children
    write it to (and read it from) ``pycache`` on the discarded warm-up round.
    """
    drop = ("PYTHON", "SSL_CERT", "VIRTUAL_ENV", "VISGATE_")
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(drop) and not k.lower().endswith("_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    if pycache:
        env["PYTHONPYCACHEPREFIX"] = pycache
    if ours_dir:
        env["PYTHONPATH"] = ours_dir
    return env


def vendor_copy(ours_dir: str, workdir: str) -> str:
    """Copy ours into ``workdir/myapp_vendor`` as an application would vendor it; return that directory."""
    vendor = os.path.join(workdir, "myapp_vendor")
    os.makedirs(vendor, exist_ok=True)
    source = os.path.join(ours_dir, "visgate_sdk.py")
    if os.path.exists(source):
        shutil.copyfile(source, os.path.join(vendor, "visgate_sdk.py"))
    else:  # a package directory (--ours-path pointing at some other visgate_sdk)
        shutil.copytree(os.path.join(ours_dir, "visgate_sdk"), os.path.join(vendor, "visgate_sdk"),
                        ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return vendor


class Runner:
    """Runs snippets in child processes for each side and checks what they imported."""

    def __init__(self, py: str, ours_dir: str, strict: bool, ca: str, workdir: str, ports: dict, timeout: float):
        pycache = os.path.join(BENCH, ".pycache")
        self.py, self.ca, self.workdir, self.ports, self.strict = py, ca, workdir, ports, strict
        self.timeout = timeout  # per child process
        self.env = {side: child_env(pycache, ours_dir if side == "ours" else None)
                    for side in ("ours", "ref", "raw", "bare")}
        assert not any("PYTHONDONTWRITEBYTECODE" in env for env in self.env.values())
        self.expect = {"ours": os.path.realpath(ours_dir), "ref": os.path.realpath(VENV)}
        self.ours_dir = ours_dir
        self.vendor = ""  # the vendored copy's directory, made on first use

    def vendored(self, side: str) -> tuple:
        """(argv prefix, env, cwd, expected location) of a vendored-import child."""
        if side != "ours":  # the reference as pip left it: its own __pycache__, no prefix
            return [self.py], child_env(None, None), self.workdir, self.expect[side]
        if not self.vendor:
            self.vendor = vendor_copy(self.ours_dir, self.workdir)
        env = dict(child_env(None, None), PYTHONDONTWRITEBYTECODE="1")
        return [self.py, "-B"], env, self.vendor, os.path.realpath(self.vendor)

    def run(self, side: str, snippet: str, params: dict, https: bool, vendored: bool = False) -> tuple:
        """Run one child; return (whole-process wall seconds, child-reported value, "n/a" or None)."""
        argv, env, cwd, where = [self.py], self.env[side], self.workdir, self.expect.get(side)
        if vendored:
            argv, env, cwd, where = self.vendored(side)
        if https:
            env = dict(env, SSL_CERT_FILE=self.ca)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([*argv, "-c", snippet, json.dumps(params)], env=env, cwd=cwd,
                                  capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise WorkloadError(f"{side}: timed out after {self.timeout} s") from None
        wall = time.perf_counter() - t0
        if proc.returncode:
            tail = "\n    ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-12:])
            raise WorkloadError(f"{side}: exit {proc.returncode}\n    {tail}")
        fields = [*proc.stdout.decode().split("\t"), "", ""][:3]
        if where and not os.path.realpath(fields[0]).startswith(where + os.sep):
            raise WorkloadError(f"{side} imported visgate_sdk from {fields[0]!r}, expected under {where}")
        if side == "ours" and fields[2]:
            msg = f"ours imported third-party modules: {fields[2]}"
            if self.strict:
                raise WorkloadError(msg)
            log("warning: " + msg)
        if fields[1] == "n/a":
            return wall, "n/a"
        return wall, float(fields[1]) if fields[1] else None

    def workload(self, name: str, smoke: bool) -> dict:
        """Run all sides of one workload interleaved; return {side: {"wall": [...], "value": [...]}}."""
        spec = WORKLOADS[name]
        runs, calls, warmup = spec.smoke if smoke else spec.full
        scheme = "https" if spec.https else "http"
        slow_ms = spec.batch[1 if smoke else 0][1] if spec.batch else spec.slow_ms
        slow = f"/slow{slow_ms}" if slow_ms else ""
        url = f"{scheme}://127.0.0.1:{self.ports[scheme]}{slow}/api/v1"
        sides = list(spec.sides)
        samples: dict = {side: {"wall": [], "value": []} for side in sides}
        for rnd in range(-1 if spec.timed else 0, runs):  # round -1 warms caches and is discarded
            for side in sides[rnd % len(sides):] + sides[:rnd % len(sides)]:  # rotate who goes first
                ours_kwargs: dict = {}
                if side == "ours":
                    ours_kwargs = {"verify": self.ca} if spec.https else {}
                    if spec.slow_ms:
                        ours_kwargs["max_concurrency"] = 100
                params = {"url": url, "calls": calls, "warmup": warmup, "ca": self.ca, "ours_kwargs": ours_kwargs}
                if spec.batch:
                    params["concurrency"] = spec.batch[1 if smoke else 0][0]
                wall, value = self.run(side, spec.sides[side], params, spec.https, spec.vendored)
                if rnd >= 0:
                    samples[side]["wall"].append(wall)
                    if value == "n/a":
                        samples[side]["na"] = True
                    elif value is not None:
                        samples[side]["value"].append(value)
        if spec.vendored and self.vendor:  # -B really compiled from source every time
            left = [d for d, _, files in os.walk(self.vendor) if "__pycache__" in d or
                    any(f.endswith(".pyc") for f in files)]
            if left:
                raise WorkloadError("ours (vendored) left bytecode behind: {}".format(", ".join(left)))
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


def batch_shape(smoke: bool) -> dict:
    """Items, concurrency, server delay (ms) and ideal wall (s) of the batch workload."""
    spec = WORKLOADS["batch"]
    items = (spec.smoke if smoke else spec.full)[1]
    conc, ms = spec.batch[1 if smoke else 0]
    return {"items": items, "conc": conc, "ms": ms, "ideal": math.ceil(items / conc) * ms / 1000.0}


def row_label(row: Row, smoke: bool) -> str:
    return row.label.format(**batch_shape(smoke)) if row.workload == "batch" else row.label


def side_value(results: dict, row: Row, side: str, smoke: bool) -> float | None:
    """The median of one side of a row in display units; None when that side is "n/a"."""
    if side == "ideal":
        return batch_shape(smoke)["ideal"]
    samples = results[row.workload][side]
    if samples.get("na"):
        return None
    return convert(row.unit, statistics.median(samples[row.metric]))


def build_rows(results: dict, errors: dict, smoke: bool = False) -> list:
    """Turn medians into table rows: label, ours, reference, ratio, target, result."""
    rows = []
    for row in ROWS:
        label = row_label(row, smoke)
        if row.workload in errors:
            rows.append([label, "-", "-", "-", fmt_target(row), "CRASH"])
        if row.workload not in results:
            continue  # crashed, or not selected with --only
        va, vb = (side_value(results, row, side, smoke) for side in (row.a, row.b))
        if va is None or vb is None:
            rows.append([label, NOT_AVAILABLE if va is None else fmt(va, row.unit),
                         "-" if vb is None else fmt(vb, row.unit) + (" (ideal)" if row.b == "ideal" else ""),
                         "-", fmt_target(row), "n/a"])
            continue
        if row.a == row.b:
            rows.append([label, fmt(va, row.unit), fmt(vb, row.unit), "", "", "info"])
            continue
        ratio, result = va / vb, "info"
        if row.target:
            ok = ratio <= row.target[1] if row.target[0] == "<=" else ratio >= row.target[1]
            result = "pass" if ok and (not row.limit or va <= row.limit) else "MISS"
        note = {"raw": " (raw)", "ideal": " (ideal)"}.get(row.b, "")
        rows.append([label, fmt(va, row.unit), fmt(vb, row.unit) + note, f"{ratio:.2f}", fmt_target(row), result])
    return rows


HIGHER_IS_BETTER = {"req/s"}  # every other unit (ms, MiB, s, us/call) is lower-is-better


def chart_series(results: dict, smoke: bool = False) -> list:
    """The rows that compare ours with the reference, as numbers for chart_svg."""
    series = []
    for row in ROWS:
        if row.a != "ours" or row.b != "ref" or row.workload not in results:
            continue
        ours, ref = (side_value(results, row, side, smoke) for side in ("ours", "ref"))
        if ours is not None and ref is not None:
            series.append({"label": row_label(row, smoke).replace("`", ""), "ours": ours, "ref": ref,
                           "unit": row.unit, "higher_is_better": row.unit in HIGHER_IS_BETTER})
    return series


def chart_svg(series: list, note: str = "") -> str:
    """A grouped horizontal bar chart (SVG text) of ours vs the reference, one group per workload.

    ``series`` items are dicts with label, ours, ref, unit and higher_is_better. Each
    workload's two bars are scaled to the larger of its two values, so every group
    reads on its own; the value with its unit sits at the end of each bar, and the
    label says which way is better and gives the ratio ours / reference.
    """
    label_w, bar_w, tail_w = 330, 390, 110
    bar_h, bar_gap, group_gap, top = 13, 2, 16, 74
    colours = {"ours": "#2563eb", "ref": "#9ca3af"}
    width, group_h = label_w + bar_w + tail_w, 2 * bar_h + bar_gap + group_gap
    height = top + len(series) * group_h + 10
    reference = "{}=={}".format(*REFERENCE)
    subtitle = "Each workload's pair of bars is scaled to its larger value; medians. " + note
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect class="background" x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        '<text class="title" x="12" y="22" font-size="15" font-weight="bold">'
        f"{escape('visgate_sdk.py (ours) vs ' + reference)}</text>",
        f'<text class="subtitle" x="12" y="40" fill="#4b5563">{escape(subtitle)}</text>',
    ]
    legend_x = 12
    for side, text in (("ours", "ours: visgate_sdk.py"), ("ref", "reference: " + reference)):
        out.append(f'<rect class="legend {side}" x="{legend_x}" y="50" width="12" height="12" fill="{colours[side]}"/>')
        out.append(f'<text class="legend" x="{legend_x + 17}" y="60">{escape(text)}</text>')
        legend_x += 200
    for i, item in enumerate(series):
        y = top + i * group_h
        label, ours, ref, unit = item["label"], item["ours"], item["ref"], item["unit"]
        ratio = ours / ref if ref else float("inf")
        better = "higher is better" if item["higher_is_better"] else "lower is better"
        workload = quoteattr(label)
        out.append(f'<g class="workload" data-workload={workload}>')
        out.append(f'<text class="label" x="{label_w - 10}" y="{y + bar_h - 2}" text-anchor="end">'
                   f"{escape(label)}</text>")
        out.append(f'<text class="note" x="{label_w - 10}" y="{y + 2 * bar_h + bar_gap - 2}" text-anchor="end" '
                   f'fill="#4b5563" font-size="11">{escape(f"{better}; ours/ref = {ratio:.2f}")}</text>')
        scale = max(ours, ref) or 1.0
        for j, (side, value) in enumerate((("ours", ours), ("ref", ref))):
            by, w, shown = y + j * (bar_h + bar_gap), max(1.0, bar_w * value / scale), fmt(value, unit)
            out.append(f'<rect class="bar {side}" data-workload={workload} x="{label_w}" y="{by}" width="{w:.1f}" '
                       f'height="{bar_h}" fill="{colours[side]}"><title>{escape(f"{label}, {side}: {shown}")}'
                       "</title></rect>")
            out.append(f'<text class="value" x="{label_w + w + 4:.1f}" y="{by + bar_h - 2}" font-size="11">'
                       f"{escape(shown)}</text>")
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def fmt(x: float, unit: str) -> str:
    digits = 0 if unit == "req/s" else (1 if x >= 10 else 2)
    return f"{x:.{digits}f} {unit}"


def fmt_target(row: Row) -> str:
    if not row.target:
        return ""
    text = "{} {:.2f}".format("≤" if row.target[0] == "<=" else "≥", row.target[1])
    return text + (f", ours ≤ {row.limit:.2f} s" if row.limit else "")


def table(rows: list) -> str:
    header = ["workload", "ours", "reference", "ratio", "target", "result"]
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in [header, *rows]]
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
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "httpx": sh([py, "-c", "import importlib.metadata as m; print(m.version('httpx'))"]).strip(),
        "commit": commit,
        "load": f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a",
    }


CHART_NOTE = """
![benchmarks]({path})

The chart (`{path}`, redrawn by every full run; `--svg PATH` writes it elsewhere)
shows each row that compares ours with the reference: two bars per workload,
scaled to the larger of the pair so every workload reads on its own, the value
and unit at the end of each bar, and under the label which way is better and
the ratio ours / reference.
"""


def markdown(rows: list, info: dict, floors: str, seconds: float, chart: str = "") -> str:
    runs = {name: spec.full for name, spec in WORKLOADS.items()}
    batch = batch_shape(False)
    return """# Benchmarks

`visgate_sdk.py` (this repository, standard library only) against the published
reference client `{ref}` (built on httpx {httpx}), measured side by side in one run.

Reproduce: `python3 bench/run.py` (this full run took {seconds:.0f} s; `--smoke` does a few calls each).

Machine: {cpu}, {nproc} cores, {os}; {python}; commit `{commit}`; {date}; load average {load} at the end
(the machine is shared: other work running alongside slows both clients, and the ratios less than the times).

{table}

{floors}
{chart}
How it is measured (see `bench/`):
- Every workload runs in fresh child processes of one interpreter (the
  reference's venv python; ours with the repository root first on `PYTHONPATH`),
  ours and the reference interleaved round by round; values are medians.
- Import and cold start are whole-process wall times timed by the parent
  ({imp} and {cold} runs) with bytecode (`PYTHONDONTWRITEBYTECODE` is removed from
  the children's environment; one discarded warm-up round writes the cache);
  peak RSS is the child's own high-water mark (`VmHWM`, {mem} runs; `ru_maxrss`
  would include the parent's across fork+exec on Linux).
- Vendored import ({vend} runs): `visgate_sdk.py` copied into a plain directory
  (`myapp_vendor/`), imported from there by `python -B -c "import visgate_sdk"`
  with `PYTHONDONTWRITEBYTECODE=1`, so it is compiled from source every time (the
  run checks no `__pycache__` is left behind); the reference imports as pip
  installed it, with the bytecode pip wrote. `bench/compile_profile.py` shows
  where the compile time goes.
- Sequential workloads make {calls} `health()` calls over one client after {warm}
  warm-up calls ({procs} processes per side); HTTPS uses a trustme certificate.
- Fan-out: N concurrent `AsyncClient.health()` calls via `asyncio.gather` on a
  fresh client against a path the server answers after {slow} ms (ideal {ideal} s).
- Batch: {items} prompts through `POST /generate`, answered after {bms} ms, at most
  {conc} in flight, on a fresh client ({bruns} processes per side): ours is one
  `Client.generate_many(items, max_concurrency={conc})` call (the row reads
  "n/a" while `generate_many` is absent); the reference, which has no batch
  API, is the loop its users write: `AsyncClient.generate` under
  `asyncio.gather` and an `asyncio.Semaphore({conc})`. Ideal: {items}/{conc} x
  {bms} ms = {bideal:.2f} s; the server echoes each prompt so ours' results are
  checked to come back in input order.
- The floor is a hand-written keep-alive `http.client` loop doing the same GET
  and `json.loads`; the loopback server (`bench/server.py`) runs in its own process.
""".format(ref="{}=={}".format(*REFERENCE), seconds=seconds, table=table(rows), floors=floors,
           imp=runs["import"][0], cold=runs["cold"][0], mem=runs["memory"][0], procs=runs["sync_http"][0],
           calls=runs["sync_http"][1], warm=runs["sync_http"][2], slow=WORKLOADS["fanout_100"].slow_ms,
           ideal=WORKLOADS["fanout_100"].slow_ms / 1000.0, vend=runs["import_vendored"][0],
           items=batch["items"], conc=batch["conc"], bms=batch["ms"], bideal=batch["ideal"],
           bruns=runs["batch"][0], chart=chart, **info)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark visgate_sdk.py against visgate-sdk==0.0.3.")
    parser.add_argument("--smoke", action="store_true", help="a few calls each (CI); no BENCHMARKS.md")
    parser.add_argument("--json", metavar="PATH", help="also write raw samples and the table as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="where the full run writes its report "
                        "(default BENCHMARKS.md at the repository root)")
    parser.add_argument("--no-markdown", action="store_true", help="do not write the markdown report")
    parser.add_argument("--svg", metavar="PATH", help="where to write the bar chart (default: "
                        "bench/results.svg when the full run writes BENCHMARKS.md; --smoke writes none)")
    parser.add_argument("--only", metavar="NAME", action="append", choices=list(WORKLOADS),
                        help="run only this workload (repeatable)")
    # Hidden: a directory holding some other visgate_sdk, e.g. the reference, to test the harness itself.
    parser.add_argument("--ours-path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    started = time.perf_counter()
    ours_dir = os.path.abspath(args.ours_path or ROOT)
    if not any(os.path.exists(os.path.join(ours_dir, n)) for n in ("visgate_sdk.py", "visgate_sdk")):
        log(f"bench: no visgate_sdk in {ours_dir}")
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
                    log(f"{name:<11} done in {time.perf_counter() - t0:5.1f} s")
                except WorkloadError as exc:
                    errors[name] = str(exc)
                    log(f"{name:<11} CRASHED: {str(exc).splitlines()[0]}")
        finally:
            server.stdin.close()
            server.wait(timeout=10)
        info = machine_info(py)

    rows = build_rows(results, errors, args.smoke)
    floors = floor_note(results, server_us)
    series = chart_series(results, args.smoke)
    svg = chart_svg(series, "{}, {}.".format(info["python"], info["date"]))
    ET.fromstring(svg.encode("utf-8"))  # well-formed, also in --smoke where nothing is written
    elapsed = time.perf_counter() - started
    print(table(rows))
    if floors:
        print(floors)
    write_md = not args.smoke and not args.no_markdown and (args.markdown or not (args.ours_path or args.only))
    md_path = args.markdown or os.path.join(ROOT, "BENCHMARKS.md")
    svg_path = args.svg or (os.path.join(BENCH, "results.svg") if write_md else None)
    if svg_path:
        with open(svg_path, "w", encoding="utf-8") as f:
            f.write(svg)
        log(f"wrote {svg_path}")
    if write_md:
        chart = ""
        if svg_path:
            rel = os.path.relpath(os.path.abspath(svg_path), os.path.dirname(os.path.abspath(md_path)))
            chart = CHART_NOTE.format(path=rel.replace(os.sep, "/"))
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(markdown(rows, info, floors, elapsed, chart))
        log(f"wrote {md_path}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": info, "smoke": args.smoke, "seconds": elapsed, "errors": errors,
                       "rows": rows, "chart": series, "samples": results}, f, indent=1)
    for name, err in errors.items():
        print(f"CRASH {name}: {err}")
    if args.smoke:
        print(f"bench smoke: {len(results)} workloads ran")
    log(f"total {elapsed:.1f} s")
    return 1 if errors else 0


def floor_note(results: dict, server_us: dict) -> str:
    """One line showing the loopback round-trip floor, so the server is visibly not the bottleneck."""
    parts = []
    for name in ("sync_http", "sync_https"):
        if name in results:
            rps = statistics.median(results[name]["raw"]["value"])
            parts.append(f"{name[5:].upper()} {1e6 / rps:.0f} us/call ({rps:.0f} req/s; "
                         f"server CPU {server_us[name]:.0f} us/request)")
    return ("Floor, a raw keep-alive http.client loop against the same loopback server: "
            + "; ".join(parts) + ".") if parts else ""


if __name__ == "__main__":
    sys.exit(main())
