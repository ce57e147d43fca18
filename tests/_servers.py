"""Loopback servers that misbehave on purpose, a CONNECT proxy, and trustme TLS helpers.

Used by the fault, security, TLS/proxy, property and concurrency tests. Everything binds to
127.0.0.1 and stops by itself when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import struct
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

# -- raw HTTP parsing ---------------------------------------------------------------------


class Request:
    """One request as the server saw it, byte for byte where it matters."""

    def __init__(self, method: str, target: str, version: str, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.header_list = headers
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.time = time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return "Request(%s %s)" % (self.method, self.target)


def read_request(rfile: Any) -> Optional[Request]:
    """Read one HTTP/1.1 request from a socket file; None at EOF."""
    line = rfile.readline(65537)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(65537)
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    headers: List[Tuple[str, str]] = []
    while True:
        h = rfile.readline(65537)
        if not h or h in (b"\r\n", b"\n"):
            break
        name, _, value = h.decode("latin-1").rstrip("\r\n").partition(":")
        headers.append((name.strip(), value.strip()))
    req = Request(method, target, version, headers, b"")
    length = req.headers.get("content-length")
    if length:
        req.body = rfile.read(int(length))
    return req


def response_bytes(
    status: int = 200,
    body: Any = b"",
    headers: Optional[Dict[str, str]] = None,
    reason: str = "X",
    content_length: Optional[int] = None,
) -> bytes:
    """An HTTP/1.1 response; ``body`` may be JSON-able (then it is encoded) or bytes."""
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
        headers = dict({"Content-Type": "application/json"}, **(headers or {}))
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    all_headers = dict(headers or {})
    all_headers.setdefault("Content-Length", str(len(body) if content_length is None else content_length))
    for k, v in all_headers.items():
        head += "%s: %s\r\n" % (k, v)
    return head.encode("latin-1") + b"\r\n" + bytes(body)


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- a server whose every connection is handled by a function ------------------------------


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``handler(conn, server)`` for each connection.

    ``requests`` records every request a handler read with ``server.read(conn)``;
    ``connections`` counts accepted connections. ``stop()`` closes everything.
    """

    def __init__(self, handler: Callable[[socket.socket, "RawServer"], None], tls: Optional[ssl.SSLContext] = None) -> None:
        self.handler = handler
        self.tls = tls
        self.requests: List[Request] = []
        self.connections = 0
        self.state: Dict[str, Any] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self._socks: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)
        self._accept_thread.start()

    def url(self, path: str = "/api/v1", scheme: Optional[str] = None, host: str = "127.0.0.1") -> str:
        scheme = scheme or ("https" if self.tls else "http")
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            with self.lock:
                self._socks.append(conn)
            self.handler(conn, self)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def read(self, conn: socket.socket, rfile: Any = None) -> Optional[Request]:
        """Read one request from ``conn`` (or its file ``rfile``) and record it."""
        req = read_request(rfile if rfile is not None else conn.makefile("rb"))
        if req is not None:
            with self.lock:
                self.requests.append(req)
        return req

    def wait_requests(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= n:
                return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        self.stopped.set()
        self._listener.close()
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> "RawServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def keepalive_json_handler(answer: Callable[[Request, "RawServer"], bytes]) -> Callable[[socket.socket, RawServer], None]:
    """A handler that serves requests on one connection until the client leaves."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        rfile = conn.makefile("rb")
        while not server.stopped.is_set():
            req = server.read(conn, rfile)
            if req is None:
                return
            conn.sendall(answer(req, server))

    return handle


def sleep_until_stopped(server: RawServer, seconds: float) -> None:
    server.stopped.wait(seconds)


class RefusedPort:
    """A port bound but not listening: connecting to it is refused (RST)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


# -- an HTTP proxy with CONNECT ------------------------------------------------------------


class Proxy:
    """A loopback forward proxy: CONNECT tunnels (threads piping bytes) and absolute-form HTTP.

    ``connects`` records each CONNECT request (target and headers); ``forwarded`` each plain
    HTTP request (absolute-form target and headers), which the proxy answers itself with a
    JSON echo of what it saw. With ``require_auth`` set, requests without that exact
    ``Proxy-Authorization`` get 407. Tunnels are opened only to 127.0.0.1 / localhost.
    """

    def __init__(self, require_auth: Optional[str] = None) -> None:
        self.require_auth = require_auth
        self.connects: List[Request] = []
        self.forwarded: List[Request] = []
        self.server = RawServer(self._handle)
        self.port = self.server.port

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def _authorized(self, req: Request) -> bool:
        return self.require_auth is None or req.headers.get("proxy-authorization") == self.require_auth

    def _handle(self, conn: socket.socket, server: RawServer) -> None:
        rfile = conn.makefile("rb")
        while True:
            req = read_request(rfile)
            if req is None:
                return
            if req.method == "CONNECT":
                self.connects.append(req)
                if not self._authorized(req):
                    conn.sendall(response_bytes(407, b"proxy auth required", {"Proxy-Authenticate": "Basic"}))
                    continue
                host, _, port = req.target.rpartition(":")
                if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
                    conn.sendall(response_bytes(403, b"loopback only"))
                    return
                try:
                    upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
                except OSError:
                    conn.sendall(response_bytes(502, b"cannot reach origin"))
                    return
                upstream.settimeout(None)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                # http.client waits for this answer before its TLS hello: nothing is buffered yet.
                self._pipe(conn, upstream)
                return
            self.forwarded.append(req)
            if not self._authorized(req):
                conn.sendall(response_bytes(407, b"proxy auth required", {"Proxy-Authenticate": "Basic"}))
                continue
            echo = {
                "id": "via-proxy",
                "method": req.method,
                "target": req.target,
                "headers": {k.lower(): v for k, v in req.header_list},
            }
            conn.sendall(response_bytes(200, echo))

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=copy, args=(b, a), daemon=True)
        t.start()
        copy(a, b)
        t.join(5)
        b.close()

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- TLS with a throwaway CA ---------------------------------------------------------------


class TLSFiles:
    """A trustme CA and server certificates; ``ca_path`` is the CA bundle as a PEM file."""

    def __init__(self, tmpdir: str) -> None:
        import trustme

        self.ca = trustme.CA()
        self.ca_path = os.path.join(tmpdir, "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)

    def server_context(self, *hostnames: str) -> ssl.SSLContext:
        cert = self.ca.issue_cert(*(hostnames or ("localhost", "127.0.0.1")))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


def https_server(ctx: ssl.SSLContext) -> Iterator[Any]:
    """A started pytest-httpserver speaking TLS with ``ctx`` on 127.0.0.1."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=ctx, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def http_server(threaded: bool = True) -> Iterator[Any]:
    """A started plain pytest-httpserver on 127.0.0.1."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=threaded)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def raw_uri(request: Any) -> str:
    """The request target exactly as sent (werkzeug keeps it in the WSGI environ)."""
    env = request.environ
    return str(env.get("REQUEST_URI") or env.get("RAW_URI"))


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()
