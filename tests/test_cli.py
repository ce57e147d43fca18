"""The command line (`python -m visgate_sdk` / `visgate`) against the local emulator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import visgate_sdk
from visgate_emulator import DEMO_API_KEY

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv: str):
    code = visgate_sdk.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_health(env_emulator, capsys):
    code, out, _ = run(capsys, "health")
    assert code == 0
    assert "status: ok" in out


def test_generate_saves_a_png(env_emulator, capsys, tmp_path):
    target = tmp_path / "cat.png"
    code, out, _ = run(capsys, "generate", "a cat in space", "-o", str(target))
    assert code == 0
    assert "image_url: http" in out and "saved: %s" % target in out
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_image_polls_with_progress_and_saves(env_emulator, capsys, tmp_path):
    target = tmp_path / "lighthouse.png"
    code, out, err = run(capsys, "image", "a lighthouse", "--width", "512", "--height", "512", "-o", str(target))
    assert code == 0
    assert "status: completed" in out
    assert "completed" in err  # progress lines go to stderr; plain lines when not a terminal
    assert "\r" not in err
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_video_waits_and_saves_an_mp4(env_emulator, capsys, tmp_path):
    target = tmp_path / "waves.mp4"
    code, _out, err = run(capsys, "video", "waves at dusk", "--duration", "4", "-o", str(target))
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("req")]
    assert lines and lines[-1].split(": ")[1].startswith("completed")
    assert target.stat().st_size > 0
    assert target.read_bytes()[4:8] == b"ftyp"


def test_video_no_wait_then_status(env_emulator, capsys, tmp_path):
    code, out, _ = run(capsys, "--json", "video", "a slow pan", "--no-wait")
    assert code == 0
    submitted = json.loads(out)
    assert submitted["status"] == "pending"
    target = tmp_path / "later.mp4"
    code, out, _ = run(capsys, "status", submitted["request_id"], "--wait", "-o", str(target))
    assert code == 0
    assert "status: completed" in out
    assert target.exists()


def test_failed_job_exits_1(env_emulator, capsys):
    code, out, _ = run(capsys, "video", "this one will [fail]")
    assert code == 1
    assert "status: failed" in out and "error:" in out


def test_models_json_and_filters(env_emulator, capsys):
    code, out, _ = run(capsys, "models", "--provider", "fal", "--media-type", "video", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["models"] and all(m["provider"] == "fal" and m["media_type"] == "video" for m in data["models"])


def test_model_usage_balances(env_emulator, capsys):
    code, out, _ = run(capsys, "model", "fal-ai/flux/schnell")
    assert code == 0 and "id: fal-ai/flux/schnell" in out
    code, out, _ = run(capsys, "usage", "--period", "week")
    assert code == 0 and "period: week" in out
    code, out, _ = run(capsys, "balances")
    assert code == 0
    assert {line.split(":")[0] for line in out.splitlines()} == {"fal", "replicate", "runway"}


def test_global_options_after_the_command(emulator, capsys, monkeypatch):
    monkeypatch.delenv("VISGATE_API_KEY", raising=False)
    monkeypatch.delenv("VISGATE_BASE_URL", raising=False)
    code, out, _ = run(capsys, "usage", "--api-key", DEMO_API_KEY, "--base-url", emulator.base_url)
    assert code == 0 and "requests:" in out


def test_api_error_is_one_line_exit_1(env_emulator, capsys):
    code, _out, err = run(capsys, "--api-key", "vg-invalid-key", "usage")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("visgate: error: [AUTHENTICATION_ERROR]")
    assert "vg-invalid-key" not in err


def test_bad_argument_is_a_usage_error(env_emulator, capsys):
    code, _, err = run(capsys, "models", "--limit", "0")
    assert code == 2
    assert "limit" in err
    with pytest.raises(SystemExit) as info:
        visgate_sdk.main(["image"])  # missing prompt: argparse's own usage error
    assert info.value.code == 2


def test_python_dash_m_in_a_subprocess(env_emulator, tmp_path):
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "visgate_sdk", "model", "does/not-exist"],
        capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "MODEL_NOT_FOUND" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "visgate_sdk", "--version"], capture_output=True, text=True, env=environ, timeout=60
    )
    assert proc.stdout.strip() == "visgate-sdk " + visgate_sdk.__version__


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_is_redrawn_then_ends_with_a_newline(monkeypatch):
    terminal = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = visgate_sdk._Progress()
    progress.show("req-1", "processing")
    progress.show("req-1", "completed")
    progress.done()
    out = terminal.getvalue()
    assert out.count("\r\x1b[2K") == 2  # one line, redrawn in place
    assert "req-1: completed" in out
    assert out.endswith("\n") and out.count("\n") == 1  # the shell prompt starts on a line of its own


def test_progress_without_any_status_writes_nothing_on_a_terminal(monkeypatch):
    terminal = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    visgate_sdk._Progress().done()
    assert terminal.getvalue() == ""
