"""TLS verification with a throwaway CA (trustme), and HTTP(S) proxies from the environment.

Servers: pytest-httpserver with an ``ssl_context`` for HTTPS, and ``_servers.Proxy``, a
loopback forward proxy that tunnels CONNECT and records what it was asked.
"""

from __future__ import annotations

import base64
import logging
import ssl
from typing import Any, Dict, Iterator

import pytest
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

import visgate_sdk
from tests._servers import (
    Proxy,
    RawServer,
    RefusedPort,
    TLSFiles,
    http_server,
    https_server,
    keepalive_json_handler,
    response_bytes,
)
from visgate_sdk import ConnectionError, TLSError, ValidationError

KEY = "vg-tls-proxy-2b4d6f8a0c1e3a5c"
CLIENT_DEFAULTS = {"api_key": KEY, "max_retries": 0, "timeout": 5.0}  # for make_client(url, ...)


def echo(request: WRequest) -> WResponse:
    import json

    seen = {k.lower(): v for k, v in request.headers.items()}
    return WResponse(json.dumps({"status": "ok", "seen": seen, "path": request.full_path}), 200, content_type="application/json")


@pytest.fixture(scope="module")
def secure_server(tls: TLSFiles) -> Iterator[Any]:
    yield from https_server(tls.server_context("localhost", "127.0.0.1"))


@pytest.fixture
def secure(secure_server: Any) -> Any:
    secure_server.clear()
    secure_server.expect_request("/api/v1/health").respond_with_handler(echo)
    return secure_server


@pytest.fixture(scope="module")
def wrong_host_server(tls: TLSFiles) -> Iterator[Any]:
    yield from https_server(tls.server_context("api.some-other-host.example"))


@pytest.fixture(scope="module")
def plain_server() -> Iterator[Any]:
    yield from http_server()


@pytest.fixture
def plain(plain_server: Any) -> Any:
    plain_server.clear()
    plain_server.expect_request("/api/v1/health").respond_with_handler(echo)
    return plain_server


def secure_url(server: Any, host: str = "localhost") -> str:
    return "https://%s:%d/api/v1" % (host, server.port)


# -- TLS -----------------------------------------------------------------------------------


def test_verification_is_on_by_default(secure: Any, make_client: Any) -> None:
    client = make_client(secure_url(secure))
    with pytest.raises(TLSError) as info:
        client.health()
    assert isinstance(info.value, ConnectionError)
    assert "TLS" in str(info.value)
    assert len(secure.log) == 0, "no request may be sent to an unverified server"


def test_wrong_host_certificate_is_refused(wrong_host_server: Any, tls: TLSFiles, make_client: Any) -> None:
    wrong_host_server.expect_request("/api/v1/health").respond_with_handler(echo)
    with pytest.raises(TLSError) as info:
        make_client(secure_url(wrong_host_server), verify=tls.ca_path).health()
    assert "TLS" in str(info.value)
    assert len(wrong_host_server.log) == 0


def test_ca_bundle_path(secure: Any, tls: TLSFiles, make_client: Any) -> None:
    for host in ("localhost", "127.0.0.1"):
        assert make_client(secure_url(secure, host), verify=tls.ca_path).health()["status"] == "ok"


def test_ssl_context(secure: Any, tls: TLSFiles, make_client: Any) -> None:
    client = make_client(secure_url(secure), verify=tls.client_context())
    assert client.health()["seen"]["authorization"] == "Bearer " + KEY


def test_verify_false_still_talks_tls(secure: Any, make_client: Any) -> None:
    assert make_client(secure_url(secure), verify=False).health()["status"] == "ok"


def test_ssl_cert_file_is_honoured(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path)
    assert make_client(secure_url(secure)).health()["status"] == "ok"


def test_ssl_cert_file_is_read_at_construction(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path)
    client = make_client(secure_url(secure))
    monkeypatch.delenv("SSL_CERT_FILE")  # a long-lived client keeps what it was built with
    assert client.health()["status"] == "ok"


def test_missing_ca_bundle_is_a_typed_error(tmp_path: Any, secure: Any, make_client: Any) -> None:
    with pytest.raises(ValidationError):
        make_client(secure_url(secure), verify=str(tmp_path / "no-such-ca.pem")).health()


