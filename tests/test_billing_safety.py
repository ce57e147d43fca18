"""Money: what is retried, what is not, and what a cache hit reports."""

from __future__ import annotations

import pytest

from tests.conftest import fast_retry
from visgate_sdk import ProviderError, ServerError

CLIENT_DEFAULTS = {"api_key": "vg-k", "max_retries": fast_retry(3)}  # for make_client


def test_provider_failure_is_not_retried(httpserver, make_client):
    # The provider ran and failed: retrying would bill (or log) a failed run again.
    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(
        {"error": "PROVIDER_ERROR", "message": "fal: content policy", "details": {"provider": "fal"}}, status=502
    )
    with make_client() as client, pytest.raises(ProviderError) as info:
        client.images.generate("fal-ai/flux/schnell", "a cat")
    assert info.value.provider == "fal"
    assert len(httpserver.log) == 1


def test_plain_502_from_a_proxy_is_still_retried(httpserver, make_client):
    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_data(
        "<html>bad gateway</html>", status=502, content_type="text/html"
    )
    with make_client() as client, pytest.raises(ServerError):
        client.images.generate("fal-ai/flux/schnell", "a cat")
    assert len(httpserver.log) == 4
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert len(keys) == 1  # all four attempts are one billable call to the server


def test_generate_reports_cache_hits(httpserver, make_client):
    httpserver.expect_request("/api/v1/generate", method="POST").respond_with_json(
        {"id": "g", "image_url": "http://x/a.png", "images": ["http://x/a.png"], "model": "m", "provider": "fal",
         "estimated_cost_usd": 0, "cache_hit": True, "provider_cost_avoided_micro": 3000}
    )
    with make_client() as client:
        result = client.generate("a sunset")
    assert result.cache_hit is True
    assert result.provider_cost_avoided_micro == 3000
    assert result.cost == 0.0


def test_fractional_integers_from_the_server_are_rounded_not_fatal(httpserver, make_client):
    # The API documents integers; a server that sends 812.6 must not break every generation.
    httpserver.expect_request("/api/v1/images/generate", method="POST").respond_with_json(
        {"id": "i", "images": ["http://x/a.png"], "model": "m", "provider": "fal", "cost": 0.01, "latency_ms": 812.6}
    )
    with make_client() as client:
        result = client.images.generate("m", "a cat")
    assert result.latency_ms == 813
