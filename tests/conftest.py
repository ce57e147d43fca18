"""Shared fixtures: the repo root on sys.path, a clean environment, clients wired to a
real loopback HTTP server (pytest-httpserver), and a clock whose ``sleep`` only records."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterator, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402

import visgate_sdk  # noqa: E402
from visgate_sdk import Client, Retry  # noqa: E402

TEST_API_KEY = "vg-test-key-0123456789"
API_PREFIX = "/api/v1"

# Every variable that could steer a client under test somewhere else (and any VISGATE_*).
_ENV_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's key, base URL, log level, proxies or CA settings."""
    for name in list(os.environ):
        if name in _ENV_VARS or name.startswith("VISGATE_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> Any:
    # IPv4 loopback: "localhost" may resolve to ::1 first on some machines.
    return ("127.0.0.1", 0)


def fast_retry(total: int = 2) -> Retry:
    """Retries that do not really sleep (backoff of a millisecond)."""
    return Retry(total=total, backoff_factor=0.001)


@pytest.fixture
def make_client(httpserver: HTTPServer) -> Iterator[Any]:
    """``make_client(**kwargs)``: a Client aimed at ``httpserver`` with fast retries; closed after the test."""
    made: List[Client] = []

    def make(server: HTTPServer = httpserver, **kwargs: Any) -> Client:
        kwargs.setdefault("api_key", TEST_API_KEY)
        kwargs.setdefault("base_url", server.url_for(API_PREFIX))
        kwargs.setdefault("max_retries", fast_retry())
        client = Client(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Any) -> Client:
    """A Client with ``TEST_API_KEY``, aimed at ``httpserver`` under ``/api/v1``, fast retries."""
    return make_client()


@pytest.fixture(scope="session")
def _threaded_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def tserver(_threaded_server: HTTPServer) -> HTTPServer:
    """A multi-threaded pytest-httpserver: for slow handlers and concurrent requests."""
    _threaded_server.clear()
    return _threaded_server


class FakeTime:
    """Stands in for ``visgate_sdk._time``: real clocks, but ``sleep`` only records."""

    def __init__(self) -> None:
        self.sleeps: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """Make the SDK's sleeps (polling and retry backoff) instant and recorded in ``fake_time.sleeps``."""
    fake = FakeTime()
    monkeypatch.setattr(visgate_sdk, "_time", fake)
    monkeypatch.setattr(visgate_sdk._Transport, "pause", lambda self, seconds: fake.sleep(seconds))
    return fake
