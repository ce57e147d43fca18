"""Shared fixtures, the one set every test file uses.

- ``_clean_env`` (autouse): no test sees the developer's key, base URL, log level, proxies or CA.
- ``make_client`` / ``make_async_client``: clients aimed at a loopback server, closed after the test.
  Defaults: ``TEST_API_KEY``, fast retries, ``httpserver`` under ``/api/v1``; a test module
  may set ``CLIENT_DEFAULTS = {...}`` (e.g. its own key, ``max_retries=0``, ``timeout=5.0``).
- ``client``: ``make_client()``; ``tserver``: a multi-threaded pytest-httpserver.
- ``point_env`` / ``env_server`` / ``env_emulator``: ``VISGATE_BASE_URL`` and ``VISGATE_API_KEY`` aimed at a server.
- ``emulator``: the local visgate emulator (module-scoped).
- ``tls``: a throwaway CA (trustme) with server certificates (session-scoped).
- ``fake_time``: the SDK's sleeps only recorded.

The repository root is importable through pytest's ``pythonpath = ["."]``; ``tests`` is a
package, so helpers are imported as ``from tests._servers import ...``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import pytest
from pytest_httpserver import HTTPServer

import visgate_sdk
from tests._servers import TLSFiles
from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import AsyncClient, Client, Retry

TEST_API_KEY = "vg-test-key-0123456789"
API_PREFIX = "/api/v1"

# The public exception classes, from ``__all__`` only (no second list to keep in sync).
EXCEPTION_NAMES = [
    name
    for name in visgate_sdk.__all__
    if isinstance(getattr(visgate_sdk, name), type) and issubclass(getattr(visgate_sdk, name), visgate_sdk.VisgateError)
]
EXCEPTIONS = [getattr(visgate_sdk, name) for name in EXCEPTION_NAMES]

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


Target = Union[None, str, HTTPServer]


def base_url(target: Union[str, HTTPServer]) -> str:
    """A server's API base URL (``/api/v1`` on a pytest-httpserver); a string is already one."""
    return target if isinstance(target, str) else target.url_for(API_PREFIX)


class ClientFactory:
    """``factory(target=None, **kwargs)``: a client of ``cls`` aimed at ``target``; all closed by ``close_all()``.

    ``target`` is a pytest-httpserver (its ``/api/v1``), a base URL string, or None for the
    test's ``httpserver``.
    """

    def __init__(self, cls: Any, request: pytest.FixtureRequest) -> None:
        self.cls = cls
        self.request = request
        self.defaults: Dict[str, Any] = {"api_key": TEST_API_KEY, "max_retries": fast_retry()}
        self.defaults.update(getattr(request.module, "CLIENT_DEFAULTS", {}))
        self.made: List[Any] = []

    def __call__(self, target: Target = None, **kwargs: Any) -> Any:
        for name, value in self.defaults.items():
            kwargs.setdefault(name, value)
        if "base_url" not in kwargs:
            kwargs["base_url"] = base_url(target if target is not None else self.request.getfixturevalue("httpserver"))
        client = self.cls(**kwargs)
        self.made.append(client)
        return client

    def close_all(self) -> None:
        for client in self.made:
            if isinstance(client, AsyncClient):
                asyncio.run(client.close())
            else:
                client.close()


@pytest.fixture
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """``make_client(target=None, **kwargs)``: a ``Client``, closed after the test (see the module docstring)."""
    factory = ClientFactory(Client, request)
    yield factory
    factory.close_all()


@pytest.fixture
def make_async_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., AsyncClient]]:
    """``make_async_client(target=None, **kwargs)``: an ``AsyncClient``, closed after the test."""
    factory = ClientFactory(AsyncClient, request)
    yield factory
    factory.close_all()


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


# -- the environment a user sets -------------------------------------------------------


@pytest.fixture
def point_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``point_env(target, api_key=TEST_API_KEY)``: set ``VISGATE_BASE_URL`` (and the key; None unsets it)."""

    def point(target: Union[str, HTTPServer], api_key: Optional[str] = TEST_API_KEY) -> None:
        monkeypatch.setenv("VISGATE_BASE_URL", base_url(target))
        if api_key is None:
            monkeypatch.delenv("VISGATE_API_KEY", raising=False)
        else:
            monkeypatch.setenv("VISGATE_API_KEY", api_key)

    return point


@pytest.fixture
def env_server(httpserver: HTTPServer, point_env: Any) -> HTTPServer:
    """``httpserver``, with ``VISGATE_API_KEY=TEST_API_KEY`` and ``VISGATE_BASE_URL`` aimed at it."""
    point_env(httpserver)
    return httpserver


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The local visgate emulator on a free loopback port."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def env_emulator(emulator: Emulator, point_env: Any) -> Emulator:
    """``emulator``, with ``VISGATE_API_KEY`` (its demo key) and ``VISGATE_BASE_URL`` aimed at it."""
    point_env(emulator.base_url, DEMO_API_KEY)
    return emulator


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA: ``tls.ca_path`` (PEM bundle), ``tls.server_context(*hosts)``, ``tls.client_context()``."""
    return TLSFiles(str(tmp_path_factory.mktemp("tls")))


# -- time ---------------------------------------------------------------------------------


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
