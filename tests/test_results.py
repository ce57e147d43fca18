"""Result parsing, pinned field by field: every JSON key each result type reads (aliases
included, in the order they are tried), what each field's type makes of a value, and the
``InvalidResponseError`` a wrong shape raises. ``SPEC`` is the table the classes used to
carry as ``_spec``; the classes now derive it from their fields, and must agree with it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any, List, Tuple

import pytest

import visgate_sdk
from visgate_sdk import InvalidResponseError

# class -> (attribute, kind, JSON keys tried in order; none = the attribute's name)
SPEC = {
    "GenerateResult": [
        ("id", "str", "id", "request_id"), ("image_url", "str"), ("cache_hit", "bool"),
        ("provider_cost_avoided_micro", "int"), ("images", "str_list"), ("model", "str"), ("provider", "str"),
        ("mode", "str"), ("cost", "float", "estimated_cost_usd", "cost"),
        ("cost_per_megapixel", "float", "cost_per_megapixel_usd"), ("latency_ms", "int"), ("resolution", "dict"),
        ("created_at", "datetime"),
    ],
    "ImageResult": [
        ("id", "str", "id", "request_id"), ("images", "str_list"), ("model", "str"), ("provider", "str"),
        ("cost", "float"), ("cache_hit", "bool"), ("provider_cost_avoided_micro", "int"), ("latency_ms", "int"),
        ("created_at", "datetime"), ("output_storage", "str"), ("output_size_bytes", "int"), ("steps", "list"),
    ],
    "VideoResult": [
        ("id", "str", "id", "request_id"), ("video_url", "str", "video_url", "output_url"), ("model", "str"),
        ("provider", "str"), ("cost", "float"), ("cache_hit", "bool"), ("provider_cost_avoided_micro", "int"),
        ("latency_ms", "int"), ("created_at", "datetime"),
    ],
    "RequestStatusResult": [
        ("request_id", "str", "request_id", "id"), ("status", "str"), ("media_type", "str"), ("provider", "str"),
        ("model", "str"), ("output_url", "str"), ("error_message", "str"), ("created_at", "str"),
        ("completed_at", "str"),
    ],
    "ModelInfo": [
        ("id", "str"), ("name", "str"), ("provider", "str"), ("media_type", "str"), ("description", "str"),
        ("category", "str"), ("tags", "str_list"), ("cover_image_url", "str"), ("author", "str"), ("url", "str"),
        ("base_cost_micro", "int"), ("normalized_cost_micro", "int"), ("pricing", "any"), ("pricing_unit", "str"),
        ("run_count", "int"), ("input_types", "str_list"), ("output_type", "str"), ("capabilities", "str_list"),
        ("first_seen_at", "str"), ("provider_created_at", "str"), ("last_synced_at", "str"),
    ],
    "FeaturedSection": [
        ("title", "str"), ("key", "str"), ("models", "list_of:ModelInfo"),
    ],
    "ModelsResponse": [
        ("models", "list_of:ModelInfo"), ("total_count", "int", "total_count", "total"), ("last_updated", "str"),
        ("featured", "list_of:FeaturedSection"),
    ],
    "UsageSummary": [
        ("total_requests", "int"), ("successful_requests", "int"), ("failed_requests", "int"),
        ("cached_requests", "int"), ("total_provider_cost", "float"),
        ("total_billed_cost", "float", "total_billed_cost", "total_cost_usd"), ("total_savings", "float"),
        ("by_provider", "dict", "by_provider", "provider_breakdown"), ("by_model", "dict"), ("period", "str"),
        ("period_start", "datetime"), ("period_end", "datetime"),
    ],
    "ProviderKeyInfo": [
        ("provider", "str"), ("validated", "bool"), ("validated_at", "str"), ("masked_key", "str"),
    ],
    "ProviderKeysResponse": [
        ("keys", "list_of:ProviderKeyInfo"),
    ],
    "ProviderValidationResult": [
        ("valid", "bool"), ("message", "str"),
    ],
    "ProviderBalanceItem": [
        ("provider", "str"), ("configured", "bool"), ("available", "bool"), ("limit", "float"),
        ("remaining", "float"), ("currency", "str"), ("message", "str"),
    ],
    "ProviderBalancesResponse": [
        ("balances", "list_of:ProviderBalanceItem"),
    ],
    "AuthInfo": [
        ("organization", "dict"), ("role", "str"),
    ],
    "ApiKeyInfo": [
        ("id", "str"), ("name", "str"), ("key_prefix", "str"), ("created_at", "str"), ("last_used_at", "str"),
    ],
    "BillingInfo": [
        ("balance_micro", "int"), ("billing_status", "str"), ("company_name", "str"), ("free_mode_enabled", "bool"),
        ("monthly_budget_cents", "int"), ("support_email", "str"), ("tier", "str"), ("usage_this_month_cents", "int"),
    ],
    "BillingPricing": [
        ("last_updated", "str"), ("pricing", "any"),
    ],
}


# kind -> (JSON value, what the attribute becomes) for good values, (JSON value, "should be ..., got ...") for bad ones
UTC_PLUS_2 = timezone(timedelta(hours=2))
GOOD = {
    "str": [("text", "text"), (5, "5"), (2.5, "2.5")],
    "int": [(7, 7), (12.6, 13)],
    "float": [(1.25, 1.25), ("2.5", 2.5), (3, 3.0)],
    "bool": [(True, True), (0, False), (1, True)],
    "dict": [({"k": 1}, {"k": 1})],
    "list": [([{"step": "cache"}, 3], [{"step": "cache"}, 3])],
    "str_list": [(["a", 2], ["a", "2"])],
    "datetime": [
        ("2024-01-02T03:04:05.1234567Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)),
        ("2024-01-02 03:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC_PLUS_2)),
        ("not a date", None),
    ],
    "any": [({"tiers": [1, 2]}, {"tiers": [1, 2]}), ("flat", "flat")],
}
BAD = {
    "str": [({"a": 1}, "a string, got dict"), (True, "a string, got bool"), ([], "a string, got list")],
    "int": [(True, "an integer, got bool"), ("7", "an integer, got str"), (float("inf"), "an integer, got float")],
    "float": [("abc", "a number, got str"), (False, "a number, got bool")],
    "bool": [(2, "a boolean, got int"), ("true", "a boolean, got str")],
    "dict": [([1], "an object, got list")],
    "list": [({"a": 1}, "a list, got dict")],
    "str_list": [("abc", "a list, got str"), ([{"a": 1}], "a string, got dict")],
    "datetime": [({"a": 1}, "a string, got dict")],
    "any": [],
}
ITEM = {"id": "x/y", "name": "N", "provider": "fal", "title": "T", "keys": [], "models": []}


def _rows() -> List[Tuple[str, str, str, str]]:
    return [(cls, attr, kind, key) for cls, rows in SPEC.items() for attr, kind, *keys in rows for key in keys or [attr]]


def _cls(name: str) -> Any:
    return getattr(visgate_sdk, name)


def test_spec_names_every_field_of_every_result_type() -> None:
    results = [n for n in visgate_sdk.__all__ if isinstance(_cls(n), type) and issubclass(_cls(n), visgate_sdk._Result)]
    assert sorted(results) == sorted(SPEC)
    for name, rows in SPEC.items():
        fields = {f.name for f in dataclasses.fields(_cls(name))} - {"raw"}
        assert {row[0] for row in rows} == fields, name


@pytest.mark.parametrize("name, attr, kind, key", _rows())
def test_every_key_is_read_and_converted(name: str, attr: str, kind: str, key: str) -> None:
    cls = _cls(name)
    if kind.startswith("list_of:"):
        item_cls = _cls(kind.split(":")[1])
        result = cls.from_dict({key: [ITEM]})
        assert getattr(result, attr) == [item_cls.from_dict(ITEM)]
        return
    for value, expected in GOOD[kind]:
        result = cls.from_dict({key: value, "other": 1})
        got = getattr(result, attr)
        assert got == expected and type(got) is type(expected), (value, got)
        assert result.raw == {key: value, "other": 1}
    default = getattr(cls(), attr)
    assert getattr(cls.from_dict({key: None}), attr) == default  # null counts as missing


@pytest.mark.parametrize("name, attr, kind, key", _rows())
def test_a_wrong_shape_names_the_class_and_key(name: str, attr: str, kind: str, key: str) -> None:
    cls = _cls(name)
    if kind.startswith("list_of:"):
        item = kind.split(":")[1]
        bad = [({"a": 1}, "%s.%s should be a list, got dict" % (name, key)), ([1], "%s should be an object, got int" % item)]
    else:
        bad = [(value, "%s.%s should be %s" % (name, key, what)) for value, what in BAD[kind]]
    for value, message in bad:
        with pytest.raises(InvalidResponseError) as info:
            cls.from_dict({key: value})
        assert str(info.value) == "[INVALID_RESPONSE_SHAPE] unexpected response: " + message
        assert info.value.error_code == "INVALID_RESPONSE_SHAPE"


@pytest.mark.parametrize("name, attr, keys", [(c, r[0], r[2:]) for c, rows in SPEC.items() for r in rows if len(r) > 3])
def test_the_first_key_present_wins(name: str, attr: str, keys: Tuple[str, ...]) -> None:
    cls = _cls(name)
    kind = dict((r[0], r[1]) for r in SPEC[name])[attr]
    (first, first_expected), (second, second_expected) = GOOD[kind][0], GOOD[kind][-1]
    assert getattr(cls.from_dict({keys[1]: second, keys[0]: first}), attr) == first_expected
    assert getattr(cls.from_dict({keys[0]: None, keys[1]: second}), attr) == second_expected


@pytest.mark.parametrize("name", sorted(SPEC))
def test_not_an_object_is_a_shape_error(name: str) -> None:
    for value in ([], "x", None, 3):
        with pytest.raises(InvalidResponseError, match="%s should be an object, got " % name):
            _cls(name).from_dict(value)


# Positional construction follows visgate-sdk 0.0.3's field order (drop-in replacement).
FIELD_ORDER = {
    "GenerateResult": "id image_url images model provider mode cost cost_per_megapixel latency_ms resolution created_at"
    " cache_hit provider_cost_avoided_micro raw",
    "ImageResult": "id images model provider cost cache_hit provider_cost_avoided_micro latency_ms created_at output_storage"
    " output_size_bytes steps raw",
    "VideoResult": "id video_url model provider cost cache_hit provider_cost_avoided_micro latency_ms created_at raw",
    "RequestStatusResult": "request_id status media_type provider model output_url error_message created_at completed_at raw",
    "ModelInfo": "id name provider media_type description category tags cover_image_url author url base_cost_micro"
    " normalized_cost_micro pricing pricing_unit run_count input_types output_type capabilities first_seen_at"
    " provider_created_at last_synced_at raw",
    "ProviderBalanceItem": "provider configured available limit remaining currency message raw",
}


@pytest.mark.parametrize("name", sorted(FIELD_ORDER))
def test_field_order_is_the_reference_order(name: str) -> None:
    assert [f.name for f in dataclasses.fields(_cls(name))] == FIELD_ORDER[name].split()


def test_positional_construction_of_generation_results() -> None:
    image = visgate_sdk.ImageResult("i", ["u"], "m", "fal", 0.5)
    video = visgate_sdk.VideoResult("v", "https://x/v.mp4", "m", "runway", 1.0, True)
    assert (image.images, image.model, image.cost) == (["u"], "m", 0.5)
    assert (video.video_url, video.provider, video.cache_hit) == ("https://x/v.mp4", "runway", True)


DEFAULTS = {
    "GenerateResult": "GenerateResult(id='', image_url=None, images=[], model='', provider='', mode='', cost=0.0,"
    " cost_per_megapixel=0.0, latency_ms=0, resolution={}, created_at=None, cache_hit=False, provider_cost_avoided_micro=None)",
    "RequestStatusResult": "RequestStatusResult(request_id='', status='pending', media_type='video', provider='', model='',"
    " output_url=None, error_message=None, created_at=None, completed_at=None)",
    "ModelsResponse": "ModelsResponse(models=[], total_count=0, last_updated=None, featured=None)",
    "UsageSummary": "UsageSummary(total_requests=0, successful_requests=0, failed_requests=0, cached_requests=0,"
    " total_provider_cost=0.0, total_billed_cost=0.0, total_savings=0.0, by_provider={}, by_model={}, period='month',"
    " period_start=None, period_end=None)",
    "ModelInfo": "ModelInfo(id='', name='', provider='', media_type='image', description=None, category=None, tags=[],"
    " cover_image_url=None, author=None, url=None, base_cost_micro=0, normalized_cost_micro=0, pricing=None, pricing_unit=None,"
    " run_count=0, input_types=[], output_type=None, capabilities=[], first_seen_at=None, provider_created_at=None,"
    " last_synced_at=None)",
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_defaults_of_an_empty_answer(name: str) -> None:
    assert repr(_cls(name).from_dict({})) == DEFAULTS[name] == repr(_cls(name)())


def test_a_rich_generate_answer() -> None:
    answer = {
        "request_id": "r-1", "images": ["https://x/1.png", "https://x/2.png"], "model": "fal-ai/flux/schnell",
        "provider": "fal", "mode": "byok", "estimated_cost_usd": 0.003, "cost": 9, "cost_per_megapixel_usd": "0.003",
        "latency_ms": 812.4, "resolution": {"width": 1024, "height": 768}, "created_at": "2025-03-04T05:06:07Z",
        "cache_hit": 1, "provider_cost_avoided_micro": 3000, "unknown": [1],
    }
    result = visgate_sdk.GenerateResult.from_dict(answer)
    assert repr(result) == (
        "GenerateResult(id='r-1', image_url='https://x/1.png', images=['https://x/1.png', 'https://x/2.png'],"
        " model='fal-ai/flux/schnell', provider='fal', mode='byok', cost=0.003, cost_per_megapixel=0.003, latency_ms=812,"
        " resolution={'width': 1024, 'height': 768}, created_at=datetime.datetime(2025, 3, 4, 5, 6, 7,"
        " tzinfo=datetime.timezone.utc), cache_hit=True, provider_cost_avoided_micro=3000)"
    )
    assert result.raw is answer


def test_a_rich_catalogue_answer() -> None:
    answer = {
        "models": [{"id": "a/b", "name": "A", "tags": ["t"], "pricing": {"per": "image"}, "run_count": 3}],
        "total": 41,
        "featured": [{"title": "New", "key": "new", "models": [{"id": "c/d", "media_type": "video"}]}],
    }
    result = visgate_sdk.ModelsResponse.from_dict(answer)
    assert result.total_count == 41 and result.models[0].pricing == {"per": "image"} and result.models[0].tags == ["t"]
    assert result.models[0].raw == answer["models"][0]
    assert result.featured is not None and result.featured[0].models[0].media_type == "video"
    assert visgate_sdk.ModelsResponse.from_dict({"featured": []}).featured is None  # empty means none, as in 0.0.3


def test_old_usage_keys() -> None:
    usage = visgate_sdk.UsageSummary.from_dict(
        {"total_requests": 4, "cached_requests": 1, "total_cost_usd": 1.5, "provider_breakdown": {"fal": {"requests": 4}}}
    )
    assert (usage.total_billed_cost, usage.by_provider, usage.cache_hit_rate) == (1.5, {"fal": {"requests": 4}}, 25.0)


def test_a_status_without_media_type_is_a_video_as_in_the_reference() -> None:
    status = visgate_sdk.RequestStatusResult.from_dict({"request_id": "r", "status": "processing"})
    assert status.media_type == "video" and visgate_sdk.RequestStatusResult().media_type == "video"
    assert visgate_sdk.RequestStatusResult.from_dict({"media_type": "image"}).media_type == "image"

STATUS = {
    "request_id": "req-9", "status": "completed", "media_type": "image", "model": "fal-ai/flux/schnell", "provider": "fal",
    "output_url": "https://cdn.example/out.png", "created_at": "2025-01-02T03:04:05Z", "completed_at": "2025-01-02T03:04:09Z",
}


def test_results_from_a_completed_status() -> None:
    image = visgate_sdk._result_from_status(visgate_sdk.ImageResult, STATUS)
    assert (image.id, image.images, image.image_url) == ("req-9", [STATUS["output_url"]], STATUS["output_url"])
    assert (image.model, image.provider) == ("fal-ai/flux/schnell", "fal")
    assert image.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert image.raw is STATUS and "id" not in STATUS  # the answer is kept as it came
    video = visgate_sdk._result_from_status(visgate_sdk.VideoResult, dict(STATUS, media_type="video"))
    expected = (visgate_sdk.VideoResult, "req-9", STATUS["output_url"], STATUS["model"])
    assert (type(video), video.id, video.video_url, video.model) == expected
    generated = visgate_sdk._result_from_status(visgate_sdk.GenerateResult, STATUS)
    assert (generated.id, generated.image_url, generated.images) == ("req-9", STATUS["output_url"], [STATUS["output_url"]])


def test_a_status_keeps_what_else_it_carries() -> None:
    status = dict(STATUS, cost=0.04, cache_hit=True, latency_ms=912, images=["https://cdn.example/a.png", "https://cdn.example/b.png"])
    image = visgate_sdk._result_from_status(visgate_sdk.ImageResult, status)
    assert (image.cost, image.cache_hit, image.latency_ms, len(image.images)) == (0.04, True, 912, 2)
    empty = visgate_sdk._result_from_status(visgate_sdk.VideoResult, {"request_id": "r", "status": "completed"})
    assert (empty.id, empty.video_url, empty._media_urls()) == ("r", None, [])


def test_a_status_of_the_wrong_shape_names_the_status_key() -> None:
    with pytest.raises(InvalidResponseError, match=r"RequestStatusResult\.output_url should be a string, got dict"):
        visgate_sdk._result_from_status(visgate_sdk.ImageResult, dict(STATUS, output_url={}))
    with pytest.raises(InvalidResponseError, match="RequestStatusResult should be an object, got list"):
        visgate_sdk._result_from_status(visgate_sdk.ImageResult, [])  # type: ignore[arg-type]
