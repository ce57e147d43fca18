"""Hooks: every kind fires with the right fields, a failing hook never breaks a call (it is
logged), hooks on AsyncClient, ``traceparent`` from per-call headers and from a request hook,
credentials that no hook can set, and no secret in any event, error or curl line.
The two hook examples (OpenTelemetry spans, JSON log lines) are run here too."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import io
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from typing import Any, Dict, Iterator, List

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests._servers import RefusedPort, http_server
from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import (
    AsyncClient,
    Client,
    ConnectionError,
    HookEvent,
    NotFoundError,
    Retry,
    ServerError,
    ValidationError,
    VisgateError,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "vg-hooks-test-key-1a2b3c4d5e"
FAL, REPLICATE, RUNWAY = "fal-hook-byok-77aa", "r8_hook-byok-88bb", "rw-hook-byok-99cc"
PROVIDER_KEY = "fal-hook-stored-00dd"
SECRETS = (KEY, FAL, REPLICATE, RUNWAY, PROVIDER_KEY)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Recorder:
    """Hooks for every kind that keep the events (and the thread each ran on)."""

    def __init__(self) -> None:
        self.events: List[HookEvent] = []
        self.threads: List[str] = []

    def __call__(self, event: HookEvent) -> None:
        self.events.append(event)
        self.threads.append(threading.current_thread().name)

    def hooks(self) -> Dict[str, Any]:
        return dict.fromkeys(("request", "response", "retry", "error"), self)

    def kinds(self) -> List[str]:
        return [e.kind for e in self.events]


def make(server: HTTPServer, recorder: Recorder, retries: int = 2, **kwargs: Any) -> Client:
    kwargs.setdefault("api_key", KEY)
    return Client(base_url=server.url_for("/api/v1"), max_retries=Retry(total=retries, backoff_factor=0.001),
                  hooks=kwargs.pop("hooks", recorder.hooks()), **kwargs)


def json_answer(status: int, payload: Any, request_id: str) -> Response:
    return Response(json.dumps(payload), status, {"X-Request-Id": request_id}, content_type="application/json")


# -- every kind, with its fields -----------------------------------------------------------


def test_request_response_retry_fields(httpserver: HTTPServer) -> None:
    answers = iter([json_answer(503, {"error": "DOWN"}, "rid-1"), json_answer(200, {"status": "ok"}, "rid-2")])
    httpserver.expect_request("/api/v1/health").respond_with_handler(lambda request: next(answers))
    rec = Recorder()
    assert make(httpserver, rec).health() == {"status": "ok"}
    assert rec.kinds() == ["request", "response", "retry", "request", "response"]
    assert [e.attempt for e in rec.events] == [1, 1, 1, 2, 2]
    url = httpserver.url_for("/api/v1/health")
    assert all(e.method == "GET" and e.url == url for e in rec.events)
    first, answer1, retry, _second, answer2 = rec.events
    assert first.status is None and first.request_id is None and first.delay is None and first.error is None
    assert (answer1.status, answer1.request_id, answer2.status, answer2.request_id) == (503, "rid-1", 200, "rid-2")
    assert retry.status == 503 and retry.request_id == "rid-1" and isinstance(retry.error, ServerError)
    assert retry.delay is not None and 0 < retry.delay <= 0.001
    elapsed = [e.elapsed for e in rec.events]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0


def test_error_event_is_the_raised_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/models/x").respond_with_handler(lambda r: json_answer(404, {"error": "NOPE"}, "rid-404"))
    rec = Recorder()
    with pytest.raises(NotFoundError) as info:
        make(httpserver, rec).models.get("x")
    assert rec.kinds() == ["request", "response", "error"]
    error = rec.events[-1]
    assert error.error is info.value and error.status == 404 and error.request_id == "rid-404" and error.attempt == 1
    assert info.value.attempts == 1


def test_retries_exhausted_then_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"error": "BROKEN"}, status=500)
    rec = Recorder()
    with pytest.raises(ServerError):
        make(httpserver, rec, retries=2).health()
    assert rec.kinds() == ["request", "response", "retry"] * 2 + ["request", "response", "error"]
    assert [e.attempt for e in rec.events if e.kind == "retry"] == [1, 2]
    assert rec.events[-1].attempt == 3


def test_network_failure_events() -> None:
    refused = RefusedPort()
    rec = Recorder()
    try:
        client = Client(KEY, base_url="http://127.0.0.1:%d/api/v1" % refused.port, max_retries=Retry(total=1, backoff_factor=0.001),
                        hooks=rec.hooks())
        with pytest.raises(ConnectionError):
            client.auth.me()
    finally:
        refused.close()
    assert rec.kinds() == ["request", "retry", "request", "error"]
    assert rec.events[1].status is None and isinstance(rec.events[1].error, ConnectionError)
    assert rec.events[-1].attempt == 2


def test_download_fires_hooks_and_the_error_hook(httpserver: HTTPServer, tmp_path: Any) -> None:
    httpserver.expect_request("/media/a.png").respond_with_data(b"png", status=200)
    httpserver.expect_request("/media/b.png").respond_with_data(b"gone", status=404)
    rec = Recorder()
    client = make(httpserver, rec)
    client.download(httpserver.url_for("/media/a.png"), str(tmp_path / "a.png"))
    assert rec.kinds() == ["request", "response"] and rec.events[1].status == 200
    with pytest.raises(VisgateError):
        client.download(httpserver.url_for("/media/b.png"), str(tmp_path / "b.png"))
    assert rec.kinds()[2:] == ["request", "response", "error"] and rec.events[-1].status == 404


def test_event_is_read_only(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    rec = Recorder()
    make(httpserver, rec).health()
    with pytest.raises(AttributeError):
        rec.events[0].status = 1  # type: ignore[misc]


def test_hooks_are_checked() -> None:
    with pytest.raises(ValidationError):
        Client(KEY, hooks={"requests": print})
    with pytest.raises(ValidationError):
        Client(KEY, hooks={"request": "not callable"})
    Client(KEY, hooks={"request": [print, print], "error": print}).close()


# -- a hook that fails ------------------------------------------------------------------------


def test_a_raising_hook_is_logged_and_the_call_goes_on(httpserver: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    rec = Recorder()

    def broken(event: HookEvent) -> None:
        raise RuntimeError("tracing backend down")

    hooks = {kind: [broken, rec] for kind in ("request", "response")}
    with caplog.at_level(logging.WARNING, logger="visgate_sdk"):
        assert make(httpserver, rec, hooks=hooks).health() == {"status": "ok"}
    assert rec.kinds() == ["request", "response"], "the next hook still runs"
    logged = [r for r in caplog.records if r.name == "visgate_sdk" and "tracing backend down" in r.getMessage()]
    assert len(logged) == 2 and all(r.levelno == logging.WARNING for r in logged)


def test_a_request_hook_returning_junk_is_logged(httpserver: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    with caplog.at_level(logging.WARNING, logger="visgate_sdk"):
        for junk in ("traceparent", {"bad name": "x"}, {"X-Ok": "line\nbreak"}):
            assert make(httpserver, Recorder(), hooks={"request": lambda e, j=junk: j}).health() == {"status": "ok"}
    assert len([r for r in caplog.records if r.name == "visgate_sdk"]) == 3


# -- headers: traceparent, and credentials no hook can set ------------------------------------


def seen_headers(server: HTTPServer) -> List[Dict[str, str]]:
    return [{k.lower(): v for k, v in req.headers.items()} for req, _resp in server.log]


def test_traceparent_from_per_call_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    client = make(httpserver, Recorder())
    client.health(headers={"traceparent": TRACEPARENT})
    client.health()
    first, second = seen_headers(httpserver)
    assert first["traceparent"] == TRACEPARENT
    assert "traceparent" not in second and "tracestate" not in second, "the client never invents a traceparent"


def test_traceparent_from_a_request_hook_per_attempt(httpserver: HTTPServer) -> None:
    answers = iter([json_answer(503, {"error": "DOWN"}, "a"), json_answer(200, {"status": "ok"}, "b")])
    httpserver.expect_request("/api/v1/health").respond_with_handler(lambda request: next(answers))

    def trace(event: HookEvent) -> Dict[str, str]:
        return {"traceparent": "00-%032x-%016x-01" % (7, event.attempt)}

    make(httpserver, Recorder(), hooks={"request": trace}).health()
    assert [h["traceparent"] for h in seen_headers(httpserver)] == ["00-%032x-%016x-01" % (7, n) for n in (1, 2)]


def test_per_call_header_wins_over_a_hook(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    make(httpserver, Recorder(), hooks={"request": lambda e: {"TraceParent": "from-hook"}}).health(headers={"traceparent": TRACEPARENT})
    (seen,) = [req.headers.getlist("traceparent") for req, _ in httpserver.log]
    assert seen == [TRACEPARENT]


@pytest.mark.parametrize("name", ["Authorization", "authorization", "X-Fal-Key", "x-replicate-key", "X-Runway-Key",
                                  "Proxy-Authorization", "Cookie", "X-Other-Api-Key"])
def test_a_request_hook_cannot_set_credentials(httpserver: HTTPServer, name: str) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    hook = {"request": lambda e: {name: "stolen-by-hook", "traceparent": TRACEPARENT}}
    make(httpserver, Recorder(), hooks=hook, fal_key=FAL).health()
    (seen,) = seen_headers(httpserver)
    assert "stolen-by-hook" not in json.dumps(seen)
    assert seen["authorization"] == "Bearer " + KEY and seen["x-fal-key"] == FAL


def test_a_request_hook_cannot_change_the_idempotency_key(httpserver: HTTPServer) -> None:
    answers = iter([json_answer(503, {"error": "DOWN"}, "a"), json_answer(200, {"id": "r", "images": []}, "b")])
    httpserver.expect_request("/api/v1/generate").respond_with_handler(lambda request: next(answers))
    hook = {"request": lambda e: {"Idempotency-Key": "hook-%d" % e.attempt, "User-Agent": "evil"}}
    make(httpserver, Recorder(), hooks=hook).generate("a cat")
    keys = [h["idempotency-key"] for h in seen_headers(httpserver)]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("vg-sdk-")
    assert all(h["user-agent"].startswith("visgate-sdk-python/") for h in seen_headers(httpserver))


# -- AsyncClient ------------------------------------------------------------------------------


def test_async_client_hooks_run_on_a_worker_with_the_callers_context(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"status": "ok"})
    current: "contextvars.ContextVar[str]" = contextvars.ContextVar("current_span", default="none")
    seen: List[str] = []
    rec = Recorder()

    def request(event: HookEvent) -> Dict[str, str]:
        rec(event)
        seen.append(current.get())
        return {"traceparent": TRACEPARENT}

    async def main() -> None:
        async with AsyncClient(KEY, base_url=httpserver.url_for("/api/v1"), hooks={"request": request, "response": rec}) as client:
            current.set("span-of-the-caller")
            await asyncio.gather(client.health(), client.health())

    asyncio.run(main())
    assert sorted(rec.kinds()) == ["request"] * 2 + ["response"] * 2
    assert seen == ["span-of-the-caller"] * 2
    assert all(name.startswith("visgate") for name in rec.threads)
    assert [h["traceparent"] for h in seen_headers(httpserver)] == [TRACEPARENT] * 2


# -- no secret anywhere -----------------------------------------------------------------------


def check_clean(obj: Any) -> None:
    texts = [repr(obj), str(obj)]
    if isinstance(obj, HookEvent):
        texts += [repr(getattr(obj, name)) for name in HookEvent.__slots__]
        if obj.error is not None:
            check_clean(obj.error)
    if isinstance(obj, VisgateError):
        texts += [obj.to_curl(), pickle.dumps(obj).decode("latin-1"), json.dumps(obj.details), str(obj.url)]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


@pytest.fixture
def other_origin() -> Iterator[HTTPServer]:
    yield from http_server()


def test_no_secret_in_events_errors_or_curl_with_retries_and_redirects(httpserver: HTTPServer, other_origin: HTTPServer) -> None:
    # The server echoes back every secret the call carried (the stored provider key only where it was sent).
    echo = {"error": "BROKEN", "message": "got %s %s %s %s" % SECRETS[:4], "details": {"k": list(SECRETS[:4])}}
    echo_all = {"error": "BAD_KEY", "message": "got %s %s %s %s %s" % SECRETS, "details": {"k": list(SECRETS)}}
    answers = iter([json_answer(503, echo, "r1")] * 2)
    httpserver.expect_request("/api/v1/usage").respond_with_handler(lambda request: next(answers, json_answer(500, echo, "r2")))
    httpserver.expect_request("/api/v1/auth/me").respond_with_response(Response(status=307, headers={"Location": "/api/v1/usage"}))
    httpserver.expect_request("/api/v1/billing/info").respond_with_response(
        Response(status=302, headers={"Location": other_origin.url_for("/elsewhere")}))
    other_origin.expect_request("/elsewhere").respond_with_json(echo, status=502)
    httpserver.expect_request("/api/v1/providers/keys", method="PUT").respond_with_json(echo_all, status=422)
    rec = Recorder()
    client = make(httpserver, rec, fal_key=FAL, replicate_key=REPLICATE, runway_key=RUNWAY)
    errors: List[VisgateError] = []
    for call in (lambda: client.usage.get(), client.auth.me, client.billing.info, lambda: client.providers.set_key("fal", PROVIDER_KEY)):
        with pytest.raises(VisgateError) as info:
            call()
        errors.append(info.value)
    assert {"retry", "error"} <= set(rec.kinds()) and len(rec.events) > 10
    assert any(e.url == other_origin.url_for("/elsewhere") for e in rec.events), "the redirect was followed"
    for item in rec.events + errors:
        check_clean(item)
    assert all(e.attempts >= 1 and e.method and e.url for e in errors)


# -- the examples -----------------------------------------------------------------------------


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def emulator() -> Iterator[Emulator]:  # one per test: a "times=1" fault is spent once per emulator
    with Emulator(quiet=True) as emu:
        yield emu


def test_json_logs_example_one_line_per_call(emulator: Emulator) -> None:
    example = load_example("hooks_json_logs")
    out = io.StringIO()
    log = example.JsonCallLog(out)
    with Client(DEMO_API_KEY, base_url=emulator.base_url, max_retries=Retry(total=2, backoff_factor=0.001), hooks=log.hooks()) as client:
        example.demo(client, emulated=True)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["method"], x["url"].split("/api/v1")[1], x["status"], x["level"]) for x in lines] == [
        ("GET", "/health", 200, "INFO"), ("GET", "/models?limit=3", 200, "INFO"),
        ("GET", "/models/no-such/model", 404, "ERROR"), ("GET", "/auth/me", 200, "INFO")]
    assert [x["attempts"] for x in lines] == [1, 1, 1, 2]
    assert lines[2]["error_code"] == "MODEL_NOT_FOUND" and lines[0]["error_code"] is None
    for line in lines:
        assert set(line) == {"timestamp", "level", "method", "url", "status", "attempts", "elapsed_ms", "request_id", "error_code"}
        assert line["timestamp"].endswith("Z") and line["elapsed_ms"] >= 0
    assert DEMO_API_KEY not in out.getvalue()


def run_example(name: str) -> "subprocess.CompletedProcess[str]":
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISGATE_") and k != "PYTHONPATH"}
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", name + ".py")], env=env, capture_output=True,
                          text=True, timeout=60)


def test_json_logs_example_runs_against_the_emulator_without_a_key() -> None:
    done = run_example("hooks_json_logs")
    assert done.returncode == 0, done.stderr
    assert "No VISGATE_API_KEY set: running against the local emulator" in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 4 and [x["level"] for x in lines] == ["INFO", "INFO", "ERROR", "INFO"]


def test_opentelemetry_example_spans(emulator: Emulator) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    example = load_example("hooks_opentelemetry")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("handler") as parent:
        with Client(DEMO_API_KEY, base_url=emulator.base_url, max_retries=Retry(total=2, backoff_factor=0.001),
                    hooks=example.tracing_hooks(tracer)) as client:
            example.demo(client, emulated=True)
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name != "handler"}
    assert sorted(spans) == ["GET /auth/me", "GET /health", "GET /models/no-such/model"]
    for span in spans.values():
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.kind == trace.SpanKind.CLIENT
    retried = spans["GET /auth/me"]
    assert retried.attributes["http.response.status_code"] == 200 and retried.attributes["visgate.attempts"] == 2
    assert [e.name for e in retried.events] == ["attempt", "response", "retry", "attempt", "response"]
    assert retried.status.status_code == trace.StatusCode.UNSET
    failed = spans["GET /models/no-such/model"]
    assert failed.status.status_code == trace.StatusCode.ERROR and failed.attributes["error.type"] == "MODEL_NOT_FOUND"
    assert DEMO_API_KEY not in json.dumps([dict(s.attributes or {}) for s in spans.values()])


def test_opentelemetry_example_propagates_traceparent(httpserver: HTTPServer) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    def answer(request: Request) -> Response:
        return json_answer(200, {"status": "ok"}, "rid")

    httpserver.expect_request("/api/v1/health").respond_with_handler(answer)
    example = load_example("hooks_opentelemetry")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Client(KEY, base_url=httpserver.url_for("/api/v1"), hooks=example.tracing_hooks(provider.get_tracer("t"))) as client:
        client.health()
    (span,) = exporter.get_finished_spans()
    (seen,) = seen_headers(httpserver)
    context = span.get_span_context()
    assert seen["traceparent"] == "00-%032x-%016x-%02x" % (context.trace_id, context.span_id, context.trace_flags)
    assert span.attributes["visgate.request_id"] == "rid"


def test_opentelemetry_example_runs_against_the_emulator_without_a_key() -> None:
    done = run_example("hooks_opentelemetry")
    assert done.returncode == 0, done.stderr
    assert "No VISGATE_API_KEY set: running against the local emulator" in done.stderr
    assert "GET /auth/me" in done.stdout and "attempts=2" in done.stdout and "status=ERROR" in done.stdout
