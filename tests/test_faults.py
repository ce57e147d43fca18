"""Network and server faults: what the user gets is a result or a typed error, in bounded time.

Each test names one kind of fault. Servers are pytest-httpserver where an HTTP handler can
misbehave enough, and raw loopback sockets (``_servers.RawServer``) where it cannot.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import time
import warnings
from email.utils import formatdate
from typing import Any, Dict, Iterator, List

import pytest
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

import visgate_sdk
from tests._servers import (
    RawServer,
    RefusedPort,
    Request,
    TLSFiles,
    http_server,
    keepalive_json_handler,
    reset,
    response_bytes,
)
from tests.conftest import EXCEPTIONS
from visgate_sdk import (
    AuthenticationError,
    ConnectionError,
    InvalidResponseError,
    NotFoundError,
    RateLimitError,
    Retry,
    ServerError,
    TimeoutError,
    TLSError,
    ValidationError,
    VisgateError,
)

KEY = "vg-faults-0123456789abcdef"
NO_RETRY = Retry(total=0)
FAST = Retry(total=1, backoff_factor=0.01)
HANG_BOUND = 5.0  # "must not hang": generous, machines are noisy
CLIENT_DEFAULTS = {"api_key": KEY, "max_retries": NO_RETRY, "timeout": 5.0}  # for make_client(url, ...)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    yield from http_server()


@pytest.fixture
def srv(server: Any) -> Any:
    server.clear()
    return server


def serve(srv: Any, handler: Any) -> None:
    srv.expect_request("/api/v1/usage").respond_with_handler(handler)


def recorder() -> Any:
    """A handler factory that records (time, request) and answers from a script."""

    class Rec:
        def __init__(self) -> None:
            self.seen: List[Dict[str, Any]] = []
            self.lock = threading.Lock()

        def __call__(self, script: Any) -> Any:
            def handler(request: WRequest) -> WResponse:
                with self.lock:
                    n = len(self.seen)
                    self.seen.append(
                        {"t": time.monotonic(), "headers": dict(request.headers), "path": request.path, "body": request.get_data()}
                    )
                return script(n, request)

            return handler

    return Rec()


def ok_usage() -> WResponse:
    return WResponse('{"total_requests": 7, "period": "month"}', 200, content_type="application/json")


# -- refused, reset, cut -------------------------------------------------------------------


def test_connection_refused_is_connection_error_quickly(make_client: Any) -> None:
    port = RefusedPort()
    try:
        client = make_client("http://127.0.0.1:%d/api/v1" % port.port, max_retries=Retry(total=2, backoff_factor=0.01))
        started = time.monotonic()
        with pytest.raises(ConnectionError) as info:
            client.usage.get()
        assert time.monotonic() - started < HANG_BOUND
        assert not isinstance(info.value, TLSError)
        assert "refused" in str(info.value)
        assert "3 attempts" in str(info.value)
        assert info.value.status_code is None
    finally:
        port.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_reset_before_response(method: str, make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            reset(conn)

    with RawServer(handler) as raw:
        client = make_client(raw.url(), max_retries=FAST)
        with pytest.raises(ConnectionError):
            if method == "GET":
                client.usage.get()
            else:
                client.generate("a cat")
        assert len(raw.requests) == 2, "one retry, on a fresh connection"
        if method == "POST":
            keys = {r.headers["idempotency-key"] for r in raw.requests}
            assert len(keys) == 1, "every attempt of one call carries the same Idempotency-Key"


def test_closed_mid_body(make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            conn.sendall(response_bytes(200, b'{"total_requests": 1, "per', {"Content-Type": "application/json"}, content_length=500))
            conn.close()

    with RawServer(handler) as raw:
        client = make_client(raw.url(), max_retries=FAST)
        with pytest.raises(ConnectionError) as info:
            client.usage.get()
        assert "cut short" in str(info.value)
        assert len(raw.requests) == 2


def test_chunked_body_cut_mid_chunk(make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{\"total_")
            conn.close()

    with RawServer(handler) as raw, pytest.raises(ConnectionError):
        make_client(raw.url()).usage.get()


def test_body_shorter_than_content_length_then_silence_times_out(make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            conn.sendall(response_bytes(200, b'{"total_requests": 1}', {"Content-Type": "application/json"}, content_length=100))
            server.stopped.wait(10)

    with RawServer(handler) as raw:
        client = make_client(raw.url(), timeout=0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.usage.get()
        assert time.monotonic() - started < HANG_BOUND


def test_garbage_instead_of_http_is_typed(make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            conn.sendall(b"SSH-2.0-OpenSSH_9.0\r\nthis is not http\r\n\r\n")
            conn.close()

    with RawServer(handler) as raw, pytest.raises(ConnectionError):
        make_client(raw.url()).usage.get()


# -- bodies that are not what the API promises ---------------------------------------------


@pytest.mark.parametrize(
    "status, expected",
    [(200, InvalidResponseError), (404, NotFoundError), (500, ServerError), (503, ServerError)],
)
def test_empty_body(srv: Any, status: int, expected: type, make_client: Any) -> None:
    serve(srv, lambda r: WResponse(b"", status))
    with pytest.raises(expected) as info:
        make_client(srv.url_for("/api/v1")).usage.get()
    assert info.value.status_code == status
    assert type(info.value) is expected or issubclass(type(info.value), expected)


def test_empty_body_on_delete_is_fine(srv: Any, make_client: Any) -> None:
    srv.expect_request("/api/v1/providers/keys/fal", method="DELETE").respond_with_data(b"", 200)
    assert make_client(srv.url_for("/api/v1")).providers.delete_key("fal") == {}


HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>nginx</body></html>"


@pytest.mark.parametrize("content_type, body", [("text/html", HTML), ("text/plain", b"upstream connect error or disconnect/reset")])
@pytest.mark.parametrize(
    "status, expected",
    [
        (200, InvalidResponseError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (504, ServerError),
    ],
)
def test_html_or_text_where_json_was_expected(
    srv: Any, content_type: str, body: bytes, status: int, expected: type, make_client: Any
) -> None:
    serve(srv, lambda r: WResponse(body, status, content_type=content_type))
    with pytest.raises(expected) as info:
        make_client(srv.url_for("/api/v1")).usage.get()
    err = info.value
    assert err.status_code == status
    assert content_type in str(err)


@pytest.mark.parametrize("body", [b'{"total_requests": 1, "per', b"[1, 2, 3]", b'"just a string"', b"null", b"\xff\xfe\x00garbage"])
def test_truncated_or_wrong_shape_json_on_200(srv: Any, body: bytes, make_client: Any) -> None:
    serve(srv, lambda r: WResponse(body, 200, content_type="application/json"))
    with pytest.raises(InvalidResponseError):
        make_client(srv.url_for("/api/v1")).usage.get()


@pytest.mark.parametrize(
    "status, expected", [(200, InvalidResponseError), (400, ValidationError), (404, NotFoundError), (500, ServerError)]
)
def test_deeply_nested_json_is_typed(srv: Any, status: int, expected: type, make_client: Any) -> None:
    # json.loads raises RecursionError (not ValueError) past the interpreter's recursion limit.
    deep = b"[" * 100_000 + b"]" * 100_000
    serve(srv, lambda r: WResponse(deep, status, content_type="application/json"))
    with pytest.raises(expected) as info:
        make_client(srv.url_for("/api/v1")).usage.get()
    assert info.value.status_code == status


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": {"code": 5, "message": {"nested": true}}}',
        b'{"error": {"message": 42}}',
        b'{"error": ["x"], "message": null, "details": [1]}',
        b'{"detail": [7, {"loc": "body", "msg": {"a": 1}}]}',
        b'{"error": "E", "details": {"field": 3, "provider": null}}',
        b'{"error": "E", "message": "m", "detail": {"reason": "not a list"}}',
        b'{"message": "m", "detail": true}',
    ],
)
def test_error_bodies_of_odd_shape_are_typed(srv: Any, body: bytes, make_client: Any) -> None:
    serve(srv, lambda r: WResponse(body, 422, content_type="application/json"))
    with pytest.raises(ValidationError) as info:
        make_client(srv.url_for("/api/v1")).usage.get()
    assert info.value.status_code == 422
    assert isinstance(info.value.message, str)


def test_answer_larger_than_the_limit(srv: Any, make_client: Any) -> None:
    big = b'{"pad": "' + b"x" * 5000 + b'"}'
    serve(srv, lambda r: WResponse(big, 200, content_type="application/json"))
    with pytest.raises(InvalidResponseError) as info:
        make_client(srv.url_for("/api/v1"), max_response_bytes=1000).usage.get()
    assert info.value.error_code == "RESPONSE_TOO_LARGE"


def test_chunked_answer_larger_than_the_limit(srv: Any, make_client: Any) -> None:
    def stream() -> Iterator[bytes]:
        for _ in range(50):
            yield b"x" * 100

    serve(srv, lambda r: WResponse(stream(), 200, content_type="application/json"))
    with pytest.raises(InvalidResponseError) as info:
        make_client(srv.url_for("/api/v1"), max_response_bytes=1000).usage.get()
    assert info.value.error_code == "RESPONSE_TOO_LARGE"


def test_redirect_loop_is_bounded(srv: Any, make_client: Any) -> None:
    srv.expect_request("/api/v1/usage").respond_with_data("", 302, headers={"Location": "/api/v1/usage"})
    started = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        make_client(srv.url_for("/api/v1")).usage.get()
    assert info.value.error_code == "TOO_MANY_REDIRECTS"
    assert time.monotonic() - started < HANG_BOUND


@pytest.mark.parametrize(
    "location",
    ["ftp://127.0.0.1/x", "http://user:pw@127.0.0.1:1/x", "http://[::1", "http://127.0.0.1:99999/x", "http://127.0.0.1:1/ x"],
)
def test_redirect_to_an_invalid_location_is_an_invalid_response(location: str, make_client: Any) -> None:
    # The server's fault, not the caller's: InvalidResponseError, not ValidationError or ValueError.
    def answer(req: Request, server: RawServer) -> bytes:
        return response_bytes(302, b"", {"Location": location})

    with RawServer(keepalive_json_handler(answer)) as raw:
        with pytest.raises(InvalidResponseError) as info:
            make_client(raw.url()).usage.get()
        assert info.value.error_code == "INVALID_REDIRECT"
        assert "pw" not in str(info.value)


@pytest.mark.parametrize(
    "preamble",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </x.css>; rel=preload\r\n\r\n"],
)
def test_informational_responses_before_the_answer_are_skipped(preamble: bytes, make_client: Any) -> None:
    # http.client skips only 100; a 103 taken for the answer would leave the real answer in
    # the keep-alive connection, and the next call would read the previous call's answer.
    def answer(req: Request, server: RawServer) -> bytes:
        return preamble + response_bytes(200, {"id": req.target.rsplit("/", 1)[1]})

    with RawServer(keepalive_json_handler(answer)) as raw:
        client = make_client(raw.url())
        assert [client.models.get("m%d" % i).id for i in range(3)] == ["m0", "m1", "m2"]
        assert raw.connections == 1


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)),  # too many headers
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n",  # header line too long
        b"HTTP/1.1 2x0 OK\r\n",  # bad status code
    ],
)
def test_malformed_response_heads_are_typed(head: bytes, make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            conn.sendall(head + b"Content-Length: 2\r\n\r\n{}")
            conn.close()

    with RawServer(handler) as raw, pytest.raises(ConnectionError):
        make_client(raw.url()).usage.get()


# -- silence and slowness ------------------------------------------------------------------


def test_server_that_never_answers_times_out(make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            server.stopped.wait(30)

    with RawServer(handler) as raw:
        client = make_client(raw.url(), timeout=0.3, max_retries=FAST)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            client.usage.get()
        assert time.monotonic() - started < HANG_BOUND
        assert len(raw.requests) == 2
        assert info.value.status_code is None


def test_server_that_never_accepts_times_out(make_client: Any) -> None:
    # A full backlog: the TCP handshake never completes for the client's SYN.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        port = listener.getsockname()[1]
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        client = make_client("http://127.0.0.1:%d/api/v1" % port, timeout=0.3)
        started = time.monotonic()
        with pytest.raises((TimeoutError, ConnectionError)):
            client.usage.get()
        assert time.monotonic() - started < HANG_BOUND
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_body_that_trickles_forever_times_out(make_client: Any) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is None:
            return
        conn.sendall(response_bytes(200, b"", {"Content-Type": "application/json"}, content_length=1_000_000))
        conn.sendall(b'{"pad": "')
        while not server.stopped.wait(0.02):
            conn.sendall(b"x" * 10)

    with RawServer(handler) as raw:
        client = make_client(raw.url(), timeout=0.5)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.usage.get()
        assert time.monotonic() - started < HANG_BOUND


def test_post_timed_out_then_retried_keeps_its_idempotency_key(srv: Any, make_client: Any) -> None:
    rec = recorder()
    gate = threading.Event()

    def script(n: int, request: WRequest) -> WResponse:
        if n == 0:
            gate.wait(2)  # longer than the client's timeout: the client gives up and retries
        return WResponse('{"id": "gen-1", "image_url": "https://cdn/x.png"}', 200, content_type="application/json")

    srv.expect_request("/api/v1/generate", method="POST").respond_with_handler(rec(script))
    client = make_client(srv.url_for("/api/v1"), timeout=0.3, max_retries=FAST)
    try:
        result = client.generate("a cat")
    finally:
        gate.set()
    assert result.id == "gen-1"
    assert len(rec.seen) == 2
    keys = {s["headers"]["Idempotency-Key"] for s in rec.seen}
    assert len(keys) == 1


# -- idle keep-alive connections the server closed -----------------------------------------

CALLS = {
    "GET": lambda c: c.usage.get(),
    "POST": lambda c: c.providers.validate_key("fal", "fal-user-key"),
    "POST-generate": lambda c: c.generate("a cat"),
    "PUT": lambda c: c.providers.set_key("fal", "fal-user-key"),
    "DELETE": lambda c: c.providers.delete_key("fal"),
}

ANSWER = b'{"id": "x", "total_requests": 1, "valid": true, "message": "ok", "provider": "fal", "image_url": "u"}'


def _answer_then_close(how: str) -> Any:
    def handle(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is None:
            return
        # keep-alive answer (no "Connection: close"), then the server drops the idle connection
        conn.sendall(response_bytes(200, ANSWER, {"Content-Type": "application/json"}))
        time.sleep(0.05)
        if how == "rst":
            reset(conn)
        else:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    return handle


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("method", sorted(CALLS))
def test_idle_keepalive_closed_by_server_is_retried_transparently(
    method: str, how: str, scheme: str, tls: TLSFiles, make_client: Any
) -> None:
    context = tls.server_context("localhost", "127.0.0.1") if scheme == "https" else None
    with RawServer(_answer_then_close(how), tls=context) as raw:
        kwargs: Dict[str, Any] = {"verify": tls.ca_path} if context else {}
        client = make_client(raw.url(), max_retries=0, **kwargs)  # a stale connection is not a retry
        client.usage.get()  # opens the connection that will go stale
        assert raw.wait_requests(1)
        time.sleep(0.25)  # the server has closed it by now; our pool does not know
        CALLS[method](client)
        assert raw.connections == 2
        assert len(raw.requests) == 2, "the stale connection never delivered the request"
        client.close()


def test_stale_retry_happens_once_not_forever(make_client: Any) -> None:
    # A server that closes every reused connection without answering: the fresh connection
    # answers, so each call costs at most one extra send.
    def handle(conn: socket.socket, server: RawServer) -> None:
        rfile = conn.makefile("rb")
        first = True
        while True:
            req = server.read(conn, rfile)
            if req is None:
                return
            if not first:
                conn.close()
                return
            first = False
            conn.sendall(response_bytes(200, ANSWER, {"Content-Type": "application/json"}))

    with RawServer(handle) as raw:
        client = make_client(raw.url(), max_retries=0)
        for _ in range(3):
            client.usage.get()
        # call 1: new conn; calls 2, 3: reused (dropped after reading) then fresh
        assert raw.connections == 3
        assert len(raw.requests) == 5


# -- storms and Retry-After ----------------------------------------------------------------


def test_503_storm_backoff_bounds_and_one_idempotency_key_per_call(srv: Any, make_client: Any) -> None:
    rec = recorder()
    srv.expect_request("/api/v1/generate", method="POST").respond_with_handler(
        rec(lambda n, r: WResponse('{"error": "UNAVAILABLE", "message": "try later"}', 503, content_type="application/json"))
    )
    policy = Retry(total=3, backoff_factor=0.05, backoff_max=0.2, jitter=0.25)
    client = make_client(srv.url_for("/api/v1"), max_retries=policy)
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        client.generate("a storm")
    assert time.monotonic() - started < HANG_BOUND
    assert info.value.status_code == 503
    assert len(rec.seen) == 4, "1 attempt + total=3 retries"
    keys = [s["headers"]["Idempotency-Key"] for s in rec.seen]
    assert len(set(keys)) == 1
    assert all(s["body"] == rec.seen[0]["body"] for s in rec.seen)
    gaps = [b["t"] - a["t"] for a, b in zip(rec.seen, rec.seen[1:])]
    for n, gap in enumerate(gaps):
        nominal = min(policy.backoff_max, policy.backoff_factor * 2**n)
        assert gap >= nominal * (1 - policy.jitter) - 0.005, (n, gap)
        assert gap < nominal + 1.0, (n, gap)  # loose: machines are noisy
    # a second call gets a key of its own
    with pytest.raises(ServerError):
        client.generate("a storm")
    assert rec.seen[4]["headers"]["Idempotency-Key"] not in keys
    assert len({s["headers"]["Idempotency-Key"] for s in rec.seen}) == 2


def test_backoff_of_a_very_late_retry_does_not_overflow() -> None:
    policy = Retry(total=5000, backoff_factor=0.5, backoff_max=8.0)
    for n in (0, 10, 1023, 1024, 4999):
        assert 0 <= policy.backoff(n) <= 8.0  # 0.5 * 2.0**1024 would raise OverflowError


def test_user_idempotency_key_is_used_on_every_attempt(srv: Any, make_client: Any) -> None:
    rec = recorder()
    srv.expect_request("/api/v1/images/generate", method="POST").respond_with_handler(
        rec(lambda n, r: WResponse("busy", 503) if n < 2 else WResponse('{"id": "i1", "images": ["u"]}', 200))
    )
    client = make_client(srv.url_for("/api/v1"), max_retries=Retry(total=3, backoff_factor=0.001))
    result = client.images.generate("m/x", "a dog", idempotency_key="order-42")
    assert result.id == "i1"  # type: ignore[union-attr]
    assert [s["headers"]["Idempotency-Key"] for s in rec.seen] == ["order-42"] * 3


def test_get_storm_gives_up_after_total(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(lambda n, r: WResponse("<h1>503</h1>", 503, content_type="text/html")))
    with pytest.raises(ServerError):
        make_client(srv.url_for("/api/v1"), max_retries=Retry(total=5, backoff_factor=0.001)).usage.get()
    assert len(rec.seen) == 6
    assert all("Idempotency-Key" not in s["headers"] for s in rec.seen)


def _limited(first: int, headers: Dict[str, str], status: int = 429) -> Any:
    def script(n: int, request: WRequest) -> WResponse:
        if n < first:
            return WResponse('{"error": "RATE_LIMITED", "message": "slow down"}', status, headers=headers, content_type="application/json")
        return ok_usage()

    return script


def test_retry_after_seconds_is_honoured(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(1, {"Retry-After": "1"})))
    client = make_client(srv.url_for("/api/v1"), max_retries=Retry(total=2, backoff_factor=0.001))
    assert client.usage.get().total_requests == 7
    gap = rec.seen[1]["t"] - rec.seen[0]["t"]
    assert 0.95 <= gap < 1.0 + HANG_BOUND


def test_retry_after_http_date_is_honoured(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(1, {"Retry-After": formatdate(time.time() + 2, usegmt=True)})))
    client = make_client(srv.url_for("/api/v1"), max_retries=Retry(total=2, backoff_factor=0.001))
    assert client.usage.get().total_requests == 7
    gap = rec.seen[1]["t"] - rec.seen[0]["t"]
    assert 0.9 <= gap < 2.0 + HANG_BOUND  # the date has one-second resolution


@pytest.mark.parametrize("value", ["soon", "", "1e999", "nan", "-5", "Wed, 99 Foo 2024 99:99:99 GMT", formatdate(0, usegmt=True)])
def test_retry_after_garbage_or_past_falls_back_to_backoff(srv: Any, value: str, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(2, {"Retry-After": value})))
    client = make_client(srv.url_for("/api/v1"), max_retries=Retry(total=2, backoff_factor=0.01))
    started = time.monotonic()
    assert client.usage.get().total_requests == 7
    assert time.monotonic() - started < HANG_BOUND
    assert len(rec.seen) == 3


def test_retry_after_an_hour_gives_up_at_once(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(100, {"Retry-After": "3600"})))
    client = make_client(srv.url_for("/api/v1"), max_retries=Retry(total=5))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        client.usage.get()
    assert time.monotonic() - started < 2.0
    assert info.value.retry_after == 3600
    assert len(rec.seen) == 1


def test_retry_after_an_hour_as_date_gives_up_at_once(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(100, {"Retry-After": formatdate(time.time() + 3600, usegmt=True)})))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        make_client(srv.url_for("/api/v1"), max_retries=Retry(total=5)).usage.get()
    assert time.monotonic() - started < 2.0
    assert info.value.retry_after is not None and 3590 <= info.value.retry_after <= 3601
    assert len(rec.seen) == 1


def test_503_with_long_retry_after_gives_up_at_once(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(100, {"Retry-After": "3600"}, status=503)))
    started = time.monotonic()
    with pytest.raises(ServerError):
        make_client(srv.url_for("/api/v1"), max_retries=Retry(total=5)).usage.get()
    assert time.monotonic() - started < 2.0
    assert len(rec.seen) == 1


def test_max_retry_after_is_configurable(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(100, {"Retry-After": "2"})))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        make_client(srv.url_for("/api/v1"), max_retries=Retry(total=3, max_retry_after=1.0)).usage.get()
    assert time.monotonic() - started < 1.5
    assert info.value.retry_after == 2
    assert len(rec.seen) == 1


def test_rate_limit_storm_ends_with_rate_limit_error(srv: Any, make_client: Any) -> None:
    rec = recorder()
    serve(srv, rec(_limited(100, {"Retry-After": "0"})))
    with pytest.raises(RateLimitError) as info:
        make_client(srv.url_for("/api/v1"), max_retries=Retry(total=3, backoff_factor=0.001)).usage.get()
    assert len(rec.seen) == 4
    assert info.value.retry_after == 0


def test_every_error_is_a_visgate_error() -> None:
    # The hierarchy a caller relies on: a single except clause catches every failure above.
    for cls in EXCEPTIONS:
        assert issubclass(cls, VisgateError)
    assert issubclass(TLSError, ConnectionError)
    import builtins

    assert visgate_sdk.ConnectionError is not builtins.ConnectionError  # ours shadows the builtin on purpose


def test_a_stale_connection_that_is_dropped_is_also_closed(make_client: Any) -> None:
    # The pool forgets the connection the server closed; its socket must be closed too, not
    # left to the garbage collector (a ResourceWarning, and a file descriptor held until then).
    with RawServer(_answer_then_close("fin")) as raw:
        client = make_client(raw.url(), max_retries=0)
        client.usage.get()
        stale = client._session.transport._pool()[client._session.origin]
        stale_sock = stale.sock
        assert stale_sock is not None
        assert raw.wait_requests(1)
        time.sleep(0.25)  # the server has closed it by now
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            client.usage.get()
            gc.collect()
        assert raw.connections == 2
        assert client._session.transport._pool()[client._session.origin] is not stale
        assert stale.sock is None and stale_sock.fileno() == -1, "the dropped connection's socket is closed"
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
