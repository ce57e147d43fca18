"""bench/run.py's SVG chart is well-formed XML with one bar per series per workload."""

from __future__ import annotations

import importlib.util
import os
import sys
import xml.etree.ElementTree as ET

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
SVG = "{http://www.w3.org/2000/svg}"

# A small fixed table: label, ours, reference, unit, higher is better.
TABLE = [
    ("import visgate_sdk (whole process)", 26.0, 97.2, "ms", False),
    ("sync sequential health(), HTTP", 6441.0, 2892.0, "req/s", True),
    ("peak RSS after import", 11.3, 24.4, "MiB", False),
    ("batch 200 x 200 ms, concurrency 50 (wall) & <more>", 0.85, 1.06, "s", False),
]


def load_run():
    """Import bench/run.py by path (it imports its sibling workloads.py as a top-level module)."""
    sys.path.insert(0, BENCH)
    try:
        spec = importlib.util.spec_from_file_location("visgate_bench_run", os.path.join(BENCH, "run.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(BENCH)


def test_chart_is_well_formed_with_a_bar_per_series_per_workload():
    run = load_run()
    series = [{"label": label, "ours": ours, "ref": ref, "unit": unit, "higher_is_better": hib}
              for label, ours, ref, unit, hib in TABLE]
    root = ET.fromstring(run.chart_svg(series, "test note").encode("utf-8"))
    assert root.tag == SVG + "svg"

    bars = [r for r in root.iter(SVG + "rect") if r.get("class", "").split()[:1] == ["bar"]]
    assert len(bars) == 2 * len(TABLE)
    for label, ours, ref, _, _ in TABLE:
        sides = {r.get("class").split()[1]: float(r.get("width")) for r in bars if r.get("data-workload") == label}
        assert set(sides) == {"ours", "ref"}, label
        # Each pair is scaled to its larger value: the longer bar is the larger value.
        assert (sides["ours"] > sides["ref"]) == (ours > ref), label

    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    for label, ours, ref, unit, hib in TABLE:
        assert label in texts
        assert run.fmt(ours, unit) in texts and run.fmt(ref, unit) in texts
        better = "higher is better" if hib else "lower is better"
        assert f"{better}; ours/ref = {ours / ref:.2f}" in texts
    assert any("0.0.3" in t for t in texts)  # the legend names the reference


def test_chart_series_takes_ours_vs_reference_rows_only():
    run = load_run()
    results = {"import": {side: {"wall": [0.02, 0.03, 0.025], "value": []} for side in ("ours", "ref", "bare")},
               "batch": {"ours": {"wall": [1.0], "value": [], "na": True}, "ref": {"wall": [1.1], "value": [1.05]}}}
    series = run.chart_series(results)
    assert [s["label"] for s in series] == ["import visgate_sdk (whole process)"]  # no bare row, no n/a batch
    assert series[0]["ours"] == series[0]["ref"] == 25.0 and series[0]["unit"] == "ms"
    ET.fromstring(run.chart_svg(series).encode("utf-8"))
    ET.fromstring(run.chart_svg([]).encode("utf-8"))  # an empty run still draws a valid chart
