"""Code written for visgate-sdk 0.0.3 runs unchanged: what that client sent, we send; the
errors it raised look the same. Differences kept on purpose are in the README."""

from __future__ import annotations

import asyncio
import json
import math
import pickle
from typing import Any, Dict

import pytest
from pytest_httpserver import HTTPServer
from visgate_sdk.exceptions import (
    AuthenticationError,
    ConnectionError,
    ProviderError,
    RateLimitError,
    TimeoutError,
    VisgateError,
)

import visgate_sdk
from visgate_sdk import AsyncClient, Client, ValidationError

P = "/api/v1"
IMAGE_ANSWER = {"id": "img-1", "images": ["https://cdn.example/1.png"], "model": "m/x", "provider": "fal", "cost": 0.01}
VIDEO_ANSWER = {"id": "vid-1", "video_url": "https://cdn.example/1.mp4", "model": "m/v", "provider": "fal", "cost": 0.1}


def _sent(httpserver: HTTPServer) -> Dict[str, Any]:
    request, _ = httpserver.log[-1]
    return dict(json.loads(request.get_data()))


# -- 1. params may set any body field not given by name --------------------------------------

@pytest.mark.parametrize(
    "extra",
    [{"width": 512}, {"height": 768}, {"num_images": 2}, {"seed": 7}, {"negative_prompt": "blur"}, {"width": 512, "steps": 4}],
    ids=lambda e: ",".join(e),
)
def test_image_params_set_fields_left_at_their_default(httpserver: HTTPServer, client: Client, extra: Dict[str, Any]) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(IMAGE_ANSWER)
    client.images.generate("m/x", "a cat", params=extra)
    body = _sent(httpserver)
    for key, value in extra.items():
        assert body[key] == value
    assert body["model"] == "m/x" and body["prompt"] == "a cat"


def test_an_argument_passed_with_its_default_value_counts_as_not_given(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(IMAGE_ANSWER)
    client.images.generate("m/x", "a cat", width=1024, params={"width": 512})
    assert _sent(httpserver)["width"] == 512


@pytest.mark.parametrize("extra", [{"duration_seconds": 8.0}, {"image_url": "https://x/i.png"}, {"skip_gcs_upload": True}])
def test_video_params_set_fields_left_at_their_default(httpserver: HTTPServer, client: Client, extra: Dict[str, Any]) -> None:
    httpserver.expect_request(P + "/videos/generate", method="POST").respond_with_json(VIDEO_ANSWER)
    client.videos.generate("m/v", "waves", params=extra)
    body = _sent(httpserver)
    for key, value in extra.items():
        assert body[key] == value


def test_async_params_set_fields_left_at_their_default(httpserver: HTTPServer) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(IMAGE_ANSWER)

    async def run() -> None:
        async with AsyncClient("vg-k", base_url=httpserver.url_for(P)) as client:
            await client.images.generate("m/x", "a cat", params={"seed": 3})

    asyncio.run(run())
    assert _sent(httpserver)["seed"] == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.images.generate("m/x", "a cat", width=768, params={"width": 512}),
        lambda c: c.images.generate("m/x", "a cat", seed=1, params={"seed": 2}),
        lambda c: c.images.generate("m/x", "a cat", params={"model": "m/other"}),
        lambda c: c.images.generate("m/x", "a cat", params={"prompt": "a dog"}),
        lambda c: c.videos.generate("m/v", "waves", duration_seconds=3, params={"duration_seconds": 4}),
        lambda c: c.videos.generate("m/v", "waves", skip_gcs_upload=True, params={"skip_gcs_upload": False}),
    ],
    ids=["width", "seed", "model", "prompt", "duration", "skip_gcs_upload"],
)
def test_an_argument_given_by_name_and_in_params_is_ambiguous(httpserver: HTTPServer, client: Client, call: Any) -> None:
    with pytest.raises(ValidationError) as info:
        call(client)
    assert "clashes" in info.value.message
    assert httpserver.log == []


# -- 2. integral floats for integer arguments ------------------------------------------------

