"""Concurrency: one client shared by many threads or coroutines; cancellation; close() mid-call.

The server is ``_servers.RawServer`` (a thread per connection, keep-alive), which echoes the
request's own path and query back, so every answer can be matched to its request.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import visgate_sdk
from tests._servers import RawServer, Request, keepalive_json_handler, response_bytes, wait_for
from visgate_sdk import AsyncClient, Client, ConnectionError, Retry

KEY = "vg-concurrency-key-0123"
HANG = 30.0  # join bounds: only a deadlock would reach them


class Echo:
    """Answers ``/models/<id>`` with that id and ``/usage/logs?offset=N`` with N; counts in-flight requests."""

    def __init__(self, delay: float = 0.0, slow_path: Optional[str] = None) -> None:
        self.delay = delay
        self.slow_path = slow_path
        self.release = threading.Event()
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.server = RawServer(keepalive_json_handler(self.answer))

    def answer(self, req: Request, server: RawServer) -> bytes:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.slow_path and self.slow_path in req.target:
                self.release.wait(10)
            elif self.delay:
                time.sleep(self.delay)
            parts = urlsplit(req.target)
            if "/models/" in parts.path:
                body: Any = {"id": unquote(parts.path.split("/models/", 1)[1]), "name": "m"}
            elif parts.path.endswith("/usage/logs"):
                body = {"logs": [{"offset": int(parse_qs(parts.query)["offset"][0])}]}
            else:
                body = {"status": "ok"}
            return response_bytes(200, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    @property
    def url(self) -> str:
        return self.server.url()

    def stop(self) -> None:
        self.release.set()
        self.server.stop()


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.stop()


def test_one_client_32_threads_3200_calls(echo: Echo) -> None:
    client = Client(api_key=KEY, base_url=echo.url, max_retries=0, timeout=30)
    threads_n, calls_n = 32, 100
    mismatches: List[Tuple[Any, Any]] = []
    errors: List[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(calls_n):
                if i % 2:
                    want = "thread-%d/call-%d" % (t, i)
                    got: Any = client.models.get(want).id
                else:
                    want = t * 1000 + i
                    got = client.usage.logs(limit=1, offset=want)[0]["offset"]
                if got != want:
                    mismatches.append((want, got))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads_n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + HANG
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "deadlock: threads still running"
    assert errors == []
    assert mismatches == []
    assert len(echo.server.requests) == threads_n * calls_n
    assert echo.server.connections <= threads_n, "one keep-alive connection per thread"
    client.close()


def test_async_client_200_concurrent_calls() -> None:
    echo = Echo(delay=0.2)
    try:

        async def main() -> List[str]:
            async with AsyncClient(api_key=KEY, base_url=echo.url, max_retries=0, max_concurrency=200, timeout=30) as client:
                results = await asyncio.wait_for(
                    asyncio.gather(*[client.models.get("job/%d" % i) for i in range(200)]), HANG
                )
                return [r.id for r in results]

        assert asyncio.run(main()) == ["job/%d" % i for i in range(200)]
        assert len(echo.server.requests) == 200
        assert echo.peak > 10, "calls overlap (peak %d)" % echo.peak
    finally:
        echo.stop()


def test_async_max_concurrency_bounds_calls_in_flight() -> None:
    echo = Echo(delay=0.05)
    try:

        async def main() -> List[str]:
            async with AsyncClient(api_key=KEY, base_url=echo.url, max_retries=0, max_concurrency=8) as client:
                results = await asyncio.wait_for(asyncio.gather(*[client.models.get("j/%d" % i) for i in range(64)]), HANG)
                return [r.id for r in results]

        assert asyncio.run(main()) == ["j/%d" % i for i in range(64)]
        assert echo.peak <= 8
    finally:
        echo.stop()


def test_cancelled_await_leaves_the_client_usable() -> None:
    echo = Echo(slow_path="slow")
    try:

        async def main() -> Dict[str, Any]:
            async with AsyncClient(api_key=KEY, base_url=echo.url, max_retries=0, timeout=30) as client:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.models.get("slow/one"), 0.2)
                after = await asyncio.wait_for(client.models.get("fast/one"), HANG)
                echo.release.set()  # the abandoned call finishes in its thread; nothing breaks
                again = await asyncio.wait_for(asyncio.gather(*[client.health() for _ in range(5)]), HANG)
                return {"after": after.id, "again": again}

        out = asyncio.run(main())
        assert out["after"] == "fast/one"
        assert all(a == {"status": "ok"} for a in out["again"])
    finally:
        echo.stop()


def _never_answers() -> RawServer:
    def handler(conn: socket.socket, server: RawServer) -> None:
        if server.read(conn) is not None:
            server.stopped.wait(30)

    return RawServer(handler)


def test_close_while_threads_wait_gives_connection_errors_quickly() -> None:
    with _never_answers() as raw:
        client = Client(api_key=KEY, base_url=raw.url(), timeout=60, max_retries=Retry(total=3, backoff_factor=0.01))
        outcomes: List[Any] = []

        def call() -> None:
            try:
                outcomes.append(client.usage.get())
            except BaseException as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=call, daemon=True) for _ in range(8)]
        for t in threads:
            t.start()
        assert raw.wait_requests(8)
        started = time.monotonic()
        client.close()
        for t in threads:
            t.join(5)
        assert not any(t.is_alive() for t in threads), "a call hung after close()"
        assert time.monotonic() - started < 5
        assert len(outcomes) == 8 and all(isinstance(o, ConnectionError) for o in outcomes), outcomes
        assert len(raw.requests) == 8, "a closed client does not retry"
        with pytest.raises(ConnectionError):
            client.usage.get()


def test_close_during_a_retry_backoff_sends_nothing_more() -> None:
    answer = keepalive_json_handler(lambda req, server: response_bytes(503, {"error": "BUSY", "message": "later"}))
    with RawServer(answer) as raw:
        client = Client(api_key=KEY, base_url=raw.url(), max_retries=Retry(total=3, backoff_factor=0.3, jitter=0))
        outcome: List[Any] = []
        t = threading.Thread(target=lambda: outcome.append(_catch(client.usage.get)), daemon=True)
        t.start()
        assert raw.wait_requests(1)
        client.close()  # lands while the call sleeps before its first retry
        t.join(5)
        assert not t.is_alive()
        assert isinstance(outcome[0], ConnectionError)
        assert len(raw.requests) == 1, "no retry after close()"


def test_close_cuts_a_long_retry_backoff_short() -> None:
    # A call waiting out a 30 s Retry-After must not keep a closing Lambda alive for 30 s.
    answer = keepalive_json_handler(lambda req, server: response_bytes(503, {"error": "BUSY", "message": "later"}, {"Retry-After": "30"}))
    with RawServer(answer) as raw:
        client = Client(api_key=KEY, base_url=raw.url(), max_retries=Retry(total=3))
        outcome: List[Any] = []
        t = threading.Thread(target=lambda: outcome.append(_catch(client.usage.get)), daemon=True)
        t.start()
        assert raw.wait_requests(1)
        started = time.monotonic()
        client.close()
        t.join(10)
        assert not t.is_alive()
        assert time.monotonic() - started < 5, "close() waited for the whole backoff"
        assert isinstance(outcome[0], ConnectionError)
        assert len(raw.requests) == 1


def test_close_racing_a_new_connection_does_not_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hold the call between "is the client closed?" and "connect" until close() has returned,
    # so close() lands in that window every time.
    real_get = visgate_sdk._Transport._get
    in_window = threading.Event()
    closed = threading.Event()

    def held_get(self: Any, origin: Any, timeout: float) -> Any:
        in_window.set()
        closed.wait(10)
        return real_get(self, origin, timeout)

    monkeypatch.setattr(visgate_sdk._Transport, "_get", held_get)
    with _never_answers() as raw:
        client = Client(api_key=KEY, base_url=raw.url(), timeout=20, max_retries=0)
        outcome: List[Any] = []
        t = threading.Thread(target=lambda: outcome.append(_catch(client.usage.get)), daemon=True)
        t.start()
        assert in_window.wait(5), "the call never reached _get"
        client.close()
        closed.set()
        t.join(5)
        assert not t.is_alive(), "the call connected after close() and waited for the full timeout"
        assert isinstance(outcome[0], ConnectionError)


def _catch(fn: Any) -> Any:
    try:
        return fn()
    except BaseException as exc:
        return exc


def test_close_during_a_stream_of_calls_never_hangs() -> None:
    # Threads keep calling while close() lands at some arbitrary point of their calls:
    # connecting, sending, waiting or reading. None may hang.
    echo = Echo(delay=0.002)
    try:
        client = Client(api_key=KEY, base_url=echo.url, timeout=60, max_retries=0)
        stop = threading.Event()
        errors: List[BaseException] = []
        ok = [0]

        def loop() -> None:
            while not stop.is_set():
                try:
                    client.health()
                    ok[0] += 1
                except ConnectionError:
                    return
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(16)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        client.close()
        for t in threads:
            t.join(5)
        stop.set()
        assert not any(t.is_alive() for t in threads), "a call hung after close()"
        assert errors == []
        assert ok[0] > 0
    finally:
        echo.stop()


def test_async_close_while_calls_wait_gives_connection_errors() -> None:
    with _never_answers() as raw:

        async def main() -> List[Any]:
            client = AsyncClient(api_key=KEY, base_url=raw.url(), timeout=60, max_retries=0, max_concurrency=4)
            tasks = [asyncio.ensure_future(client.usage.get()) for _ in range(10)]  # 6 wait for a thread
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, raw.wait_requests, 4)
            await client.close()
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
            with pytest.raises(ConnectionError):
                await client.health()
            return list(done)

        started = time.monotonic()
        outcomes = asyncio.run(main())
        assert time.monotonic() - started < 10
        assert len(outcomes) == 10 and all(isinstance(o, ConnectionError) for o in outcomes), outcomes


def test_threads_do_not_share_a_connection() -> None:
    # Each thread's answers come back on its own connection: the server sees one connection
    # per thread, and bodies never interleave (checked by the echo above at scale).
    echo = Echo()
    try:
        client = Client(api_key=KEY, base_url=echo.url, max_retries=0)
        seen: Dict[int, str] = {}

        def work(n: int) -> None:
            seen[n] = client.models.get("only/%d" % n).id

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        assert seen == {n: "only/%d" % n for n in range(4)}
        assert echo.server.connections == 4
        assert json.loads(json.dumps(seen))  # plain data
    finally:
        echo.stop()


def test_a_closed_client_opens_no_connection(make_client: Any) -> None:
    with RawServer(keepalive_json_handler(lambda req, server: response_bytes(200, {"status": "ok"}))) as raw:
        client = make_client(raw.url(), max_retries=0)
        client.close()
        with pytest.raises(ConnectionError) as info:
            client.usage.get()
        assert "closed" in str(info.value)
        wait_for(lambda: raw.connections > 0, timeout=0.5)  # give a stray connect time to show
        assert raw.connections == 0
