"""Loopback HTTP/1.1 keep-alive server for the benchmarks (standard library only).

One thread per connection with blocking sockets: for a single keep-alive
connection this is the cheapest round trip CPython offers (TLS records are
handled in C by the ssl module), so the server stays far below the clients'
per-call cost. It serves canned JSON for ``/api/v1/health`` and
``/api/v1/models/<id>``, a generation answer for ``POST /api/v1/generate``
(echoing the request's ``prompt`` and ``model``, so a batch can check its
results come back in input order), and its own CPU time and request count at
``/_bench/stats``. A path prefix ``/slow<ms>`` (for example the base URL
``http://127.0.0.1:PORT/slow500/api/v1``) delays that response by ``<ms>``
milliseconds without blocking other connections.

Usage: ``python server.py [--cert server.pem]``. It prints one JSON line
``{"http": port, "https": port}`` once listening, and exits when its standard
input closes (the parent died or finished) or after ``--max-seconds``.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

HEALTH = {"status": "ok", "version": "bench", "database": "ok", "cache": "ok"}
MAX_CONNECTIONS = 1024
_connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
_cache: dict = {}
_served = [0]  # requests answered so far
_served_lock = threading.Lock()


def _response(status: str, payload: dict, close: bool = False) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    close_header = "Connection: close\r\n" if close else ""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{close_header}\r\n"
    return head.encode("latin-1") + body


def _model(model_id: str) -> dict:
    return {
        "id": model_id,
        "name": model_id.rsplit("/", 1)[-1],
        "provider": model_id.split("/", 1)[0],
        "media_type": "image",
        "description": "canned benchmark model",
        "tags": ["fast", "text-to-image"],
        "base_cost_micro": 3000,
        "run_count": 123456,
    }


def _generated(body: bytes, delay: float) -> dict:
    """A ``POST /generate`` answer that echoes the request's prompt and model."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    prompt = request.get("prompt") if isinstance(request, dict) else None
    model = request.get("model") if isinstance(request, dict) else None
    with _served_lock:
        number = _served[0]
    image = f"https://cdn.example.invalid/bench/{number}.png"
    return {
        "id": f"gen_bench_{number}",
        "image_url": image,
        "images": [image],
        "model": model if isinstance(model, str) else "fal-ai/flux/schnell",
        "provider": "fal",
        "mode": "managed",
        "estimated_cost_usd": 0.003,
        "cost_per_megapixel_usd": 0.003,
        "latency_ms": int(delay * 1000),
        "resolution": {"width": 1024, "height": 1024},
        "created_at": "2026-01-01T00:00:00Z",
        "prompt": prompt,
    }


def route(path: str, method: str = "GET", body: bytes = b"") -> tuple:
    """Return ``(delay_seconds, response_bytes)`` for a request."""
    cached = _cache.get(path) if method == "GET" else None
    if cached is not None:
        return cached
    delay = 0.0
    rest = path.split("?", 1)[0]
    if rest.startswith("/slow"):
        digits, _, tail = rest[5:].partition("/")
        if digits.isdigit():
            delay, rest = int(digits) / 1000.0, "/" + tail
    if method == "POST" and rest == "/api/v1/generate":  # not cached: the answer echoes the body
        return delay, _response("200 OK", _generated(body, delay))
    if rest == "/_bench/stats":  # server CPU seconds and requests served so far
        return 0.0, _response("200 OK", {"cpu": time.process_time(), "requests": _served[0]})
    if rest == "/api/v1/health":
        result = (delay, _response("200 OK", HEALTH))
    elif rest.startswith("/api/v1/models/") and len(rest) > 15:
        result = (delay, _response("200 OK", _model(rest[15:])))
    else:
        result = (delay, _response("404 Not Found", {"error": "NOT_FOUND", "message": rest}))
    if len(_cache) < 4096:
        _cache[path] = result
    return result


def serve_connection(sock: socket.socket, tls: ssl.SSLContext | None) -> None:
    """Answer requests on one connection until the peer closes it."""
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_side=True)
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                continue
            head = buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, target = lines[0].split(" ")[:2]
            length, close = 0, lines[0].endswith("HTTP/1.0")
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
            while len(buf) < end + 4 + length:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[end + 4:end + 4 + length], buf[end + 4 + length:]
            delay, data = route(target, method, body)
            with _served_lock:
                _served[0] += 1
            if delay:
                time.sleep(delay)
            sock.sendall(data)
            if close:
                return
    except (OSError, ValueError, IndexError):
        pass  # reset, TLS failure or garbage: drop the connection
    finally:
        sock.close()
        _connections.release()


def accept_loop(listener: socket.socket, tls: ssl.SSLContext | None) -> None:
    while True:
        _connections.acquire()
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_connection, args=(conn, tls), daemon=True).start()


def listen(host: str) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(1024)
    return listener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cert", help="PEM file with the server key and certificate chain")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()

    ports = {}
    for scheme in ("http", "https"):
        if scheme == "https" and not args.cert:
            continue
        tls = None
        if scheme == "https":
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(args.cert)
        listener = listen(args.host)
        ports[scheme] = listener.getsockname()[1]
        threading.Thread(target=accept_loop, args=(listener, tls), daemon=True).start()
    threading.Timer(args.max_seconds, os._exit, (0,)).start()
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    os._exit(0)


if __name__ == "__main__":
    main()
