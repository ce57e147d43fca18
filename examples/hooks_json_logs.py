"""One JSON log line per visgate call, CloudWatch-style, from the client's hooks.

    python examples/hooks_json_logs.py     # VISGATE_API_KEY set: the live API (free calls only)
                                           # no key: the local emulator, started here (it says so)

Each finished call prints one line on stdout, e.g.::

    {"timestamp": "2026-01-01T12:00:00.123Z", "level": "INFO", "method": "GET",
     "url": "https://visgateai.com/api/v1/health", "status": 200, "attempts": 1,
     "elapsed_ms": 41.2, "request_id": "req_...", "error_code": null}

CloudWatch Logs (Lambda, ECS with awslogs) turns such lines into fields for Logs Insights:
``filter level = "ERROR" | stats count() by error_code``. Hooks never see a key, so none is logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from datetime import datetime, timezone
from typing import IO, Any, Dict, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's SDK first: hooks are newer than some installed copies.
sys.path.insert(0, os.path.dirname(HERE))

from visgate_sdk import Client, HookEvent, VisgateError  # noqa: E402


class JsonCallLog:
    """Hooks that write one JSON line when a call ends: after its last answer, or its error.

    A call ends with a 2xx ``response`` or with an ``error`` event (a 3xx is followed by the
    redirected request, a retried 4xx/5xx by a ``retry``). Hooks run on the calling thread, so
    the request id of the answer being handled is kept per thread.
    """

    def __init__(self, stream: Optional[IO[str]] = None) -> None:
        self.stream = stream
        self._local = threading.local()

    def hooks(self) -> Dict[str, Any]:
        return {"response": self.on_response, "error": self.on_error}

    def on_response(self, event: HookEvent) -> None:
        self._local.request_id = event.request_id
        if event.status is not None and 200 <= event.status < 300:
            self.write(event, "INFO", event.status, None)

    def on_error(self, event: HookEvent) -> None:
        code = getattr(event.error, "error_code", None)
        request_id = event.request_id or getattr(self._local, "request_id", None)
        self.write(event, "ERROR", event.status, code, request_id)

    def write(self, event: HookEvent, level: str, status: Optional[int], error_code: Optional[str],
              request_id: Optional[str] = None) -> None:
        line = {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "method": event.method,
            "url": event.url,
            "status": status,
            "attempts": event.attempt,
            "elapsed_ms": round(event.elapsed * 1000, 1),
            "request_id": request_id or event.request_id,
            "error_code": error_code,
        }
        self._local.request_id = None
        print(json.dumps(line), file=self.stream or sys.stdout, flush=True)


def demo(client: Client, emulated: bool) -> None:
    """A few free calls: a success, an error, and (on the emulator) a call that is retried."""
    client.health()
    client.models.list(limit=3)
    with contextlib.suppress(VisgateError):  # already logged as an ERROR line
        client.models.get("no-such/model")
    if emulated:  # the emulator's fault header: the first attempt gets a 503, the retry succeeds
        client.auth.me(headers={"X-Emulator-Fault": "503; times=1"})


def main() -> int:
    log = JsonCallLog()
    if os.environ.get("VISGATE_API_KEY"):
        with Client(hooks=log.hooks()) as client:
            demo(client, emulated=False)
        return 0
    from visgate_emulator import DEMO_API_KEY, Emulator

    with Emulator() as emu:
        print("No VISGATE_API_KEY set: running against the local emulator at %s" % emu.base_url, file=sys.stderr)
        with Client(DEMO_API_KEY, base_url=emu.base_url, hooks=log.hooks()) as client:
            demo(client, emulated=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