def test_integral_floats_are_sent_as_ints(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(IMAGE_ANSWER)
    client.images.generate("m/x", "a cat", width=1024.0, height=512.0, num_images=2.0, seed=42.0)  # type: ignore[arg-type]
    body = _sent(httpserver)
    assert [(body[k], type(body[k])) for k in ("width", "height", "num_images", "seed")] == [
        (1024, int), (512, int), (2, int), (42, int)
    ]
    httpserver.expect_request(P + "/usage/logs").respond_with_json([])
    client.usage.logs(limit=10.0, offset=0.0)  # type: ignore[arg-type]
    assert httpserver.log[-1][0].args["limit"] == "10"


@pytest.mark.parametrize("value", [1024.5, True, math.nan, math.inf, "1024", None])
def test_non_integral_values_are_still_refused(httpserver: HTTPServer, client: Client, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        client.images.generate("m/x", "a cat", width=value)
    assert info.value.field == "width"
    assert httpserver.log == []


# -- 3. values the server decides on are not checked against a list --------------------------

def test_unknown_period_is_left_to_the_server(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/usage").respond_with_json({"total_requests": 1, "period": "quarter"})
    assert client.usage.get("quarter").period == "quarter"
    assert httpserver.log[-1][0].args["period"] == "quarter"
    httpserver.expect_request(P + "/dashboard").respond_with_json({})
    client.usage.dashboard(period="Month")
    assert httpserver.log[-1][0].args["period"] == "Month"


def test_empty_filters_are_not_sent_like_the_reference_client(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/models").respond_with_json({"models": [], "total_count": 0})
    client.models.list(provider="", media_type="", search="")
    assert dict(httpserver.log[-1][0].args) == {"limit": "100"}
    client.models.list(provider="stability")  # a provider this client has never heard of
    assert httpserver.log[-1][0].args["provider"] == "stability"


@pytest.mark.parametrize(
    "call,field",
    [
        (lambda c: c.usage.get(7), "period"),
        (lambda c: c.usage.dashboard(period=["week"]), "period"),
        (lambda c: c.models.list(provider=5), "provider"),
        (lambda c: c.models.list(media_type=b"image"), "media_type"),
    ],
)
def test_filter_types_are_still_checked(httpserver: HTTPServer, client: Client, call: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call(client)
    assert info.value.field == field
    assert httpserver.log == []


def test_cli_passes_new_providers_and_periods_to_the_server(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VISGATE_API_KEY", "vg-k")
    monkeypatch.setenv("VISGATE_BASE_URL", httpserver.url_for(P))
    httpserver.expect_request(P + "/usage").respond_with_json({"total_requests": 0, "period": "quarter"})
    assert visgate_sdk.main(["usage", "--period", "quarter"]) == 0
    assert "period: quarter" in capsys.readouterr().out
    httpserver.expect_request(P + "/models").respond_with_json({"models": [], "total_count": 0})
    assert visgate_sdk.main(["models", "--provider", "stability", "--media-type", "audio"]) == 0
    assert httpserver.log[-1][0].args["provider"] == "stability"
    assert httpserver.log[-1][0].args["media_type"] == "audio"



def test_empty_strings_mean_not_given_like_the_reference_client(httpserver: HTTPServer, client: Client) -> None:
    httpserver.expect_request(P + "/videos/generate", method="POST").respond_with_json(VIDEO_ANSWER)
    client.videos.generate("m/v", "waves", image_url="")
    assert "image_url" not in _sent(httpserver)
    httpserver.expect_request(P + "/models").respond_with_json({"models": [], "total_count": 0})
    client.models.search("")
    assert dict(httpserver.log[-1][0].args) == {"limit": "20"}
    httpserver.expect_request(P + "/generate", method="POST").respond_with_json(
        {"id": "g", "image_url": "https://cdn.example/g.png", "images": [], "model": "m/x", "provider": "fal"}
    )
    client.generate("a cat", params={})
    assert "params" not in _sent(httpserver)

# -- 4. exceptions: the reference client's defaults ------------------------------------------
# visgate-sdk 0.0.3's exceptions.py, constructor by constructor.

def test_reference_defaults_of_every_exception() -> None:
    base = VisgateError("boom")
    assert (base.message, base.error_code, base.details, base.status_code, base.args) == ("boom", "VISGATE_ERROR", {}, None, ("boom",))
    assert str(base) == "[VISGATE_ERROR] boom"

    auth = AuthenticationError()
    assert (auth.message, auth.error_code, auth.details, auth.status_code) == (
        "Invalid or missing API key", "AUTHENTICATION_ERROR", {}, 401)

    val = ValidationError("bad", field="prompt")
    assert (val.message, val.error_code, val.details, val.status_code, val.field) == (
        "bad", "VALIDATION_ERROR", {"field": "prompt"}, 422, "prompt")
    assert ValidationError("bad").details == {} and ValidationError("bad").field is None
    assert ValidationError("bad", field="").details == {}
    assert ValidationError("bad", status_code=400).status_code == 400

    rate = RateLimitError(retry_after=60)
    assert (rate.message, rate.error_code, rate.details, rate.status_code, rate.retry_after) == (
        "Rate limit exceeded", "RATE_LIMIT_ERROR", {"retry_after": 60}, 429, 60)
    assert RateLimitError().details == {} and RateLimitError().retry_after is None

    prov = ProviderError("fal down")
    assert (prov.message, prov.error_code, prov.details, prov.status_code, prov.provider) == (
        "fal down", "PROVIDER_ERROR", {"provider": "unknown"}, None, "unknown")

    late = TimeoutError()
    assert (late.message, late.error_code, late.details, late.status_code) == ("Request timed out", "TIMEOUT_ERROR", {}, None)
    conn = ConnectionError()
    assert (conn.message, conn.error_code, conn.details, conn.status_code) == ("Connection failed", "CONNECTION_ERROR", {}, None)
    for err in (auth, val, rate, prov, late, conn):
        assert isinstance(err, VisgateError) and err.args == (err.message,)


def test_pre_send_validation_errors_have_the_servers_status(httpserver: HTTPServer, client: Client) -> None:
    # 0.0.3 code that branches on status_code == 422 sees input refused before sending the same way.
    with pytest.raises(ValidationError) as info:
        client.images.generate("m/x", "", width=512)
    assert info.value.status_code == 422 and info.value.field == "prompt"


def test_rate_limit_from_a_response_has_details_retry_after(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/usage").respond_with_json(
        {"error": "RATE_LIMITED", "message": "slow down", "details": {"tier": "free"}}, status=429, headers={"Retry-After": "30"}
    )
    with pytest.raises(RateLimitError) as info:
        make_client(max_retries=0).usage.get()
    err = info.value
    assert err.details["retry_after"] == 30 and err.retry_after == 30
    assert err.details["tier"] == "free"
    assert (err.error_code, err.message, err.status_code) == ("RATE_LIMITED", "slow down", 429)
    assert pickle.loads(pickle.dumps(err)).details == {"tier": "free", "retry_after": 30}


def test_rate_limit_keeps_the_servers_own_retry_after_detail(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/usage").respond_with_json(
        {"error": "RATE_LIMITED", "message": "slow", "details": {"retry_after": 12}}, status=429, headers={"Retry-After": "5"}
    )
    with pytest.raises(RateLimitError) as info:
        make_client(max_retries=0).usage.get()
    assert info.value.details == {"retry_after": 12}
    assert info.value.retry_after == 5


# -- 5, 6. the command line ------------------------------------------------------------------

def test_cli_missing_key_names_the_command_line_spellings(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VISGATE_BASE_URL", httpserver.url_for(P))
    code = visgate_sdk.main(["usage"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--api-key" in err and "VISGATE_API_KEY" in err
    assert "api_key=" not in err
    assert err.count("\n") == 1
    assert httpserver.log == []


def test_cli_models_columns_fit_long_ids(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VISGATE_API_KEY", "vg-k")
    monkeypatch.setenv("VISGATE_BASE_URL", httpserver.url_for(P))
    long_id = "black-forest-labs/flux-1.1-pro-ultra/with-a-very-long-variant-name-v2"
    models = [
        {"id": "fal-ai/flux/schnell", "provider": "fal", "media_type": "image", "name": "FLUX schnell"},
        {"id": long_id, "provider": "replicate", "media_type": "image", "name": "FLUX ultra"},
        {"id": "runway/gen4", "provider": "runway", "media_type": "video", "name": "Gen-4"},
    ]
    httpserver.expect_request(P + "/models").respond_with_json({"models": models, "total_count": 3})
    assert visgate_sdk.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()[:3]
    starts = {line.index(m["provider"], len(m["id"])) for line, m in zip(lines, models)}
    assert len(starts) == 1 and starts.pop() > len(long_id)  # one provider column, after the longest id
    names = {line.index(m["name"]) for line, m in zip(lines, models)}
    assert len(names) == 1


# -- 7. every example has its own number -------------------------------------------------------

def test_each_example_prefix_names_one_step() -> None:
    import importlib.util
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    spec = importlib.util.spec_from_file_location("run_all_capabilities", examples / "run_all_capabilities.py")
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    steps = [step for step, _, _ in runner.STEPS]
    assert [s[:2] for s in steps] == ["%02d" % i for i in range(len(steps))]  # unique, in run order
    assert sorted(p.stem for p in examples.glob("[0-9][0-9]_*.py")) == steps
    for step in steps:
        assert runner.select([step[:2]], cheap=False) == [step]
        assert runner.select([step + ".py"], cheap=False) == [step]


# -- 9. the README ---------------------------------------------------------------------------

def test_readme_configuration_table_lists_every_client_argument() -> None:
    import inspect
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):readme.index("## Command line")]
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    arguments = set(inspect.signature(Client.__init__).parameters) - {"self"}
    assert arguments <= listed, sorted(arguments - listed)
    assert "from visgate_emulator import Emulator" in readme



# -- the reference client's signatures, call by call --------------------------------------------
# Written down from visgate-sdk 0.0.3's source: (name, "pos" or "kw", default). Every argument must
# be accepted at the same position or by the same name, with the same default.

REFERENCE_SIGNATURES = {'AsyncClient.__init__': [('api_key', 'pos', None),
                          ('base_url', 'kw', 'https://visgateai.com/api/v1'),
                          ('timeout', 'kw', 120.0),
                          ('max_retries', 'kw', 2),
                          ('fal_key', 'kw', None),
                          ('replicate_key', 'kw', None),
                          ('runway_key', 'kw', None)],
 'AsyncClient.close': [],
 'AsyncClient.generate': [('prompt', 'pos', 'REQUIRED'), ('model', 'pos', 'fal-ai/flux/schnell'), ('params', 'pos', None)],
 'AsyncClient.health': [],
 'AsyncGenerationRequest.wait': [('timeout', 'kw', 300.0), ('poll_interval', 'kw', 2.0)],
 'AsyncImages.generate': [('model', 'pos', 'REQUIRED'),
                          ('prompt', 'pos', 'REQUIRED'),
                          ('negative_prompt', 'kw', None),
                          ('width', 'kw', 1024),
                          ('height', 'kw', 1024),
                          ('num_images', 'kw', 1),
                          ('seed', 'kw', None),
                          ('params', 'kw', None),
                          ('include_steps', 'kw', False),
                          ('wait', 'kw', True)],
 'AsyncModels.get': [('model_id', 'pos', 'REQUIRED')],
 'AsyncModels.list': [('provider', 'kw', None),
                      ('media_type', 'kw', None),
                      ('model_type', 'kw', None),
                      ('capability', 'kw', None),
                      ('search', 'kw', None),
                      ('sort', 'kw', None),
                      ('limit', 'kw', 100),
                      ('featured', 'kw', False)],
 'AsyncModels.search': [('query', 'pos', 'REQUIRED'), ('limit', 'kw', 20)],
 'AsyncProviders.balances': [],
 'AsyncProviders.delete_key': [('provider', 'pos', 'REQUIRED')],
 'AsyncProviders.list_keys': [],
 'AsyncProviders.set_key': [('provider', 'pos', 'REQUIRED'), ('api_key', 'pos', 'REQUIRED')],
 'AsyncProviders.validate_key': [('provider', 'pos', 'REQUIRED'), ('api_key', 'pos', 'REQUIRED')],
 'AsyncRequests.get': [('request_id', 'pos', 'REQUIRED'),
                       ('wait', 'kw', False),
                       ('timeout', 'kw', 300.0),
                       ('poll_interval', 'kw', 2.0)],
 'AsyncUsage.dashboard': [('period', 'pos', 'month')],
 'AsyncUsage.get': [('period', 'pos', 'month')],
 'AsyncUsage.logs': [('limit', 'kw', 50), ('offset', 'kw', 0)],
 'AsyncVideos.generate': [('model', 'pos', 'REQUIRED'),
                          ('prompt', 'pos', 'REQUIRED'),
                          ('image_url', 'kw', None),
                          ('duration_seconds', 'kw', 5.0),
                          ('skip_gcs_upload', 'kw', False),
                          ('params', 'kw', None),
                          ('wait', 'kw', True)],
 'Client.__init__': [('api_key', 'pos', None),
                     ('base_url', 'kw', 'https://visgateai.com/api/v1'),
                     ('timeout', 'kw', 120.0),
                     ('max_retries', 'kw', 2),
                     ('fal_key', 'kw', None),
                     ('replicate_key', 'kw', None),
                     ('runway_key', 'kw', None)],
 'Client.close': [],
 'Client.generate': [('prompt', 'pos', 'REQUIRED'), ('model', 'pos', 'fal-ai/flux/schnell'), ('params', 'pos', None)],
 'Client.health': [],
 'Client.set_provider_headers': [('fal_key', 'kw', None), ('replicate_key', 'kw', None), ('runway_key', 'kw', None)],
 'GenerationRequest.wait': [('timeout', 'kw', 300.0), ('poll_interval', 'kw', 2.0)],
 'Images.generate': [('model', 'pos', 'REQUIRED'),
                     ('prompt', 'pos', 'REQUIRED'),
                     ('negative_prompt', 'kw', None),
                     ('width', 'kw', 1024),
                     ('height', 'kw', 1024),
                     ('num_images', 'kw', 1),
                     ('seed', 'kw', None),
                     ('params', 'kw', None),
                     ('include_steps', 'kw', False),
                     ('wait', 'kw', True)],
 'Models.get': [('model_id', 'pos', 'REQUIRED')],
 'Models.list': [('provider', 'kw', None),
                 ('media_type', 'kw', None),
                 ('model_type', 'kw', None),
                 ('capability', 'kw', None),
                 ('search', 'kw', None),
                 ('sort', 'kw', None),
                 ('limit', 'kw', 100),
                 ('featured', 'kw', False)],
 'Models.search': [('query', 'pos', 'REQUIRED'), ('limit', 'kw', 20)],
 'Providers.balances': [],
 'Providers.delete_key': [('provider', 'pos', 'REQUIRED')],
 'Providers.list_keys': [],
 'Providers.set_key': [('provider', 'pos', 'REQUIRED'), ('api_key', 'pos', 'REQUIRED')],
 'Providers.validate_key': [('provider', 'pos', 'REQUIRED'), ('api_key', 'pos', 'REQUIRED')],
 'Requests.get': [('request_id', 'pos', 'REQUIRED'),
                  ('wait', 'kw', False),
                  ('timeout', 'kw', 300.0),
                  ('poll_interval', 'kw', 2.0)],
 'Usage.dashboard': [('period', 'pos', 'month')],
 'Usage.get': [('period', 'pos', 'month')],
 'Usage.logs': [('limit', 'kw', 50), ('offset', 'kw', 0)],
 'Videos.generate': [('model', 'pos', 'REQUIRED'),
                     ('prompt', 'pos', 'REQUIRED'),
                     ('image_url', 'kw', None),
                     ('duration_seconds', 'kw', 5.0),
                     ('skip_gcs_upload', 'kw', False),
                     ('params', 'kw', None),
                     ('wait', 'kw', True)]}
REFERENCE_FIELDS = {'FeaturedSection': ['title', 'key', 'models'],
 'GenerateResult': ['id', 'image_url', 'images', 'model', 'provider', 'mode', 'cost', 'cost_per_megapixel', 'latency_ms',
                    'resolution', 'created_at'],
 'ImageResult': ['id', 'images', 'model', 'provider', 'cost', 'cache_hit', 'provider_cost_avoided_micro', 'latency_ms',
                 'created_at', 'output_storage', 'output_size_bytes', 'steps'],
 'ModelInfo': ['id', 'name', 'provider', 'media_type', 'description', 'category', 'tags', 'cover_image_url', 'author', 'url',
               'base_cost_micro', 'normalized_cost_micro', 'pricing', 'pricing_unit', 'run_count', 'input_types', 'output_type',
               'capabilities', 'first_seen_at', 'provider_created_at', 'last_synced_at'],
 'ModelsResponse': ['models', 'total_count', 'last_updated', 'featured'],
 'ProviderBalanceItem': ['provider', 'configured', 'available', 'limit', 'remaining', 'currency', 'message'],
 'ProviderBalancesResponse': ['balances'],
 'ProviderKeyInfo': ['provider', 'validated', 'validated_at', 'masked_key'],
 'ProviderKeysResponse': ['keys'],
 'ProviderValidationResult': ['valid', 'message'],
 'RequestStatusResult': ['request_id', 'status', 'media_type', 'provider', 'model', 'output_url', 'error_message', 'created_at',
                         'completed_at'],
 'UsageSummary': ['total_requests', 'successful_requests', 'failed_requests', 'cached_requests', 'total_provider_cost',
                  'total_billed_cost', 'total_savings', 'by_provider', 'by_model', 'period', 'period_start', 'period_end'],
 'VideoResult': ['id', 'video_url', 'model', 'provider', 'cost', 'cache_hit', 'provider_cost_avoided_micro', 'latency_ms',
                 'created_at']}

# Defaults that are sentinels here and resolve to the reference value (tested above or in test_client).
SENTINEL_DEFAULTS = {("Client.__init__", "base_url"): None}


@pytest.mark.parametrize("where", sorted(REFERENCE_SIGNATURES))
def test_reference_signature_is_accepted(where: str) -> None:
    import inspect

    cls_name, method = where.split(".")
    fn = getattr(getattr(visgate_sdk, cls_name), method)
    params = list(inspect.signature(fn).parameters.values())[1:]
    by_name = {p.name: p for p in params}
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    old_positional = [name for name, kind, _ in REFERENCE_SIGNATURES[where] if kind == "pos"]
    assert positional[: len(old_positional)] == old_positional
    for name, _kind, default in REFERENCE_SIGNATURES[where]:
        p = by_name.get(name)
        if p is None:  # AsyncClient passes its options on to Client
            assert var_kw and cls_name == "AsyncClient", name
            p = inspect.signature(Client.__init__).parameters[name]
        assert p.kind != p.POSITIONAL_ONLY, name
        expected = SENTINEL_DEFAULTS.get((where.replace("AsyncClient", "Client"), name), default)
        assert (p.default is p.empty) == (default == "REQUIRED"), name
        if default != "REQUIRED":
            assert p.default == expected, name


@pytest.mark.parametrize("name", sorted(REFERENCE_FIELDS))
def test_reference_result_fields_keep_their_order(name: str) -> None:
    import dataclasses

    fields = [f.name for f in dataclasses.fields(getattr(visgate_sdk, name))]
    assert fields[: len(REFERENCE_FIELDS[name])] == REFERENCE_FIELDS[name]


def test_results_built_positionally_as_in_the_reference_client() -> None:
    image = visgate_sdk.ImageResult("img-1", ["https://cdn.example/1.png"], "m/x", "fal", 0.01)
    assert (image.id, image.images, image.model, image.provider, image.cost, image.cache_hit) == (
        "img-1", ["https://cdn.example/1.png"], "m/x", "fal", 0.01, False)
    status = visgate_sdk.RequestStatusResult("r-1", "completed", "video", "fal", "m/v", "https://cdn.example/v.mp4")
    assert status.is_terminal and status.output_url == "https://cdn.example/v.mp4"