def test_tls_to_a_plain_http_port_is_typed(plain: Any, make_client: Any) -> None:
    with pytest.raises(ConnectionError):
        make_client("https://127.0.0.1:%d/api/v1" % plain.port).health()


def test_untrusted_cert_is_not_retried(secure: Any, make_client: Any) -> None:
    client = make_client(secure_url(secure), max_retries=visgate_sdk.Retry(total=3, backoff_factor=5))
    with pytest.raises(TLSError):
        client.health()  # a backoff of 5 s would make this slow if it were retried


# -- HTTPS through a CONNECT proxy ---------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as p:
        yield p


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def test_https_proxy_tunnels_with_connect(
    secure: Any, tls: TLSFiles, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = make_client(secure_url(secure), verify=tls.ca_path, fal_key="fal-user-key-123456")
    for _ in range(2):
        seen = client.health()["seen"]
        assert seen["authorization"] == "Bearer " + KEY and seen["x-fal-key"] == "fal-user-key-123456"
    # werkzeug closes every connection, so each call opens a tunnel of its own
    assert [c.target for c in proxy.connects] == ["localhost:%d" % secure.port] * 2
    for connect in proxy.connects:
        assert "authorization" not in connect.headers and "x-fal-key" not in connect.headers, "the proxy sees no API key"
    assert len(secure.log) == 2
    assert proxy.forwarded == []


def test_https_proxy_tunnel_is_kept_alive(tls: TLSFiles, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    answer = keepalive_json_handler(lambda req, server: response_bytes(200, {"status": "ok", "n": len(server.requests)}))
    with RawServer(answer, tls=tls.server_context()) as origin:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = make_client(origin.url(host="localhost"), verify=tls.ca_path)
        assert [client.health()["n"] for _ in range(3)] == [1, 2, 3]
        assert len(proxy.connects) == 1 and origin.connections == 1
        assert all(r.target == "/api/v1/health" for r in origin.requests), "origin-form inside the tunnel"


def test_lowercase_https_proxy_and_all_proxy(
    secure: Any, tls: TLSFiles, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    make_client(secure_url(secure), verify=tls.ca_path).health()
    monkeypatch.delenv("https_proxy")
    monkeypatch.setenv("ALL_PROXY", proxy.url.replace("http://", ""))  # no scheme: http:// is assumed
    make_client(secure_url(secure), verify=tls.ca_path).health()
    assert len(proxy.connects) == 2


def test_proxy_credentials_go_only_to_the_proxy(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    expected = basic("proxy user", "p@ss:word")
    with Proxy(require_auth=expected) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy%20user:p%40ss%3Aword@127.0.0.1:" + str(proxy.port))
        seen = make_client(secure_url(secure), verify=tls.ca_path).health()["seen"]
        assert proxy.connects[0].headers["proxy-authorization"] == expected
        assert "proxy-authorization" not in seen, "the origin never sees the proxy's credentials"
        assert seen["authorization"] == "Bearer " + KEY


def test_wrong_proxy_credentials_is_a_typed_error(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    with Proxy(require_auth=basic("u", "right")) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", "http://u:wrong-password-xyz@127.0.0.1:%d" % proxy.port)
        with pytest.raises(ConnectionError) as info:
            make_client(secure_url(secure), verify=tls.ca_path).health()
        assert "wrong-password-xyz" not in str(info.value) + repr(info.value)
        assert len(secure.log) == 0


def test_unreachable_proxy_is_a_connection_error(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    refused = RefusedPort()
    try:
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:%d" % refused.port)
        with pytest.raises(ConnectionError):
            make_client(secure_url(secure), verify=tls.ca_path).health()
    finally:
        refused.close()


def test_tls_is_still_verified_through_the_tunnel(secure: Any, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(TLSError):
        make_client(secure_url(secure)).health()


def test_trust_env_false_ignores_proxies(
    secure: Any, tls: TLSFiles, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    make_client(secure_url(secure), verify=tls.ca_path, trust_env=False).health()
    assert proxy.connects == []


# -- plain HTTP through a proxy ------------------------------------------------------------


def test_http_proxy_gets_absolute_form_and_its_credentials(plain: Any, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    auth = basic("pu", "ppw")
    with Proxy(require_auth=auth) as proxy:
        monkeypatch.setenv("HTTP_PROXY", "http://pu:ppw@127.0.0.1:%d" % proxy.port)
        answer = make_client("http://localhost:%d/api/v1" % plain.port).health()
        assert answer["id"] == "via-proxy"
        assert answer["target"] == "http://localhost:%d/api/v1/health" % plain.port
        assert answer["headers"]["proxy-authorization"] == auth
        assert answer["headers"]["host"] == "localhost:%d" % plain.port
        assert proxy.connects == []
        assert len(plain.log) == 0, "the proxy answered; the origin was not contacted directly"


def test_https_proxy_variable_does_not_apply_to_http(plain: Any, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert make_client("http://127.0.0.1:%d/api/v1" % plain.port).health()["status"] == "ok"
    assert proxy.forwarded == [] and proxy.connects == []


@pytest.mark.parametrize(
    "no_proxy, bypass",
    [
        ("localhost", True),
        ("LOCALHOST", True),
        (".localhost", True),
        ("*", True),
        ("example.com, localhost", True),
        ("localhost:{port}", True),
        ("localhost:1", False),
        ("example.com", False),
        ("calhost", False),
        ("", False),
    ],
)
def test_no_proxy(plain: Any, proxy: Proxy, monkeypatch: pytest.MonkeyPatch, no_proxy: str, bypass: bool, make_client: Any) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://pu:secret-proxy-pw@127.0.0.1:%d" % proxy.port)
    monkeypatch.setenv("NO_PROXY", no_proxy.format(port=plain.port))
    answer = make_client("http://localhost:%d/api/v1" % plain.port).health()
    if bypass:
        assert answer["status"] == "ok" and proxy.forwarded == []
        assert "proxy-authorization" not in answer["seen"], "proxy credentials never go to the origin"
    else:
        assert answer["id"] == "via-proxy" and len(plain.log) == 0


def _env(**kwargs: str) -> Dict[str, str]:
    return dict(kwargs)


@pytest.mark.parametrize(
    "host, port, no_proxy, proxied",
    [
        ("api.visgate.test", 443, ".visgate.test", False),
        ("api.visgate.test", 443, "visgate.test", False),  # curl: a domain covers its subdomains
        ("visgate.test", 443, ".visgate.test", False),
        ("evilvisgate.test", 443, "visgate.test", True),  # not a subdomain
        ("evilvisgate.test", 443, ".visgate.test", True),
        ("api.visgate.test", 443, "api.visgate.test:443", False),
        ("api.visgate.test", 8443, "api.visgate.test:443", True),
        ("api.visgate.test", 443, " other.test , API.VISGATE.TEST ", False),
        ("10.1.2.3", 443, "10.1.2.3", False),
        ("::1", 443, "::1", False),
        ("api.visgate.test", 443, "*", False),
        ("api.visgate.test", 443, "*.visgate.test", True),  # not a wildcard pattern (curl and requests agree)
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, proxied: bool) -> None:
    origin = visgate_sdk._Origin("https", host, port)
    got = visgate_sdk._proxy_for(origin, _env(HTTPS_PROXY="http://proxy.test:3128", NO_PROXY=no_proxy))
    assert (got is not None) is proxied


def test_lowercase_variables_win() -> None:
    origin = visgate_sdk._Origin("http", "api.test", 80)
    env = _env(http_proxy="http://lower.test:1", HTTP_PROXY="http://upper.test:2")
    assert visgate_sdk._proxy_for(origin, env) == "http://lower.test:1"


def test_unsupported_proxy_scheme_is_typed(secure: Any, tls: TLSFiles, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConnectionError):
        make_client(secure_url(secure), verify=tls.ca_path).health()


@pytest.mark.parametrize(
    "proxy_url", ["http://127.0.0.1:99999", "http://[::1", "http://:8080", "http://u:pw-zz-123@[bad", "socks5h://127.0.0.1:1"]
)
def test_malformed_proxy_url_is_a_typed_error(proxy_url: str, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    with pytest.raises(ConnectionError) as info:
        make_client("https://localhost:9/api/v1").health()
    assert "pw-zz-123" not in str(info.value)


def test_ssl_module_is_the_real_one() -> None:
    # Sanity for the fixtures: the CA-configured context verifies hostnames.
    ctx = ssl.create_default_context()
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED


# -- default ports, plain HTTP on an https URL, TLS peers that vanish, verify=False --------


@pytest.mark.parametrize(
    "proxy_url, origin",
    [
        ("http://proxy.test", ("http", "proxy.test", 80)),
        ("https://proxy.test", ("https", "proxy.test", 443)),
        ("http://u:p@proxy.test/", ("http", "proxy.test", 80)),
        ("http://proxy.test:3128", ("http", "proxy.test", 3128)),
    ],
)
def test_proxy_url_without_a_port_uses_the_scheme_default(proxy_url: str, origin: Any) -> None:
    got, _ = visgate_sdk._split_proxy(proxy_url)
    assert got == visgate_sdk._Origin(*origin)


def test_proxy_without_a_scheme_or_port_is_http_on_80() -> None:
    proxy = visgate_sdk._proxy_for(visgate_sdk._Origin("https", "api.test", 443), {"ALL_PROXY": "proxy.test"})
    assert proxy is not None
    assert visgate_sdk._split_proxy(proxy)[0] == visgate_sdk._Origin("http", "proxy.test", 80)


def test_connect_target_of_an_https_url_without_a_port_is_443(proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with pytest.raises(ConnectionError):  # nothing (trusted) listens on localhost:443
        make_client("https://localhost/api/v1").health()
    assert [c.target for c in proxy.connects] == ["localhost:443"]


def test_http_url_without_a_port_through_a_proxy(proxy: Proxy, monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    answer = make_client("http://localhost/api/v1").health()
    assert answer["target"] == "http://localhost/api/v1/health"  # port 80 is implied, not written
    assert answer["headers"]["host"] == "localhost"
    assert proxy.connects == []


def test_https_url_at_a_plain_http_server_is_a_tls_error(plain: Any, make_client: Any) -> None:
    with pytest.raises(TLSError) as info:
        make_client("https://127.0.0.1:%d/api/v1" % plain.port).health()
    assert "TLS" in str(info.value)
    assert len(plain.log) <= 1  # at most the garbled hello, never a request of ours


def _vanish_after_the_request(conn: Any, server: RawServer) -> None:
    if server.read(conn) is not None:
        conn.close()  # SSLSocket.close() sends no close_notify: the client sees an unclean EOF


def _vanish_during_the_handshake(conn: Any, server: RawServer) -> None:
    conn.recv(65536)  # the ClientHello; then a plain TCP close (SSLEOFError for the client)
    conn.close()


@pytest.mark.parametrize("when", ["after the request", "during the handshake"])
def test_tls_peer_closing_a_fresh_connection_without_close_notify_is_retried(tls: TLSFiles, make_client: Any, when: str) -> None:
    if when == "after the request":
        vanish, context = _vanish_after_the_request, tls.server_context()
    else:
        vanish, context = _vanish_during_the_handshake, None  # the raw socket: TLS never completes

    with RawServer(vanish, tls=context) as origin:
        client = make_client(
            origin.url(scheme="https", host="localhost"), verify=tls.ca_path, max_retries=visgate_sdk.Retry(total=1, backoff_factor=0.001)
        )
        with pytest.raises(ConnectionError) as info:
            client.health()
        assert not isinstance(info.value, TLSError), "an unclean close is a network failure, not a certificate problem"
        assert "2 attempts" in str(info.value)
        assert origin.connections == 2
        assert len(origin.requests) == (2 if when == "after the request" else 0)


def test_verify_false_logs_a_warning(secure: Any, make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="visgate_sdk")
    assert make_client(secure_url(secure), verify=False).health()["status"] == "ok"
    warnings = [r for r in caplog.records if r.name == "visgate_sdk" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "verification is disabled" in warnings[0].getMessage()


def test_verify_true_logs_no_warning(secure: Any, tls: TLSFiles, make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="visgate_sdk")
    make_client(secure_url(secure), verify=tls.ca_path).health()
    assert [r for r in caplog.records if r.name == "visgate_sdk"] == []
