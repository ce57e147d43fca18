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

import visgate_sdk
from visgate_sdk import AsyncClient, Client, ValidationError
from visgate_sdk.exceptions import (
    AuthenticationError,
    ConnectionError,
    ProviderError,
    RateLimitError,
    TimeoutError,
    VisgateError,
)

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
    assert (auth.message, auth.error_code, auth.details, auth.status_code) == ("Invalid or missing API key", "AUTHENTICATION_ERROR", {}, 401)

    val = ValidationError("bad", field="prompt")
    assert (val.message, val.error_code, val.details, val.status_code, val.field) == ("bad", "VALIDATION_ERROR", {"field": "prompt"}, 422, "prompt")
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
