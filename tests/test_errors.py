"""Errors: HTTP status to exception class, attributes and str(), pickling, reference-client
constructors, retries (which statuses, how many, Retry-After), and answers that are not
what the API promises (HTML, empty, not JSON, wrong shape)."""

from __future__ import annotations

import builtins
import email.utils
import json
import logging
import pickle
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Type

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import visgate_sdk
from tests.conftest import EXCEPTIONS, fast_retry
from visgate_sdk import (
    AuthenticationError,
    Client,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    Retry,
    ServerError,
    ValidationError,
    VisgateError,
)

P = "/api/v1"

ALL_ERRORS = EXCEPTIONS
CLIENT_DEFAULTS = {"api_key": "vg-test-key", "max_retries": fast_retry(0)}  # for make_client


def sent(server: HTTPServer) -> List[Request]:
    return [req for req, _ in server.log]


def answer_json(server: HTTPServer, path: str, status: int, payload: Any, headers: Optional[Dict[str, str]] = None,
                method: str = "GET") -> None:
    server.expect_request(P + path, method=method).respond_with_json(payload, status=status, headers=headers)


# -- status -> class ---------------------------------------------------------------

STATUS_CASES = [
    # status, body, headers, class, error_code, message
    (400, {"error": "BAD_REQUEST", "message": "prompt is required"}, None, ValidationError, "BAD_REQUEST", "prompt is required"),
    (401, {"error": "AUTHENTICATION_ERROR", "message": "Invalid API key"}, None, AuthenticationError, "AUTHENTICATION_ERROR", "Invalid API key"),
    (403, {"error": "FORBIDDEN", "message": "admin only"}, None, PermissionDeniedError, "FORBIDDEN", "admin only"),
    (404, {"error": "MODEL_NOT_FOUND", "message": "Model x/y not found"}, None, NotFoundError, "MODEL_NOT_FOUND", "Model x/y not found"),
    (408, {"error": "REQUEST_TIMEOUT", "message": "too slow"}, None, visgate_sdk.TimeoutError, "REQUEST_TIMEOUT", "too slow"),
    (409, {"error": "IDEMPOTENCY_CONFLICT", "message": "key reused"}, None, ConflictError, "IDEMPOTENCY_CONFLICT", "key reused"),
    (422, {"error": "VALIDATION_ERROR", "message": "width too large", "details": {"field": "width"}}, None, ValidationError, "VALIDATION_ERROR", "width too large"),
    (429, {"error": "RATE_LIMITED", "message": "slow down"}, {"Retry-After": "7"}, RateLimitError, "RATE_LIMITED", "slow down"),
    (502, {"error": "PROVIDER_ERROR", "message": "fal failed", "details": {"provider": "fal"}}, None, ProviderError, "PROVIDER_ERROR", "fal failed"),
    (504, {"error": "PROVIDER_TIMEOUT", "message": "runway slow", "details": {"provider": "runway"}}, None, ProviderError, "PROVIDER_TIMEOUT", "runway slow"),
    (500, {"error": "INTERNAL", "message": "boom"}, None, ServerError, "INTERNAL", "boom"),
    (502, {"error": "BAD_GATEWAY", "message": "upstream"}, None, ServerError, "BAD_GATEWAY", "upstream"),
    (503, {"error": "UNAVAILABLE", "message": "maintenance"}, None, ServerError, "UNAVAILABLE", "maintenance"),
    (418, {"error": "TEAPOT", "message": "short and stout"}, None, VisgateError, "TEAPOT", "short and stout"),
]


