"""The sync Client against a real loopback HTTP server: every endpoint's method, path,
query, headers and body, the typed results, per-call timeouts, polling, idempotency keys,
input validation before sending, and client configuration."""

from __future__ import annotations

import inspect
import json
import math
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import visgate_sdk
from tests.conftest import fast_retry
from visgate_sdk import (
    ApiKeyInfo,
    AsyncClient,
    AuthenticationError,
    AuthInfo,
    BillingInfo,
    BillingPricing,
    Client,
    FeaturedSection,
    GenerateResult,
    GenerationRequest,
    ImageResult,
    ModelInfo,
    ModelsResponse,
    ProviderBalanceItem,
    ProviderBalancesResponse,
    ProviderKeyInfo,
    ProviderKeysResponse,
    ProviderValidationResult,
    RequestStatusResult,
    Retry,
    UsageSummary,
    ValidationError,
    VideoResult,
)

P = "/api/v1"
UA = "visgate-sdk-python/" + visgate_sdk.__version__

# -- helpers -------------------------------------------------------------------


def sent(server: HTTPServer) -> List[Request]:
    return [req for req, _ in server.log]


def only(server: HTTPServer) -> Request:
    reqs = sent(server)
    assert len(reqs) == 1, [r.full_path for r in reqs]
    return reqs[0]


def query(req: Request) -> List[tuple]:
    return sorted(parse_qsl(req.query_string.decode("ascii"), keep_blank_values=True))


def body(req: Request) -> Any:
    return json.loads(req.get_data())


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


def in_turn(*answers: Response) -> Callable[[Request], Response]:
    """A handler giving ``answers`` one after the other, then the last one again."""
    it = iter(answers)
    last: List[Response] = []

    def handler(request: Request) -> Response:
        resp = next(it, None)
        if resp is None:
            return last[0]
        last[:] = [resp]
        return resp

    return handler


