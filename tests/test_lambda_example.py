"""examples/lambda_handler.py, imported by path as Lambda would, against the emulator: a 3 s
invocation returns the job's request_id in time, a 10 s one resumes it to the video URL."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

from visgate_emulator import DEMO_API_KEY, Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "lambda_handler.py")


class FakeContext:
    """Lambda's context as the SDK reads it: the time left, and the invocation's id."""

    def __init__(self, seconds: float, aws_request_id: str = "inv-1") -> None:
        self._end = time.monotonic() + seconds
        self.aws_request_id = aws_request_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(job_seconds=6) as emu:
        yield emu


@pytest.fixture
def lambda_module(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example module, loaded the way Lambda loads a handler, with its environment set."""
    monkeypatch.setenv("VISGATE_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("VISGATE_BASE_URL", emulator.base_url)
    spec = importlib.util.spec_from_file_location("lambda_handler_under_test", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        module.client.close()


def test_the_budget_runs_out_then_a_second_invocation_gets_the_video(lambda_module: Any) -> None:
    assert lambda_module.EMULATOR is None  # imported, not run: no emulator of its own
    assert lambda_module.client.base_url.startswith("http://127.0.0.1:")

    started = time.monotonic()
    first = lambda_module.handler({"prompt": "a lighthouse in a storm"}, FakeContext(3))
    assert time.monotonic() - started <= 3.0  # returned while the invocation still had time
    assert set(first) == {"request_id", "status"} and first["request_id"].startswith("req")
    assert first["status"] in ("pending", "processing")

    started = time.monotonic()
    second = lambda_module.handler({"request_id": first["request_id"]}, FakeContext(10, "inv-2"))
    assert time.monotonic() - started <= 10.0
    assert second["request_id"] == first["request_id"]
    assert second["video_url"].startswith("http://127.0.0.1:") and second["video_url"].endswith(".mp4")
    # One generation: the second invocation polled the same job, it did not start another.
    assert len(lambda_module.client.usage.logs()) == 1


def test_a_video_that_finishes_in_time_is_returned_by_the_first_invocation(lambda_module: Any) -> None:
    result = lambda_module.handler({"prompt": "a short clip of waves"}, FakeContext(12, "inv-fast"))
    assert result["video_url"].endswith(".mp4") and result["request_id"].startswith("req")


def test_a_retried_invocation_is_the_same_generation(lambda_module: Any) -> None:
    # Lambda retries an event with the same aws_request_id: the same Idempotency-Key, one job.
    a = lambda_module.handler({"prompt": "a red kite"}, FakeContext(3, "inv-same"))
    b = lambda_module.handler({"prompt": "a red kite"}, FakeContext(3, "inv-same"))
    assert a["request_id"] == b["request_id"]  # the emulator replayed the accepted job


def test_the_example_runs_standalone_against_its_own_emulator(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISGATE_") and k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, EXAMPLE], env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("No VISGATE_API_KEY set: running against the local visgate emulator")
    assert "'status'" in lines[1] and "'request_id'" in lines[1]
    assert "video_url" in lines[-1]