@pytest.mark.parametrize("status,payload,headers,cls,code,message", STATUS_CASES, ids=["%d-%s" % (c[0], c[4]) for c in STATUS_CASES])
def test_status_maps_to_exception(
    httpserver: HTTPServer, status: int, payload: Any, headers: Any, cls: Type[VisgateError], code: str, message: str, make_client: Any
) -> None:
    answer_json(httpserver, "/generate", status, payload, dict(headers or {}, **{"X-Request-Id": "srv-req-1"}), method="POST")
    with make_client() as client, pytest.raises(cls) as info:
        client.generate("a cat")
    err = info.value
    assert type(err) is cls
    assert isinstance(err, VisgateError) and isinstance(err, Exception)
    assert err.status_code == status
    assert err.error_code == code
    assert err.message == message
    assert str(err) == "[%s] %s" % (code, message)
    assert err.request_id == "srv-req-1"
    for key, value in payload.get("details", {}).items():
        assert err.details[key] == value
    assert len(sent(httpserver)) == 1  # max_retries=0: one attempt


def test_validation_error_field_from_details(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/images/generate", 422,
                {"error": "VALIDATION_ERROR", "message": "bad width", "details": {"field": "width", "max": 2048}}, method="POST")
    with make_client() as client, pytest.raises(ValidationError) as info:
        client.images.generate("m/x", "a cat", width=4096)
    assert info.value.field == "width"
    assert info.value.details == {"field": "width", "max": 2048}
    assert isinstance(info.value, ValueError)


def test_validation_error_field_from_fastapi_detail_list(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/images/generate", 422,
                {"detail": [{"loc": ["body", "num_images"], "msg": "must be <= 4", "type": "value_error"}]}, method="POST")
    with make_client() as client, pytest.raises(ValidationError) as info:
        client.images.generate("m/x", "a cat", num_images=9)
    assert info.value.field == "num_images"
    assert "must be <= 4" in info.value.message