def without_hanging(fn: Callable[[], Any], limit: float = 20.0) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it never returns."""
    outcome: Dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), "the call hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


GENERATE_ANSWER = {
    "id": "gen_123",
    "image_url": "https://cdn.example.com/a.png",
    "images": ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"],
    "model": "fal-ai/flux/schnell",
    "provider": "fal",
    "mode": "managed",
    "estimated_cost_usd": 0.0031,
    "cost_per_megapixel_usd": 0.003,
    "latency_ms": 1234,
    "resolution": {"width": 1024, "height": 768},
    "created_at": "2025-01-02T03:04:05.123456789Z",
    "brand_new_field": {"nested": [1, 2]},
}

IMAGE_ANSWER = {
    "id": "img_1",
    "images": ["https://cdn.example.com/i1.png", "https://cdn.example.com/i2.png"],
    "model": "fal-ai/flux/schnell",
    "provider": "fal",
    "cost": 0.006,
    "cache_hit": True,
    "provider_cost_avoided_micro": 3000,
    "latency_ms": 87,
    "created_at": "2025-03-04T05:06:07+00:00",
    "output_storage": "cdn.example.com",
    "output_size_bytes": 123456,
    "steps": [{"name": "cache", "ms": 3}, {"name": "provider", "ms": 80}],
    "unknown_thing": "kept",
}

VIDEO_ANSWER = {
    "id": "vid_1",
    "video_url": "https://cdn.example.com/v.mp4",
    "model": "fal-ai/flux-pro/video",
    "provider": "fal",
    "cost": 0.5,
    "cache_hit": False,
    "latency_ms": 45000,
    "created_at": "2025-03-04T05:06:07Z",
    "seconds": 5,
}

MODEL = {
    "id": "fal-ai/flux/schnell",
    "name": "FLUX.1 [schnell]",
    "provider": "fal",
    "media_type": "image",
    "description": "fast",
    "category": "text-to-image",
    "tags": ["fast", "flux"],
    "cover_image_url": "https://cdn.example.com/cover.png",
    "author": "bfl",
    "url": "https://fal.ai/models/fal-ai/flux/schnell",
    "base_cost_micro": 3000,
    "normalized_cost_micro": 3100,
    "pricing": {"per_megapixel": 0.003},
    "pricing_unit": "megapixel",
    "run_count": 99,
    "input_types": ["text"],
    "output_type": "image",
    "capabilities": ["text-to-image"],
    "first_seen_at": "2024-01-01T00:00:00Z",
    "provider_created_at": "2023-12-01T00:00:00Z",
    "last_synced_at": "2025-01-01T00:00:00Z",
    "popularity": 7,
}

USAGE_ANSWER = {
    "total_requests": 200,
    "successful_requests": 190,
    "failed_requests": 10,
    "cached_requests": 50,
    "total_provider_cost": 1.25,
    "total_billed_cost": 1.5,
    "total_savings": 0.25,
    "by_provider": {"fal": {"requests": 150}},
    "by_model": {"fal-ai/flux/schnell": {"requests": 150}},
    "period": "week",
    "period_start": "2025-01-01T00:00:00Z",
    "period_end": "2025-01-08T00:00:00Z",
}

# -- every endpoint: method, path, common headers ---------------------------------

ENDPOINTS = [
    ("generate", lambda c: c.generate("a cat"), "POST", "/generate", GENERATE_ANSWER, True),
    ("health", lambda c: c.health(), "GET", "/health", {"status": "ok"}, False),
    ("images.generate", lambda c: c.images.generate("m/x", "a cat"), "POST", "/images/generate", IMAGE_ANSWER, True),
    ("videos.generate", lambda c: c.videos.generate("m/v", "a cat"), "POST", "/videos/generate", VIDEO_ANSWER, True),
    ("requests.get", lambda c: c.requests.get("req-1"), "GET", "/requests/req-1", {"request_id": "req-1", "status": "pending"}, False),
    ("models.list", lambda c: c.models.list(), "GET", "/models", {"models": []}, False),
    ("models.get", lambda c: c.models.get("fal-ai/flux/schnell"), "GET", "/models/fal-ai/flux/schnell", MODEL, False),
    ("models.search", lambda c: c.models.search("flux"), "GET", "/models", {"models": []}, False),
    ("usage.get", lambda c: c.usage.get(), "GET", "/usage", USAGE_ANSWER, False),
    ("usage.logs", lambda c: c.usage.logs(), "GET", "/usage/logs", [], False),
    ("usage.dashboard", lambda c: c.usage.dashboard(), "GET", "/dashboard", {"total_generations": 1}, False),
    ("providers.list_keys", lambda c: c.providers.list_keys(), "GET", "/providers/keys", {"keys": []}, False),
    ("providers.set_key", lambda c: c.providers.set_key("fal", "fal-secret"), "PUT", "/providers/keys", {"provider": "fal"}, True),
    ("providers.delete_key", lambda c: c.providers.delete_key("fal"), "DELETE", "/providers/keys/fal", {"deleted": True}, False),
    ("providers.validate_key", lambda c: c.providers.validate_key("fal", "fal-secret"), "POST", "/providers/validate", {"valid": True}, True),
    ("providers.balances", lambda c: c.providers.balances(), "GET", "/providers/balances", {"balances": []}, False),
    ("auth.me", lambda c: c.auth.me(), "GET", "/auth/me", {"organization": {"id": "o1"}, "role": "admin"}, False),
    ("api_keys.list", lambda c: c.api_keys.list(), "GET", "/api-keys", [], False),
    ("billing.stats", lambda c: c.billing.stats(), "GET", "/billing/stats", {"total_requests": 1}, False),
    ("billing.info", lambda c: c.billing.info(), "GET", "/billing/info", {"tier": "free"}, False),
    ("billing.pricing", lambda c: c.billing.pricing(), "GET", "/billing/pricing", {"pricing": {}}, False),
]


@pytest.mark.parametrize("name,call,method,path,answer,has_body", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_every_endpoint_sends_method_path_and_headers(
    httpserver: HTTPServer, make_client: Any, name: str, call: Any, method: str, path: str, answer: Any, has_body: bool
) -> None:
    httpserver.expect_request(P + path, method=method).respond_with_json(answer)
    client = make_client(api_key="vg-endpoint-key", fal_key="fal-k", replicate_key="r8-k", runway_key="rw-k")
    call(client)
    req = only(httpserver)
    assert req.method == method
    assert req.path == P + path
    assert req.headers["Authorization"] == "Bearer vg-endpoint-key"
    assert req.headers["User-Agent"] == UA
    assert req.headers["X-Fal-Key"] == "fal-k"
    assert req.headers["X-Replicate-Key"] == "r8-k"
    assert req.headers["X-Runway-Key"] == "rw-k"
    assert "Prefer" not in req.headers
    if has_body:
        assert req.headers["Content-Type"] == "application/json"
        assert isinstance(body(req), dict)
    else:
        assert "Content-Type" not in req.headers
        assert req.get_data() == b""
    # Only POST (the calls that can cost money) carries an idempotency key.
    if method == "POST":
        assert req.headers["Idempotency-Key"]
    else:
        assert "Idempotency-Key" not in req.headers


def test_no_byok_headers_unless_given(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(GENERATE_ANSWER)
    client.generate("a cat")
    headers = only(httpserver).headers
    for name in ("X-Fal-Key", "X-Replicate-Key", "X-Runway-Key"):
        assert name not in headers


# -- generate --------------------------------------------------------------------


def test_generate_body_and_result(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(GENERATE_ANSWER)
    result = client.generate("a cat in space", model="fal-ai/flux/dev", params={"num_inference_steps": 4, "seed": 7})
    assert body(only(httpserver)) == {
        "prompt": "a cat in space",
        "model": "fal-ai/flux/dev",
        "params": {"num_inference_steps": 4, "seed": 7},
    }
    assert isinstance(result, GenerateResult)
    assert result.id == "gen_123"
    assert result.image_url == "https://cdn.example.com/a.png"
    assert result.images == ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]
    assert result.model == "fal-ai/flux/schnell"
    assert result.provider == "fal"
    assert result.mode == "managed"
    assert result.cost == pytest.approx(0.0031)  # estimated_cost_usd, as in the reference client
    assert result.cost_per_megapixel == pytest.approx(0.003)
    assert result.latency_ms == 1234
    assert result.resolution == {"width": 1024, "height": 768}
    assert result.created_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert result.raw["brand_new_field"] == {"nested": [1, 2]}
    assert result.raw["estimated_cost_usd"] == 0.0031


def test_generate_defaults_model_and_omits_params(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(GENERATE_ANSWER)
    client.generate("a sunset")
    assert body(only(httpserver)) == {"prompt": "a sunset", "model": "fal-ai/flux/schnell"}


def test_generate_positional_model_and_params_like_reference(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(GENERATE_ANSWER)
    client.generate("a sunset", "fal-ai/flux/dev", {"steps": 2})
    assert body(only(httpserver)) == {"prompt": "a sunset", "model": "fal-ai/flux/dev", "params": {"steps": 2}}


def test_generate_missing_optional_fields_get_defaults(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json({"id": "g1", "images": ["https://x/1.png"]})
    result = client.generate("a cat")
    assert result.id == "g1"
    assert result.image_url == "https://x/1.png"  # filled from images[0]
    assert (result.model, result.provider, result.mode) == ("", "", "")
    assert result.cost == 0.0 and result.cost_per_megapixel == 0.0 and result.latency_ms == 0
    assert result.resolution == {} and result.created_at is None


def test_generate_null_fields_are_defaults(httpserver: HTTPServer, client: Client) -> None:
    answer = {"id": "g1", "image_url": None, "images": None, "estimated_cost_usd": None, "created_at": None}
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(answer)
    result = client.generate("a cat")
    assert result.image_url is None and result.images == [] and result.cost == 0.0 and result.created_at is None


# -- health ----------------------------------------------------------------------


def test_health_returns_the_answer(httpserver: HTTPServer, client: Client) -> None:
    answer = {"status": "ok", "version": "0.2.0", "database": "ok", "cache": "ok"}
    httpserver.expect_request(P + "/health", method="GET").respond_with_json(answer)
    assert client.health() == answer


# -- images ----------------------------------------------------------------------


def test_images_generate_all_arguments(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(IMAGE_ANSWER)
    result = client.images.generate(
        "fal-ai/flux/schnell",
        "a cat in space",
        negative_prompt="blurry",
        width=768,
        height=512,
        num_images=2,
        seed=42,
        params={"guidance_scale": 3.5, "enable_safety_checker": False},
        include_steps=True,
    )
    req = only(httpserver)
    assert query(req) == [("include_steps", "true")]
    assert body(req) == {
        "model": "fal-ai/flux/schnell",
        "prompt": "a cat in space",
        "negative_prompt": "blurry",
        "width": 768,
        "height": 512,
        "num_images": 2,
        "seed": 42,
        "guidance_scale": 3.5,
        "enable_safety_checker": False,
    }
    assert isinstance(result, ImageResult)
    assert result.id == "img_1"
    assert result.images == IMAGE_ANSWER["images"]
    assert result.image_url == "https://cdn.example.com/i1.png"
    assert result.model == "fal-ai/flux/schnell" and result.provider == "fal"
    assert result.cost == pytest.approx(0.006)
    assert result.cache_hit is True
    assert result.provider_cost_avoided_micro == 3000
    assert result.latency_ms == 87
    assert result.created_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert result.output_storage == "cdn.example.com"
    assert result.output_size_bytes == 123456
    assert result.steps == [{"name": "cache", "ms": 3}, {"name": "provider", "ms": 80}]
    assert result.raw["unknown_thing"] == "kept"


def test_images_generate_defaults(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json({"id": "i", "images": []})
    result = client.images.generate(model="fal-ai/flux/schnell", prompt="a cat")
    req = only(httpserver)
    assert req.query_string == b""
    assert body(req) == {"model": "fal-ai/flux/schnell", "prompt": "a cat", "width": 1024, "height": 1024, "num_images": 1}
    assert isinstance(result, ImageResult)
    assert result.image_url is None and result.cache_hit is False and result.steps is None
    assert result.provider_cost_avoided_micro is None and result.latency_ms is None


def test_images_generate_seed_zero_is_sent(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json({"id": "i", "images": []})
    client.images.generate("m/x", "a cat", seed=0)
    assert body(only(httpserver))["seed"] == 0


def test_images_generate_wait_false_returns_handle(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(
        {"request_id": "req-9", "status": "pending"}, status=202
    )
    handle = client.images.generate("fal-ai/flux/schnell", "a cat", wait=False)
    req = only(httpserver)
    assert req.headers["Prefer"] == "respond-async"
    assert isinstance(handle, GenerationRequest)
    assert handle.request_id == "req-9"
    assert handle.status == "pending"
    assert "req-9" in repr(handle)


# -- videos ----------------------------------------------------------------------


def test_videos_generate_all_arguments(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/videos/generate", method="POST").respond_with_json(VIDEO_ANSWER)
    result = client.videos.generate(
        "fal-ai/flux-pro/video",
        "drone over Istanbul",
        image_url="https://cdn.example.com/start.png",
        duration_seconds=8.5,
        skip_gcs_upload=True,
        params={"aspect_ratio": "16:9"},
    )
    req = only(httpserver)
    assert req.query_string == b""
    assert body(req) == {
        "model": "fal-ai/flux-pro/video",
        "prompt": "drone over Istanbul",
        "image_url": "https://cdn.example.com/start.png",
        "duration_seconds": 8.5,
        "skip_gcs_upload": True,
        "aspect_ratio": "16:9",
    }
    assert isinstance(result, VideoResult)
    assert result.id == "vid_1"
    assert result.video_url == "https://cdn.example.com/v.mp4"
    assert result.model == "fal-ai/flux-pro/video" and result.provider == "fal"
    assert result.cost == pytest.approx(0.5) and result.cache_hit is False
    assert result.latency_ms == 45000
    assert result.created_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert result.raw["seconds"] == 5


def test_videos_generate_defaults(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/videos/generate", method="POST").respond_with_json({"id": "v"})
    result = client.videos.generate("fal-ai/flux-pro/video", "a cat")
    assert body(only(httpserver)) == {"model": "fal-ai/flux-pro/video", "prompt": "a cat", "duration_seconds": 5.0}
    assert isinstance(result, VideoResult) and result.video_url is None


def test_videos_generate_wait_false_returns_handle(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/videos/generate", method="POST").respond_with_json(
        {"request_id": "vreq-1", "status": "pending"}, status=202
    )
    handle = client.videos.generate("fal-ai/flux-pro/video", "a cat", wait=False)
    assert only(httpserver).headers["Prefer"] == "respond-async"
    assert isinstance(handle, GenerationRequest) and handle.request_id == "vreq-1"


# -- requests --------------------------------------------------------------------

STATUS_DONE = {
    "request_id": "req-1",
    "status": "completed",
    "media_type": "video",
    "provider": "fal",
    "model": "fal-ai/flux-pro/video",
    "output_url": "https://cdn.example.com/out.mp4",
    "created_at": "2025-01-01T00:00:00Z",
    "completed_at": "2025-01-01T00:01:00Z",
    "queue_position": None,
}


def test_requests_get_once(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/requests/req-1", method="GET").respond_with_json(STATUS_DONE)
    result = client.requests.get("req-1")
    assert only(httpserver).query_string == b""
    assert isinstance(result, RequestStatusResult)
    assert result.request_id == "req-1"
    assert result.status == "completed" and result.is_terminal and result.succeeded
    assert result.media_type == "video" and result.provider == "fal" and result.model == "fal-ai/flux-pro/video"
    assert result.output_url == "https://cdn.example.com/out.mp4"
    assert result.error_message is None
    assert result.created_at == "2025-01-01T00:00:00Z" and result.completed_at == "2025-01-01T00:01:00Z"
    assert "queue_position" in result.raw


def test_requests_get_without_wait_does_not_poll(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/requests/req-1").respond_with_json({"request_id": "req-1", "status": "processing"})
    result = client.requests.get("req-1")
    assert result.status == "processing" and not result.is_terminal
    assert len(sent(httpserver)) == 1


def test_request_id_is_escaped_into_one_segment(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/requests/a/b?c").respond_with_json({"request_id": "a/b?c", "status": "pending"})
    client.requests.get("a/b?c")
    req = only(httpserver)
    assert req.environ["REQUEST_URI"] == P + "/requests/a%2Fb%3Fc"
    assert req.query_string == b""


# -- models ----------------------------------------------------------------------


def test_models_list_query_and_result(httpserver: HTTPServer, client: Client) -> None:
    answer = {
        "models": [MODEL, {"id": "replicate/sdxl", "name": "SDXL", "provider": "replicate"}],
        "total_count": 1704,
        "last_updated": "2025-01-01T00:00:00Z",
        "featured": [{"title": "Fast", "key": "fast", "models": [MODEL]}],
    }
    httpserver.expect_request(P + "/models", method="GET").respond_with_json(answer)
    result = client.models.list(
        provider="fal",
        media_type="image",
        capability="text-to-image",
        search="cat & dog/100%",
        sort="popular",
        limit=20,
        featured=True,
    )
    req = only(httpserver)
    assert query(req) == sorted(
        [
            ("provider", "fal"),
            ("media_type", "image"),
            ("capability", "text-to-image"),
            ("search", "cat & dog/100%"),
            ("sort", "popular"),
            ("limit", "20"),
            ("featured", "true"),
        ]
    )
    assert b"cat+%26+dog%2F100%25" in req.query_string
    assert isinstance(result, ModelsResponse)
    assert result.total_count == 1704 and result.last_updated == "2025-01-01T00:00:00Z"
    assert [m.id for m in result.models] == ["fal-ai/flux/schnell", "replicate/sdxl"]
    assert all(isinstance(m, ModelInfo) for m in result.models)
    assert result.models[1].media_type == "image" and result.models[1].tags == []
    assert isinstance(result.featured, list) and isinstance(result.featured[0], FeaturedSection)
    assert result.featured[0].title == "Fast" and result.featured[0].key == "fast"
    assert result.featured[0].models[0].id == "fal-ai/flux/schnell"


def test_models_list_defaults_and_model_type_alias(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/models", method="GET").respond_with_json({"models": [], "total_count": 0})
    result = client.models.list()
    client.models.list(model_type="video")
    first, second = sent(httpserver)
    assert query(first) == [("limit", "100")]
    assert query(second) == [("limit", "100"), ("media_type", "video")]
    assert result.models == [] and result.total_count == 0 and result.featured is None


def test_models_get_keeps_slashes(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/models/fal-ai/flux/schnell", method="GET").respond_with_json(MODEL)
    model = client.models.get("fal-ai/flux/schnell")
    req = only(httpserver)
    assert req.environ["REQUEST_URI"] == P + "/models/fal-ai/flux/schnell"
    assert isinstance(model, ModelInfo)
    for key, value in MODEL.items():
        if key != "popularity":
            assert getattr(model, key) == value, key
    assert model.raw["popularity"] == 7


def test_models_get_escapes_space_question_mark_and_hash(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/models/org/my model?v=1#x", method="GET").respond_with_json({"id": "org/my model?v=1#x"})
    model = client.models.get("org/my model?v=1#x")
    req = only(httpserver)
    assert req.environ["REQUEST_URI"] == P + "/models/org/my%20model%3Fv%3D1%23x"
    assert req.query_string == b""
    assert model.id == "org/my model?v=1#x"


def test_models_search(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/models", method="GET").respond_with_json({"models": [MODEL], "total_count": 1})
    result = client.models.search("flux schnell", limit=5)
    assert query(only(httpserver)) == [("limit", "5"), ("search", "flux schnell")]
    assert result.models[0].name == "FLUX.1 [schnell]"


# -- usage -----------------------------------------------------------------------


def test_usage_get(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/usage", method="GET").respond_with_json(USAGE_ANSWER)
    usage = client.usage.get(period="week")
    assert query(only(httpserver)) == [("period", "week")]
    assert isinstance(usage, UsageSummary)
    assert (usage.total_requests, usage.successful_requests, usage.failed_requests, usage.cached_requests) == (200, 190, 10, 50)
    assert usage.total_provider_cost == pytest.approx(1.25)
    assert usage.total_billed_cost == pytest.approx(1.5)
    assert usage.total_savings == pytest.approx(0.25)
    assert usage.by_provider == {"fal": {"requests": 150}}
    assert usage.by_model == {"fal-ai/flux/schnell": {"requests": 150}}
    assert usage.period == "week"
    assert usage.period_start == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert usage.period_end == datetime(2025, 1, 8, tzinfo=timezone.utc)
    assert usage.cache_hit_rate == pytest.approx(25.0)


def test_usage_get_older_field_names(httpserver: HTTPServer, client: Client) -> None:
    older = {"total_requests": 257, "total_cost_usd": 0.13, "provider_breakdown": {"fal": 1}}
    httpserver.expect_request(P + "/usage", method="GET").respond_with_json(older)
    usage = client.usage.get()
    assert query(only(httpserver)) == [("period", "month")]
    assert usage.total_billed_cost == pytest.approx(0.13)
    assert usage.by_provider == {"fal": 1}
    assert usage.cached_requests == 0 and usage.cache_hit_rate == 0.0
    assert usage.period == "month" and usage.period_start is None


def test_usage_cache_hit_rate_without_requests(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/usage").respond_with_json({})
    assert client.usage.get().cache_hit_rate == 0.0


LOGS = [{"id": "l1", "model": "fal-ai/flux/schnell", "cost": 0.003}, {"id": "l2", "status": "failed"}]


@pytest.mark.parametrize("answer", [LOGS, {"logs": LOGS, "total": 2}], ids=["list", "object"])
def test_usage_logs(httpserver: HTTPServer, client: Client, answer: Any) -> None:
    httpserver.expect_request(P + "/usage/logs", method="GET").respond_with_json(answer)
    logs = client.usage.logs(limit=10, offset=20)
    assert query(only(httpserver)) == [("limit", "10"), ("offset", "20")]
    assert logs == LOGS


def test_usage_logs_defaults(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/usage/logs").respond_with_json({"logs": []})
    assert client.usage.logs() == []
    assert query(only(httpserver)) == [("limit", "50"), ("offset", "0")]


def test_usage_dashboard(httpserver: HTTPServer, client: Client) -> None:
    answer = {"total_generations": 12, "total_cost_usd": 0.13, "series": [1, 2]}
    httpserver.expect_request(P + "/dashboard", method="GET").respond_with_json(answer)
    assert client.usage.dashboard(period="week") == answer
    assert query(only(httpserver)) == [("period", "week")]


# -- providers -------------------------------------------------------------------


def test_providers_list_keys(httpserver: HTTPServer, client: Client) -> None:
    answer = {
        "keys": [
            {"provider": "fal", "validated": True, "validated_at": "2025-01-01T00:00:00Z", "masked_key": "fal_****abcd"},
            {"provider": "runway", "validated": False},
        ]
    }
    httpserver.expect_request(P + "/providers/keys", method="GET").respond_with_json(answer)
    keys = client.providers.list_keys()
    assert isinstance(keys, ProviderKeysResponse)
    assert all(isinstance(k, ProviderKeyInfo) for k in keys.keys)
    fal, runway = keys.keys
    assert (fal.provider, fal.validated, fal.validated_at, fal.masked_key) == ("fal", True, "2025-01-01T00:00:00Z", "fal_****abcd")
    assert (runway.provider, runway.validated, runway.validated_at, runway.masked_key) == ("runway", False, None, None)


def test_providers_set_key_is_a_put(httpserver: HTTPServer, client: Client) -> None:
    answer = {"provider": "replicate", "validated": True, "masked_key": "r8_****"}
    httpserver.expect_request(P + "/providers/keys", method="PUT").respond_with_json(answer)
    info = client.providers.set_key("replicate", "r8_secret")
    req = only(httpserver)
    assert body(req) == {"provider": "replicate", "api_key": "r8_secret"}
    assert req.headers["Content-Type"] == "application/json"
    assert isinstance(info, ProviderKeyInfo) and info.provider == "replicate" and info.masked_key == "r8_****"


def test_providers_delete_key(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/providers/keys/runway", method="DELETE").respond_with_json({"deleted": True})
    assert client.providers.delete_key("runway") == {"deleted": True}
    assert only(httpserver).method == "DELETE"


def test_providers_delete_key_empty_answer(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/providers/keys/fal", method="DELETE").respond_with_data("", status=204)
    assert client.providers.delete_key("fal") == {}


def test_providers_validate_key(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/providers/validate", method="POST").respond_with_json({"valid": False, "message": "bad key"})
    result = client.providers.validate_key("fal", "fal-wrong")
    assert body(only(httpserver)) == {"provider": "fal", "api_key": "fal-wrong"}
    assert isinstance(result, ProviderValidationResult)
    assert result.valid is False and result.message == "bad key"


def test_providers_balances(httpserver: HTTPServer, client: Client) -> None:
    answer = {
        "balances": [
            {"provider": "fal", "configured": True, "available": True, "remaining": None, "limit": None, "currency": "credits"},
            {"provider": "runway", "configured": True, "available": True, "remaining": 1880.0, "limit": 10000, "currency": "credits", "message": "ok"},
        ]
    }
    httpserver.expect_request(P + "/providers/balances", method="GET").respond_with_json(answer)
    result = client.providers.balances()
    assert isinstance(result, ProviderBalancesResponse)
    assert all(isinstance(b, ProviderBalanceItem) for b in result.balances)
    fal, runway = result.balances
    assert (fal.provider, fal.configured, fal.available, fal.remaining, fal.limit, fal.currency, fal.message) == (
        "fal", True, True, None, None, "credits", None
    )
    assert runway.remaining == 1880.0 and runway.limit == 10000.0 and runway.message == "ok"


# -- auth, api keys, billing ----------------------------------------------------


def test_auth_me(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/auth/me", method="GET").respond_with_json(
        {"organization": {"id": "org_1", "name": "Acme"}, "role": "api-key", "user": None}
    )
    me = client.auth.me()
    assert isinstance(me, AuthInfo)
    assert me.organization == {"id": "org_1", "name": "Acme"}
    assert me.organization_id == "org_1" and me.organization_name == "Acme"
    assert me.role == "api-key"


@pytest.mark.parametrize(
    "answer",
    [
        [{"id": "k1", "name": "ci", "key_prefix": "vg-abc", "created_at": "2025-01-01", "scopes": ["all"]}],
        {"keys": [{"id": "k1", "name": "ci", "key_prefix": "vg-abc", "created_at": "2025-01-01", "scopes": ["all"]}]},
    ],
    ids=["list", "object"],
)
def test_api_keys_list(httpserver: HTTPServer, client: Client, answer: Any) -> None:
    httpserver.expect_request(P + "/api-keys", method="GET").respond_with_json(answer)
    keys = client.api_keys.list()
    assert len(keys) == 1 and isinstance(keys[0], ApiKeyInfo)
    assert (keys[0].id, keys[0].name, keys[0].key_prefix, keys[0].created_at, keys[0].last_used_at) == (
        "k1", "ci", "vg-abc", "2025-01-01", None
    )
    assert keys[0].raw["scopes"] == ["all"]


def test_billing_stats(httpserver: HTTPServer, client: Client) -> None:
    answer = {"active_users": 3, "avg_image_cost_micro": 3000, "total_savings_micro": 10}
    httpserver.expect_request(P + "/billing/stats", method="GET").respond_with_json(answer)
    assert client.billing.stats() == answer


def test_billing_info(httpserver: HTTPServer, client: Client) -> None:
    answer = {
        "balance_micro": 5_000_000,
        "billing_status": "active",
        "company_name": "Acme",
        "free_mode_enabled": False,
        "monthly_budget_cents": 10000,
        "support_email": "help@example.com",
        "tier": "pro",
        "usage_this_month_cents": 1234,
        "extra": 1,
    }
    httpserver.expect_request(P + "/billing/info", method="GET").respond_with_json(answer)
    info = client.billing.info()
    assert isinstance(info, BillingInfo)
    for key, value in answer.items():
        if key != "extra":
            assert getattr(info, key) == value, key
    assert info.raw["extra"] == 1


def test_billing_info_missing_fields_are_none(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/billing/info").respond_with_json({})
    info = client.billing.info()
    assert info.tier is None and info.balance_micro is None and info.raw == {}


def test_billing_pricing(httpserver: HTTPServer, client: Client) -> None:
    answer = {"last_updated": "2025-01-01", "pricing": {"fal-ai/flux/schnell": {"per_image": 0.003}}}
    httpserver.expect_request(P + "/billing/pricing", method="GET").respond_with_json(answer)
    pricing = client.billing.pricing()
    assert isinstance(pricing, BillingPricing)
    assert pricing.last_updated == "2025-01-01" and pricing.pricing == answer["pricing"]


# -- per-call timeout ----------------------------------------------------------------


def _slow(seconds: float, payload: Any) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        time.sleep(seconds)
        return json_response(payload)

    return handler


def test_per_call_timeout_overrides_client_timeout(tserver: HTTPServer) -> None:
    tserver.expect_request(P + "/health").respond_with_handler(_slow(0.5, {"status": "ok"}))
    client = Client("vg-k", base_url=tserver.url_for(P), timeout=30, max_retries=0)
    with client, pytest.raises(visgate_sdk.TimeoutError) as info:
        client.health(timeout=0.1)
    assert isinstance(info.value, visgate_sdk.VisgateError)


def test_per_call_timeout_on_a_post(tserver: HTTPServer) -> None:
    tserver.expect_request(P + "/generate", method="POST").respond_with_handler(_slow(0.5, GENERATE_ANSWER))
    with Client("vg-k", base_url=tserver.url_for(P), timeout=30, max_retries=0) as client, pytest.raises(visgate_sdk.TimeoutError):
        client.generate("a cat", timeout=0.1)


def test_per_call_timeout_can_be_longer_than_the_client_timeout(tserver: HTTPServer) -> None:
    tserver.expect_request(P + "/health").respond_with_handler(_slow(0.3, {"status": "ok"}))
    with Client("vg-k", base_url=tserver.url_for(P), timeout=0.05, max_retries=0) as client:
        assert client.health(timeout=10)["status"] == "ok"


# -- polling -----------------------------------------------------------------------


def _accept(server: HTTPServer, path: str = "/images/generate", request_id: str = "req-1") -> None:
    server.expect_request(P + path, method="POST").respond_with_json({"request_id": request_id, "status": "pending"}, status=202)


def _status(status: str, **extra: Any) -> Response:
    return json_response(dict({"request_id": "req-1", "status": status, "media_type": "image"}, **extra))


def test_handle_wait_returns_completed_status(httpserver: HTTPServer, client: Client) -> None:
    _accept(httpserver)
    httpserver.expect_request(P + "/requests/req-1", method="GET").respond_with_handler(
        in_turn(_status("pending"), _status("processing"), _status("completed", output_url="https://cdn.example.com/o.png"))
    )
    handle = client.images.generate("fal-ai/flux/schnell", "a cat", wait=False)
    assert isinstance(handle, GenerationRequest)
    result = handle.wait(timeout=10, poll_interval=0.01)
    assert isinstance(result, RequestStatusResult)
    assert result.status == "completed" and result.succeeded
    assert result.output_url == "https://cdn.example.com/o.png"
    polls = [r for r in sent(httpserver) if r.method == "GET"]
    assert len(polls) == 3
    assert all(r.path == P + "/requests/req-1" for r in polls)


def test_handle_refresh_fetches_once(httpserver: HTTPServer, client: Client) -> None:
    _accept(httpserver, "/videos/generate")
    httpserver.expect_request(P + "/requests/req-1").respond_with_handler(in_turn(_status("processing")))
    handle = client.videos.generate("m/v", "a cat", wait=False)
    result = handle.refresh()
    assert result.status == "processing" and handle.status == "processing"
    assert len([r for r in sent(httpserver) if r.method == "GET"]) == 1


def test_handle_wait_past_deadline_raises_timeout_with_request_id(httpserver: HTTPServer, client: Client) -> None:
    _accept(httpserver)
    httpserver.expect_request(P + "/requests/req-1").respond_with_handler(in_turn(_status("processing")))
    handle = client.images.generate("fal-ai/flux/schnell", "a cat", wait=False)
    with pytest.raises(visgate_sdk.TimeoutError) as info:
        without_hanging(lambda: handle.wait(timeout=0.3, poll_interval=0.02))
    err = info.value
    assert err.request_id == "req-1"
    assert err.last_status == "processing"
    assert err.error_code == "POLL_TIMEOUT"
    assert "req-1" in str(err)
    assert len([r for r in sent(httpserver) if r.method == "GET"]) >= 2


def test_handle_wait_failed_job_returns_failed_status(httpserver: HTTPServer, client: Client) -> None:
    _accept(httpserver)
    httpserver.expect_request(P + "/requests/req-1").respond_with_handler(
        in_turn(_status("processing"), _status("failed", error_message="provider exploded"))
    )
    result = client.images.generate("fal-ai/flux/schnell", "a cat", wait=False).wait(timeout=10, poll_interval=0.01)
    assert result.status == "failed" and result.is_terminal and not result.succeeded
    assert result.error_message == "provider exploded"
    assert result.output_url is None


def test_requests_get_wait_true_polls_to_completion(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/requests/req-1").respond_with_handler(
        in_turn(_status("accepted"), _status("processing"), _status("completed", output_url="https://x/o.mp4"))
    )
    result = client.requests.get("req-1", wait=True, timeout=10, poll_interval=0.01)
    assert result.status == "completed" and result.output_url == "https://x/o.mp4"
    assert len(sent(httpserver)) == 3


def test_requests_get_wait_true_times_out(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/requests/req-1").respond_with_handler(in_turn(_status("pending")))
    with pytest.raises(visgate_sdk.TimeoutError) as info:
        without_hanging(lambda: client.requests.get("req-1", wait=True, timeout=0.2, poll_interval=0.02))
    assert info.value.request_id == "req-1" and info.value.last_status == "pending"


def test_requests_get_wait_true_failed(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/requests/req-1").respond_with_handler(in_turn(_status("failed", error_message="nsfw")))
    result = client.requests.get("req-1", wait=True, timeout=10, poll_interval=0.01)
    assert result.status == "failed" and result.error_message == "nsfw"
    assert len(sent(httpserver)) == 1


def test_polling_never_waits_for_a_slow_status_call_past_its_deadline(tserver: HTTPServer) -> None:
    # Each status GET takes far longer than the whole polling budget: the GET itself is cut off.
    tserver.expect_request(P + "/requests/req-1").respond_with_handler(_slow(5.0, {"request_id": "req-1", "status": "pending"}))
    client = Client("vg-k", base_url=tserver.url_for(P), timeout=30, max_retries=0)
    started = time.monotonic()
    with client, pytest.raises(visgate_sdk.TimeoutError):
        without_hanging(lambda: client.requests.get("req-1", wait=True, timeout=0.2, poll_interval=0.05))
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, "polling with timeout=0.2 waited %.1fs for a 5 s status call" % elapsed


# -- idempotency ---------------------------------------------------------------------


def test_all_attempts_of_one_post_share_one_idempotency_key(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_handler(
        in_turn(json_response({"error": "UNAVAILABLE"}, 503), json_response({"error": "UNAVAILABLE"}, 503), json_response(GENERATE_ANSWER))
    )
    client = make_client(max_retries=fast_retry(2))
    assert client.generate("a cat").id == "gen_123"
    keys = [r.headers.get("Idempotency-Key") for r in sent(httpserver)]
    assert len(keys) == 3
    assert keys[0] and keys[0] == keys[1] == keys[2]
    bodies = [body(r) for r in sent(httpserver)]
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(
    "path,call",
    [
        ("/generate", lambda c: c.generate("a cat")),
        ("/images/generate", lambda c: c.images.generate("m/x", "a cat")),
        ("/videos/generate", lambda c: c.videos.generate("m/x", "a cat")),
    ],
    ids=["generate", "images", "videos"],
)
def test_two_calls_carry_different_idempotency_keys(httpserver: HTTPServer, client: Client, path: str, call: Any) -> None:
    httpserver.expect_request(P + path, method="POST").respond_with_json({"id": "x"})
    call(client)
    call(client)
    first, second = [r.headers.get("Idempotency-Key") for r in sent(httpserver)]
    assert first and second and first != second


@pytest.mark.parametrize(
    "path,call",
    [
        ("/generate", lambda c, k: c.generate("a cat", idempotency_key=k)),
        ("/images/generate", lambda c, k: c.images.generate("m/x", "a cat", idempotency_key=k)),
        ("/videos/generate", lambda c, k: c.videos.generate("m/x", "a cat", idempotency_key=k)),
    ],
    ids=["generate", "images", "videos"],
)
def test_user_idempotency_key_is_sent_as_is(httpserver: HTTPServer, client: Client, path: str, call: Any) -> None:
    httpserver.expect_request(P + path, method="POST").respond_with_json({"id": "x"})
    call(client, "order-42:attempt")
    call(client, "order-42:attempt")
    assert [r.headers.get("Idempotency-Key") for r in sent(httpserver)] == ["order-42:attempt", "order-42:attempt"]


def test_user_idempotency_key_is_kept_across_retries(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_handler(
        in_turn(json_response({}, 502), json_response({"id": "i", "images": []}))
    )
    make_client(max_retries=fast_retry(1)).images.generate("m/x", "a cat", idempotency_key="mine-1")
    assert [r.headers.get("Idempotency-Key") for r in sent(httpserver)] == ["mine-1", "mine-1"]


# -- bad input fails before anything is sent -------------------------------------

BAD_CALLS = [
    ("empty prompt", lambda c: c.generate(""), "prompt"),
    ("blank prompt", lambda c: c.generate("   "), "prompt"),
    ("prompt not a string", lambda c: c.generate(None), "prompt"),
    ("empty model", lambda c: c.generate("a cat", model=""), "model"),
    ("generate params not a dict", lambda c: c.generate("a cat", params=[("steps", 4)]), "params"),
    ("images empty prompt", lambda c: c.images.generate("m/x", ""), "prompt"),
    ("images empty model", lambda c: c.images.generate("", "a cat"), "model"),
    ("width not int", lambda c: c.images.generate("m/x", "a cat", width="512"), "width"),
    ("width float", lambda c: c.images.generate("m/x", "a cat", width=512.5), "width"),
    ("width bool", lambda c: c.images.generate("m/x", "a cat", width=True), "width"),
    ("height zero", lambda c: c.images.generate("m/x", "a cat", height=0), "height"),
    ("num_images zero", lambda c: c.images.generate("m/x", "a cat", num_images=0), "num_images"),
    ("num_images bool", lambda c: c.images.generate("m/x", "a cat", num_images=True), "num_images"),
    ("seed bool", lambda c: c.images.generate("m/x", "a cat", seed=False), "seed"),
    ("images params not a dict", lambda c: c.images.generate("m/x", "a cat", params="steps=4"), "params"),
    ("params clash width", lambda c: c.images.generate("m/x", "a cat", width=768, params={"width": 512}), "width"),
    ("params clash prompt", lambda c: c.images.generate("m/x", "a cat", params={"prompt": "other"}), "prompt"),
    ("params not JSON", lambda c: c.images.generate("m/x", "a cat", params={"x": object()}), "params"),
    ("params NaN", lambda c: c.images.generate("m/x", "a cat", params={"x": float("nan")}), "params"),
    ("duration NaN", lambda c: c.videos.generate("m/v", "a cat", duration_seconds=float("nan")), "duration_seconds"),
    ("duration inf", lambda c: c.videos.generate("m/v", "a cat", duration_seconds=math.inf), "duration_seconds"),
    ("duration zero", lambda c: c.videos.generate("m/v", "a cat", duration_seconds=0), "duration_seconds"),
    ("duration string", lambda c: c.videos.generate("m/v", "a cat", duration_seconds="5"), "duration_seconds"),
    ("duration bool", lambda c: c.videos.generate("m/v", "a cat", duration_seconds=True), "duration_seconds"),
    ("video params clash", lambda c: c.videos.generate("m/v", "a cat", duration_seconds=4, params={"duration_seconds": 3}), "duration_seconds"),
    ("video image_url not a string", lambda c: c.videos.generate("m/v", "a cat", image_url=5), "image_url"),
    ("bad period", lambda c: c.usage.get(period=7), "period"),
    ("bad dashboard period", lambda c: c.usage.dashboard(period=["week"]), "period"),
    ("negative offset", lambda c: c.usage.logs(offset=-1), "offset"),
    ("zero limit", lambda c: c.usage.logs(limit=0), "limit"),
    ("models limit zero", lambda c: c.models.list(limit=0), "limit"),
    ("models limit bool", lambda c: c.models.list(limit=True), "limit"),
    ("provider filter not a string", lambda c: c.models.list(provider=5), "provider"),
    ("model id ..", lambda c: c.models.get("fal-ai/../admin"), "model_id"),
    ("model id .", lambda c: c.models.get("./flux"), "model_id"),
    ("model id empty segment", lambda c: c.models.get("fal-ai//flux"), "model_id"),
    ("model id trailing slash", lambda c: c.models.get("fal-ai/flux/"), "model_id"),
    ("model id empty", lambda c: c.models.get(""), "model_id"),
    ("search not a string", lambda c: c.models.search(5), "query"),
    ("empty request id", lambda c: c.requests.get(""), "request_id"),
    ("request id ..", lambda c: c.requests.get(".."), "request_id"),
    ("poll timeout zero", lambda c: c.requests.get("req-1", wait=True, timeout=0), "timeout"),
    ("poll interval negative", lambda c: c.requests.get("req-1", wait=True, poll_interval=-1), "poll_interval"),
    ("call timeout zero", lambda c: c.health(timeout=0), "timeout"),
    ("call timeout negative", lambda c: c.generate("a cat", timeout=-1), "timeout"),
    ("call timeout NaN", lambda c: c.models.list(timeout=float("nan")), "timeout"),
    ("idempotency key CRLF", lambda c: c.generate("a cat", idempotency_key="k\r\nX-Evil: 1"), "Idempotency-Key"),
    ("idempotency key empty", lambda c: c.generate("a cat", idempotency_key=""), "idempotency_key"),
    ("set_key empty provider", lambda c: c.providers.set_key("", "secret"), "provider"),
    ("set_key empty key", lambda c: c.providers.set_key("fal", ""), "api_key"),
    ("delete_key empty provider", lambda c: c.providers.delete_key(""), "provider"),
    ("delete_key ..", lambda c: c.providers.delete_key(".."), "provider"),
    ("validate_key empty key", lambda c: c.providers.validate_key("fal", ""), "api_key"),
    ("set_provider_headers CRLF", lambda c: c.set_provider_headers(fal_key="fal\r\nX-Evil: 1"), "fal_key"),
]


@pytest.mark.parametrize("name,call,field", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_raises_before_sending(httpserver: HTTPServer, client: Client, name: str, call: Any, field: str) -> None:
    httpserver.expect_request(P + "/generate").respond_with_json(GENERATE_ANSWER)
    with pytest.raises(ValidationError) as info:
        call(client)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, visgate_sdk.VisgateError)
    assert err.field == field
    assert err.status_code == 422  # the reference client's default: what the server would answer
    assert httpserver.log == []


BAD_CLIENTS: List[Any] = [
    ("api_key CRLF", dict(api_key="vg-abc\r\nX-Evil: 1"), "api_key"),
    ("api_key LF", dict(api_key="vg-abc\nX-Evil: 1"), "api_key"),
    ("api_key not a string", dict(api_key=12345), "api_key"),
    ("fal_key CRLF", dict(fal_key="fal\r\nX-Evil: 1"), "fal_key"),
    ("replicate_key LF", dict(replicate_key="r8\nX-Evil: 1"), "replicate_key"),
    ("runway_key NUL", dict(runway_key="rw\x00"), "runway_key"),
    ("default header value CRLF", dict(default_headers={"X-Trace": "a\r\nX-Evil: 1"}), "X-Trace"),
    ("default header name CRLF", dict(default_headers={"X-A\r\nX-Evil": "1"}), "default_headers"),
    ("default header name colon", dict(default_headers={"X-A: b": "1"}), "default_headers"),
    ("default header name empty", dict(default_headers={"": "1"}), "default_headers"),
    ("ftp base_url", dict(base_url="ftp://visgateai.com/api/v1"), "base_url"),
    ("base_url without host", dict(base_url="https:///api/v1"), "base_url"),
    ("base_url without scheme", dict(base_url="visgateai.com/api/v1"), "base_url"),
    ("base_url with credentials", dict(base_url="https://user:pass@visgateai.com/api/v1"), "base_url"),
    ("base_url with user only", dict(base_url="https://user@visgateai.com/api/v1"), "base_url"),
    ("base_url with query", dict(base_url="https://visgateai.com/api/v1?x=1"), "base_url"),
    ("base_url with fragment", dict(base_url="https://visgateai.com/api/v1#x"), "base_url"),
    ("base_url bad port", dict(base_url="https://visgateai.com:99999/api/v1"), "base_url"),
    ("base_url CRLF", dict(base_url="https://visgateai.com/api\r\n/v1"), "base_url"),
    ("timeout zero", dict(timeout=0), "timeout"),
    ("timeout negative", dict(timeout=-5), "timeout"),
    ("timeout NaN", dict(timeout=float("nan")), "timeout"),
    ("timeout string", dict(timeout="30"), "timeout"),
    ("max_retries negative", dict(max_retries=-1), "max_retries"),
    ("max_retries bool", dict(max_retries=True), "max_retries"),
    ("max_retries float", dict(max_retries=2.5), "max_retries"),
]


@pytest.mark.parametrize("name,kwargs,field", BAD_CLIENTS, ids=[b[0] for b in BAD_CLIENTS])
def test_bad_client_configuration(httpserver: HTTPServer, name: str, kwargs: Dict[str, Any], field: str) -> None:
    kwargs = dict(kwargs)
    kwargs.setdefault("api_key", "vg-k")
    kwargs.setdefault("base_url", httpserver.url_for(P))
    with pytest.raises(ValidationError) as info:
        Client(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert httpserver.log == []


def test_secret_in_bad_header_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        Client(api_key="vg-supersecret\r\nX-Evil: 1")
    assert "supersecret" not in str(info.value) and "supersecret" not in repr(info.value)


def test_retry_total_negative_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        Retry(total=-1)
    assert info.value.field == "max_retries"


def test_base_url_error_does_not_echo_credentials() -> None:
    with pytest.raises(ValidationError) as info:
        Client(api_key="vg-k", base_url="https://alice:hunter2@visgateai.com/api/v1")
    assert "hunter2" not in str(info.value)


# -- missing API key ----------------------------------------------------------------


def test_no_api_key_public_endpoints_work_without_authorization(httpserver: HTTPServer) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})
    httpserver.expect_request(P + "/models").respond_with_json({"models": [], "total_count": 0})
    httpserver.expect_request(P + "/models/fal-ai/flux/schnell").respond_with_json(MODEL)
    with Client(base_url=httpserver.url_for(P)) as client:
        assert client.api_key == ""
        assert client.health() == {"status": "ok"}
        assert client.models.list(limit=5).total_count == 0
        assert client.models.get("fal-ai/flux/schnell").id == "fal-ai/flux/schnell"
        assert client.models.search("flux").models == []
    assert len(sent(httpserver)) == 4
    for req in sent(httpserver):
        assert "Authorization" not in req.headers
        assert req.headers["User-Agent"] == UA


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.generate("a cat"),
        lambda c: c.images.generate("m/x", "a cat"),
        lambda c: c.videos.generate("m/x", "a cat"),
        lambda c: c.requests.get("req-1"),
        lambda c: c.usage.get(),
        lambda c: c.usage.logs(),
        lambda c: c.usage.dashboard(),
        lambda c: c.providers.list_keys(),
        lambda c: c.providers.set_key("fal", "k"),
        lambda c: c.providers.delete_key("fal"),
        lambda c: c.providers.validate_key("fal", "k"),
        lambda c: c.providers.balances(),
        lambda c: c.auth.me(),
        lambda c: c.api_keys.list(),
        lambda c: c.billing.stats(),
        lambda c: c.billing.info(),
        lambda c: c.billing.pricing(),
    ],
)
def test_no_api_key_authenticated_call_fails_before_sending(httpserver: HTTPServer, call: Any) -> None:
    with Client(base_url=httpserver.url_for(P), fal_key="fal-k") as client, pytest.raises(AuthenticationError) as info:
        call(client)
    assert info.value.status_code is None
    assert "VISGATE_API_KEY" in info.value.message
    assert httpserver.log == []


def test_blank_api_key_counts_as_missing(httpserver: HTTPServer) -> None:
    with Client(api_key="   ", base_url=httpserver.url_for(P)) as client, pytest.raises(AuthenticationError):
        client.auth.me()
    assert httpserver.log == []


# -- configuration ----------------------------------------------------------------


def test_env_api_key_and_base_url(httpserver: HTTPServer, point_env: Any) -> None:
    point_env(httpserver, "vg-from-env")
    httpserver.expect_request(P + "/auth/me").respond_with_json({"role": "api-key"})
    with Client(max_retries=0) as client:
        assert client.api_key == "vg-from-env"
        assert client.base_url == httpserver.url_for(P)
        assert client.auth.me().role == "api-key"
    assert only(httpserver).headers["Authorization"] == "Bearer vg-from-env"


def test_arguments_beat_environment(httpserver: HTTPServer, point_env: Any) -> None:
    point_env("https://wrong.invalid/api/v1", "vg-from-env")
    httpserver.expect_request(P + "/auth/me").respond_with_json({"role": "api-key"})
    with Client(api_key="vg-explicit", base_url=httpserver.url_for(P), max_retries=0) as client:
        client.auth.me()
    assert only(httpserver).headers["Authorization"] == "Bearer vg-explicit"


def test_default_base_url_and_trailing_slash() -> None:
    assert Client().base_url == "https://visgateai.com/api/v1" == visgate_sdk.DEFAULT_BASE_URL
    assert Client(base_url="https://example.com/api/v1/").base_url == "https://example.com/api/v1"


def test_trailing_slash_base_url_builds_clean_paths(httpserver: HTTPServer) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})
    with Client(base_url=httpserver.url_for(P) + "/", max_retries=0) as client:
        client.health()
    assert only(httpserver).environ["REQUEST_URI"] == P + "/health"


def test_defaults_match_reference() -> None:
    client = Client(api_key="vg-k")
    assert client.timeout == 120.0 == visgate_sdk.DEFAULT_TIMEOUT
    assert client.max_retries == 2 == visgate_sdk.DEFAULT_MAX_RETRIES
    assert Client(api_key="vg-k", max_retries=Retry(total=5)).max_retries == 5


def test_repr_shows_base_url_and_no_secrets(httpserver: HTTPServer) -> None:
    client = Client(
        api_key="vg-SECRET-api",
        base_url=httpserver.url_for(P),
        fal_key="fal-SECRET",
        replicate_key="r8-SECRET",
        runway_key="rw-SECRET",
    )
    text = repr(client)
    assert text == "Client(base_url=%r)" % httpserver.url_for(P)
    assert "SECRET" not in text and "SECRET" not in str(client)


def test_context_manager_closes(httpserver: HTTPServer) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})
    with Client("vg-k", base_url=httpserver.url_for(P), max_retries=0) as client:
        assert isinstance(client, Client)
        client.health()
    with pytest.raises(visgate_sdk.ConnectionError):
        client.health()
    assert len(sent(httpserver)) == 1


def test_close_is_idempotent(httpserver: HTTPServer) -> None:
    client = Client("vg-k", base_url=httpserver.url_for(P))
    client.close()
    client.close()
    with pytest.raises(visgate_sdk.ConnectionError):
        client.health()
    assert httpserver.log == []


def test_set_provider_headers_replaces_byok_keys(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(GENERATE_ANSWER)
    client = make_client(fal_key="fal-1", replicate_key="r8-1", runway_key="rw-1", timeout=7.5)
    client.generate("a cat")
    client.set_provider_headers(fal_key="fal-2")
    client.generate("a cat")
    client.set_provider_headers()
    client.generate("a cat")
    first, second, third = [r.headers for r in sent(httpserver)]
    assert (first["X-Fal-Key"], first["X-Replicate-Key"], first["X-Runway-Key"]) == ("fal-1", "r8-1", "rw-1")
    assert second["X-Fal-Key"] == "fal-2"
    assert "X-Replicate-Key" not in second and "X-Runway-Key" not in second
    assert not any(h in third for h in ("X-Fal-Key", "X-Replicate-Key", "X-Runway-Key"))
    assert third["Authorization"] == "Bearer " + client.api_key
    assert client.timeout == 7.5


def test_set_provider_headers_keeps_the_users_timeout(tserver: HTTPServer) -> None:
    # The reference client rebuilt its HTTP client with a 120 s timeout here.
    tserver.expect_request(P + "/health").respond_with_handler(_slow(0.5, {"status": "ok"}))
    with Client("vg-k", base_url=tserver.url_for(P), timeout=0.1, max_retries=0) as client:
        client.set_provider_headers(runway_key="rw-1")
        with pytest.raises(visgate_sdk.TimeoutError):
            client.health()
        assert client.timeout == 0.1


def test_default_headers_are_sent_but_auth_wins(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})
    client = make_client(default_headers={"X-Trace-Id": "t-1", "Authorization": "Bearer other"})
    client.health()
    headers = only(httpserver).headers
    assert headers["X-Trace-Id"] == "t-1"
    assert headers["Authorization"] == "Bearer " + client.api_key


def test_client_is_usable_from_many_threads(tserver: HTTPServer) -> None:
    tserver.expect_request(P + "/health").respond_with_json({"status": "ok"})
    errors: List[BaseException] = []
    with Client("vg-k", base_url=tserver.url_for(P), max_retries=0, default_headers={"X-Test": "threads"}) as client:

        def work() -> None:
            try:
                for _ in range(5):
                    assert client.health() == {"status": "ok"}
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len([r for r in sent(tserver) if r.headers.get("X-Test") == "threads"]) == 40


def test_results_are_dataclasses_with_raw_out_of_equality() -> None:
    a = ImageResult.from_dict({"id": "i", "images": ["u"], "x": 1})
    b = ImageResult.from_dict({"id": "i", "images": ["u"], "x": 2})
    assert a == b and a.raw != b.raw
    assert "raw" not in repr(a)


# -- documented limits and defaults ---------------------------------------------------


def test_images_smallest_size_is_sent_and_zero_is_refused(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(IMAGE_ANSWER)
    client.images.generate("m/x", "a dot", width=1, height=1)
    assert (body(only(httpserver))["width"], body(only(httpserver))["height"]) == (1, 1)
    for kwargs in ({"width": 0}, {"height": 0}, {"width": -1}):
        with pytest.raises(ValidationError) as info:
            client.images.generate("m/x", "a dot", **kwargs)
        assert info.value.field == next(iter(kwargs))
    assert len(sent(httpserver)) == 1


def _readme_configuration_table() -> Dict[str, str]:
    """README's "Configuration" table: parameter -> the default column, without backticks."""
    readme = (Path(visgate_sdk.__file__).resolve().parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: Dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_readme_configuration_table_matches_the_code() -> None:
    table = _readme_configuration_table()
    assert {"api_key", "base_url", "timeout", "max_retries", "verify", "trust_env", "max_concurrency"} <= set(table)
    sync = inspect.signature(Client).parameters
    concurrency = inspect.signature(AsyncClient).parameters["max_concurrency"].default
    for name, documented in table.items():
        if name == "max_concurrency":
            actual: Any = concurrency
        elif name == "api_key":
            assert "$VISGATE_API_KEY" in documented
            continue
        elif name == "base_url":
            assert "$VISGATE_BASE_URL" in documented and visgate_sdk.DEFAULT_BASE_URL in documented
            continue
        else:
            assert name in sync, "README documents %s, which Client does not take" % name
            actual = sync[name].default
        assert documented.split("`")[1] == repr(actual), (name, documented, actual)


def test_default_limits_are_the_module_constants() -> None:
    sync = inspect.signature(Client).parameters
    assert sync["timeout"].default == visgate_sdk.DEFAULT_TIMEOUT == 120.0
    assert sync["max_retries"].default == visgate_sdk.DEFAULT_MAX_RETRIES == 2
    assert sync["max_response_bytes"].default == visgate_sdk._MAX_RESPONSE_BYTES == 256 * 1024 * 1024
    assert inspect.signature(Client.download).parameters["max_bytes"].default == visgate_sdk._MAX_DOWNLOAD_BYTES == 2 * 1024**3
    assert inspect.signature(AsyncClient).parameters["max_concurrency"].default == visgate_sdk._DEFAULT_MAX_CONCURRENCY == 100
    assert visgate_sdk._MAX_REDIRECTS == 5


def test_latin1_header_values_are_sent_intact(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})
    make_client(default_headers={"X-Label": "caf\xe9 \xff"}).health()
    assert only(httpserver).headers["X-Label"] == "caf\xe9 \xff"  # the whole Latin-1 range, up to \xff
    with pytest.raises(ValidationError):
        make_client(default_headers={"X-Label": "\u0100"})  # past Latin-1: refused, not mangled


def test_cli_defaults_are_the_librarys() -> None:
    args = visgate_sdk._cli_parser().parse_args(["image", "a cat"])
    defaults = inspect.signature(visgate_sdk.Images.generate).parameters
    assert (args.width, args.height, args.num_images) == (defaults["width"].default, defaults["height"].default, defaults["num_images"].default)
    assert args.width == args.height == 1024
