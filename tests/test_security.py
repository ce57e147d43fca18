"""Credentials stay home: redirects, error messages, reprs, tracebacks and logs.

The API key and the BYOK provider keys (fal, replicate, runway) must reach only the API's own
origin, and never appear in anything a user might print, log or paste into an issue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import traceback
from typing import Any, Iterator, List

import pytest
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

import visgate_sdk
from tests._servers import RawServer, RefusedPort, TLSFiles, http_server, https_server
from visgate_sdk import (
    AsyncClient,
    AuthenticationError,
    ConnectionError,
    InvalidResponseError,
    ProviderError,
    Retry,
    ServerError,
    TimeoutError,
    TLSError,
    ValidationError,
    VisgateError,
)

API_KEY = "vg-live-5f0c1e9a7b3d4c2e8a6f1b0d9c7e5a3b"
FAL_KEY = "fal-8d2b6e4f0a1c3e5d7b9f2a4c6e8d0b1f"
REPLICATE_KEY = "r8_3c5e7a9b1d2f4a6c8e0b2d4f6a8c0e2"
RUNWAY_KEY = "rw-key-9e7c5a3f1d0b2e4c6a8f0d2b4e6c8a0"
SECRETS = (API_KEY, FAL_KEY, REPLICATE_KEY, RUNWAY_KEY)
SECRET_HEADERS = ("authorization", "x-fal-key", "x-replicate-key", "x-runway-key")


def leaks(text: str) -> List[str]:
    """Every secret of which a 12-character piece appears in ``text``."""
    found = []
    for secret in SECRETS:
        if any(secret[i : i + 12] in text for i in range(len(secret) - 11)):
            found.append(secret)
    return found


def everything_printable(err: BaseException) -> str:
    """All the ways an error gets shown: str, repr, args, traceback, pickle round trip."""
    parts = [str(err), repr(err), repr(err.args), "".join(traceback.format_exception(type(err), err, err.__traceback__))]
    if isinstance(err, VisgateError):
        parts += [err.message, err.error_code, repr(err.details), repr(pickle.loads(pickle.dumps(err)).__dict__)]
    return "\n".join(parts)


# for make_client(url, ...): every key set, no retries
CLIENT_DEFAULTS = {
    "api_key": API_KEY,
    "fal_key": FAL_KEY,
    "replicate_key": REPLICATE_KEY,
    "runway_key": RUNWAY_KEY,
    "max_retries": 0,
    "timeout": 5.0,
}


@pytest.fixture(scope="module")
def server_a() -> Iterator[Any]:
    yield from http_server()


@pytest.fixture(scope="module")
def server_b() -> Iterator[Any]:
    yield from http_server()


@pytest.fixture
def a(server_a: Any) -> Any:
    server_a.clear()
    return server_a


@pytest.fixture
def b(server_b: Any) -> Any:
    server_b.clear()
    return server_b


def echo_headers(request: WRequest) -> WResponse:
    import json

    body = {"total_requests": 1, "seen": {k.lower(): v for k, v in request.headers.items()}, "method": request.method}
    body["body"] = request.get_data(as_text=True)
    return WResponse(json.dumps(body), 200, content_type="application/json")


# -- redirects -----------------------------------------------------------------------------


def test_same_origin_redirect_keeps_credentials(a: Any, make_client: Any) -> None:
    a.expect_request("/api/v1/usage").respond_with_data("", 307, headers={"Location": "/api/v1/usage-moved?period=month"})
    a.expect_request("/api/v1/usage-moved").respond_with_handler(echo_headers)
    result = make_client(a.url_for("/api/v1")).usage.get()
    seen = result.raw["seen"]
    assert seen["authorization"] == "Bearer " + API_KEY
    assert (seen["x-fal-key"], seen["x-replicate-key"], seen["x-runway-key"]) == (FAL_KEY, REPLICATE_KEY, RUNWAY_KEY)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_cross_port_redirect_strips_credentials(a: Any, b: Any, status: int, make_client: Any) -> None:
    a.expect_request("/api/v1/usage").respond_with_data("", status, headers={"Location": b.url_for("/elsewhere")})
    b.expect_request("/elsewhere").respond_with_handler(echo_headers)
    client = make_client(a.url_for("/api/v1"), default_headers={"X-Org-Key": "org-secret-value-1234567890"})
    seen = client.usage.get().raw["seen"]
    for name in (*SECRET_HEADERS, "x-org-key"):
        assert name not in seen, name
    assert seen["user-agent"].startswith("visgate-sdk-python/")


def test_cross_host_same_port_redirect_strips_credentials(a: Any, make_client: Any) -> None:
    # 127.0.0.1 and localhost are the same socket but not the same origin.
    a.expect_request("/api/v1/usage").respond_with_data(
        "", 302, headers={"Location": "http://localhost:%d/other" % a.port}
    )
    a.expect_request("/other").respond_with_handler(echo_headers)
    seen = make_client(a.url_for("/api/v1")).usage.get().raw["seen"]
    for name in SECRET_HEADERS:
        assert name not in seen


def test_cross_origin_307_post_keeps_body_and_key_but_not_credentials(a: Any, b: Any, make_client: Any) -> None:
    a.expect_request("/api/v1/providers/validate", method="POST").respond_with_data(
        "", 307, headers={"Location": b.url_for("/validate")}
    )
    b.expect_request("/validate", method="POST").respond_with_handler(echo_headers)
    result = make_client(a.url_for("/api/v1")).providers.validate_key("fal", "user-provided")
    raw = result.raw
    assert raw["method"] == "POST"
    assert '"provider":"fal"' in raw["body"]
    assert raw["seen"]["idempotency-key"].startswith("vg-sdk-")
    for name in SECRET_HEADERS:
        assert name not in raw["seen"]
    assert len(b.log) == 1 and len(a.log) == 1


def test_redirect_after_post_becomes_get_without_body_or_idempotency_key(a: Any, make_client: Any) -> None:
    a.expect_request("/api/v1/generate", method="POST").respond_with_data("", 303, headers={"Location": "/api/v1/result"})
    a.expect_request("/api/v1/result", method="GET").respond_with_handler(echo_headers)
    result = make_client(a.url_for("/api/v1")).generate("a cat")
    seen = result.raw["seen"]
    assert result.raw["method"] == "GET" and result.raw["body"] == ""
    assert "idempotency-key" not in seen and "content-type" not in seen
    assert seen["authorization"] == "Bearer " + API_KEY  # same origin


def test_credentials_do_not_come_back_after_leaving_the_origin(a: Any, b: Any, make_client: Any) -> None:
    a.expect_request("/api/v1/usage").respond_with_data("", 302, headers={"Location": b.url_for("/bounce")})
    b.expect_request("/bounce").respond_with_data("", 302, headers={"Location": a.url_for("/api/v1/final")})
    a.expect_request("/api/v1/final").respond_with_handler(echo_headers)
    seen = make_client(a.url_for("/api/v1")).usage.get().raw["seen"]
    for name in SECRET_HEADERS:
        assert name not in seen, "a hop through another origin may have rewritten the way back"


@pytest.mark.parametrize(
    "old, new, strip",
    [
        (("https", "api.x", 443), ("https", "api.x", 443), False),
        (("https", "api.x", 443), ("https", "api.x", 8443), True),
        (("https", "api.x", 443), ("https", "evil.x", 443), True),
        (("https", "api.x", 443), ("https", "API.X.evil", 443), True),
        (("http", "api.x", 80), ("https", "api.x", 443), False),  # the upgrade requests allows
        (("http", "api.x", 8080), ("https", "api.x", 443), True),
        (("https", "api.x", 443), ("http", "api.x", 80), True),
    ],
)
def test_should_strip_auth_rule(old: Any, new: Any, strip: bool) -> None:
    assert visgate_sdk._should_strip_auth(visgate_sdk._Origin(*old), visgate_sdk._Origin(*new)) is strip


def test_https_to_http_redirect_is_refused(tls: TLSFiles, b: Any, make_client: Any) -> None:
    b.expect_request("/plain").respond_with_handler(echo_headers)
    for secure in https_server(tls.server_context()):
        secure.expect_request("/api/v1/usage").respond_with_data("", 302, headers={"Location": b.url_for("/plain")})
        client = make_client("https://localhost:%d/api/v1" % secure.port, verify=tls.ca_path)
        with pytest.raises(TLSError) as info:
            client.usage.get()
        assert info.value.error_code == "INSECURE_REDIRECT"
        assert len(b.log) == 0, "nothing may be sent over plain http"
        assert not leaks(everything_printable(info.value))
        client.close()


def test_download_sends_no_credentials(a: Any, tmp_path: Any, make_client: Any) -> None:
    a.expect_request("/media/x.png").respond_with_handler(
        lambda r: WResponse(repr(dict(r.headers)).encode(), 200, content_type="image/png")
    )
    out = make_client(a.url_for("/api/v1")).download(a.url_for("/media/x.png"), str(tmp_path / "x.png"))
    with open(out, "rb") as handle:
        text = handle.read().decode()
    assert not leaks(text)
    assert "Authorization" not in text


# -- what errors say -----------------------------------------------------------------------


def _echo_error(status: int, content_type: str, body: str) -> Any:
    def handler(request: WRequest) -> WResponse:
        return WResponse(body, status, content_type=content_type)

    return handler


ECHO_CASES = [
    ("json-message", 401, "application/json", '{"error": "INVALID_KEY", "message": "key %s is not valid (Bearer %s)"}'),
    ("json-details", 422, "application/json", '{"error": "BAD", "message": "bad", "details": {"field": "x", "got": "%s", "n": ["%s"]}}'),
    ("json-code", 400, "application/json", '{"error": "KEY_%s", "message": "%s"}'),
    ("provider", 502, "application/json", '{"error": "PROVIDER_ERROR", "message": "fal said %s", "details": {"provider": "%s"}}'),
    ("fastapi", 422, "application/json", '{"detail": [{"loc": ["body", "%s"], "msg": "bad key %s"}]}'),
    ("html-500", 500, "text/html", "<h1>oops</h1><pre>Authorization: Bearer %s X-Fal-Key: %s</pre>"),
    ("html-200", 200, "text/html", "<html>debug page: Bearer %s and %s</html>"),
    ("straddle-500", 500, "text/plain", "e" * 185 + "%s%s"),
    ("straddle-200", 200, "text/plain", "e" * 105 + "%s%s"),
]
ECHO_ERRORS = {
    "json-message": AuthenticationError,
    "json-details": ValidationError,
    "json-code": ValidationError,
    "provider": ProviderError,
    "fastapi": ValidationError,
    "html-500": ServerError,
    "html-200": InvalidResponseError,
    "straddle-500": ServerError,
    "straddle-200": InvalidResponseError,
}


@pytest.mark.parametrize("name, status, content_type, template", ECHO_CASES, ids=[c[0] for c in ECHO_CASES])
@pytest.mark.parametrize("which", [API_KEY, FAL_KEY, RUNWAY_KEY])
def test_server_echoing_a_key_gets_it_redacted(
    a: Any, name: str, status: int, content_type: str, template: str, which: str, make_client: Any
) -> None:
    a.expect_request("/api/v1/usage").respond_with_handler(_echo_error(status, content_type, template % (which, which)))
    with pytest.raises(ECHO_ERRORS[name]) as info:
        make_client(a.url_for("/api/v1")).usage.get()
    text = everything_printable(info.value)
    assert not leaks(text), text
    assert "***" in str(info.value) or name.startswith(("json-details", "json-code", "fastapi")) or "straddle" in name


def test_provider_error_keeps_its_meaning_after_redaction(a: Any, make_client: Any) -> None:
    body = '{"error": "PROVIDER_ERROR", "message": "fal rejected key %s", "details": {"provider": "fal"}}' % FAL_KEY
    a.expect_request("/api/v1/usage").respond_with_data(body, 502, content_type="application/json")
    with pytest.raises(ProviderError) as info:
        make_client(a.url_for("/api/v1")).usage.get()
    assert info.value.provider == "fal"
    assert str(info.value) == "[PROVIDER_ERROR] fal rejected key ***"


def test_network_errors_say_nothing_secret(make_client: Any) -> None:
    refused = RefusedPort()
    try:
        with pytest.raises(ConnectionError) as info:
            make_client("http://127.0.0.1:%d/api/v1" % refused.port).usage.get()
        assert not leaks(everything_printable(info.value))
    finally:
        refused.close()

    def silent(conn: socket.socket, server: RawServer) -> None:
        server.read(conn)
        server.stopped.wait(10)

    with RawServer(silent) as raw:
        with pytest.raises(TimeoutError) as tinfo:
            make_client(raw.url(), timeout=0.2).generate("x")
        assert not leaks(everything_printable(tinfo.value))


def test_tls_errors_say_nothing_secret(tls: TLSFiles, make_client: Any) -> None:
    for secure in https_server(tls.server_context()):
        with pytest.raises(TLSError) as info:
            make_client("https://localhost:%d/api/v1" % secure.port).usage.get()
        assert not leaks(everything_printable(info.value))


@pytest.mark.parametrize("bad", [API_KEY + "\r\nX-Evil: 1", API_KEY[:10] + "\n" + API_KEY[10:], API_KEY + "\x00"])
def test_validation_errors_never_echo_the_bad_value(bad: str, make_client: Any) -> None:
    for kwargs in ({"api_key": bad}, {"fal_key": bad}, {"replicate_key": bad}, {"runway_key": bad}, {"default_headers": {"X-K": bad}}):
        with pytest.raises(ValidationError) as info:
            make_client("http://127.0.0.1:9/api/v1", **kwargs)
        assert not leaks(everything_printable(info.value)), kwargs


def test_reprs_show_no_keys(make_client: Any) -> None:
    client = make_client("http://127.0.0.1:9/api/v1")
    texts = [repr(client), str(client), repr(client.__dict__.get("_retry")), repr(client.models), repr(vars(client.images))]
    aclient = AsyncClient(api_key=API_KEY, fal_key=FAL_KEY, base_url="http://127.0.0.1:9/api/v1")
    texts += [repr(aclient), str(aclient)]
    assert not leaks("\n".join(texts))
    client.close()
    asyncio.run(aclient.close())


def test_errors_from_every_path_pass_the_leak_check(a: Any, make_client: Any) -> None:
    errors: List[BaseException] = []
    for status in (400, 401, 403, 404, 409, 422, 429, 500, 502, 503):
        a.clear()
        a.expect_request("/api/v1/usage").respond_with_data(
            '{"error": "E", "message": "m %s %s"}' % (API_KEY, FAL_KEY), status, content_type="application/json"
        )
        try:
            make_client(a.url_for("/api/v1")).usage.get()
        except VisgateError as exc:
            errors.append(exc)
    assert len(errors) == 10
    for err in errors:
        assert not leaks(everything_printable(err)), err


# -- logs ----------------------------------------------------------------------------------


def test_debug_logging_shows_no_keys(a: Any, caplog: pytest.LogCaptureFixture, make_client: Any) -> None:
    calls = {"n": 0}

    def flaky(request: WRequest) -> WResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            return WResponse("busy " + API_KEY, 503)
        return echo_headers(request)

    a.expect_request("/api/v1/usage").respond_with_handler(flaky)
    a.expect_request("/api/v1/auth/me").respond_with_data('{"message": "bad %s"}' % API_KEY, 401, content_type="application/json")
    caplog.set_level(logging.DEBUG, logger="visgate_sdk")
    client = make_client(a.url_for("/api/v1"), max_retries=Retry(total=2, backoff_factor=0.001))
    client.usage.get()
    with pytest.raises(AuthenticationError):
        client.auth.me()
    client.close()
    records = [r for r in caplog.records if r.name == "visgate_sdk"]
    assert records, "the SDK logs at DEBUG"
    assert any("retry" in r.getMessage() for r in records)
    assert not leaks(caplog.text)
    assert not leaks("\n".join(r.getMessage() for r in records))


SUBPROCESS_SCRIPT = textwrap.dedent(
    """
    import visgate_sdk
    from visgate_sdk import Client, Retry, VisgateError
    client = Client(max_retries=Retry(total=1, backoff_factor=0.001), fal_key=%(fal)r, runway_key=%(runway)r)
    print(client.usage.get().total_requests)
    for call in (client.auth.me, lambda: Client(base_url="http://127.0.0.1:%(refused)d/v1", max_retries=0).models.list()):
        try:
            call()
        except VisgateError as exc:
            print(type(exc).__name__, exc)
    print(repr(client))
    """
)


def test_visgate_log_debug_in_a_subprocess_shows_no_keys(a: Any) -> None:
    calls = {"n": 0}

    def flaky(request: WRequest) -> WResponse:
        calls["n"] += 1
        return WResponse("busy", 503) if calls["n"] == 1 else echo_headers(request)

    a.expect_request("/api/v1/usage").respond_with_handler(flaky)
    a.expect_request("/api/v1/auth/me").respond_with_data(
        '{"error": "INVALID_KEY", "message": "key %s rejected"}' % API_KEY, 401, content_type="application/json"
    )
    refused = RefusedPort()
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(VISGATE_LOG="debug", VISGATE_API_KEY=API_KEY, VISGATE_BASE_URL=a.url_for("/api/v1"))
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = SUBPROCESS_SCRIPT % {
        "fal": FAL_KEY,
        "runway": RUNWAY_KEY,
        "refused": refused.port,
    }
    try:
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    finally:
        refused.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "1"
    assert "AuthenticationError" in proc.stdout and "ConnectionError" in proc.stdout
    assert "visgate_sdk" in proc.stderr and "DEBUG" in proc.stderr, "VISGATE_LOG=debug turns logging on"
    assert "retry" in proc.stderr
    assert not leaks(proc.stdout + proc.stderr), proc.stdout + proc.stderr


# -- proxy credentials ---------------------------------------------------------------------


def test_proxy_password_never_in_errors(monkeypatch: pytest.MonkeyPatch, make_client: Any) -> None:
    refused = RefusedPort()
    try:
        monkeypatch.setenv("HTTPS_PROXY", "http://proxyuser:prx-PASSWORD-0a1b2c3d4e5f@127.0.0.1:%d" % refused.port)
        client = make_client("https://localhost:9/api/v1")
        with pytest.raises(ConnectionError) as info:
            client.usage.get()
        assert "prx-PASSWORD-0a1b2c3d4e5f" not in everything_printable(info.value)
        assert not leaks(everything_printable(info.value))
    finally:
        refused.close()

