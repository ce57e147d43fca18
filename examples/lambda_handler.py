"""An AWS Lambda handler: a long video generation that never outlives the function's budget.

    {"prompt": "..."}          starts a video and waits for it while the invocation has time;
    {"request_id": "..."}      resumes a video started earlier.

Returns ``{"video_url": ...}`` when the video is ready, or ``{"request_id": ..., "status": ...}``
when the time ran out first: invoke again with that request_id to pick the same job up (it is
neither started nor paid for twice). Deploy it with the SDK vendored beside it, built with the
runtime's Python version (see "AWS Lambda" in the README)::

    python3.12 -m visgate_sdk vendor build/
    cp examples/lambda_handler.py build/ && (cd build && zip -r ../function.zip .)
    # handler: lambda_handler.handler; environment: VISGATE_API_KEY

Run it here: ``python examples/lambda_handler.py``. With no VISGATE_API_KEY it starts the local
emulator (jobs take 6 s) and plays two invocations with fake contexts: 3 s, then 10 s.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's SDK and emulator first: the example needs their deadline features, whatever
# older copy is installed. (In a Lambda, the vendored copy in the task root comes first anyway.)
sys.path.insert(0, os.path.dirname(HERE))

from visgate_sdk import Client, ProviderError  # noqa: E402
from visgate_sdk import TimeoutError as VisgateTimeoutError  # noqa: E402

VIDEO_MODEL = os.environ.get("VISGATE_VIDEO_MODEL", "fal-ai/flux-pro/video")


def _start_local_emulator() -> Any:
    """No key when run by hand: serve the API locally, and point the client at it."""
    from visgate_emulator import DEMO_API_KEY, Emulator

    emulator = Emulator(job_seconds=6).start()
    os.environ["VISGATE_BASE_URL"] = emulator.base_url
    os.environ["VISGATE_API_KEY"] = DEMO_API_KEY
    print("No VISGATE_API_KEY set: running against the local visgate emulator at %s "
          "(jobs take 6 s; no real generation, no cost)" % emulator.base_url)
    return emulator


EMULATOR = _start_local_emulator() if __name__ == "__main__" and not os.environ.get("VISGATE_API_KEY") else None

# Module level: made once per execution environment, reused by every warm invocation (its
# keep-alive connection and TLS context included). Reads VISGATE_API_KEY / VISGATE_BASE_URL.
client = Client()


def handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    request_id = event.get("request_id")
    try:
        # Every call inside ends 1 s (the default margin) before Lambda would stop the function,
        # leaving time to return the request_id.
        with client.deadline(context):
            if request_id:
                status = client.requests.get(request_id, wait=True)
                if not status.succeeded:
                    return {"request_id": request_id, "status": status.status, "error": status.error_message}
                return {"request_id": request_id, "video_url": status.output_url}
            # With a deadline, wait=True starts a job first: its request_id is known even if the
            # budget runs out. Lambda retries an event with the same aws_request_id, so a retried
            # invocation is the same generation, billed once.
            video = client.videos.generate(VIDEO_MODEL, event.get("prompt") or "waves at dusk, slow pan",
                                           idempotency_key=getattr(context, "aws_request_id", None))
            return {"request_id": video.id, "video_url": video.video_url}
    except VisgateTimeoutError as exc:
        if exc.error_code != "DEADLINE_EXCEEDED" or not exc.request_id:
            raise  # nothing to resume: the job was never accepted
        return {"request_id": exc.request_id, "status": exc.last_status or "pending"}
    except ProviderError as exc:
        if exc.error_code != "GENERATION_FAILED":
            raise
        return {"request_id": exc.request_id, "status": "failed", "error": exc.message}


class FakeContext:
    """The part of Lambda's context object the SDK reads: the time left."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


def main() -> int:
    started = time.monotonic()
    first = handler({"prompt": "a lighthouse in a storm, slow zoom"}, FakeContext(3))
    print("invocation 1 (3 s budget), %.1fs: %s" % (time.monotonic() - started, first))
    answer = first
    for number in range(2, 6):
        if "request_id" not in answer or "status" not in answer:
            break
        started = time.monotonic()
        answer = handler({"request_id": answer["request_id"]}, FakeContext(10))
        print("invocation %d (10 s budget, resumed), %.1fs: %s" % (number, time.monotonic() - started, answer))
    client.close()
    if EMULATOR is not None:
        EMULATOR.stop()
    return 0 if answer.get("video_url") else 1


if __name__ == "__main__":
    raise SystemExit(main())
