"""Tests of visgate_emulator, driven over real HTTP with urllib (no SDK needed)."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from http.client import HTTPConnection
from typing import Any, Dict, Optional

import pytest

from visgate_emulator import DEMO_API_KEY, Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def call(emu: Emulator, method: str, path: str, body: Any = None,
         headers: Optional[Dict[str, str]] = None, key: Optional[str] = DEMO_API_KEY) -> Answer:
    url = path if path.startswith("http") else emu.base_url + path
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    all_headers = {"Authorization": "Bearer " + key} if key else {}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with OPENER.open(request, timeout=10) as resp:
            return Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.headers, err.read())


def post(emu: Emulator, path: str, body: Any, **kwargs: Any) -> Answer:
    return call(emu, "POST", path, body, **kwargs)


def get(emu: Emulator, path: str, **kwargs: Any) -> Answer:
    return call(emu, "GET", path, **kwargs)


def assert_error(answer: Answer, status: int, code: str) -> dict:
    assert answer.status == status, answer.body
    payload = answer.json()
    assert set(payload) == {"error", "message", "details"}
    assert payload["error"] == code and payload["message"]
    return payload


@pytest.fixture
def emu():
    with Emulator() as emulator:
        yield emulator


# -- basics -------------------------------------------------------------------------------------


def test_interface_urls(emu):
    assert emu.port > 0
    assert emu.root_url == "http://127.0.0.1:%d" % emu.port
    assert emu.base_url == emu.root_url + "/api/v1"
    assert DEMO_API_KEY == "vg-emulator-demo-key"


def test_health_needs_no_key(emu):
    answer = get(emu, "/health", key=None)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"status": "ok", "version": answer.json()["version"],
                             "database": "ok", "cache": "ok", "emulator": True}


def test_health_reports_the_sdk_version(emu):
    import visgate_sdk

    assert get(emu, "/health", key=None).json()["version"] == visgate_sdk.__version__ + "-emulator"
    assert not hasattr(sys.modules["visgate_emulator"], "__version__")


@pytest.mark.parametrize("key", [None, "vg-invalid-123", "sk-not-visgate"])
def test_bad_or_missing_key_is_401(emu, key):
    assert_error(get(emu, "/usage", key=key), 401, "AUTHENTICATION_ERROR")


def test_bad_authorization_scheme_is_401(emu):
    answer = get(emu, "/usage", key=None, headers={"Authorization": "Basic " + DEMO_API_KEY})
    assert_error(answer, 401, "AUTHENTICATION_ERROR")


def test_explicit_api_keys_only():
    with Emulator(api_keys=["secret-one"]) as emu:
        assert get(emu, "/auth/me", key="secret-one").status == 200
        assert_error(get(emu, "/auth/me", key=DEMO_API_KEY), 401, "AUTHENTICATION_ERROR")


def test_unknown_route_and_wrong_method(emu):
    assert_error(get(emu, "/nope"), 404, "NOT_FOUND")
    answer = call(emu, "DELETE", "/health")
    assert_error(answer, 405, "METHOD_NOT_ALLOWED")
    assert answer.headers["Allow"] == "GET"


def test_keep_alive_serves_many_requests_on_one_connection(emu):
    connection = HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        for path in ("/api/v1/health", "/api/v1/nope", "/api/v1/models?limit=1"):
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            assert len(body) == int(response.headers["Content-Length"])
            json.loads(body)
        connection.request("HEAD", "/api/v1/health")
        response = connection.getresponse()
        assert response.read() == b"" and int(response.headers["Content-Length"]) > 0
    finally:
        connection.close()


# -- models -------------------------------------------------------------------------------------

MODEL_FIELDS = {
    "id", "name", "provider", "media_type", "description", "category", "tags",
    "cover_image_url", "author", "url", "base_cost_micro", "normalized_cost_micro", "pricing",
    "pricing_unit", "run_count", "input_types", "output_type", "capabilities", "first_seen_at",
    "provider_created_at", "last_synced_at",
}


def test_model_catalogue(emu):
    answer = get(emu, "/models", key=None)
    assert answer.status == 200
    payload = answer.json()
    models = payload["models"]
    assert len(models) >= 15 and payload["total_count"] == len(models) and payload["last_updated"]
    ids = {m["id"] for m in models}
    assert {"fal-ai/flux/schnell", "fal-ai/flux-pro/video", "fal-ai/veo3",
            "black-forest-labs/flux-schnell", "runway/gen4_image", "runway/gen4_turbo"} <= ids
    assert {m["provider"] for m in models} == {"fal", "replicate", "runway"}
    assert {m["media_type"] for m in models} == {"image", "video"}
    for model in models:
        assert set(model) >= MODEL_FIELDS
        assert all(model[f] not in (None, "", []) for f in MODEL_FIELDS), model["id"]
    cover = call(emu, "GET", models[0]["cover_image_url"], key=None)
    assert cover.status == 200 and cover.body.startswith(b"\x89PNG")


def test_model_filters_and_search(emu):
    def ids(query):
        return [m["id"] for m in get(emu, "/models?" + query, key=None).json()["models"]]

    fal_video = get(emu, "/models?provider=fal&media_type=video", key=None).json()
    assert fal_video["models"]
    assert all(m["provider"] == "fal" and m["media_type"] == "video" for m in fal_video["models"])
    assert "fal-ai/veo3" in ids("capability=text-to-video")
    assert all("image-to-video" in m["capabilities"] for m in
               get(emu, "/models?capability=image-to-video", key=None).json()["models"])
    assert set(ids("search=VEO")) == {"fal-ai/veo3"}
    assert "runway/gen4_image" in ids("search=runway")  # author
    assert ids("search=no-such-model-anywhere") == []
    limited = get(emu, "/models?provider=fal&limit=2", key=None).json()
    assert len(limited["models"]) == 2 and limited["total_count"] > 2
    assert_error(get(emu, "/models?provider=acme", key=None), 422, "VALIDATION_ERROR")
    assert_error(get(emu, "/models?limit=0", key=None), 422, "VALIDATION_ERROR")


def test_model_sorting(emu):
    def models(sort):
        return get(emu, "/models?sort=" + sort, key=None).json()["models"]

    names = [m["name"].lower() for m in models("name")]
    assert names == sorted(names)
    costs = [m["normalized_cost_micro"] for m in models("cost")]
    assert costs == sorted(costs)
    seen = [m["first_seen_at"] for m in models("newest")]
    assert seen == sorted(seen, reverse=True)
    runs = [m["run_count"] for m in models("popular")]
    assert runs == sorted(runs, reverse=True)
    payload = assert_error(get(emu, "/models?sort=random", key=None), 422, "VALIDATION_ERROR")
    assert payload["details"]["field"] == "sort"


def test_featured_sections(emu):
    payload = get(emu, "/models?featured=true&limit=1", key=None).json()
    assert len(payload["models"]) == 1
    assert payload["featured"]
    for section in payload["featured"]:
        assert section["title"] and section["key"] and section["models"]
    assert "featured" not in get(emu, "/models", key=None).json()


@pytest.mark.parametrize("path", ["/models/fal-ai/flux/schnell", "/models/fal-ai%2Fflux%2Fschnell"])
def test_get_model_with_slashes(emu, path):
    answer = get(emu, path, key=None)
    assert answer.status == 200
    assert answer.json()["id"] == "fal-ai/flux/schnell"
    assert set(answer.json()) >= MODEL_FIELDS


def test_unknown_model_is_404(emu):
    assert_error(get(emu, "/models/acme/nothing", key=None), 404, "MODEL_NOT_FOUND")
    answer = post(emu, "/images/generate", {"prompt": "x", "model": "acme/nothing"})
    assert_error(answer, 404, "MODEL_NOT_FOUND")


# -- generation ---------------------------------------------------------------------------------


def test_generate(emu):
    answer = post(emu, "/generate", {"prompt": "a sunset over Istanbul"})
    assert answer.status == 200
    result = answer.json()
    assert set(result) == {"id", "image_url", "images", "model", "provider", "mode",
                           "estimated_cost_usd", "cost_per_megapixel_usd", "latency_ms",
                           "resolution", "created_at", "cache_hit"}
    assert result["model"] == "fal-ai/flux/schnell" and result["provider"] == "fal"
    assert result["mode"] == "managed"
    assert result["image_url"] == result["images"][0]
    assert result["image_url"].startswith(emu.root_url + "/media/img_")
    assert result["resolution"] == {"width": 1024, "height": 1024}
    assert result["estimated_cost_usd"] > 0 and result["cost_per_megapixel_usd"] > 0


def test_generate_byok_mode_and_params(emu):
    body = {"prompt": "a cat", "model": "black-forest-labs/flux-schnell",
            "params": {"width": 512, "height": 768}}
    result = post(emu, "/generate", body, headers={"X-Replicate-Key": "r8_secret"}).json()
    assert result["provider"] == "replicate" and result["mode"] == "byok"
    assert result["resolution"] == {"width": 512, "height": 768}
    other = post(emu, "/generate", body, headers={"X-Fal-Key": "fal_secret"}).json()
    assert other["mode"] == "managed"  # a fal key does not make a replicate call BYOK


def test_images_generate(emu):
    body = {"model": "runway/gen4_image", "prompt": "a red bicycle", "num_images": 2,
            "width": 640, "height": 480, "seed": 7, "style": "extra params are accepted"}
    result = post(emu, "/images/generate?include_steps=true", body).json()
    assert {"id", "images", "model", "provider", "cost", "cache_hit", "latency_ms",
            "created_at", "output_storage", "output_size_bytes", "steps"} <= set(result)
    assert result["provider"] == "runway" and result["cache_hit"] is False
    assert len(result["images"]) == 2 and len(set(result["images"])) == 2
    assert result["output_size_bytes"] > 0 and result["cost"] > 0
    assert [s["name"] for s in result["steps"]] == ["cache", "provider", "storage"]
    assert all(isinstance(s["duration_ms"], int) for s in result["steps"])
    assert "steps" not in post(emu, "/images/generate", dict(body, prompt="other")).json()


def test_videos_generate(emu):
    body = {"model": "fal-ai/veo3", "prompt": "drone over the Bosphorus", "duration_seconds": 4}
    result = post(emu, "/videos/generate", body).json()
    assert set(result) == {"id", "video_url", "model", "provider", "cost", "cache_hit",
                           "provider_cost_avoided_micro", "latency_ms", "created_at"}
    assert result["provider"] == "fal" and result["cost"] > 0
    media = call(emu, "GET", result["video_url"], key=None)
    assert media.status == 200 and media.headers["Content-Type"] == "video/mp4"
    assert media.body[4:8] == b"ftyp"


def test_image_model_on_video_endpoint_is_422(emu):
    answer = post(emu, "/videos/generate", {"model": "fal-ai/flux/schnell", "prompt": "x"})
    assert assert_error(answer, 422, "VALIDATION_ERROR")["details"]["field"] == "model"


@pytest.mark.parametrize("path, body, field", [
    ("/generate", {}, "prompt"),
    ("/generate", {"prompt": "   "}, "prompt"),
    ("/generate", {"prompt": "x", "params": {"width": 0}}, "width"),
    ("/images/generate", {"prompt": 5}, "prompt"),
    ("/images/generate", {"prompt": "x", "width": 4097}, "width"),
    ("/images/generate", {"prompt": "x", "height": -3}, "height"),
    ("/images/generate", {"prompt": "x", "height": 512.5}, "height"),
    ("/images/generate", {"prompt": "x", "num_images": 0}, "num_images"),
    ("/images/generate", {"prompt": "x", "num_images": 5}, "num_images"),
    ("/videos/generate", {"prompt": "x", "duration_seconds": 0}, "duration_seconds"),
    ("/videos/generate", {"prompt": "x", "duration_seconds": 61}, "duration_seconds"),
    ("/videos/generate", {"prompt": "x", "duration_seconds": "5"}, "duration_seconds"),
    ("/videos/generate", b"{not json", "body"),
    ("/images/generate", b"[1, 2]", "body"),
])
def test_generation_validation(emu, path, body, field):
    payload = assert_error(post(emu, path, body), 422, "VALIDATION_ERROR")
    assert payload["details"]["field"] == field


# -- cache and idempotency ----------------------------------------------------------------------


def test_exact_cache_hit(emu):
    body = {"model": "fal-ai/flux/schnell", "prompt": "a lighthouse at dawn"}
    first = post(emu, "/images/generate", body).json()
    second = post(emu, "/images/generate", body).json()
    assert first["cache_hit"] is False and "provider_cost_avoided_micro" not in first
    assert second["cache_hit"] is True and second["cost"] == 0
    assert second["provider_cost_avoided_micro"] > 0
    assert second["latency_ms"] < first["latency_ms"]
    assert second["images"] == first["images"]
    other_size = post(emu, "/images/generate", dict(body, width=512)).json()
    assert other_size["cache_hit"] is False and other_size["images"] != first["images"]


def test_unified_generate_reports_cache_hits(emu):
    body = {"model": "fal-ai/flux/schnell", "prompt": "a kite over the dunes"}
    first = post(emu, "/generate", body).json()
    again = post(emu, "/generate", body).json()
    assert first["cache_hit"] is False and "provider_cost_avoided_micro" not in first
    assert again["cache_hit"] is True and again["estimated_cost_usd"] == 0
    assert again["provider_cost_avoided_micro"] > 0 and again["images"] == first["images"]


def test_semantic_cache_hit(emu):
    first = post(emu, "/images/generate", {"prompt": "A red fox, in the snow"}).json()
    again = post(emu, "/images/generate?include_steps=true",
                 {"prompt": "the snow in: a RED fox!"}).json()
    assert again["cache_hit"] is True and again["images"] == first["images"]
    assert again["steps"][0]["match"] == "semantic"
    different = post(emu, "/images/generate", {"prompt": "a red fox in the rain"}).json()
    assert different["cache_hit"] is False


def test_video_cache_hit(emu):
    body = {"model": "runway/gen4_turbo", "prompt": "waves", "duration_seconds": 5}
    first = post(emu, "/videos/generate", body).json()
    again = post(emu, "/videos/generate", body).json()
    assert again["cache_hit"] is True and again["cost"] == 0
    assert again["video_url"] == first["video_url"] and again["provider_cost_avoided_micro"] > 0
    longer = post(emu, "/videos/generate", dict(body, duration_seconds=10)).json()
    assert longer["cache_hit"] is False


def test_idempotent_replay_is_not_counted_twice(emu):
    body = {"prompt": "an idempotent teapot"}
    headers = {"Idempotency-Key": "idem-1"}
    first = post(emu, "/images/generate", body, headers=headers)
    replay = post(emu, "/images/generate", body, headers=headers)
    assert replay.status == 200 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    respaced = post(emu, "/images/generate", b'{ "prompt" : "an idempotent teapot" }',
                    headers=headers)
    assert respaced.json() == first.json()  # the same JSON, spelled differently
    usage = get(emu, "/usage").json()
    assert usage["total_requests"] == 1 and usage["cached_requests"] == 0
    assert len(get(emu, "/usage/logs").json()["logs"]) == 1
    # Same key on another path is another request; same key and path with another body: 409.
    assert post(emu, "/generate", body, headers=headers).status == 200
    reused = post(emu, "/images/generate", {"prompt": "something else"}, headers=headers)
    assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")


def test_concurrent_requests_with_one_idempotency_key_bill_once(emu):
    body = {"prompt": "a stampede of retries", "model": "fal-ai/flux/dev"}
    barrier = threading.Barrier(8)
    answers = []

    def worker():
        barrier.wait(10)
        answers.append(post(emu, "/images/generate", body, headers={"Idempotency-Key": "same"}))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 8 and all(a.status == 200 for a in answers)
    assert len({a.body for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    usage = get(emu, "/usage").json()
    assert usage["total_requests"] == 1
    assert usage["total_billed_cost"] == pytest.approx(answers[0].json()["cost"]) and answers[0].json()["cost"] > 0


def test_rerun_batch_with_the_same_keys_is_billed_once(emu):
    batch = [("batch-%d" % n, {"prompt": "batch item %d" % n}) for n in range(3)]

    def run(items):
        return [post(emu, "/images/generate", body, headers={"Idempotency-Key": key}).json()
                for key, body in items]

    first = run(batch[:2])  # the batch is killed after two items
    billed = get(emu, "/usage").json()["total_billed_cost"]
    assert billed > 0
    rerun = run(batch)
    assert rerun[:2] == first
    usage = get(emu, "/usage").json()
    assert usage["total_requests"] == 3
    assert usage["total_billed_cost"] == pytest.approx(billed + rerun[2]["cost"])
    logs = get(emu, "/usage/logs").json()["logs"]
    assert sorted(e["idempotency_key"] for e in logs) == [key for key, _ in batch]
    assert all(e["cost"] > 0 and e["cache_hit"] is False for e in logs)
    plain = post(emu, "/images/generate", {"prompt": "no key"}).json()
    newest = get(emu, "/usage/logs?limit=1").json()["logs"][0]
    assert newest["id"] == plain["id"] and newest["idempotency_key"] is None


# -- async jobs ---------------------------------------------------------------------------------

ASYNC = {"Prefer": "respond-async"}


def test_async_job_lifecycle(emu):
    submitted = post(emu, "/videos/generate", {"prompt": "slow clouds"}, headers=ASYNC)
    assert submitted.status == 202
    job = submitted.json()
    assert set(job) == {"request_id", "status"} and job["status"] == "pending"
    statuses = []
    for _ in range(3):
        polled = get(emu, "/requests/" + job["request_id"]).json()
        statuses.append(polled["status"])
    assert statuses == ["processing", "completed", "completed"]
    assert {"request_id", "status", "media_type", "provider", "model", "output_url",
            "error_message", "created_at", "completed_at"} <= set(polled)
    assert polled["media_type"] == "video" and polled["model"] == "fal-ai/flux-pro/video"
    assert polled["completed_at"] and polled["error_message"] is None
    media = call(emu, "GET", polled["output_url"], key=None)
    assert media.status == 200 and media.headers["Content-Type"] == "video/mp4"
    assert get(emu, "/usage").json()["successful_requests"] == 1


def test_async_job_steps_and_images():
    with Emulator(job_steps=2) as emu:
        job = post(emu, "/images/generate", {"prompt": "async image"}, headers=ASYNC).json()
        statuses = [get(emu, "/requests/" + job["request_id"]).json()["status"]
                    for _ in range(4)]
        assert statuses == ["pending", "processing", "processing", "completed"]


def test_async_job_failure(emu):
    job = post(emu, "/images/generate", {"prompt": "please [fail] now"}, headers=ASYNC).json()
    for _ in range(2):
        polled = get(emu, "/requests/" + job["request_id"]).json()
    assert polled["status"] == "failed" and polled["error_message"]
    assert polled["output_url"] is None
    usage = get(emu, "/usage").json()
    assert usage["failed_requests"] == 1 and usage["total_billed_cost"] == 0


def test_async_submission_with_an_idempotency_key_is_one_job(emu):
    headers = dict(ASYNC, **{"Idempotency-Key": "one-job"})
    first = post(emu, "/videos/generate", {"prompt": "one job"}, headers=headers)
    again = post(emu, "/videos/generate", {"prompt": "one job"}, headers=headers)
    assert first.status == again.status == 202 and again.json() == first.json()
    for _ in range(2):
        polled = get(emu, "/requests/" + first.json()["request_id"]).json()
    assert polled["status"] == "completed"
    assert get(emu, "/usage").json()["total_requests"] == 1


def test_job_seconds_finish_by_the_clock_not_by_polls():
    with Emulator(job_seconds=1.0) as emu:
        started = time.monotonic()
        job = post(emu, "/images/generate", {"prompt": "clocked"}, headers=ASYNC).json()
        statuses = [get(emu, "/requests/" + job["request_id"]).json()["status"] for _ in range(3)]
        quick = time.monotonic() - started < 0.5  # the three polls came within half the job time
        assert statuses == ["pending"] * 3 or not quick
        seen = []
        while time.monotonic() - started < 10:
            polled = get(emu, "/requests/" + job["request_id"]).json()
            if not seen or seen[-1] != polled["status"]:
                seen.append(polled["status"])
            if polled["status"] == "completed":
                break
            time.sleep(0.05)
        assert seen[-1] == "completed" and "processing" in seen
        assert time.monotonic() - started >= 1.0
        assert polled["output_url"] and get(emu, "/usage").json()["successful_requests"] == 1


def test_job_seconds_zero_completes_at_the_first_poll():
    with Emulator(job_seconds=0) as emu:
        job = post(emu, "/videos/generate", {"prompt": "instant"}, headers=ASYNC).json()
        assert get(emu, "/requests/" + job["request_id"]).json()["status"] == "completed"


def test_unknown_request_is_404(emu):
    assert_error(get(emu, "/requests/req_missing"), 404, "NOT_FOUND")


# -- media --------------------------------------------------------------------------------------


def png_chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        tag = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks.append((tag, body))
        position += 12 + length
    return chunks


def fetch_png(emu: Emulator, prompt: str) -> bytes:
    url = post(emu, "/images/generate", {"prompt": prompt}).json()["images"][0]
    media = call(emu, "GET", url, key=None)
    assert media.status == 200 and media.headers["Content-Type"] == "image/png"
    return media.body


def test_png_is_valid_and_prompt_dependent(emu):
    data = fetch_png(emu, "a green meadow")
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (64, 64, 8, 2)
    pixels = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    assert fetch_png(emu, "a blue ocean") != data


def test_media_needs_no_header_and_unknown_is_404(emu):
    url = post(emu, "/images/generate", {"prompt": "bare fetch"}).json()["images"][0]
    with OPENER.open(urllib.request.Request(url), timeout=10) as resp:
        assert resp.status == 200 and resp.read().startswith(b"\x89PNG")
    assert_error(call(emu, "GET", emu.root_url + "/media/img_nothing.png", key=None),
                 404, "NOT_FOUND")


# -- usage --------------------------------------------------------------------------------------


def test_usage_adds_up(emu):
    results = [
        post(emu, "/images/generate", {"prompt": "one"}).json(),
        post(emu, "/images/generate", {"prompt": "one"}).json(),  # cache hit
        post(emu, "/videos/generate", {"prompt": "two", "model": "runway/gen4_turbo"}).json(),
        post(emu, "/images/generate", {"prompt": "three",
                                       "model": "black-forest-labs/flux-schnell"}).json(),
    ]
    assert_error(post(emu, "/images/generate", {"prompt": "x [fail]"}), 502, "PROVIDER_ERROR")
    usage = get(emu, "/usage?period=week").json()
    assert usage["total_requests"] == 5
    assert usage["successful_requests"] == 4 and usage["failed_requests"] == 1
    assert usage["cached_requests"] == 1
    assert usage["total_billed_cost"] == pytest.approx(sum(r["cost"] for r in results))
    assert usage["total_provider_cost"] > 0 and usage["total_savings"] > 0
    assert usage["by_provider"]["fal"]["requests"] == 3
    assert usage["by_provider"]["runway"]["requests"] == 1
    assert usage["by_model"]["runway/gen4_turbo"]["cost"] == pytest.approx(results[2]["cost"])
    assert sum(p["requests"] for p in usage["by_provider"].values()) == 5
    assert usage["period"] == "week" and usage["period_start"] < usage["period_end"]
    assert_error(get(emu, "/usage?period=decade"), 422, "VALIDATION_ERROR")

    logs = get(emu, "/usage/logs?limit=10").json()["logs"]
    assert len(logs) == 5 and logs[0]["status"] == "failed"
    assert logs[-1]["id"] == results[0]["id"]  # newest first
    for entry in logs:
        assert {"id", "model", "provider", "media_type", "cost", "cache_hit", "status",
                "created_at"} <= set(entry)
    page = get(emu, "/usage/logs?limit=2&offset=1").json()["logs"]
    assert [e["id"] for e in page] == [e["id"] for e in logs[1:3]]

    dashboard = get(emu, "/dashboard?period=day").json()
    assert dashboard["total_generations"] == 5
    assert dashboard["total_cost_usd"] == pytest.approx(usage["total_billed_cost"])
    assert dashboard["cache_hit_rate"] == pytest.approx(0.2)
    assert set(dashboard["by_provider"]) == {"fal", "replicate", "runway"}


# -- providers ----------------------------------------------------------------------------------


def test_provider_keys_lifecycle(emu):
    assert get(emu, "/providers/keys").json() == {"keys": []}
    secret = "fal_0123456789abcdef"
    entry = call(emu, "PUT", "/providers/keys", {"provider": "fal", "api_key": secret})
    assert entry.status == 200 and secret.encode() not in entry.body
    entry = entry.json()
    assert entry["provider"] == "fal" and entry["validated"] is True and entry["validated_at"]
    assert entry["masked_key"] == "fal_\u2026cdef"
    listed = get(emu, "/providers/keys")
    assert listed.json() == {"keys": [entry]} and secret.encode() not in listed.body
    assert call(emu, "DELETE", "/providers/keys/fal").json() == {"deleted": True,
                                                                 "provider": "fal"}
    assert_error(call(emu, "DELETE", "/providers/keys/fal"), 404, "NOT_FOUND")
    bad = call(emu, "PUT", "/providers/keys", {"provider": "acme", "api_key": "x"})
    assert assert_error(bad, 422, "VALIDATION_ERROR")["details"]["field"] == "provider"


@pytest.mark.parametrize("provider, api_key, valid", [
    ("fal", "fal_abc", True),
    ("fal", "12345678", True),
    ("fal", "short", False),
    ("replicate", "r8_abcdef", True),
    ("replicate", "fal_abcdef", False),
    ("runway", "rw_abc", True),
    ("runway", "key_abc", True),
    ("runway", "r8_abc", False),
])
def test_provider_validate(emu, provider, api_key, valid):
    result = post(emu, "/providers/validate", {"provider": provider, "api_key": api_key}).json()
    assert result["valid"] is valid and result["message"]


def test_provider_validate_unknown_provider(emu):
    answer = post(emu, "/providers/validate", {"provider": "acme", "api_key": "abc"})
    assert assert_error(answer, 422, "VALIDATION_ERROR")["details"]["field"] == "provider"


def test_balances_decrease_with_spend(emu):
    def remaining():
        balances = get(emu, "/providers/balances").json()["balances"]
        assert [b["provider"] for b in balances] == ["fal", "replicate", "runway"]
        for balance in balances:
            assert {"configured", "available", "limit", "remaining", "currency",
                    "message"} <= set(balance)
        return {b["provider"]: b["remaining"] for b in balances}

    before = remaining()
    post(emu, "/images/generate", {"prompt": "spend a little"})
    after = remaining()
    assert after["fal"] < before["fal"] and after["runway"] == before["runway"]


# -- account and billing ------------------------------------------------------------------------


def test_account_and_billing(emu):
    me = get(emu, "/auth/me").json()
    assert me["role"] == "api-key" and set(me["organization"]) >= {"id", "name"}
    keys = get(emu, "/api-keys")
    assert DEMO_API_KEY.encode() not in keys.body
    entries = keys.json()
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert {"id", "name", "key_prefix", "created_at", "last_used_at"} <= set(entry)
        assert DEMO_API_KEY.startswith(entry["key_prefix"])
    post(emu, "/images/generate", {"prompt": "billing"})
    stats = get(emu, "/billing/stats").json()
    assert {"active_users", "avg_image_cost_micro", "avg_video_cost_micro", "base_fee_micro",
            "cache_hit_reduction_percent", "total_requests", "total_savings_micro"} <= set(stats)
    assert stats["total_requests"] == 1 and stats["avg_image_cost_micro"] > 0
    info = get(emu, "/billing/info").json()
    assert {"balance_micro", "billing_status", "company_name", "free_mode_enabled",
            "monthly_budget_cents", "support_email", "tier",
            "usage_this_month_cents"} <= set(info)
    pricing = get(emu, "/billing/pricing").json()
    assert pricing["last_updated"] and len(pricing["pricing"]) >= 15


# -- fault injection ----------------------------------------------------------------------------


def fault(emu: Emulator, value: str, path: str = "/usage", **kwargs: Any) -> Answer:
    headers = dict(kwargs.pop("headers", {}), **{"X-Emulator-Fault": value})
    return call(emu, kwargs.pop("method", "GET"), path, headers=headers, **kwargs)


def test_fault_statuses(emu):
    limited = fault(emu, "429")
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert limited.headers["Retry-After"] == "1"
    assert_error(fault(emu, "500"), 500, "INTERNAL_ERROR")
    assert_error(fault(emu, "503", key=None), 503, "SERVICE_UNAVAILABLE")
    html = fault(emu, "html")
    assert html.status == 502 and html.headers["Content-Type"] == "text/html"
    empty = fault(emu, "empty")
    assert empty.status == 503 and empty.body == b""
    assert fault(emu, "delay=0.01").status == 200
    assert fault(emu, "bogus").status == 422


def test_fault_times_lets_retries_succeed(emu):
    headers = {"Idempotency-Key": "retry-me"}
    statuses = [fault(emu, "503; times=2", "/images/generate", method="POST",
                      body={"prompt": "retried"}, headers=headers).status for _ in range(3)]
    assert statuses == [503, 503, 200]


def stalled_request(emu: Emulator, timeout: float, fault_value: str = "stall") -> HTTPConnection:
    connection = HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    connection.request("GET", "/api/v1/health", headers={"X-Emulator-Fault": fault_value})
    return connection


def handler_threads() -> int:
    return sum("process_request" in t.name or t.name.startswith("Thread-") for t in threading.enumerate())


def test_stall_fault_never_answers(emu):
    baseline = handler_threads()
    connection = stalled_request(emu, timeout=0.5)
    with pytest.raises(socket.timeout):
        connection.getresponse()
    connection.close()  # the client hangs up: the emulator lets go of the connection
    deadline = time.monotonic() + 10
    while handler_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handler_threads() <= baseline
    assert get(emu, "/health", key=None).status == 200  # nobody else is held up


def test_stall_times_lets_a_retry_through(emu):
    connection = stalled_request(emu, timeout=0.5, fault_value="stall; times=1")
    with pytest.raises(socket.timeout):
        connection.getresponse()
    connection.close()
    assert fault(emu, "stall; times=1", "/health", key=None).status == 200


def test_stopping_the_emulator_releases_a_stall():
    emu = Emulator().start()
    outcome = []

    def client():
        connection = stalled_request(emu, timeout=30)
        try:
            outcome.append(connection.getresponse().status)
        except (ConnectionError, OSError) as exc:  # closed without an answer
            outcome.append(type(exc).__name__)
        finally:
            connection.close()

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(0.3)  # let the request arrive and stall
    started = time.monotonic()
    emu.stop()
    thread.join(20)
    assert not thread.is_alive() and time.monotonic() - started < 10
    assert outcome and not isinstance(outcome[0], int)


@pytest.mark.parametrize("kwargs", [
    {"model": "emulator/provider-failure", "headers": {}},
    {"model": "runway/gen4_image", "headers": {"X-Emulator-Fault": "provider"}},
])
def test_provider_failure(emu, kwargs):
    answer = post(emu, "/images/generate", {"prompt": "x", "model": kwargs["model"]},
                  headers=kwargs["headers"])
    payload = assert_error(answer, 502, "PROVIDER_ERROR")
    expected = "fal" if kwargs["model"].startswith("emulator/") else "runway"
    assert payload["details"]["provider"] == expected


# -- concurrency and CLI ------------------------------------------------------------------------


def test_concurrent_requests_are_counted_once_each(emu):
    errors = []

    def worker(n):
        try:
            assert post(emu, "/images/generate", {"prompt": "thread %d" % n}).status == 200
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert get(emu, "/usage").json()["total_requests"] == 12


def start_cli(*args: str):
    """The emulator's command line on a free port: (process, banner lines, base URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "visgate_emulator", "--port", "0", *args], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = process.stderr.readline()
        if not line:
            stop_cli(process)
        assert line, "emulator exited early: %s" % "".join(lines)
        lines.append(line)
        if "listening on" in line:
            return process, lines, line.split("listening on ", 1)[1].strip()