def test_not_found_error_code_from_body(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/models/nope/model", 404, {"error": "MODEL_NOT_FOUND", "message": "no such model"})
    with make_client() as client, pytest.raises(NotFoundError) as info:
        client.models.get("nope/model")
    assert info.value.error_code == "MODEL_NOT_FOUND"
    assert str(info.value) == "[MODEL_NOT_FOUND] no such model"


def test_rate_limit_retry_after(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/usage", 429, {"error": "RATE_LIMITED", "message": "slow"}, {"Retry-After": "7"})
    with make_client() as client, pytest.raises(RateLimitError) as info:
        client.usage.get()
    assert info.value.retry_after == 7
    assert info.value.status_code == 429


def test_rate_limit_without_retry_after(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/usage", 429, {"error": "RATE_LIMITED", "message": "slow"})
    with make_client() as client, pytest.raises(RateLimitError) as info:
        client.usage.get()
    assert info.value.retry_after is None


def test_provider_error_names_the_provider(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/videos/generate", 502,
                {"error": "PROVIDER_ERROR", "message": "Replicate returned 500", "details": {"provider": "replicate"}}, method="POST")
    with make_client() as client, pytest.raises(ProviderError) as info:
        client.videos.generate("m/v", "a cat")
    assert info.value.provider == "replicate"
    assert info.value.details["provider"] == "replicate"
    assert info.value.status_code == 502


def test_provider_error_without_provider_detail(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/generate", 502, {"error": "UPSTREAM_PROVIDER_FAILURE", "message": "x"}, method="POST")
    with make_client() as client, pytest.raises(ProviderError) as info:
        client.generate("a cat")
    assert info.value.provider == "unknown"


@pytest.mark.parametrize(
    "payload,code,message",
    [
        ({"error": {"code": "QUOTA_EXCEEDED", "message": "monthly quota"}}, "QUOTA_EXCEEDED", "monthly quota"),
        ({"detail": "Not authenticated"}, "AUTHENTICATION_ERROR", "Not authenticated"),
        ({"message": "only a message"}, "AUTHENTICATION_ERROR", "only a message"),
    ],
    ids=["nested-error", "fastapi-detail", "message-only"],
)
def test_other_error_body_shapes(httpserver: HTTPServer, payload: Any, code: str, message: str, make_client: Any) -> None:
    answer_json(httpserver, "/auth/me", 401, payload)
    with make_client() as client, pytest.raises(AuthenticationError) as info:
        client.auth.me()
    assert (info.value.error_code, info.value.message) == (code, message)


@pytest.mark.parametrize(
    "status,cls",
    [(401, AuthenticationError), (404, NotFoundError), (500, ServerError), (502, ServerError), (429, RateLimitError)],
)
def test_html_error_body_gives_typed_error(httpserver: HTTPServer, status: int, cls: Type[VisgateError], make_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_data(
        "<html><body><h1>%d Bad Gateway</h1></body></html>" % status, status=status, content_type="text/html"
    )
    with make_client() as client, pytest.raises(cls) as info:
        client.health()
    err = info.value
    assert type(err) is cls
    assert not isinstance(err, InvalidResponseError)
    assert err.status_code == status
    assert "HTTP %d" % status in err.message
    assert "text/html" in err.message
    assert str(err) == "[%s] %s" % (err.error_code, err.message)


def test_empty_error_body_gives_typed_error(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_data("", status=503)
    with make_client() as client, pytest.raises(ServerError) as info:
        client.health()
    assert info.value.status_code == 503
    assert info.value.error_code == "SERVER_ERROR"


def test_html_502_is_retried_then_typed(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_data("<html>502</html>", status=502, content_type="text/html")
    with make_client(max_retries=fast_retry(2)) as client, pytest.raises(ServerError) as info:
        client.generate("a cat")
    assert info.value.status_code == 502
    assert len(sent(httpserver)) == 3


def test_connection_refused_is_a_connection_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = Client("vg-k", base_url="http://127.0.0.1:%d/api/v1" % port, max_retries=Retry(total=1, backoff_factor=0.001))
    with client, pytest.raises(visgate_sdk.ConnectionError) as info:
        client.health()
    assert isinstance(info.value, VisgateError)
    assert info.value.status_code is None


# -- error classes ------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=[c.__name__ for c in ALL_ERRORS])
def test_every_error_is_a_visgate_error_with_standard_attributes(cls: Type[VisgateError]) -> None:
    assert issubclass(cls, VisgateError)
    err = cls("something broke", error_code="CODE_X", details={"a": 1}, status_code=599)
    assert err.message == "something broke"
    assert err.error_code == "CODE_X"
    assert err.details["a"] == 1
    assert err.status_code == 599
    assert str(err) == "[CODE_X] something broke"
    default = cls()
    assert default.message and default.error_code
    assert str(default) == "[%s] %s" % (default.error_code, default.message)


def test_our_builtin_shadowing_names_are_not_the_builtins() -> None:
    assert visgate_sdk.TimeoutError is not builtins.TimeoutError
    assert visgate_sdk.ConnectionError is not builtins.ConnectionError
    assert issubclass(visgate_sdk.TLSError, visgate_sdk.ConnectionError)
    assert issubclass(ValidationError, ValueError)


def _sample(cls: Type[VisgateError]) -> VisgateError:
    kwargs: Dict[str, Any] = dict(error_code="E_%s" % cls.__name__.upper(), details={"k": [1, 2]}, status_code=418, request_id="rid-1")
    if cls is ValidationError:
        return cls("bad", field="width", **kwargs)
    if cls is RateLimitError:
        return cls("slow", retry_after=2.5, **kwargs)
    if cls is ProviderError:
        return cls("down", provider="runway", **kwargs)
    if cls is visgate_sdk.TimeoutError:
        return cls("late", last_status="processing", **kwargs)
    return cls("msg for %s" % cls.__name__, **kwargs)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=[c.__name__ for c in ALL_ERRORS])
def test_pickle_round_trip_keeps_attributes(cls: Type[VisgateError]) -> None:
    err = _sample(cls)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    for attr in ("message", "error_code", "details", "status_code", "request_id"):
        assert getattr(copy, attr) == getattr(err, attr), attr
    assert str(copy) == str(err)
    if cls is ValidationError:
        assert copy.field == "width"
    if cls is RateLimitError:
        assert copy.retry_after == 2.5
    if cls is ProviderError:
        assert copy.provider == "runway"
    if cls is visgate_sdk.TimeoutError:
        assert copy.last_status == "processing"


def test_pickle_round_trip_of_an_error_from_the_server(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/usage", 429, {"error": "RATE_LIMITED", "message": "slow", "details": {"tier": "free"}}, {"Retry-After": "3"})
    with make_client() as client, pytest.raises(RateLimitError) as info:
        client.usage.get()
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.message, copy.error_code, copy.details, copy.status_code, copy.retry_after) == ("slow", "RATE_LIMITED", {"tier": "free", "retry_after": 3}, 429, 3)


def test_reference_client_constructors_still_work() -> None:
    # Users raise these in their own code and mocks, as the reference client allowed.
    auth = AuthenticationError()
    assert (auth.message, auth.error_code, auth.status_code) == ("Invalid or missing API key", "AUTHENTICATION_ERROR", 401)
    assert AuthenticationError("nope").message == "nope"
    val = ValidationError("bad width", field="width")
    assert (val.message, val.error_code, val.field, val.details) == ("bad width", "VALIDATION_ERROR", "width", {"field": "width"})
    rate = RateLimitError("Rate limit exceeded", retry_after=5)
    assert (rate.retry_after, rate.error_code, rate.status_code) == (5, "RATE_LIMIT_ERROR", 429)
    prov = ProviderError("fal down", provider="fal")
    assert (prov.provider, prov.error_code, prov.details) == ("fal", "PROVIDER_ERROR", {"provider": "fal"})
    assert str(visgate_sdk.TimeoutError()) == "[TIMEOUT_ERROR] Request timed out"
    assert str(visgate_sdk.ConnectionError()) == "[CONNECTION_ERROR] Connection failed"
    base = VisgateError("boom", "SOME_CODE", {"x": 1}, 500)
    assert (base.message, base.error_code, base.details, base.status_code) == ("boom", "SOME_CODE", {"x": 1}, 500)
    assert VisgateError("boom").error_code == "VISGATE_ERROR"
    assert repr(base).startswith("VisgateError(")


# -- retries --------------------------------------------------------------------------

RETRYABLE = [
    (408, visgate_sdk.TimeoutError),
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


@pytest.mark.parametrize("status,cls", RETRYABLE, ids=[str(s) for s, _ in RETRYABLE])
def test_transient_statuses_are_retried_then_raise(httpserver: HTTPServer, status: int, cls: Type[VisgateError], make_client: Any) -> None:
    answer_json(httpserver, "/usage", status, {"error": "E%d" % status, "message": "transient"})
    with make_client(max_retries=fast_retry(2)) as client, pytest.raises(cls) as info:
        client.usage.get()
    assert info.value.status_code == status
    assert len(sent(httpserver)) == 3


@pytest.mark.parametrize("status,cls", RETRYABLE, ids=[str(s) for s, _ in RETRYABLE])
def test_post_is_retried_too(httpserver: HTTPServer, status: int, cls: Type[VisgateError], make_client: Any) -> None:
    answer_json(httpserver, "/images/generate", status, {"error": "E%d" % status, "message": "transient"}, method="POST")
    with make_client(max_retries=fast_retry(1)) as client, pytest.raises(cls):
        client.images.generate("m/x", "a cat")
    keys = {r.headers["Idempotency-Key"] for r in sent(httpserver)}
    assert len(sent(httpserver)) == 2 and len(keys) == 1


NOT_RETRYABLE = [
    (400, ValidationError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (422, ValidationError),
]


@pytest.mark.parametrize("status,cls", NOT_RETRYABLE, ids=[str(s) for s, _ in NOT_RETRYABLE])
def test_client_errors_are_not_retried(httpserver: HTTPServer, status: int, cls: Type[VisgateError], make_client: Any) -> None:
    answer_json(httpserver, "/generate", status, {"error": "E%d" % status, "message": "final"}, method="POST")
    with make_client(max_retries=fast_retry(3)) as client, pytest.raises(cls):
        client.generate("a cat")
    assert len(sent(httpserver)) == 1


def _in_turn(*responses: Response) -> Callable[[Request], Response]:
    it = iter(responses)
    return lambda request: next(it)


def test_transient_error_then_success(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/billing/info").respond_with_handler(
        _in_turn(
            Response('{"error":"X"}', status=503, content_type="application/json"),
            Response("<html>gateway</html>", status=502, content_type="text/html"),
            Response('{"tier":"pro"}', status=200, content_type="application/json"),
        )
    )
    with make_client(max_retries=fast_retry(2)) as client:
        assert client.billing.info().tier == "pro"
    assert len(sent(httpserver)) == 3


def test_max_retries_zero_means_one_attempt(httpserver: HTTPServer) -> None:
    answer_json(httpserver, "/health", 503, {"error": "UNAVAILABLE", "message": "x"})
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=0) as client, pytest.raises(ServerError):
        client.health()
    assert len(sent(httpserver)) == 1


def test_integer_max_retries_uses_exponential_backoff(httpserver: HTTPServer, fake_time: Any) -> None:
    answer_json(httpserver, "/health", 500, {"error": "INTERNAL", "message": "x"})
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=2) as client, pytest.raises(ServerError):
        client.health()
    assert len(sent(httpserver)) == 3
    assert len(fake_time.sleeps) == 2
    # backoff_factor 0.5 doubling, minus at most 25% jitter
    assert 0.375 <= fake_time.sleeps[0] <= 0.5
    assert 0.75 <= fake_time.sleeps[1] <= 1.0


@pytest.mark.parametrize("status, cls", [(429, RateLimitError), (503, ServerError)])
def test_retry_after_zero_is_honoured(httpserver: HTTPServer, fake_time: Any, status: int, cls: Type[VisgateError]) -> None:
    answer_json(httpserver, "/health", status, {"error": "BUSY", "message": "x"}, {"Retry-After": "0"})
    slow_backoff = Retry(total=2, backoff_factor=30.0, backoff_max=60.0)
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=slow_backoff) as client, pytest.raises(cls):
        client.health()
    assert len(sent(httpserver)) == 3
    assert fake_time.sleeps == [0.0, 0.0]


def test_retry_after_seconds_are_waited(httpserver: HTTPServer, fake_time: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_handler(
        _in_turn(
            Response('{"error":"RATE"}', status=429, headers={"Retry-After": "2"}, content_type="application/json"),
            Response('{"status":"ok"}', status=200, content_type="application/json"),
        )
    )
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=Retry(total=2, backoff_factor=30.0)) as client:
        assert client.health() == {"status": "ok"}
    assert fake_time.sleeps == [2.0]


def test_retry_after_http_date_is_understood(httpserver: HTTPServer, fake_time: Any) -> None:
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    answer_json(httpserver, "/health", 503, {"error": "BUSY"}, {"Retry-After": when})
    client = Client("vg-k", base_url=httpserver.url_for(P), max_retries=Retry(total=1, backoff_factor=30.0))
    with client, pytest.raises(ServerError):
        client.health()
    assert len(fake_time.sleeps) == 1
    # The date has one-second resolution: "now + 3 s" is 2 to 3 s away when it is sent.
    assert 1.5 <= fake_time.sleeps[0] <= 3.0


def test_retry_after_longer_than_allowed_raises_at_once(httpserver: HTTPServer, fake_time: Any, make_client: Any) -> None:
    answer_json(httpserver, "/health", 429, {"error": "RATE", "message": "come back in an hour"}, {"Retry-After": "3600"})
    with make_client(max_retries=fast_retry(3)) as client, pytest.raises(RateLimitError) as info:
        client.health()
    assert info.value.retry_after == 3600
    assert len(sent(httpserver)) == 1
    assert fake_time.sleeps == []


# -- answers that are not what the API promises ------------------------------------------

BAD_200 = [
    ("html", "/health", lambda c: c.health(), b"<html><body>hello</body></html>", "text/html"),
    ("text", "/usage", lambda c: c.usage.get(), b"OK", "text/plain"),
    ("truncated json", "/auth/me", lambda c: c.auth.me(), b'{"organization": {"id": ', "application/json"),
    ("empty", "/health", lambda c: c.health(), b"", "application/json"),
    ("empty generate", "/generate", lambda c: c.generate("a cat"), b"", "application/json"),
    ("list for generate", "/generate", lambda c: c.generate("a cat"), b"[1, 2]", "application/json"),
    ("list for health", "/health", lambda c: c.health(), b'["ok"]', "application/json"),
    ("string for model", "/models/a/b", lambda c: c.models.get("a/b"), b'"a/b"', "application/json"),
    ("null for usage", "/usage", lambda c: c.usage.get(), b"null", "application/json"),
    ("images not a list", "/images/generate", lambda c: c.images.generate("m/x", "a cat"), b'{"id": "i", "images": "https://x/1.png"}', "application/json"),
    ("image url not a string", "/images/generate", lambda c: c.images.generate("m/x", "a cat"), b'{"id": "i", "images": [{"url": "x"}]}', "application/json"),
    ("models not a list", "/models", lambda c: c.models.list(), b'{"models": {"id": "x"}}', "application/json"),
    ("model not an object", "/models", lambda c: c.models.list(), b'{"models": ["fal-ai/flux"]}', "application/json"),
    ("logs not a list", "/usage/logs", lambda c: c.usage.logs(), b'{"logs": "none"}', "application/json"),
    ("log entry not an object", "/usage/logs", lambda c: c.usage.logs(), b"[1, 2]", "application/json"),
    ("dashboard a list", "/dashboard", lambda c: c.usage.dashboard(), b"[]", "application/json"),
    ("balances items", "/providers/balances", lambda c: c.providers.balances(), b'{"balances": [true]}', "application/json"),
    ("cache_hit a string", "/images/generate", lambda c: c.images.generate("m/x", "a cat"), b'{"id": "i", "cache_hit": "maybe"}', "application/json"),
    ("total_requests a string", "/usage", lambda c: c.usage.get(), b'{"total_requests": "many"}', "application/json"),
    ("organization a string", "/auth/me", lambda c: c.auth.me(), b'{"organization": "acme"}', "application/json"),
    ("api keys an object", "/api-keys", lambda c: c.api_keys.list(), b'{"keys": {"id": "k"}}', "application/json"),
]


@pytest.mark.parametrize("name,path,call,data,ctype", BAD_200, ids=[b[0] for b in BAD_200])
def test_unusable_200_raises_invalid_response(
    httpserver: HTTPServer, name: str, path: str, call: Any, data: bytes, ctype: str, make_client: Any
) -> None:
    httpserver.expect_request(P + path).respond_with_data(data, status=200, content_type=ctype)
    with make_client(max_retries=fast_retry(2)) as client, pytest.raises(InvalidResponseError) as info:
        call(client)
    assert isinstance(info.value, VisgateError)
    assert not isinstance(info.value, (TypeError, KeyError, AttributeError))
    assert len(sent(httpserver)) == 1  # a bad answer is not retried


def test_non_json_200_error_mentions_content_type(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_data("<html>captive portal</html>", content_type="text/html")
    with make_client() as client, pytest.raises(InvalidResponseError) as info:
        client.health()
    assert info.value.status_code == 200
    assert "text/html" in info.value.message


def test_json_with_wrong_content_type_is_still_read(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_data('{"status": "ok"}', content_type="text/plain")
    with make_client() as client:
        assert client.health() == {"status": "ok"}


MISSING_FIELDS = [
    ("images.generate", "/images/generate", lambda c: c.images.generate("m/x", "a cat"),
     lambda r: (r.id, r.images, r.image_url, r.cost, r.cache_hit, r.steps) == ("", [], None, 0.0, False, None)),
    ("videos.generate", "/videos/generate", lambda c: c.videos.generate("m/x", "a cat"),
     lambda r: (r.id, r.video_url, r.cost, r.cache_hit, r.created_at) == ("", None, 0.0, False, None)),
    ("requests.get", "/requests/r1", lambda c: c.requests.get("r1"),
     lambda r: (r.request_id, r.status, r.output_url, r.error_message) == ("", "pending", None, None)),
    ("models.list", "/models", lambda c: c.models.list(),
     lambda r: (r.models, r.total_count, r.featured, r.last_updated) == ([], 0, None, None)),
    ("models.get", "/models/a/b", lambda c: c.models.get("a/b"),
     lambda r: (r.id, r.tags, r.capabilities, r.run_count, r.pricing) == ("", [], [], 0, None)),
    ("usage.get", "/usage", lambda c: c.usage.get(),
     lambda r: (r.total_requests, r.total_billed_cost, r.by_provider, r.period) == (0, 0.0, {}, "month")),
    ("providers.list_keys", "/providers/keys", lambda c: c.providers.list_keys(), lambda r: r.keys == []),
    ("providers.balances", "/providers/balances", lambda c: c.providers.balances(), lambda r: r.balances == []),
    ("providers.validate_key", "/providers/validate", lambda c: c.providers.validate_key("fal", "k"),
     lambda r: (r.valid, r.message) == (False, "")),
    ("auth.me", "/auth/me", lambda c: c.auth.me(),
     lambda r: (r.organization, r.role, r.organization_id) == ({}, "", None)),
    ("billing.pricing", "/billing/pricing", lambda c: c.billing.pricing(), lambda r: r.pricing is None),
    ("api_keys.list", "/api-keys", lambda c: c.api_keys.list(), lambda r: r == []),
]


@pytest.mark.parametrize("name,path,call,check", MISSING_FIELDS, ids=[m[0] for m in MISSING_FIELDS])
def test_missing_optional_fields_get_defaults(
    httpserver: HTTPServer, name: str, path: str, call: Any, check: Any, make_client: Any
) -> None:
    httpserver.expect_request(P + path).respond_with_json({})
    with make_client() as client:
        result = call(client)
    assert check(result)
    if hasattr(result, "raw"):
        assert result.raw == {}


def test_unknown_status_value_is_kept(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/requests/r1").respond_with_json({"request_id": "r1", "status": "queued_for_gpu"})
    with make_client() as client:
        result = client.requests.get("r1")
    assert result.status == "queued_for_gpu" and not result.is_terminal


def test_error_message_never_contains_the_api_key(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/auth/me", 401, {"error": "AUTHENTICATION_ERROR", "message": "key vg-test-key is revoked"})
    with make_client() as client, pytest.raises(AuthenticationError) as info:
        client.auth.me()
    assert "vg-test-key" not in str(info.value)
    assert json.dumps(info.value.message)  # still a plain string


# -- Retry-After-Ms, 409 without a body, the Retry value -----------------------------------


def test_retry_after_ms_is_honoured(httpserver: HTTPServer, fake_time: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_handler(
        _in_turn(
            Response('{"error":"RATE"}', status=429, headers={"Retry-After-Ms": "1500"}, content_type="application/json"),
            Response('{"status":"ok"}', status=200, content_type="application/json"),
        )
    )
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=Retry(total=2, backoff_factor=30.0)) as client:
        assert client.health() == {"status": "ok"}
    assert fake_time.sleeps == [1.5]


def test_retry_after_ms_is_preferred_over_retry_after(httpserver: HTTPServer, fake_time: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_handler(
        _in_turn(
            Response('{"error":"BUSY"}', status=503, headers={"Retry-After-Ms": "250", "Retry-After": "7"}, content_type="application/json"),
            Response('{"status":"ok"}', status=200, content_type="application/json"),
        )
    )
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=Retry(total=2, backoff_factor=30.0)) as client:
        assert client.health() == {"status": "ok"}
    assert fake_time.sleeps == [0.25]


def test_rate_limit_error_retry_after_from_retry_after_ms(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/usage", 429, {"error": "RATE_LIMITED", "message": "slow"}, {"Retry-After-Ms": "2500", "Retry-After": "9"})
    with make_client() as client, pytest.raises(RateLimitError) as info:
        client.usage.get()
    assert info.value.retry_after == 2.5


def test_409_with_an_empty_body_is_a_conflict(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_data("", status=409)
    with make_client(max_retries=fast_retry(3)) as client, pytest.raises(ConflictError) as info:
        client.generate("a cat")
    assert info.value.error_code == "CONFLICT"
    assert info.value.status_code == 409
    assert "empty body" in info.value.message
    assert len(sent(httpserver)) == 1  # a conflict is final


def test_retry_equality_and_hashing() -> None:
    a = Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 503])
    b = Retry(total=3, backoff_factor=0.2, status_forcelist=frozenset({503, 500}))
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1 and {a: "x"}[b] == "x"
    for changed in (a.replace(total=4), a.replace(backoff_factor=0.3), a.replace(jitter=0.0), a.replace(status_forcelist=[500])):
        assert changed != a
    assert a != 3 and a != "Retry(total=3)" and a is not None
    assert Retry() == Retry(total=visgate_sdk.DEFAULT_MAX_RETRIES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backoff_factor": -0.1},
        {"backoff_max": -1.0},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"max_retry_after": -1.0},
        {"backoff_factor": float("nan")},
        {"total": 1.5},
    ],
    ids=["negative backoff_factor", "negative backoff_max", "jitter above 1", "negative jitter", "negative max_retry_after", "NaN backoff", "float total"],
)
def test_retry_checks_its_arguments(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        Retry(**kwargs)
    name = next(iter(kwargs))
    assert info.value.field is not None and info.value.field.endswith(name if name != "total" else "max_retries")
    assert isinstance(info.value, ValueError)


def test_retry_accepts_its_bounds() -> None:
    policy = Retry(total=0, backoff_factor=0.0, backoff_max=0.0, jitter=1.0, max_retry_after=0.0)
    assert policy.backoff(3) == 0.0
    assert Retry(jitter=0.0).backoff(0) == 0.5  # no jitter: exactly backoff_factor * 2**0


def test_502_naming_a_provider_is_a_provider_error_whatever_its_code(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/generate", 502, {"error": "UPSTREAM_FAILED", "message": "x", "details": {"provider": "runway"}}, method="POST")
    with make_client(max_retries=fast_retry(2)) as client, pytest.raises(ProviderError) as info:
        client.generate("a cat")
    assert info.value.provider == "runway"
    assert len(sent(httpserver)) == 1  # the provider ran: not retried


def test_other_5xx_naming_a_provider_stays_a_server_error(httpserver: HTTPServer, make_client: Any) -> None:
    answer_json(httpserver, "/generate", 501, {"error": "NOT_IMPLEMENTED", "message": "x", "details": {"provider": "fal"}}, method="POST")
    with make_client() as client, pytest.raises(ServerError):
        client.generate("a cat")


def test_each_retry_is_logged_with_its_number(httpserver: HTTPServer, fake_time: Any, caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request(P + "/health").respond_with_handler(
        _in_turn(
            Response('{"error":"X"}', status=503, content_type="application/json"),
            Response('{"error":"X"}', status=503, content_type="application/json"),
            Response('{"status":"ok"}', status=200, content_type="application/json"),
        )
    )
    caplog.set_level(logging.INFO, logger="visgate_sdk")
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=Retry(total=2, backoff_factor=0.001, jitter=0.0)) as client:
        client.health()
    messages = [r.getMessage() for r in caplog.records if r.name == "visgate_sdk" and "retry" in r.getMessage()]
    assert len(messages) == 2
    assert "-> 503; retry 1 in 0.00s" in messages[0] and "-> 503; retry 2 in 0.00s" in messages[1]


def test_default_retry_policy() -> None:
    policy = Retry()
    assert (policy.total, policy.backoff_factor, policy.backoff_max, policy.jitter, policy.max_retry_after) == (2, 0.5, 8.0, 0.25, 60.0)
    assert policy.status_forcelist == frozenset({408, 429, 500, 502, 503, 504})
    assert policy.retry_after_statuses == frozenset({413, 429, 503})
    assert Retry(jitter=0.0).backoff(10) == 8.0  # capped at backoff_max
