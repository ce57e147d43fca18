"""The published reference client's README (visgate-sdk 0.0.3), run against our client.

Each snippet below is copied from the README exactly as a user would type it (only the
indentation lost in the text dump is restored). They run against a local HTTP server that
answers like the API, with VISGATE_API_KEY and VISGATE_BASE_URL set in the environment."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request

import visgate_sdk
from tests.conftest import TEST_API_KEY

P = "/api/v1"
ENV_KEY = TEST_API_KEY  # what the env_server fixture puts in VISGATE_API_KEY

# -- the README's snippets, verbatim ---------------------------------------------------------

QUICKSTART = '''\
from visgate_sdk import Client
client = Client() # reads VISGATE_API_KEY from environment
result = client.generate("a sunset over Istanbul")
print(result.image_url)
client.close()
'''

CONTEXT_MANAGER = '''\
with Client() as client:
    result = client.generate("a sunset over Istanbul", model="fal-ai/flux/schnell")
    print(result.image_url, result.cost, result.provider)
'''

PASS_DIRECTLY = '''\
client = Client(api_key="vg-...")
'''

BYOK = '''\
client = Client(
    fal_key="fal_...",
    replicate_key="r8_...",
    runway_key="rw_...",
)
'''

GENERATION = '''\
# Quick generation
result = client.generate("a cat in space", model="fal-ai/flux/schnell")
# Full control
result = client.images.generate(
    model="fal-ai/flux/schnell",
    prompt="a cat in space",
    width=1024,
    height=1024,
    num_images=1,
)
'''

VIDEOS = '''\
result = client.videos.generate(
    model="fal-ai/flux-pro/video",
    prompt="Cinematic drone over Istanbul at golden hour, Bosphorus and minarets",
    duration_seconds=5.0,
)
print(result.video_url)
'''

MODELS = '''\
models = client.models.list(provider="fal", media_type="image", limit=20)
for m in models.models:
    print(m.id, m.name)
model = client.models.get("fal-ai/flux/schnell")
'''

USAGE = '''\
usage = client.usage.get(period="month")
print(f"Requests: {usage.total_requests}, Cost: ${usage.total_billed_cost:.4f}")
logs = client.usage.logs(limit=50)
dashboard = client.usage.dashboard(period="week")
'''

PROVIDERS = '''\
keys = client.providers.list_keys()
balances = client.providers.balances()
'''

HEALTH = '''\
health = client.health()
print(health["status"]) # "ok"
'''

ASYNC = '''\
from visgate_sdk import AsyncClient
import asyncio

async def main():
    async with AsyncClient() as client:
        result = await client.generate("a sunset")
        models = await client.models.list(limit=10)

asyncio.run(main())
'''

EXCEPTIONS = '''\
from visgate_sdk import Client
from visgate_sdk.exceptions import (
    AuthenticationError,
    RateLimitError,
    ProviderError,
    ValidationError,
    TimeoutError,
    VisgateError,
)

with Client() as client:
    try:
        result = client.generate("a sunset")
    except AuthenticationError:
        print("Check your API key")
    except RateLimitError as e:
        print(f"Slow down. Retry after {e.retry_after}s")
    except ProviderError as e:
        print(f"Provider {e.provider} failed: {e.message}")
    except TimeoutError:
        print("Request timed out")
    except VisgateError as e:
        print(f"API error [{e.error_code}]: {e.message}")
'''

# The first two lines of the quickstart: what the later snippets assume has run.
SETUP = '''\
from visgate_sdk import Client
client = Client() # reads VISGATE_API_KEY from environment
'''

# -- a server that answers like the API -------------------------------------------------------

SUNSET = "https://cdn.example.com/sunset-istanbul.png"
CAT = "https://cdn.example.com/cat-in-space.png"
VIDEO = "https://cdn.example.com/istanbul.mp4"

FLUX = {"id": "fal-ai/flux/schnell", "name": "FLUX.1 [schnell]", "provider": "fal", "media_type": "image"}
FLUX_DEV = {"id": "fal-ai/flux/dev", "name": "FLUX.1 [dev]", "provider": "fal", "media_type": "image"}


def _generate_answer(request: Request) -> Dict[str, Any]:
    prompt = json.loads(request.get_data())["prompt"]
    url = CAT if "cat" in prompt else SUNSET
    return {
        "id": "gen_1",
        "image_url": url,
        "images": [url],
        "model": "fal-ai/flux/schnell",
        "provider": "fal",
        "mode": "managed",
        "estimated_cost_usd": 0.003,
        "cost_per_megapixel_usd": 0.003,
        "latency_ms": 900,
        "resolution": {"width": 1024, "height": 1024},
        "created_at": "2025-06-01T12:00:00Z",
    }


def _json(payload: Any, status: int = 200) -> Any:
    from werkzeug import Response

    return Response(json.dumps(payload), status=status, content_type="application/json")


@pytest.fixture
def api(env_server: HTTPServer) -> HTTPServer:
    server = env_server
    server.expect_request(P + "/generate", method="POST").respond_with_handler(lambda r: _json(_generate_answer(r)))
    server.expect_request(P + "/images/generate", method="POST").respond_with_json(
        {"id": "img_1", "images": [CAT], "model": "fal-ai/flux/schnell", "provider": "fal", "cost": 0.003, "cache_hit": False}
    )
    server.expect_request(P + "/videos/generate", method="POST").respond_with_json(
        {"id": "vid_1", "video_url": VIDEO, "model": "fal-ai/flux-pro/video", "provider": "fal", "cost": 0.4}
    )
    server.expect_request(P + "/models/fal-ai/flux/schnell", method="GET").respond_with_json(FLUX)
    server.expect_request(P + "/models", method="GET").respond_with_json({"models": [FLUX, FLUX_DEV], "total_count": 1704})
    server.expect_request(P + "/usage/logs", method="GET").respond_with_json([{"id": "log_1"}])
    server.expect_request(P + "/dashboard", method="GET").respond_with_json({"total_generations": 257, "total_cost_usd": 0.13})
    server.expect_request(P + "/providers/keys", method="GET").respond_with_json(
        {"keys": [{"provider": "fal", "validated": True, "masked_key": "fal_****"}]}
    )
    server.expect_request(P + "/providers/balances", method="GET").respond_with_json(
        {
            "balances": [
                {"provider": "fal", "configured": True, "available": True, "remaining": None, "limit": None, "currency": "credits"},
                {"provider": "replicate", "configured": True, "available": True, "remaining": None, "limit": None, "currency": "usd"},
                {"provider": "runway", "configured": True, "available": True, "remaining": 1880, "limit": 10000, "currency": "credits"},
            ]
        }
    )
    server.expect_request(P + "/health", method="GET").respond_with_json(
        {"status": "ok", "version": "0.2.0", "database": "ok", "cache": "ok"}
    )
    return server


def run_snippet(*snippets: str) -> Dict[str, Any]:
    namespace: Dict[str, Any] = {"__name__": "__readme__"}
    for snippet in snippets:
        exec(compile(snippet, "<README snippet>", "exec"), namespace)
    return namespace


def sent(server: HTTPServer) -> List[Request]:
    return [req for req, _ in server.log]


# -- the snippets, run --------------------------------------------------------------------------


def test_quickstart(api: HTTPServer, capsys: pytest.CaptureFixture) -> None:
    ns = run_snippet(QUICKSTART)
    assert capsys.readouterr().out == SUNSET + "\n"
    (req,) = sent(api)
    assert req.method == "POST" and req.path == P + "/generate"
    assert req.headers["Authorization"] == "Bearer " + ENV_KEY
    assert json.loads(req.get_data()) == {"prompt": "a sunset over Istanbul", "model": "fal-ai/flux/schnell"}
    with pytest.raises(visgate_sdk.ConnectionError):  # client.close() really closed it
        ns["client"].health()


def test_context_manager(api: HTTPServer, capsys: pytest.CaptureFixture) -> None:
    run_snippet(SETUP, CONTEXT_MANAGER)
    assert capsys.readouterr().out == "%s 0.003 fal\n" % SUNSET
    assert json.loads(sent(api)[0].get_data())["model"] == "fal-ai/flux/schnell"


def test_pass_api_key_directly(api: HTTPServer) -> None:
    ns = run_snippet(SETUP, PASS_DIRECTLY)
    ns["client"].generate("a sunset over Istanbul")
    assert sent(api)[0].headers["Authorization"] == "Bearer vg-..."


def test_byok_constructor(api: HTTPServer) -> None:
    ns = run_snippet(SETUP, BYOK)
    client = ns["client"]
    client.generate("a sunset over Istanbul")
    req = sent(api)[0]
    assert req.headers["Authorization"] == "Bearer " + ENV_KEY
    assert req.headers["X-Fal-Key"] == "fal_..."
    assert req.headers["X-Replicate-Key"] == "r8_..."
    assert req.headers["X-Runway-Key"] == "rw_..."
    assert "fal_..." not in repr(client)


def test_quick_generation_and_full_control(api: HTTPServer) -> None:
    ns = run_snippet(SETUP, GENERATION)
    result = ns["result"]
    assert isinstance(result, visgate_sdk.ImageResult)
    assert result.images == [CAT] and result.cache_hit is False
    quick, full = sent(api)
    assert quick.path == P + "/generate"
    assert json.loads(quick.get_data()) == {"prompt": "a cat in space", "model": "fal-ai/flux/schnell"}
    assert full.path == P + "/images/generate"
    assert json.loads(full.get_data()) == {
        "model": "fal-ai/flux/schnell",
        "prompt": "a cat in space",
        "width": 1024,
        "height": 1024,
        "num_images": 1,
    }


def test_videos_generate(api: HTTPServer, capsys: pytest.CaptureFixture) -> None:
    run_snippet(SETUP, VIDEOS)
    assert capsys.readouterr().out == VIDEO + "\n"
    (req,) = sent(api)
    assert req.path == P + "/videos/generate"
    assert json.loads(req.get_data()) == {
        "model": "fal-ai/flux-pro/video",
        "prompt": "Cinematic drone over Istanbul at golden hour, Bosphorus and minarets",
        "duration_seconds": 5.0,
    }


def test_models_list_and_get(api: HTTPServer, capsys: pytest.CaptureFixture) -> None:
    ns = run_snippet(SETUP, MODELS)
    assert capsys.readouterr().out == "fal-ai/flux/schnell FLUX.1 [schnell]\nfal-ai/flux/dev FLUX.1 [dev]\n"
    assert isinstance(ns["model"], visgate_sdk.ModelInfo) and ns["model"].id == "fal-ai/flux/schnell"
    listing, one = sent(api)
    assert sorted(listing.args.items()) == [("limit", "20"), ("media_type", "image"), ("provider", "fal")]
    assert one.path == P + "/models/fal-ai/flux/schnell"


@pytest.mark.parametrize(
    "usage_answer",
    [
        {"total_requests": 257, "total_billed_cost": 0.13, "period": "month"},
        {"total_requests": 257, "total_cost_usd": 0.13},  # the older field name
    ],
    ids=["total_billed_cost", "total_cost_usd"],
)
def test_usage_logs_dashboard(api: HTTPServer, capsys: pytest.CaptureFixture, usage_answer: Dict[str, Any]) -> None:
    api.expect_request(P + "/usage", method="GET").respond_with_json(usage_answer)
    ns = run_snippet(SETUP, USAGE)
    assert capsys.readouterr().out == "Requests: 257, Cost: $0.1300\n"
    assert ns["logs"] == [{"id": "log_1"}]
    assert ns["dashboard"]["total_cost_usd"] == 0.13
    usage, logs, dashboard = sent(api)
    assert usage.args["period"] == "month"
    assert logs.args["limit"] == "50"
    assert dashboard.path == P + "/dashboard" and dashboard.args["period"] == "week"


def test_providers(api: HTTPServer) -> None:
    ns = run_snippet(SETUP, PROVIDERS)
    assert ns["keys"].keys[0].provider == "fal" and ns["keys"].keys[0].validated is True
    # The README's recorded output of the balances example, line for line.
    lines = [
        "%s: configured=%s available=%s remaining=%s limit=%s currency=%s"
        % (b.provider, b.configured, b.available, b.remaining, b.limit, b.currency)
        for b in ns["balances"].balances
    ]
    assert lines == [
        "fal: configured=True available=True remaining=None limit=None currency=credits",
        "replicate: configured=True available=True remaining=None limit=None currency=usd",
        "runway: configured=True available=True remaining=1880.0 limit=10000.0 currency=credits",
    ]


def test_health(api: HTTPServer, capsys: pytest.CaptureFixture) -> None:
    ns = run_snippet(SETUP, HEALTH)
    assert capsys.readouterr().out == "ok\n"
    assert ns["health"]["version"] == "0.2.0"


def test_async_client(api: HTTPServer) -> None:
    ns = run_snippet(ASYNC)
    assert "main" in ns
    generate, models = sent(api)
    assert generate.method == "POST" and generate.path == P + "/generate"
    assert json.loads(generate.get_data())["prompt"] == "a sunset"
    assert generate.headers["Authorization"] == "Bearer " + ENV_KEY
    assert models.path == P + "/models" and models.args["limit"] == "10"


def test_cache_hit_on_repeat(env_server: HTTPServer) -> None:
    # "Repeat the same request to get a cache hit (result.cache_hit == True, lower latency and cost)."
    answers = iter([
        {"id": "a", "images": [CAT], "cost": 0.003, "cache_hit": False, "latency_ms": 900},
        {"id": "b", "images": [CAT], "cost": 0.0, "cache_hit": True, "latency_ms": 40, "provider_cost_avoided_micro": 3000},
    ])
    env_server.expect_request(P + "/images/generate", method="POST").respond_with_handler(lambda r: _json(next(answers)))
    ns = run_snippet(SETUP, GENERATION.split("# Full control\n")[1], "first = result\n", GENERATION.split("# Full control\n")[1])
    first, second = ns["first"], ns["result"]
    assert first.cache_hit is False and second.cache_hit is True
    assert second.cost == 0.0 and second.provider_cost_avoided_micro == 3000


EXCEPTION_CASES = [
    ("401", 401, {"error": "AUTHENTICATION_ERROR", "message": "Invalid API key"}, {}, "Check your API key\n"),
    ("429", 429, {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}, {"Retry-After": "7"}, "Slow down. Retry after 7s\n"),
    ("502-provider", 502, {"error": "PROVIDER_ERROR", "message": "fal is down", "details": {"provider": "fal"}}, {},
     "Provider fal failed: fal is down\n"),
    ("408", 408, {"error": "REQUEST_TIMEOUT", "message": "took too long"}, {}, "Request timed out\n"),
    ("404", 404, {"error": "MODEL_NOT_FOUND", "message": "Model not found"}, {}, "API error [MODEL_NOT_FOUND]: Model not found\n"),
    ("422", 422, {"error": "VALIDATION_ERROR", "message": "prompt too long", "details": {"field": "prompt"}}, {},
     "API error [VALIDATION_ERROR]: prompt too long\n"),
]


@pytest.mark.parametrize("name,status,payload,headers,printed", EXCEPTION_CASES, ids=[c[0] for c in EXCEPTION_CASES])
def test_exceptions_snippet(
    env_server: HTTPServer, capsys: pytest.CaptureFixture, fake_time: Any,
    name: str, status: int, payload: Any, headers: Dict[str, str], printed: str,
) -> None:
    env_server.expect_request(P + "/generate", method="POST").respond_with_json(payload, status=status, headers=headers)
    run_snippet(EXCEPTIONS)
    assert capsys.readouterr().out == printed
    assert sent(env_server)[0].headers["Authorization"] == "Bearer " + ENV_KEY


def test_exceptions_snippet_without_a_key(httpserver: HTTPServer, point_env: Any, capsys: pytest.CaptureFixture) -> None:
    # No VISGATE_API_KEY at all: the README's handler still says to check the key.
    point_env(httpserver, None)
    run_snippet(EXCEPTIONS)
    assert capsys.readouterr().out == "Check your API key\n"
    assert httpserver.log == []


def test_configuration_table_defaults() -> None:
    client = visgate_sdk.Client(api_key="vg-...")
    assert client.base_url == "https://visgateai.com/api/v1"
    assert client.timeout == 120.0
    assert client.max_retries == 2
    client.close()
