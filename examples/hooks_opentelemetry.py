"""visgate calls as OpenTelemetry spans, from the client's hooks.

    pip install opentelemetry-api opentelemetry-sdk
    python examples/hooks_opentelemetry.py   # VISGATE_API_KEY set: the live API (free calls only)
                                             # no key: the local emulator, started here (it says so)

One CLIENT span per call (``GET /auth/me``), a child of whatever span is current where the
call is made, with an event per attempt, answer and retry, the final status, the attempt count
and the server's request id. Each attempt carries a W3C ``traceparent`` naming the span, added
by the request hook, so the gateway's own traces join yours. In production, replace the
in-memory exporter below with an OTLP one; the hooks stay the same.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
# This checkout's SDK first: hooks are newer than some installed copies.
sys.path.insert(0, os.path.dirname(HERE))

from opentelemetry import trace  # noqa: E402
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: E402

from visgate_sdk import Client, HookEvent, VisgateError  # noqa: E402


class _Tracing:
    """The hooks. A call's events arrive on one thread (for AsyncClient: its worker thread, with
    the awaiting task's context), so the open span is kept per thread. A call ends with a 2xx
    ``response`` or an ``error`` event; a 3xx is followed by the redirected request, a retried
    answer by a ``retry``."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.local = threading.local()
        self.propagator = TraceContextTextMapPropagator()

    def span(self, event: HookEvent) -> Any:
        span = getattr(self.local, "span", None)
        if span is None:
            path = urlsplit(event.url).path.split("/api/v1", 1)[-1]  # the API's routes live under /api/v1
            span = self.local.span = self.tracer.start_span("%s %s" % (event.method, path), kind=trace.SpanKind.CLIENT,
                                                            attributes={"http.request.method": event.method, "url.full": event.url})
        return span

    def on_request(self, event: HookEvent) -> Dict[str, str]:
        span = self.span(event)
        span.add_event("attempt", {"attempt": event.attempt})
        headers: Dict[str, str] = {}
        self.propagator.inject(headers, context=trace.set_span_in_context(span))
        return headers  # {"traceparent": "00-<trace id>-<span id>-01"}, sent with this attempt

    def on_response(self, event: HookEvent) -> None:
        span = self.span(event)
        span.add_event("response", {"status": event.status or 0})
        if event.status is not None and event.status < 300:
            self.end(span, event, None)

    def on_retry(self, event: HookEvent) -> None:
        code = getattr(event.error, "error_code", "") or type(event.error).__name__
        self.span(event).add_event("retry", {"attempt": event.attempt, "delay_s": event.delay or 0.0, "error": code})

    def on_error(self, event: HookEvent) -> None:
        self.end(self.span(event), event, event.error)

    def end(self, span: Any, event: HookEvent, error: Optional[BaseException]) -> None:
        span.set_attribute("visgate.attempts", event.attempt)
        if event.status is not None:
            span.set_attribute("http.response.status_code", event.status)
        if event.request_id:
            span.set_attribute("visgate.request_id", event.request_id)
        if error is not None:  # messages are redacted by the SDK: no key reaches the exporter
            span.set_attribute("error.type", getattr(error, "error_code", None) or type(error).__name__)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
        span.end()
        self.local.span = None


def tracing_hooks(tracer: trace.Tracer) -> Dict[str, Any]:
    """``Client(hooks=tracing_hooks(tracer))``."""
    t = _Tracing(tracer)
    return {"request": t.on_request, "response": t.on_response, "retry": t.on_retry, "error": t.on_error}


def demo(client: Client, emulated: bool) -> None:
    """A few free calls: a success, an error, and (on the emulator) a call that is retried."""
    client.health()
    with contextlib.suppress(VisgateError):  # recorded on its span, with status ERROR
        client.models.get("no-such/model")
    # On the emulator, a fault header makes the first attempt a 503; the retry succeeds.
    client.auth.me(headers={"X-Emulator-Fault": "503; times=1"} if emulated else None)


def main() -> int:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hooks = tracing_hooks(provider.get_tracer("visgate-example"))
    if os.environ.get("VISGATE_API_KEY"):
        with Client(hooks=hooks) as client:
            demo(client, emulated=False)
    else:
        from visgate_emulator import DEMO_API_KEY, Emulator

        with Emulator() as emu:
            print("No VISGATE_API_KEY set: running against the local emulator at %s" % emu.base_url, file=sys.stderr)
            with Client(DEMO_API_KEY, base_url=emu.base_url, hooks=hooks) as client:
                demo(client, emulated=True)
    for span in exporter.get_finished_spans():
        attrs = span.attributes or {}
        context = span.get_span_context()  # Optional in the API's types; a finished span has one
        print("span %-28s status=%s attempts=%s http=%s trace_id=%032x events=%s" % (
            span.name, span.status.status_code.name, attrs.get("visgate.attempts"), attrs.get("http.response.status_code"),
            context.trace_id if context else 0, ",".join(e.name for e in span.events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