def stop_cli(process) -> None:
    process.kill()
    process.wait(10)
    process.stderr.close()


def test_cli_prints_banner_and_logs_without_secrets():
    process, lines, base_url = start_cli()
    try:
        assert "EMULATOR" in "".join(lines)
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        request = urllib.request.Request(
            base_url + "/providers/keys",
            headers={"Authorization": "Bearer vg-cli-secret", "X-Fal-Key": "fal_cli_secret"})
        with OPENER.open(request, timeout=10) as resp:
            assert resp.status == 200
        log_line = process.stderr.readline()
        assert "GET /api/v1/providers/keys 200" in log_line
        assert "secret" not in log_line
    finally:
        stop_cli(process)


def test_cli_job_seconds():
    process, _, base_url = start_cli("--quiet", "--job-seconds", "60")
    try:
        headers = {"Authorization": "Bearer " + DEMO_API_KEY, "Content-Type": "application/json",
                   "Prefer": "respond-async"}
        request = urllib.request.Request(base_url + "/videos/generate", data=b'{"prompt": "slow"}',
                                         headers=headers, method="POST")
        with OPENER.open(request, timeout=10) as resp:
            request_id = json.loads(resp.read())["request_id"]
        for _ in range(3):  # polls do not advance a clocked job
            poll = urllib.request.Request(base_url + "/requests/" + request_id, headers=headers)
            with OPENER.open(poll, timeout=10) as resp:
                assert json.loads(resp.read())["status"] == "pending"
    finally:
        stop_cli(process)


def test_cli_rejects_bad_job_options():
    for args in (["--job-seconds", "-1"], ["--job-seconds", "1", "--job-steps", "2"]):
        proc = subprocess.run([sys.executable, "-m", "visgate_emulator", "--port", "0", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 2 and "job-s" in proc.stderr
    with pytest.raises(ValueError):
        Emulator(job_seconds=-1)
