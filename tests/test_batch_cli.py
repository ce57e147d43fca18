"""``visgate batch FILE -o DIR`` against the emulator: files named by index as each item lands,
progress lines, the summary, exit codes, JSON lines, --kind/--model, --budget-usd and --deadline,
and a rerun with the same --batch-id that skips saved items and bills nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import Client, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emulator:
        monkeypatch.setenv("VISGATE_API_KEY", DEMO_API_KEY)
        monkeypatch.setenv("VISGATE_BASE_URL", emulator.base_url)
        yield emulator


def logs(emu: Emulator) -> List[dict]:
    with Client(DEMO_API_KEY, base_url=emu.base_url) as client:
        return client.usage.logs(limit=1000)


def write(tmp_path: Path, lines: List[str]) -> str:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_every_item_saved_by_index_and_exit_0(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = write(tmp_path, ["a red fox", "", "a green owl", '{"prompt": "a blue whale", "model": "fal-ai/flux/schnell"}'])
    out = tmp_path / "out"
    assert main(["batch", prompts, "-o", str(out), "--batch-id", "cli-1", "--max-concurrency", "2"]) == 0
    assert sorted(os.listdir(out)) == ["0000.png", "0001.png", "0002.png"]  # the blank line is not an item
    assert (out / "0000.png").read_bytes().startswith(b"\x89PNG")
    captured = capsys.readouterr()
    assert "batch cli-1: 3 succeeded, 0 failed, 0 skipped, 0 not run; cost $0.0104" in captured.out
    progress = [line for line in captured.err.splitlines() if line.startswith("batch cli-1: ")]
    assert [line.split(" done")[0] for line in progress] == ["batch cli-1: 1/3", "batch cli-1: 2/3", "batch cli-1: 3/3"]


def test_a_failure_exits_1_and_the_rerun_skips_saved_items_and_bills_nothing_twice(
        emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = write(tmp_path, ["a cat on a roof", "this fails [fail]", "a dog in a park"])
    out = tmp_path / "out"
    assert main(["batch", prompts, "-o", str(out), "--batch-id", "cli-2"]) == 1
    captured = capsys.readouterr()
    assert "item 1: [PROVIDER_ERROR]" in captured.err
    assert "2 succeeded, 1 failed" in captured.out and "rerun with --batch-id cli-2" in captured.out
    assert sorted(os.listdir(out)) == ["0000.png", "0002.png"]
    billed_before = [e for e in logs(emu) if e["cost"] > 0]
    (out / "0002.png").unlink()  # lost after it was paid for: the rerun must not pay again
    assert main(["batch", prompts, "-o", str(out), "--batch-id", "cli-2"]) == 1
    assert "1 succeeded, 1 failed, 1 skipped" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["0000.png", "0002.png"]
    assert [e for e in logs(emu) if e["cost"] > 0] == billed_before


def test_kind_video_with_a_model(emu: Emulator, tmp_path: Path) -> None:
    prompts = write(tmp_path, ['{"prompt": "waves at night", "duration_seconds": 2}'])
    out = tmp_path / "out"
    assert main(["batch", prompts, "-o", str(out), "--kind", "video", "--model", "fal-ai/flux-pro/video"]) == 0
    assert os.listdir(out) == ["0000.mp4"]


def test_the_budget_leaves_items_not_run(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = write(tmp_path, ["budget %s" % ("b" * (i + 1)) for i in range(5)])
    code = main(["batch", prompts, "-o", str(tmp_path / "out"), "--budget-usd", "0.005", "--max-concurrency", "1"])
    assert code == 1
    out = capsys.readouterr().out
    assert "2 succeeded, 0 failed, 0 skipped, 3 not run" in out
    assert len(logs(emu)) == 2


def test_the_deadline_leaves_items_not_run(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = write(tmp_path, ["deadline %s" % ("d" * (i + 1)) for i in range(5)])
    assert main(["batch", prompts, "-o", str(tmp_path / "out"), "--deadline", "0"]) == 1
    assert "0 succeeded, 0 failed, 0 skipped, 5 not run" in capsys.readouterr().out
    assert logs(emu) == []


def test_a_bad_json_line_is_a_usage_error(emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = write(tmp_path, ["fine", '{"prompt": broken'])
    assert main(["batch", prompts, "-o", str(tmp_path / "out")]) == 2
    assert "line 2 is not a JSON object" in capsys.readouterr().err
    bad_item = write(tmp_path, ['{"prompt": "x", "colour": "red"}'])
    assert main(["batch", bad_item, "-o", str(tmp_path / "out")]) == 2
    assert logs(emu) == []


def test_as_a_command_with_prompts_on_standard_input(emu: Emulator, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "visgate_sdk", "batch", "-", "-o", str(tmp_path / "out")], input="a moth\na bee\n",
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "2 succeeded" in proc.stdout and "\r" not in proc.stderr  # not a terminal: plain progress lines
    assert sorted(os.listdir(tmp_path / "out")) == ["0000.png", "0001.png"]
