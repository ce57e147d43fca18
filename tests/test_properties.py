"""Hostile and odd input, as properties (hypothesis): whatever comes in, the user gets a
result or a ``VisgateError``; whatever the user passes, it stays where it belongs.

One pytest-httpserver answers every path with whatever the current example sets, and records
what it received byte for byte (the raw request target, the headers, the body).
"""

from __future__ import annotations

import json
import re
import threading
import tracemalloc
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Request as WRequest
from werkzeug.wrappers import Response as WResponse

import visgate_sdk
from tests._servers import http_server, raw_uri
from visgate_sdk import AuthenticationError, Client, ValidationError, VisgateError

KEY = "vg-prop-key-00112233"
PREFIX = "/api/v1"
CLIENT_DEFAULTS = {"api_key": KEY, "max_retries": 0, "timeout": 5.0}  # for make_client(live.url, ...)
# make_client is function-scoped on purpose: one factory per test, shared by its examples,
# and every client it made is closed when the test ends.
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class Live:
    """The server's script for the current example, and what it received."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.status = 200
        self.body: Any = b"{}"
        self.headers: Dict[str, str] = {}
        self.received: List[Dict[str, Any]] = []

    def handler(self, request: WRequest) -> WResponse:
        with self.lock:
            self.received.append(
                {"uri": raw_uri(request), "headers": list(request.headers.items()), "body": request.get_data()}
            )
            status, body, headers = self.status, self.body, dict(self.headers)
        return WResponse(body, status, headers=headers)

    def script(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
        with self.lock:
            self.status, self.body, self.headers = status, body, dict(headers or {})
            self.received = []

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d%s" % (self.server.port, PREFIX)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    for server in http_server():
        state = Live(server)
        server.expect_request(re.compile(".*")).respond_with_handler(state.handler)
        yield state


# -- any answer to any endpoint ------------------------------------------------------------

ENDPOINTS: List[Tuple[str, Callable[[Client], Any]]] = [
    ("generate", lambda c: c.generate("a cat")),
    ("images.generate", lambda c: c.images.generate("fal-ai/flux/schnell", "a cat", include_steps=True)),
    ("images.generate async", lambda c: c.images.generate("fal-ai/flux/schnell", "a cat", wait=False)),
    ("videos.generate", lambda c: c.videos.generate("runway/gen3", "a wave", image_url="https://x/y.png")),
    ("requests.get", lambda c: c.requests.get("req_1")),
    ("models.list", lambda c: c.models.list(featured=True)),
    ("models.get", lambda c: c.models.get("fal-ai/flux/schnell")),
    ("models.search", lambda c: c.models.search("flux")),
    ("usage.get", lambda c: c.usage.get("week")),
    ("usage.logs", lambda c: c.usage.logs(limit=5)),
    ("usage.dashboard", lambda c: c.usage.dashboard()),
    ("providers.list_keys", lambda c: c.providers.list_keys()),
    ("providers.set_key", lambda c: c.providers.set_key("fal", "fal-k")),
    ("providers.delete_key", lambda c: c.providers.delete_key("fal")),
    ("providers.validate_key", lambda c: c.providers.validate_key("fal", "fal-k")),
    ("providers.balances", lambda c: c.providers.balances()),
    ("auth.me", lambda c: c.auth.me()),
    ("api_keys.list", lambda c: c.api_keys.list()),
    ("billing.stats", lambda c: c.billing.stats()),
    ("billing.info", lambda c: c.billing.info()),
    ("billing.pricing", lambda c: c.billing.pricing()),
    ("health", lambda c: c.health()),
]
V = visgate_sdk
RESULT_TYPES: Dict[str, Any] = {  # what each endpoint returns when it does not raise
    "generate": V.GenerateResult,
    "images.generate": V.ImageResult,
    "images.generate async": (V.ImageResult, V.GenerationRequest),
    "videos.generate": V.VideoResult,
    "requests.get": V.RequestStatusResult,
    "models.list": V.ModelsResponse,
    "models.get": V.ModelInfo,
    "models.search": V.ModelsResponse,
    "usage.get": V.UsageSummary,
    "usage.logs": list,
    "usage.dashboard": dict,
    "providers.list_keys": V.ProviderKeysResponse,
    "providers.set_key": V.ProviderKeyInfo,
    "providers.delete_key": dict,
    "providers.validate_key": V.ProviderValidationResult,
    "providers.balances": V.ProviderBalancesResponse,
    "auth.me": V.AuthInfo,
    "api_keys.list": list,
    "billing.stats": dict,
    "billing.info": V.BillingInfo,
    "billing.pricing": V.BillingPricing,
    "health": dict,
}

# Field names the parsers look for, so examples often hit a real field with a wrong value.
FIELDS = sorted(
    {
        "id", "request_id", "image_url", "images", "model", "provider", "mode", "estimated_cost_usd", "cost",
        "cost_per_megapixel_usd", "latency_ms", "resolution", "created_at", "cache_hit", "provider_cost_avoided_micro",
        "output_storage", "output_size_bytes", "steps", "video_url", "output_url", "status", "media_type",
        "error_message", "completed_at", "models", "total_count", "total", "last_updated", "featured", "title", "key",
        "name", "description", "tags", "base_cost_micro", "run_count", "pricing", "capabilities", "input_types",
        "total_requests", "total_billed_cost", "total_cost_usd", "by_provider", "provider_breakdown", "period",
        "period_start", "period_end", "logs", "keys", "api_keys", "validated", "masked_key", "valid", "message",
        "balances", "configured", "available", "limit", "remaining", "organization", "role", "balance_micro",
        "free_mode_enabled", "error", "details", "detail", "code", "type", "field", "loc", "msg",
    }
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789+05:30", "pending", "completed", "fal"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
json_objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)

bodies = st.one_of(
    json_objects.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_objects.map(lambda v: json.dumps(v).encode()[:-1]),  # cut short
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"NaN", b"Infinity", b"[1e999]", b'{"a": 1' + b"0" * 5000 + b"}", b"<html>502</html>"]),
)
statuses = st.one_of(
    st.integers(200, 599), st.sampled_from([200, 201, 202, 204, 301, 302, 303, 307, 308, 400, 401, 404, 422, 429, 500, 502])
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@st.composite
def answers(draw: Any) -> Tuple[int, bytes, Dict[str, str]]:
    status = draw(statuses)
    body = draw(bodies)
    headers: Dict[str, str] = {}
    headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/html", "text/plain", "application/octet-stream"]))
    if draw(st.booleans()):
        headers["Retry-After"] = draw(st.one_of(header_text, st.sampled_from(["0", "3600", "1e999", "nan", "-1"])))
    if draw(st.booleans()):
        headers["Retry-After-Ms"] = draw(st.one_of(header_text, st.sampled_from(["5", "nan", "inf", "-5"])))
    if draw(st.booleans()):
        headers["X-Request-Id"] = draw(header_text)
    if 300 <= status < 400 and draw(st.booleans()):
        headers["Location"] = draw(
            st.sampled_from(
                [
                    "/api/v1/elsewhere",
                    "//127.0.0.1:1/x",
                    "http://127.0.0.1:1/refused",
                    "https://127.0.0.1:1/refused",
                    "ftp://127.0.0.1/x",
                    "http://user:pw@127.0.0.1:1/x",
                    "http://[::1",
                    "http://127.0.0.1:99999/x",
                    "",
                    "?q=1",
                    "#frag",
                ]
            )
        )
    return status, body, headers


@pytest.fixture
def answer_client(live: Live, make_client: Any) -> Client:
    return make_client(live.url, fal_key="fal-key-prop-123456", timeout=2.0)


@settings(SETTINGS, max_examples=200)
@given(endpoint=st.sampled_from(ENDPOINTS), answer=answers())
def test_any_answer_to_any_endpoint_is_a_result_or_a_visgate_error(
    live: Live, answer_client: Client, endpoint: Any, answer: Any
) -> None:
    status, body, headers = answer
    live.script(status, body, headers)
    try:
        result = endpoint[1](answer_client)
    except VisgateError as exc:
        assert isinstance(exc.message, str) and isinstance(exc.error_code, str)
        str(exc), repr(exc)  # printable
        assert "fal-key-prop-123456" not in str(exc)
        return
    # A result only for a 2xx answer, and of the documented type (never a half-parsed body).
    assert 200 <= status < 300, (status, result)
    assert isinstance(result, RESULT_TYPES[endpoint[0]]), (endpoint[0], type(result))
    if isinstance(result, list):
        expected_item = V.ApiKeyInfo if endpoint[0] == "api_keys.list" else dict
        assert all(isinstance(item, expected_item) for item in result)


# -- path parameters stay inside their route -----------------------------------------------

TRICKY = "./?#%&=+;:@ \\\t\x00\x7f\ud800\udfffé日aZ9-_~"
any_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=TRICKY, max_size=12),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=8),
    st.sampled_from(
        ["..", ".", "../../admin", "a/../b", "a/./b", "a//b", "/a", "a/", "%2e%2e", "%2F", "a?x=1", "a#b", "a%3Fb", " ", "\ud800"]
    ),
)

ROUTES = [
    ("models.get", "/models/", True, lambda c, v: c.models.get(v)),
    ("requests.get", "/requests/", False, lambda c, v: c.requests.get(v)),
    ("providers.delete_key", "/providers/keys/", False, lambda c, v: c.providers.delete_key(v)),
]


@SETTINGS
@given(route=st.sampled_from(ROUTES), value=any_text)
def test_any_string_stays_inside_its_route(live: Live, route: Any, value: str, make_client: Any) -> None:
    _name, prefix, slashes, call = route
    live.script(200, json.dumps({"id": "m", "request_id": "r", "status": "pending"}).encode(), {"Content-Type": "application/json"})
    client = make_client(live.url)
    try:
        call(client, value)
    except ValidationError:
        assert live.received == [], "refused before sending"
        return
    finally:
        client.close()
    assert len(live.received) == 1
    uri = live.received[0]["uri"]
    assert uri.startswith(PREFIX + prefix), uri
    assert "?" not in uri and "#" not in uri, "no query or fragment smuggled in"
    rest = uri[len(PREFIX + prefix) :]
    segments = rest.split("/")
    if not slashes:
        assert len(segments) == 1
    assert all(unquote(s, errors="strict") not in ("", ".", "..") for s in segments)
    assert unquote(rest, errors="strict") == value


@pytest.mark.parametrize("value", ["fal-ai/flux/schnell", "replicate/black-forest-labs/flux-1.1-pro", "a b/c%d", "日本/モデル"])
def test_ordinary_model_ids_are_accepted(live: Live, value: str, make_client: Any) -> None:
    live.script(200, b'{"id": "m"}', {"Content-Type": "application/json"})
    make_client(live.url).models.get(value)
    assert unquote(live.received[0]["uri"][len(PREFIX + "/models/") :]) == value


# -- header values -------------------------------------------------------------------------

HEADER_PLACES: List[Tuple[str, str, Callable[[str], Dict[str, Any]], Callable[[Client, str], Any]]] = [
    ("api_key", "Authorization", lambda v: {"api_key": v}, lambda c, v: c.usage.get()),
    ("fal_key", "X-Fal-Key", lambda v: {"fal_key": v}, lambda c, v: c.usage.get()),
    ("replicate_key", "X-Replicate-Key", lambda v: {"replicate_key": v}, lambda c, v: c.usage.get()),
    ("runway_key", "X-Runway-Key", lambda v: {"runway_key": v}, lambda c, v: c.usage.get()),
    ("set_provider_headers", "X-Fal-Key", lambda v: {}, lambda c, v: (c.set_provider_headers(fal_key=v), c.usage.get())),
    ("default_headers", "X-Trace", lambda v: {"default_headers": {"X-Trace": v}}, lambda c, v: c.usage.get()),
    ("idempotency_key", "Idempotency-Key", lambda v: {}, lambda c, v: c.generate("a cat", idempotency_key=v)),
]

header_values = st.one_of(
    st.text(max_size=24),
    st.text(alphabet="ab \t\r\n\x00\x0b\x0c\x1c\x7f\x85\u2028é日\ud800:", max_size=12),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=8),
)


@SETTINGS
@given(place=st.sampled_from(HEADER_PLACES), value=header_values)
def test_any_header_value_is_sent_intact_or_refused(live: Live, place: Any, value: str, make_client: Any) -> None:
    name, header, ctor_kwargs, call = place
    live.script(200, b'{"id": "g", "total_requests": 1}', {"Content-Type": "application/json"})
    kwargs = dict(api_key=KEY)
    kwargs.update(ctor_kwargs(value))
    try:
        client = make_client(live.url, **kwargs)
        call(client, value)
    except ValidationError as exc:
        assert live.received == []
        assert value not in str(exc) or not value.strip()
        return
    except AuthenticationError as exc:  # an all-blank api_key is no key at all
        assert name == "api_key" and not value.strip() and exc.error_code == "MISSING_API_KEY"
        return
    inner = value.strip() if name == "api_key" else value.strip(" \t")  # a key read from a file may end in a newline
    assert not any(c in inner for c in "\r\n\x00"), "CR, LF and NUL are never sent"
    got = [v for k, v in live.received[0]["headers"] if k.lower() == header.lower()]
    if not inner and name != "idempotency_key":
        return  # an empty BYOK key or header means "not set"
    expected = ("Bearer " + value.strip()) if name == "api_key" else value.strip(" \t")
    assert got == [expected], (got, expected)


@SETTINGS
@given(
    place=st.sampled_from(HEADER_PLACES),
    left=st.text(alphabet="abc", min_size=1, max_size=4),
    crlf=st.sampled_from(["\r", "\n", "\r\n", "\r\n "]),
    right=st.tuples(st.sampled_from("abcX"), st.text(alphabet="abc:X-Evil 1", max_size=8)).map("".join),
)
def test_cr_lf_inside_a_header_value_is_a_validation_error(
    live: Live, place: Any, left: str, crlf: str, right: str, make_client: Any
) -> None:
    _name, _header, ctor_kwargs, call = place
    value = left + crlf + right
    live.script(200, b'{"id": "g"}', {"Content-Type": "application/json"})
    with pytest.raises(ValidationError):
        kwargs = dict(api_key=KEY)
        kwargs.update(ctor_kwargs(value))
        call(make_client(live.url, **kwargs), value)
    assert live.received == []


@SETTINGS
@given(name=st.text(max_size=12))
def test_any_header_name_is_sent_or_refused(live: Live, name: str, make_client: Any) -> None:
    live.script(200, b'{"total_requests": 1}', {"Content-Type": "application/json"})
    try:
        make_client(live.url, default_headers={name: "v"}).usage.get()
    except ValidationError:
        assert live.received == []
        return
    assert len(live.received) == 1
    if "_" in name:
        return  # werkzeug drops header names with underscores (CGI spoofing guard), as nginx does
    got = [v for k, v in live.received[0]["headers"] if k.lower() == name.lower()]
    assert "v" in got


# -- request bodies ------------------------------------------------------------------------


@SETTINGS
@given(params=st.dictionaries(st.text(max_size=8), json_values | st.floats() | st.text(alphabet="a\ud800", max_size=3), max_size=5))
def test_any_params_arrive_exactly_or_are_refused(live: Live, params: Dict[str, Any], make_client: Any) -> None:
    live.script(200, b'{"id": "g"}', {"Content-Type": "application/json"})
    try:
        make_client(live.url).generate("a cat", params=params)
    except ValidationError:
        assert live.received == []
        return
    sent = json.loads(live.received[0]["body"])
    expected = {"prompt": "a cat", "model": visgate_sdk.DEFAULT_MODEL, "params": params}
    if not params:
        del expected["params"]  # {} is not sent, as in 0.0.3
    assert sent == expected


# -- huge answers --------------------------------------------------------------------------


def _catalogue(n: int) -> bytes:
    models = [
        {
            "id": "provider-%d/family-%d/model-%05d" % (i % 3, i % 50, i),
            "name": "Model number %05d" % i,
            "provider": ("fal", "replicate", "runway")[i % 3],
            "media_type": "image" if i % 4 else "video",
            "description": "A generative model for tests, entry %05d, with a description of ordinary length." % i,
            "tags": ["text-to-image", "tag-%d" % (i % 17)],
            "cover_image_url": "https://cdn.example.test/covers/%05d.webp" % i,
            "url": "https://models.example.test/%05d" % i,
            "base_cost_micro": 1000 + i,
            "run_count": i * 7,
            "capabilities": ["text-to-image"],
        }
        for i in range(n)
    ]
    return json.dumps({"models": models, "total_count": n, "last_updated": "2026-01-01T00:00:00Z"}).encode()


def test_a_20000_model_catalogue_parses_in_bounded_memory(live: Live, make_client: Any) -> None:
    body = _catalogue(20_000)
    live.script(200, body, {"Content-Type": "application/json"})
    client = make_client(live.url, timeout=60.0)
    client.health()  # warm up: imports and the first connection are not the answer's cost
    live.script(200, body, {"Content-Type": "application/json"})
    tracemalloc.start()
    try:
        tracemalloc.reset_peak() if hasattr(tracemalloc, "reset_peak") else None
        base, _ = tracemalloc.get_traced_memory()
        result = client.models.list(limit=20_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.models) == 20_000 and result.total_count == 20_000
    assert result.models[0].id == "provider-0/family-0/model-00000"
    assert result.models[12345].provider == ("fal", "replicate", "runway")[12345 % 3]
    assert result.models[-1].base_cost_micro == 1000 + 19_999
    assert result.models[7].tags == ["text-to-image", "tag-7"]
    ratio = (peak - base) / len(body)
    assert ratio < 10, "peak %.1f MB for a %.1f MB answer (%.1fx)" % ((peak - base) / 1e6, len(body) / 1e6, ratio)
