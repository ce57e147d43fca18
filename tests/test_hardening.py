"""Hardening, tried the way users meet it: a fork in a real child process, a real SIGINT, a server
that trickles its headers, a 502 that names a provider, and files saved where they can't be."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any, List

import pytest
from pytest_httpserver import HTTPServer

import visgate_sdk
from tests._servers import RawServer, keepalive_json_handler, response_bytes
from visgate_sdk import Client, DownloadError, ProviderError, TimeoutError

KEY = "vg-hardening-key-0123456789"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")


def echo_model(req: Any, server: RawServer) -> bytes:
    """Answers GET /models/<id> with that id, after a short pause: replies that cross would show."""
    time.sleep(0.002)
    return response_bytes(200, {"id": req.target.rsplit("/", 1)[-1], "pid_seen": req.target})


# -- fork: the child never uses (nor cuts) the parent's keep-alive connection ----------------


@needs_fork
def test_after_fork_parent_and_child_each_get_their_own_answers() -> None:
    with RawServer(keepalive_json_handler(echo_model)) as server:
        client = Client(api_key=KEY, base_url=server.url(), max_retries=0, timeout=10)
        assert client.models.get("warmup").id == "warmup"  # a keep-alive connection now exists
        assert server.connections == 1
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: count answers that were not for its own requests
            os.close(read_end)
            wrong = 0
            try:
                for i in range(60):
                    wrong += client.models.get("child-%d" % i).id != "child-%d" % i
                os.write(write_end, str(wrong).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        wrong_parent = sum(client.models.get("parent-%d" % i).id != "parent-%d" % i for i in range(60))
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end) as pipe:
            wrong_child = pipe.read()
        assert os.WIFEXITED(status) and wrong_child == "0", "the child got %s answers meant for the parent" % wrong_child
        assert wrong_parent == 0
        # The parent kept its own connection; the child opened one of its own.
        assert server.connections == 2
        client.close()


@needs_fork
def test_close_in_a_forked_child_leaves_the_parents_connection_alone() -> None:
    with RawServer(keepalive_json_handler(echo_model)) as server:
        client = Client(api_key=KEY, base_url=server.url(), max_retries=0, timeout=10)
        client.models.get("before")
        pid = os.fork()
        if pid == 0:
            client.close()  # would shut the shared socket down if the child still owned it
            os._exit(0)
        os.waitpid(pid, 0)
        assert client.models.get("after").id == "after"
        assert server.connections == 1, "the parent's keep-alive connection survived the child's close()"
        client.close()


@needs_fork
def test_async_client_works_in_a_forked_child() -> None:
    import asyncio

    with RawServer(keepalive_json_handler(echo_model)) as server:
        aclient = visgate_sdk.AsyncClient(api_key=KEY, base_url=server.url(), max_retries=0, timeout=10)
        assert asyncio.run(aclient.models.get("parent")).id == "parent"  # starts the worker pool
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                ids = asyncio.run(_gather_ids(aclient, "child", 10))
                os.write(write_end, json.dumps(ids).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end) as pipe:
            got = pipe.read()
        assert os.WIFEXITED(status) and json.loads(got) == ["child-%d" % i for i in range(10)]
        assert asyncio.run(aclient.models.get("parent-again")).id == "parent-again"
        asyncio.run(aclient.close())


async def _gather_ids(aclient: Any, prefix: str, n: int) -> List[str]:
    import asyncio

    found = await asyncio.gather(*(aclient.models.get("%s-%d" % (prefix, i)) for i in range(n)))
    return [m.id for m in found]


# -- Ctrl-C: an interrupted exchange never serves another call ------------------------------


def held_then_answered(phase: str) -> Any:
    """The first answer is held at ``phase`` ("headers": before the status line; "body": halfway
    through the body) and completed late, as a real server would, while the client is
    interrupted; every other request is answered at once. A client that reused the interrupted
    connection would send its next request down it, and read the late bytes as its answer."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        rfile = conn.makefile("rb")
        while not server.stopped.is_set():
            if server.read(conn, rfile) is None:
                return
            answer = response_bytes(200, {"status": "late" if len(server.requests) == 1 else "ok", "pad": "x" * 400})
            if len(server.requests) == 1:
                cut = answer.index(b"\r\n\r\n") + 50 if phase == "body" else 0
                conn.sendall(answer[:cut])
                # Late: once the client has moved to a new connection (or after 3 s, when it has not).
                until = time.monotonic() + 3
                while server.connections < 2 and time.monotonic() < until:
                    if server.stopped.wait(0.02):
                        return
                answer = answer[cut:]
            conn.sendall(answer)

    return handle


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import signal, sys, visgate_sdk
    # Ctrl-C as a terminal delivers it, even when this test runs in a background job (which
    # starts children with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    client = visgate_sdk.Client(api_key="%s", base_url=sys.argv[1], max_retries=int(sys.argv[2]), timeout=30)
    print("calling", flush=True)
    try:
        client.%s
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    try:
        print("next:", client.health()["status"], flush=True)
    except visgate_sdk.VisgateError as exc:
        print("next failed:", type(exc).__name__, exc, flush=True)
    """
)


@pytest.mark.parametrize("phase", ["headers", "body"])
@pytest.mark.parametrize("max_retries", [0, 2])
@pytest.mark.parametrize("call", ["health()", "images.generate('m', 'p')"])
def test_ctrl_c_while_waiting_discards_the_connection(max_retries: int, call: str, phase: str) -> None:
    with RawServer(held_then_answered(phase)) as server:
        script = CTRL_C_SCRIPT % (KEY, call)
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen([sys.executable, "-c", script, server.url(), str(max_retries)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "calling"
        assert server.wait_requests(1), "the first request reached the server"
        time.sleep(0.1)  # let the client read what the server sent so far
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = proc.communicate(timeout=20)
        assert out.splitlines() == ["interrupted", "next: ok"], err
        # The next call went out once, on a new connection: nothing was written to the old one.
        assert server.connections == 2
        assert [r.target for r in server.requests][1:] == ["/api/v1/health"]


# -- the timeout bounds the header phase too ------------------------------------------------


def trickled_headers(conn: socket.socket, server: RawServer) -> None:
    server.read(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not server.stopped.wait(0.25):
        conn.sendall(b"a")


def test_a_server_trickling_its_headers_cannot_outlast_the_timeout() -> None:
    with RawServer(trickled_headers) as server:
        client = Client(api_key=KEY, base_url=server.url(), timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.health()
        assert time.monotonic() - started < 3.0  # the bug: over 25 s
        client.close()


def trickled_status_line(conn: socket.socket, server: RawServer) -> None:
    server.read(conn)
    for byte in b"HTTP/1.1 200 OK\r\n":
        if server.stopped.wait(0.2):
            return
        conn.sendall(bytes([byte]))


def test_a_server_trickling_its_status_line_cannot_outlast_the_timeout() -> None:
    with RawServer(trickled_status_line) as server:
        client = Client(api_key=KEY, base_url=server.url(), timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            client.health()
        assert time.monotonic() - started < 3.0
        client.close()


# -- a 502 naming a provider: reads are retried, generations are not ------------------------

PROVIDER_502 = {"error": "PROVIDER_ERROR", "message": "fal is down", "details": {"provider": "fal"}}


def test_get_is_retried_on_a_provider_502(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/api/v1/health").respond_with_json(PROVIDER_502, status=502)
    httpserver.expect_ordered_request("/api/v1/health").respond_with_json({"status": "ok"})
    client = Client(api_key=KEY, base_url=httpserver.url_for("/api/v1"), max_retries=visgate_sdk.Retry(2, backoff_factor=0.001))
    assert client.health() == {"status": "ok"}
    assert len(httpserver.log) == 2
    client.close()


def test_a_generation_is_not_retried_on_a_provider_502(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(PROVIDER_502, status=502)
    client = Client(api_key=KEY, base_url=httpserver.url_for("/api/v1"), max_retries=visgate_sdk.Retry(2, backoff_factor=0.001))
    with pytest.raises(ProviderError) as info:
        client.images.generate("m", "p")
    assert info.value.provider == "fal"
    assert len(httpserver.log) == 1, "a repeated generation would bill the failed run again"
    client.close()


# -- saved media: permissions like open(), typed errors naming the destination --------------

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


@pytest.fixture
def media(httpserver: HTTPServer) -> str:
    httpserver.expect_request("/media/a.png").respond_with_data(PNG, content_type="image/png")
    return httpserver.url_for("/media/a.png")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_mode_open_would_give(media: str, tmp_path: Any, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = Client(api_key=KEY).download(media, tmp_path / "a.png")
    finally:
        os.umask(old)
    with open(path, "rb") as saved:
        assert saved.read() == PNG
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_result_save_honours_the_umask_too(media: str, tmp_path: Any) -> None:
    result = visgate_sdk.ImageResult.from_dict({"id": "i", "images": [media]})
    old = os.umask(0o022)
    try:
        path = result.save(tmp_path / "r.png")
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_saving_into_a_missing_directory_is_a_download_error(media: str, tmp_path: Any) -> None:
    dest = tmp_path / "no" / "such" / "dir" / "a.png"
    with pytest.raises(DownloadError) as info:
        Client(api_key=KEY).download(media, dest)
    assert str(dest) in str(info.value) and ".part" not in str(info.value)


def test_saving_over_a_directory_is_a_download_error(media: str, tmp_path: Any) -> None:
    dest = tmp_path / "taken"
    dest.mkdir()
    with pytest.raises(DownloadError) as info:
        Client(api_key=KEY).download(media, dest)
    assert str(dest) in str(info.value) and ".part" not in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"], "no temporary file is left behind"


@needs_fork
@pytest.mark.skipif(not hasattr(os, "setuid"), reason="POSIX users")
def test_saving_into_a_read_only_directory_is_a_download_error(media: str, tmp_path: Any) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    os.chmod(tmp_path, 0o755)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # as an ordinary user: root may write anywhere
        os.close(read_end)
        try:
            if os.geteuid() == 0:
                os.setuid(65534)
            try:
                Client(api_key=KEY).download(media, folder / "a.png")
                outcome = "saved"
            except DownloadError as exc:
                outcome = "DownloadError: %s" % exc
            except BaseException as exc:
                outcome = "%s: %s" % (type(exc).__name__, exc)
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        outcome = pipe.read()
    assert outcome.startswith("DownloadError: ") and str(folder / "a.png") in outcome and ".part" not in outcome



# -- AsyncClient: the same properties; a cancelled await stops its worker thread -------------


def test_async_client_has_every_property_of_client() -> None:
    def properties(cls: type) -> List[str]:
        return sorted(n for n in dir(cls) if not n.startswith("_") and isinstance(getattr(cls, n), property))

    assert properties(visgate_sdk.AsyncClient) == properties(Client)
    sync = Client(api_key=KEY, timeout=7.5, max_retries=3, budget_usd=2.0)
    aclient = visgate_sdk.AsyncClient(api_key=KEY, timeout=7.5, max_retries=3, budget_usd=2.0)
    for name in properties(Client):
        assert getattr(aclient, name) == getattr(sync, name), name


def test_a_cancelled_await_stops_polling_at_the_next_safe_point(httpserver: HTTPServer) -> None:
    import asyncio

    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(
        {"request_id": "job-1", "status": "pending"}, status=202)
    httpserver.expect_request("/api/v1/requests/job-1").respond_with_json({"request_id": "job-1", "status": "processing"})

    def polls() -> int:
        return sum(req.path.endswith("/requests/job-1") for req, _ in httpserver.log)

    async def scenario() -> int:
        aclient = visgate_sdk.AsyncClient(api_key=KEY, base_url=httpserver.url_for("/api/v1"))
        task = asyncio.ensure_future(aclient.images.generate("m", "p"))  # wait=True: the thread polls every 2 s
        while polls() < 1:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen = polls()
        await asyncio.sleep(2.6)  # past the next poll the thread would have made
        await aclient.close()
        return polls() - seen

    assert asyncio.run(scenario()) == 0, "the worker thread went on polling after the await was cancelled"


def test_a_cancelled_await_makes_no_further_attempts(httpserver: HTTPServer) -> None:
    import asyncio

    httpserver.expect_request("/api/v1/usage").respond_with_json(
        {"error": "UNAVAILABLE", "message": "busy"}, status=503, headers={"Retry-After": "1"})

    async def scenario() -> int:
        aclient = visgate_sdk.AsyncClient(api_key=KEY, base_url=httpserver.url_for("/api/v1"), max_retries=5)
        task = asyncio.ensure_future(aclient.usage.get())
        while len(httpserver.log) < 1:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen = len(httpserver.log)
        await asyncio.sleep(1.5)  # past the Retry-After the thread was sleeping through
        await aclient.close()
        return len(httpserver.log) - seen

    assert asyncio.run(scenario()) == 0, "a retry went out after the await was cancelled"


def status_then_silence(conn: socket.socket, server: RawServer) -> None:
    server.read(conn)
    if not server.stopped.wait(1.0):
        conn.sendall(b"HTTP/1.1 200 OK\r\n")  # a start, then nothing more
        server.stopped.wait(30)


def test_a_read_that_starts_late_still_ends_at_the_deadline() -> None:
    # The wait for the next bytes shrinks to what is left of the call, not what was left when the
    # request went out: a server that answers late and then stalls cannot stretch the deadline.
    with RawServer(status_then_silence) as server:
        client = Client(api_key=KEY, base_url=server.url(), timeout=30, max_retries=0)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            client.health(deadline=1.6)
        elapsed = time.monotonic() - started
        client.close()
    assert info.value.error_code == "DEADLINE_EXCEEDED"
    assert 1.5 <= elapsed < 2.3, elapsed  # without the shrinking wait: about 2.6 s
