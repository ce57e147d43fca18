"""A local EMULATOR of the visgate HTTP API: no account, no network, no real generation.

Use it in your tests::

    from visgate_emulator import DEMO_API_KEY, Emulator
    with Emulator() as emu:
        client = visgate_sdk.Client(api_key=DEMO_API_KEY, base_url=emu.base_url)

It speaks the API that ``visgate_sdk`` talks to (``/api/v1``, see the API notes the project keeps),
keeps state like the real service (cache, idempotency, async jobs, usage, provider keys) and serves
the "generated" media itself: placeholder PNG images and a placeholder MP4 under ``/media/...``.
New users and CI run every example against it. Standard library only, Python 3.9+.

Start it from a shell::

    python -m visgate_emulator [--host 127.0.0.1] [--port 8765] [--api-key KEY ...]
                               [--job-steps N | --job-seconds S] [--quiet]
    export VISGATE_BASE_URL=http://127.0.0.1:8765/api/v1
    export VISGATE_API_KEY=vg-emulator-demo-key

or from Python (``port=0`` picks a free port)::

    with Emulator(job_seconds=10) as emu:
        print(emu.base_url)         # http://127.0.0.1:54321/api/v1

API keys: without ``api_keys`` any key starting with ``vg-`` is accepted except ``vg-invalid...``;
with ``api_keys`` only those. ``/health``, ``/models*`` and ``/media/*`` need no key.

Emulated behaviour worth knowing:
- the cache key is model + prompt + size (+ num_images / duration / seed / negative_prompt /
  image_url); prompts with the same words in another order, case or punctuation also hit;
- a POST repeated with the same ``Idempotency-Key`` (same key, same path) returns the stored
  answer and is billed once, also when the repeats arrive at the same time; the same key with a
  different body is 409 ``IDEMPOTENCY_KEY_REUSED``. ``/usage/logs`` entries carry the
  ``idempotency_key`` of the request that was billed (or null);
- ``Prefer: respond-async`` answers 202 and the job goes pending -> processing -> completed:
  by default each GET ``/requests/{id}`` advances it, ``job_steps`` polls per stage; with
  ``job_seconds`` (``--job-seconds``) by wall-clock time instead: processing after half of it,
  completed (when next polled) after all of it.

Fault injection:
- ``X-Emulator-Fault: 429`` -> 429 ``RATE_LIMIT_EXCEEDED`` with ``Retry-After: 1``;
- ``X-Emulator-Fault: 500`` / ``503`` / any status 400-599 -> that status, JSON error body;
- ``X-Emulator-Fault: html`` -> 502 with an HTML page; ``empty`` -> 503 with an empty body
  (what a proxy in front of the API may answer);
- ``X-Emulator-Fault: delay=SECONDS`` -> answer normally after sleeping (at most 30 s);
- ``X-Emulator-Fault: stall`` -> never answer: the connection is held until the client hangs up
  or the emulator stops, at most 60 s, then closed without an answer (for deadline tests);
- ``X-Emulator-Fault: provider``, the model ``emulator/provider-failure``, or a prompt containing
  ``[fail]`` -> the provider fails: 502 ``PROVIDER_ERROR`` with ``details.provider``, or an async
  job that ends ``failed`` with an ``error_message``. The header form acts on generation only.
- append ``; times=N`` to a header fault to fail only the first N requests carrying that exact
  header value (and the same ``Idempotency-Key``, if any), so a client's retries can succeed.
Header faults apply to every route (``provider`` aside) and come before authentication.

Layout: constants and helpers; the catalogue and placeholder media; the state and domain rules
(plain Python, no HTTP); the route table of small handlers; one request pipeline (faults -> auth ->
idempotency -> handler); the HTTP server; ``Emulator`` and ``main``.
"""

from __future__ import annotations

__all__ = ["DEMO_API_KEY", "Emulator", "main"]

import argparse as _argparse
import hashlib as _hashlib
import json as _json
import re as _re
import select as _select
import socket as _socket
import struct as _struct
import sys as _sys
import threading as _threading
import time as _time
import traceback as _traceback
import uuid as _uuid
import zlib as _zlib
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from datetime import datetime as _datetime
from datetime import timezone as _timezone
from http.server import BaseHTTPRequestHandler as _BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer as _ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, TypedDict, Union
from urllib.parse import parse_qs as _parse_qs
from urllib.parse import unquote as _unquote
from urllib.parse import urlsplit as _urlsplit

if TYPE_CHECKING:
    from typing import Self  # 3.11; annotations only

###############################################################################
# Constants
###############################################################################

DEMO_API_KEY = "vg-emulator-demo-key"
API_PREFIX = "/api/v1"
PROVIDERS = ("fal", "replicate", "runway")
MEDIA_TYPES = ("image", "video")
BYOK_HEADERS = {"fal": "X-Fal-Key", "replicate": "X-Replicate-Key", "runway": "X-Runway-Key"}
DEFAULT_MODELS = {"image": "fal-ai/flux/schnell", "video": "fal-ai/flux-pro/video"}
PROVIDER_FAILURE_MODEL = "emulator/provider-failure"
MAX_SIDE = 4096
MAX_NUM_IMAGES = 4
MAX_DURATION_SECONDS = 60.0
MAX_FAULT_DELAY_SECONDS = 30.0
MAX_STALL_SECONDS = 60.0
STALL_CHECK_SECONDS = 0.1  # how often a stalled answer looks for a hang-up or a stop
MEDIA_PIXELS = 64  # longest side of a placeholder PNG
GATEWAY_FEE = 0.10  # managed: provider cost + 10 %; BYOK: the 10 % fee only
MANAGED_CREDIT_MICRO = 25_000_000  # per-provider managed credit shown by /providers/balances
ACCOUNT_CREDIT_MICRO = 100_000_000  # starting balance shown by /billing/info
PERIODS = {"day": 1, "week": 7, "month": 30, "year": 365}
MODEL_SORTS = ("name", "cost", "newest", "popular")
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "AUTHENTICATION_ERROR",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
BANNER = """\
==================================================================
  visgate EMULATOR -- a local stand-in for the visgate API
  NO real generation happens: images are placeholder PNGs, videos
  are placeholder MP4 files, and every cost is simulated.
  Demo API key: {key}
=================================================================="""

###############################################################################
# Small helpers: time, errors, replies, validation
###############################################################################

_Json = Dict[str, Any]


def _iso(ts: float) -> str:
    return _datetime.fromtimestamp(ts, _timezone.utc).isoformat(timespec="seconds")


def _usd(micro: int) -> float:
    return round(micro / 1_000_000, 6)


def _digest(*parts: Any) -> str:
    return _hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def _new_id(prefix: str) -> str:
    return prefix + _uuid.uuid4().hex[:20]


def _sdk_version() -> str:
    """The one version of the project: the emulator ships with, and reports, the SDK's."""
    import visgate_sdk  # lazily: importing the emulator must not load the SDK

    return visgate_sdk.__version__


@_dataclass
class _Reply:
    """An HTTP answer; ``stall`` asks the server to hold the connection and never answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Dict[str, str] = _field(default_factory=dict)
    stall: bool = False


def _json_reply(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> _Reply:
    body = _json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Reply(status, body, "application/json", dict(headers or {}))


class _ApiError(Exception):
    """The domain error: ``{"error": code, "message": message, "details": details}`` with a status."""

    def __init__(self, status: int, code: str, message: str, details: Optional[_Json] = None,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(status, code, message, details, headers)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}

    def reply(self) -> _Reply:
        payload = {"error": self.code, "message": self.message, "details": self.details}
        return _json_reply(self.status, payload, self.headers)


def _invalid(field: str, message: str) -> _ApiError:
    return _ApiError(422, "VALIDATION_ERROR", message, {"field": field})


def _not_found(what: str, code: str = "NOT_FOUND", **details: Any) -> _ApiError:
    return _ApiError(404, code, what + " not found", details)


def _bounded_int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(field, "%s must be an integer from %d to %d" % (field, low, high))
    return value


def _optional_str(fields: _Json, name: str) -> Optional[str]:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(name, name + " must be a string")
    return value


def _choice(value: Any, field: str, options: Tuple[str, ...]) -> str:
    if value not in options:
        raise _invalid(field, "%s must be one of: %s" % (field, ", ".join(options)))
    return str(value)


def _duration(value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value <= MAX_DURATION_SECONDS):
        raise _invalid("duration_seconds", "duration_seconds must be a number in (0, %g]" % MAX_DURATION_SECONDS)
    return float(value)


def _prompt_words(prompt: str) -> Tuple[str, ...]:
    """The semantic form of a prompt: lowercase words, punctuation dropped, order ignored."""
    return tuple(sorted(_re.findall(r"\w+", prompt.lower())))


def _mask(secret: str) -> str:
    return secret[:4] + "\u2026" + secret[-4:] if len(secret) >= 12 else "\u2026"


def _fingerprint(body: bytes) -> str:
    """Equal for equal JSON bodies, whatever their key order or spacing."""
    try:
        return _digest(_json.dumps(_json.loads(body or b"null"), sort_keys=True))
    except ValueError:
        return _digest(body)


def _average(values: Iterable[int]) -> int:
    items = list(values)
    return round(sum(items) / len(items)) if items else 0


###############################################################################
# Model catalogue
###############################################################################


class _Pricing(TypedDict):
    amount_usd: float
    unit: str
    currency: str


class _Model(TypedDict):
    id: str
    name: str
    provider: str
    media_type: str
    description: str
    category: str
    tags: List[str]
    cover_image_url: str  # a path: answers make it absolute
    author: str
    url: str
    base_cost_micro: int
    normalized_cost_micro: int
    pricing: _Pricing
    pricing_unit: str
    run_count: int
    input_types: List[str]
    output_type: str
    capabilities: List[str]
    first_seen_at: str
    provider_created_at: str
    last_synced_at: str


# Two lines a model. First: id | name | author | provider | media type | pricing unit |
# base cost (micro-USD per unit) | run count | first seen. Second: capabilities | tags | description.
_CATALOGUE_TABLE = """\
fal-ai/flux/schnell | FLUX.1 [schnell] | Black Forest Labs | fal | image | megapixel | 3000 | 48210000 | 2024-08-01
    text-to-image | fast, flux | Fast 12B text-to-image model, 1-4 steps; the default model.
fal-ai/flux/dev | FLUX.1 [dev] | Black Forest Labs | fal | image | megapixel | 25000 | 31400000 | 2024-08-01
    text-to-image | flux, quality | Guidance-distilled FLUX model with high prompt adherence.
fal-ai/flux-pro/v1.1 | FLUX1.1 [pro] | Black Forest Labs | fal | image | megapixel | 40000 | 12900000 | 2024-10-02
    text-to-image | flux, pro | Professional-grade image generation with excellent composition.
fal-ai/recraft-v3 | Recraft V3 | Recraft | fal | image | image | 40000 | 3120000 | 2024-10-30
    text-to-image | vector, typography | Design-oriented model, strong at typography and vector styles.
fal-ai/ideogram/v2 | Ideogram 2.0 | Ideogram | fal | image | image | 80000 | 1870000 | 2024-08-21
    text-to-image, image-to-image | typography, poster | Text rendering and poster layouts.
fal-ai/stable-diffusion-v35-large | Stable Diffusion 3.5 Large | Stability AI | fal | image | megapixel | 65000 | 2450000 | 2024-10-22
    text-to-image, image-to-image | sd3, open-weights | MMDiT text-to-image model with fine detail.
fal-ai/flux-pro/video | FLUX Pro Video | fal | fal | video | second | 50000 | 640000 | 2025-03-10
    text-to-video, image-to-video | video, flux | Cinematic text-to-video and image-to-video clips.
fal-ai/veo3 | Veo 3 | Google DeepMind | fal | video | second | 750000 | 910000 | 2025-05-20
    text-to-video | video, audio, veo | Google's video model with native audio generation.
fal-ai/kling-video/v2/master/text-to-video | Kling 2.0 Master | Kuaishou | fal | video | second | 280000 | 1230000 | 2025-04-15
    text-to-video | video, kling | High-motion text-to-video with strong physics.
fal-ai/minimax/video-01 | MiniMax Video-01 | MiniMax | fal | video | video | 500000 | 1540000 | 2024-10-10
    text-to-video, image-to-video | video, hailuo | Hailuo video generation, 6-second clips.
black-forest-labs/flux-schnell | FLUX.1 [schnell] | black-forest-labs | replicate | image | image | 3000 | 402000000 | 2024-07-30
    text-to-image | fast, flux | The fastest FLUX model, for local development and personal use.
black-forest-labs/flux-1.1-pro | FLUX1.1 [pro] | black-forest-labs | replicate | image | image | 40000 | 38600000 | 2024-10-02
    text-to-image | flux, pro | Faster, better FLUX Pro with excellent image quality.
stability-ai/sdxl | SDXL | stability-ai | replicate | image | image | 4000 | 79300000 | 2023-07-26
    text-to-image, image-to-image | sdxl, open-weights | A text-to-image generative AI model that creates images.
ideogram-ai/ideogram-v2 | Ideogram v2 | ideogram-ai | replicate | image | image | 80000 | 2100000 | 2024-10-22
    text-to-image | typography | Inpainting, prompt comprehension and text rendering.
minimax/video-01 | Video-01 (Hailuo) | minimax | replicate | video | video | 500000 | 520000 | 2024-10-28
    text-to-video, image-to-video | video | Generate 6s videos from a prompt or a first-frame image.
kwaivgi/kling-v1.6-standard | Kling v1.6 Standard | kwaivgi | replicate | video | second | 50000 | 780000 | 2024-12-19
    text-to-video, image-to-video | video, kling | 5s and 10s videos in 720p resolution.
runway/gen4_image | Gen-4 Image | Runway | runway | image | image | 80000 | 1050000 | 2025-04-30
    text-to-image, image-to-image | reference, consistency | Consistent characters and scenes from reference images.
runway/gen4_turbo | Gen-4 Turbo | Runway | runway | video | second | 50000 | 2300000 | 2025-04-07
    image-to-video, text-to-video | video, fast | Fast image-to-video generation, 5 or 10 seconds.
runway/gen3a_turbo | Gen-3 Alpha Turbo | Runway | runway | video | second | 50000 | 4700000 | 2024-08-15
    image-to-video | video | Gen-3 Alpha at 7x speed and half the price.
"""
_FAILURE_MODEL_ROW = (
    PROVIDER_FAILURE_MODEL + " | Emulated provider failure | visgate emulator | fal | image | image | 0 | 0 | 2025-01-01\n"
    "    text-to-image | emulator | Always fails at the provider, to exercise error handling.")
_PROVIDER_PAGES = {"fal": "https://fal.ai/models/", "replicate": "https://replicate.com/",
                   "runway": "https://docs.dev.runwayml.com/guides/models/#"}


def _provider_micro(model: _Model, width: int, height: int, num_images: int, duration: Optional[float]) -> int:
    """What the provider charges for one generation, in micro-USD."""
    unit, base = model["pricing_unit"], model["base_cost_micro"]
    if unit == "megapixel":
        return round(base * width * height / 1_000_000 * num_images)
    if unit == "image":
        return base * num_images
    if unit == "second":
        return round(base * (duration or 0))
    return base  # "video": one price per clip


def _billed_micro(provider_micro: int, mode: str) -> int:
    fee = round(provider_micro * GATEWAY_FEE)
    return fee if mode == "byok" else provider_micro + fee


def _parse_model(first: str, second: str, synced_at: str) -> _Model:
    """One model from its two lines in ``_CATALOGUE_TABLE``."""
    model_id, name, author, provider, media, unit, base, runs, seen = (p.strip() for p in first.split("|"))
    caps, tags, description = (p.strip() for p in second.split("|", 2))
    capabilities = caps.split(", ")
    model = _Model(
        id=model_id, name=name, provider=provider, media_type=media, description=description,
        category=capabilities[0], tags=tags.split(", "),
        cover_image_url="/media/cover_%s.png" % _digest(model_id)[:16],
        author=author, url=_PROVIDER_PAGES[provider] + model_id,
        base_cost_micro=int(base), normalized_cost_micro=0, pricing_unit=unit,
        pricing=_Pricing(amount_usd=_usd(int(base)), unit=unit, currency="USD"),
        run_count=int(runs), input_types=sorted({cap.split("-to-")[0] for cap in capabilities}),
        output_type=media, capabilities=capabilities,
        first_seen_at=seen + "T00:00:00+00:00", provider_created_at=seen + "T00:00:00+00:00",
        last_synced_at=synced_at,
    )
    # The price of one standard output (a 1024x1024 image, a 5-second video) makes models
    # of different pricing units comparable.
    model["normalized_cost_micro"] = _provider_micro(model, 1024, 1024, 1, 5.0)
    return model


def _parse_models(table: str, synced_at: str) -> List[_Model]:
    lines = table.splitlines()
    return [_parse_model(lines[i], lines[i + 1], synced_at) for i in range(0, len(lines), 2)]


def _sorted_models(models: List[_Model], sort: str) -> List[_Model]:
    keys: Dict[str, Callable[[_Model], Tuple[Any, str]]] = {
        "name": lambda m: (m["name"].lower(), m["id"]),
        "cost": lambda m: (m["normalized_cost_micro"], m["id"]),
        "newest": lambda m: (m["first_seen_at"], m["id"]),
        "popular": lambda m: (m["run_count"], m["id"]),
    }
    return sorted(models, key=keys[sort], reverse=sort in ("newest", "popular"))


###############################################################################
# Placeholder media: real PNG files, a minimal MP4
###############################################################################


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = _zlib.crc32(tag + data) & 0xFFFFFFFF
    return _struct.pack(">I", len(data)) + tag + data + _struct.pack(">I", crc)


def _make_png(seed: bytes, width: int = MEDIA_PIXELS, height: int = MEDIA_PIXELS) -> bytes:
    """An 8-bit RGB PNG: a gradient whose colours come from ``seed`` (a hash)."""
    r0, g0, b0, r1, g1, b1 = seed[:6]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "None"
        for x in range(width):
            rows += bytes(((r0 + (r1 - r0) * x // max(width - 1, 1)) & 0xFF,
                           (g0 + (g1 - g0) * y // max(height - 1, 1)) & 0xFF,
                           (b0 + b1 * ((x ^ y) & 7) // 8) & 0xFF))
    header = _struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    note = b"Comment\x00visgate emulator placeholder: no real generation happened"
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"tEXt", note)
            + _png_chunk(b"IDAT", _zlib.compress(bytes(rows), 9)) + _png_chunk(b"IEND", b""))


def _mp4_box(tag: bytes, data: bytes) -> bytes:
    return _struct.pack(">I", 8 + len(data)) + tag + data


def _make_mp4(seed: bytes) -> bytes:
    """A tiny ISO-BMFF file: an ``ftyp`` box, a note, and ``mdat`` bytes from ``seed``."""
    ftyp = b"isom" + _struct.pack(">I", 0x200) + b"isomiso2mp41"
    note = b"visgate emulator placeholder video: no real generation happened\n"
    return _mp4_box(b"ftyp", ftyp) + _mp4_box(b"free", note) + _mp4_box(b"mdat", seed * 16)


def _placeholder_size(width: int, height: int) -> Tuple[int, int]:
    """The requested aspect ratio at most MEDIA_PIXELS on the longest side."""
    scale = MEDIA_PIXELS / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


###############################################################################
# State and domain rules: plain Python values in and out, no HTTP
###############################################################################


@_dataclass
class _GenSpec:
    """A validated generation request."""

    model: _Model
    media_type: str
    prompt: str
    width: int
    height: int
    num_images: int
    duration: Optional[float]
    extras: Tuple[Any, ...]  # seed, negative_prompt, image_url: part of the cache key
    mode: str  # "managed" or "byok"
    failure: str  # why the provider will fail, or ""
    idempotency_key: Optional[str] = None  # shown in the usage log, to count billing per key

    def cache_key(self) -> Tuple[Any, ...]:
        return (self.model["id"], _prompt_words(self.prompt), self.width, self.height,
                self.num_images, self.duration, self.extras)

    def provider_micro(self) -> int:
        return _provider_micro(self.model, self.width, self.height, self.num_images, self.duration)


@_dataclass
class _Result:
    """One completed generation, before it is shaped into an endpoint's answer."""

    id: str
    model: str
    provider: str
    paths: List[str]  # under the server root
    size: int
    cache_hit: bool
    billed_micro: int
    full_billed_micro: int  # what a cache miss would have billed
    avoided_micro: int
    mode: str
    width: int
    height: int
    num_images: int
    steps: List[_Json]
    latency_ms: int
    created_at: str


@_dataclass
class _Rendered:
    """A cache entry: the placeholder media made for a cache miss."""

    paths: List[str]
    size: int
    prompt: str


@_dataclass
class _UsageEntry:
    """One line of the usage log; amounts in micro-USD."""

    ts: float
    id: str
    spec: _GenSpec
    status: str  # "completed" or "failed"
    cache_hit: bool
    billed: int
    provider_cost: int
    savings: int

    def public(self) -> _Json:
        spec = self.spec
        return {"id": self.id, "model": spec.model["id"], "provider": spec.model["provider"],
                "media_type": spec.media_type, "cost": _usd(self.billed),
                "provider_cost": _usd(self.provider_cost), "cache_hit": self.cache_hit,
                "status": self.status, "mode": spec.mode, "created_at": _iso(self.ts),
                "idempotency_key": spec.idempotency_key}


class _Tally(TypedDict):
    requests: int
    successful: int
    failed: int
    cached: int
    cost: float
    provider_cost: float
    savings: float


def _tally(entries: List[_UsageEntry]) -> _Tally:
    return _Tally(
        requests=len(entries),
        successful=sum(e.status == "completed" for e in entries),
        failed=sum(e.status == "failed" for e in entries),
        cached=sum(e.cache_hit for e in entries),
        cost=_usd(sum(e.billed for e in entries)),
        provider_cost=_usd(sum(e.provider_cost for e in entries)),
        savings=_usd(sum(e.savings for e in entries)),
    )


def _breakdown(entries: List[_UsageEntry], by: Callable[[_UsageEntry], str]) -> Dict[str, _Tally]:
    groups: Dict[str, List[_UsageEntry]] = {}
    for entry in entries:
        groups.setdefault(by(entry), []).append(entry)
    return {name: _tally(group) for name, group in groups.items()}


class _Catalogue:
    """The models on offer."""

    def __init__(self, synced_at: str) -> None:
        self.synced_at = synced_at
        self.models = {m["id"]: m for m in _parse_models(_CATALOGUE_TABLE, synced_at)}
        self.failure_model = _parse_models(_FAILURE_MODEL_ROW, synced_at)[0]

    def get(self, model_id: str) -> _Model:
        model = self.models.get(model_id)
        if model is None:
            raise _not_found("model %s" % model_id, "MODEL_NOT_FOUND", model=model_id)
        return model

    def for_generation(self, model_id: Any, media_type: str) -> _Model:
        """The model a generation asked for, checked against the endpoint's media type."""
        if not isinstance(model_id, str):
            raise _invalid("model", "model must be a string")
        if model_id == PROVIDER_FAILURE_MODEL:
            model = self.failure_model.copy()
            model["media_type"] = media_type
            return model
        model = self.get(model_id)
        if model["media_type"] != media_type:
            raise _invalid("model", "%s makes %ss, this endpoint makes %ss" % (model_id, model["media_type"], media_type))
        return model

    def select(self, provider: str, media_type: str, capability: str, search: str) -> List[_Model]:
        """The models matching every filter given (an empty filter matches all)."""
        text = search.lower()
        return [m for m in self.models.values()
                if provider in ("", m["provider"]) and media_type in ("", m["media_type"])
                and (not capability or capability in m["capabilities"])
                and (not text or any(text in s.lower() for s in (m["id"], m["name"], m["description"], m["author"])))]

    def featured(self) -> List[Tuple[str, str, List[_Model]]]:
        """Sections of four: (title, key, models)."""
        sections = [
            ("Popular image models", "popular-images", "popular", "image"),
            ("Popular video models", "popular-videos", "popular", "video"),
            ("Budget picks", "budget", "cost", ""),
            ("New arrivals", "new", "newest", ""),
        ]
        return [(title, key, _sorted_models(self.select("", media, "", ""), sort)[:4])
                for title, key, sort, media in sections]


class _MediaStore:
    """Placeholder files by name; model covers are drawn when first asked for."""

    def __init__(self, models: Iterable[_Model]) -> None:
        self.files: Dict[str, Tuple[str, bytes]] = {}
        self.covers = {m["cover_image_url"].rsplit("/", 1)[1]: m["id"] for m in models}

    def render(self, spec: _GenSpec, key: Tuple[Any, ...]) -> _Rendered:
        """Make and store the placeholder media of a cache miss."""
        paths, size = [], 0
        for index in range(spec.num_images):
            seed = bytes.fromhex(_digest(key, index))
            if spec.media_type == "image":
                name, kind = "img_%s.png" % seed[:8].hex(), "image/png"
                data = _make_png(seed, *_placeholder_size(spec.width, spec.height))
            else:
                name, kind, data = "vid_%s.mp4" % seed[:8].hex(), "video/mp4", _make_mp4(seed)
            self.files[name] = (kind, data)
            paths.append("/media/" + name)
            size += len(data)
        return _Rendered(paths, size, spec.prompt)

    def get(self, name: str) -> Tuple[str, bytes]:
        """(content type, bytes) of a stored file."""
        if name in self.covers:
            self.files[name] = ("image/png", _make_png(bytes.fromhex(_digest(self.covers.pop(name)))))
        stored = self.files.get(name)
        if stored is None:
            raise _not_found("media %s" % name)
        return stored


class _UsageLog:
    """Every generation, billed or not, with the window queries usage and billing need."""

    def __init__(self) -> None:
        self.entries: List[_UsageEntry] = []

    def record(self, spec: _GenSpec, status: str, cache_hit: bool = False, billed: int = 0,
               provider_cost: int = 0, savings: int = 0) -> _UsageEntry:
        entry = _UsageEntry(_time.time(), _new_id("gen_"), spec, status, cache_hit, billed, provider_cost, savings)
        self.entries.append(entry)
        return entry

    def window(self, period: str) -> Tuple[List[_UsageEntry], _Json]:
        """The entries of the last ``period``, and the answer fields naming the window."""
        end = _time.time()
        start = end - PERIODS[period] * 86400
        window = {"period": period, "period_start": _iso(start), "period_end": _iso(end)}
        return [e for e in self.entries if e.ts >= start], window

    def managed_spend(self) -> Dict[str, int]:
        """Provider cost per provider of the calls made on the gateway's own accounts."""
        spent = dict.fromkeys(PROVIDERS, 0)
        for entry in self.entries:
            if entry.spec.mode == "managed" and entry.spec.model["provider"] in spent:
                spent[entry.spec.model["provider"]] += entry.provider_cost
        return spent


def _steps(digest: str, hit_kind: str, media_type: str) -> List[_Json]:
    """Emulated pipeline timings, stable for a given request (no real waiting happens).

    ``hit_kind`` is "exact" or "semantic" for a cache hit, "" for a miss.
    """
    jitter = int(digest[:8], 16)
    if hit_kind:
        return [{"name": "cache", "status": "hit", "match": hit_kind, "duration_ms": 4 + jitter % 12},
                {"name": "provider", "status": "skipped", "duration_ms": 0},
                {"name": "storage", "status": "skipped", "duration_ms": 0}]
    provider_ms = (30_000 + jitter % 60_000) if media_type == "video" else 700 + jitter % 1800
    return [{"name": "cache", "status": "miss", "duration_ms": 3 + jitter % 5},
            {"name": "provider", "status": "completed", "duration_ms": provider_ms},
            {"name": "storage", "status": "completed", "duration_ms": 40 + jitter % 120}]


class _Generator:
    """Generation through the cache (exact and semantic: one key of the prompt's words) and the provider."""

    def __init__(self, media: _MediaStore, usage: _UsageLog) -> None:
        self.media = media
        self.usage = usage
        self.cache: Dict[Tuple[Any, ...], _Rendered] = {}

    def produce(self, spec: _GenSpec) -> _Result:
        """One generation, logged; raises 502 PROVIDER_ERROR when the provider fails."""
        provider = spec.model["provider"]
        if spec.failure:
            self.usage.record(spec, "failed")
            raise _ApiError(502, "PROVIDER_ERROR", "%s failed to generate: %s (emulated)" % (provider, spec.failure),
                            {"provider": provider, "model": spec.model["id"]})
        key = spec.cache_key()
        full_provider = spec.provider_micro()
        full_billed = _billed_micro(full_provider, spec.mode)
        entry = self.cache.get(key)
        hit = entry is not None
        if entry is None:
            entry = self.cache[key] = self.media.render(spec, key)
        if hit:
            logged = self.usage.record(spec, "completed", cache_hit=True, savings=full_billed)
        else:
            logged = self.usage.record(spec, "completed", billed=full_billed, provider_cost=full_provider)
        kind = ("exact" if entry.prompt == spec.prompt else "semantic") if hit else ""
        steps = _steps(_digest(key), kind, spec.media_type)
        return _Result(
            id=logged.id, model=spec.model["id"], provider=provider, paths=entry.paths, size=entry.size,
            cache_hit=hit, billed_micro=logged.billed, full_billed_micro=full_billed,
            avoided_micro=full_provider if hit else 0, mode=spec.mode, width=spec.width, height=spec.height,
            num_images=spec.num_images, steps=steps, latency_ms=sum(s["duration_ms"] for s in steps),
            created_at=_iso(logged.ts))


@_dataclass
class _Job:
    """An async generation (``Prefer: respond-async``)."""

    request_id: str
    spec: _GenSpec
    submitted: float
    status: str = "pending"
    polls: int = 0
    output_path: Optional[str] = None
    error_message: Optional[str] = None
    completed_at: Optional[str] = None


class _Jobs:
    """Async jobs: they advance per poll (``steps`` polls a stage) or, given ``seconds``, by the clock."""

    def __init__(self, produce: Callable[[_GenSpec], _Result], steps: int, seconds: Optional[float]) -> None:
        self.produce = produce
        self.steps = max(1, steps)
        self.seconds = seconds
        self.jobs: Dict[str, _Job] = {}

    def submit(self, spec: _GenSpec) -> _Job:
        job = _Job(_new_id("req_"), spec, _time.time())
        self.jobs[job.request_id] = job
        return job

    def poll(self, request_id: str) -> _Job:
        """The job, advanced by this poll."""
        job = self.jobs.get(request_id)
        if job is None:
            raise _not_found("request %s" % request_id, request_id=request_id)
        if job.completed_at is None:
            stage = self._stage(job)
            if stage >= 2:
                self._finish(job)
            elif stage == 1:
                job.status = "processing"
        return job

    def _stage(self, job: _Job) -> int:
        """0 pending, 1 processing, 2 or more: done."""
        if self.seconds is None:
            job.polls += 1
            return job.polls // self.steps
        elapsed = _time.time() - job.submitted
        if elapsed >= self.seconds:
            return 2
        return 1 if elapsed >= self.seconds / 2 else 0

    def _finish(self, job: _Job) -> None:
        try:
            result = self.produce(job.spec)
        except _ApiError as err:
            job.status, job.error_message = "failed", err.message
        else:
            job.status, job.output_path = "completed", result.paths[0]
        job.completed_at = _iso(_time.time())


class _ProviderKey(TypedDict):
    provider: str
    validated: bool
    validated_at: Optional[str]
    masked_key: str


def _check_provider_key(provider: str, api_key: str) -> Tuple[bool, str]:
    """Format check only: the emulator never calls a provider."""
    prefixes = {"fal": ("fal_",), "replicate": ("r8_",), "runway": ("rw_", "key_")}[provider]
    valid = api_key.startswith(prefixes) or (provider == "fal" and len(api_key) >= 8)
    if valid:
        return True, "%s key format looks valid (emulator: no provider was called)" % provider
    also = " or have 8+ characters" if provider == "fal" else ""
    return False, "%s keys start with %s%s" % (provider, " or ".join(prefixes), also)


class _ProviderKeys:
    """The user's own provider keys (BYOK), kept masked."""

    def __init__(self) -> None:
        self.keys: Dict[str, _ProviderKey] = {}

    def listed(self) -> List[_ProviderKey]:
        return [self.keys[p] for p in PROVIDERS if p in self.keys]

    def put(self, provider: str, api_key: str) -> _ProviderKey:
        valid, _ = _check_provider_key(provider, api_key)
        entry = _ProviderKey(provider=provider, validated=valid, validated_at=_iso(_time.time()) if valid else None,
                             masked_key=_mask(api_key))
        self.keys[provider] = entry
        return entry

    def delete(self, provider: str) -> None:
        if self.keys.pop(provider, None) is None:
            raise _not_found("key for provider %s" % provider, provider=provider)


class _ApiKey(TypedDict):
    id: str
    name: str
    key_prefix: str
    created_at: str
    last_used_at: Optional[str]


class _ApiKeys:
    """visgate API keys: which are accepted, and the entries ``/api-keys`` lists."""

    def __init__(self, allowed: Optional[List[str]], created_at: str) -> None:
        self.allowed = list(allowed) if allowed else None
        self.created_at = created_at
        self.entries: Dict[str, _ApiKey] = {}
        for key in self.allowed or [DEMO_API_KEY]:
            self._entry(key)

    def authenticate(self, authorization: str) -> str:
        """The key of an ``Authorization`` header value; raises 401 for a missing or bad one."""
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _ApiError(401, "AUTHENTICATION_ERROR", "missing API key: send 'Authorization: Bearer vg-...'")
        if not self._accepts(key):
            raise _ApiError(401, "AUTHENTICATION_ERROR", "invalid API key")
        self._entry(key)["last_used_at"] = _iso(_time.time())
        return key

    def _accepts(self, key: str) -> bool:
        if self.allowed is not None:
            return key in self.allowed
        return key.startswith("vg-") and not key.startswith("vg-invalid")

    def _entry(self, key: str) -> _ApiKey:
        if key not in self.entries:
            name = "Emulator demo key" if key == DEMO_API_KEY else "API key %d" % (len(self.entries) + 1)
            self.entries[key] = _ApiKey(id="key_" + _digest(key)[:12], name=name, key_prefix=key[:min(8, len(key) // 2)],
                                        created_at=self.created_at, last_used_at=None)
        return self.entries[key]

    def key_id(self, key: str) -> str:
        return self.entries[key]["id"]

    def listed(self) -> List[_ApiKey]:
        return [entry.copy() for entry in self.entries.values()]


class _Idempotency:
    """Stored answers of POSTs with an ``Idempotency-Key``: a retry is replayed, not billed again.

    The caller holds the state lock from ``replay`` to ``store``, so that two requests with one key
    arriving together run the handler once.
    """

    def __init__(self) -> None:
        self.answers: Dict[Tuple[str, str, str], Tuple[str, _Reply]] = {}

    def replay(self, slot: Tuple[str, str, str], body_hash: str) -> Optional[_Reply]:
        """The stored answer for ``slot`` (api key, path, idempotency key), if any; 409 for another body."""
        stored = self.answers.get(slot)
        if stored is None:
            return None
        stored_hash, reply = stored
        if stored_hash != body_hash:
            raise _ApiError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request body",
                            {"field": "Idempotency-Key"})
        return _Reply(reply.status, reply.body, reply.content_type, dict(reply.headers, **{"Idempotent-Replayed": "true"}))

    def store(self, slot: Tuple[str, str, str], body_hash: str, reply: _Reply) -> None:
        if 200 <= reply.status < 300:
            self.answers[slot] = (body_hash, reply)


class _FaultCounter:
    """How often each ``times=N`` fault was seen; its own lock, as faults act before the state lock."""

    def __init__(self) -> None:
        self.lock = _threading.Lock()
        self.counts: Dict[Tuple[str, str], int] = {}

    def seen(self, slot: Tuple[str, str]) -> int:
        """Count one more request for ``slot`` and return the count."""
        with self.lock:
            self.counts[slot] = count = self.counts.get(slot, 0) + 1
        return count


class _State:
    """All the emulated service. Handlers run under ``lock``: the state is small and each call quick."""

    def __init__(self, api_keys: Optional[List[str]], job_steps: int, job_seconds: Optional[float]) -> None:
        self.lock = _threading.Lock()
        self.started = _time.time()
        self.catalogue = _Catalogue(_iso(self.started))
        self.media = _MediaStore(self.catalogue.models.values())
        self.usage = _UsageLog()
        self.generator = _Generator(self.media, self.usage)
        self.jobs = _Jobs(self.generator.produce, job_steps, job_seconds)
        self.provider_keys = _ProviderKeys()
        self.api_keys = _ApiKeys(api_keys, _iso(self.started))
        self.idempotency = _Idempotency()
        self.faults = _FaultCounter()


###############################################################################
# HTTP calls and the route table: small handlers from a parsed call to a domain call
###############################################################################


@_dataclass
class _Call:
    """One parsed HTTP request."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Any  # an http.client.HTTPMessage: a case-insensitive get()
    body: bytes
    root: str  # http://host:port, for absolute media URLs
    params: Dict[str, str] = _field(default_factory=dict)  # from the route's pattern
    api_key: str = ""  # set by authentication
    fault: str = ""  # "provider" when the provider is to fail

    def header(self, name: str) -> str:
        return str(self.headers.get(name) or "").strip()

    def json(self) -> _Json:
        if not self.body.strip():
            return {}
        try:
            payload = _json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _invalid("body", "request body is not valid JSON: %s" % exc) from None
        if not isinstance(payload, dict):
            raise _invalid("body", "request body must be a JSON object")
        return payload

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(name, name + " must be an integer") from None
        return _bounded_int(value, name, low, high)

    def query_choice(self, name: str, options: Tuple[str, ...], default: str = "") -> str:
        """A query value from ``options``, or ``default`` when absent or empty."""
        value = self.query.get(name) or default
        return _choice(value, name, options) if value else ""

    def query_flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")

    def period(self) -> str:
        return _choice(self.query.get("period", "month"), "period", tuple(PERIODS))


_Answer = Union[_Json, List[Any], _Reply]  # JSON for a 200, or a whole reply
_HandlerFn = Callable[[_State, _Call], _Answer]


# -- health and models -----------------------------------------------------------------------


def _health(state: _State, call: _Call) -> _Json:
    return {"status": "ok", "version": _sdk_version() + "-emulator", "database": "ok", "cache": "ok", "emulator": True}


def _model_view(model: _Model, root: str) -> _Json:
    return dict(model, cover_image_url=root + model["cover_image_url"])


def _list_models(state: _State, call: _Call) -> _Json:
    models = state.catalogue.select(call.query_choice("provider", PROVIDERS), call.query_choice("media_type", MEDIA_TYPES),
                                    call.query.get("capability", ""), call.query.get("search", ""))
    sort = call.query_choice("sort", MODEL_SORTS)
    if sort:
        models = _sorted_models(models, sort)
    limit = call.query_int("limit", 100, 1, 1000)
    answer = {"models": [_model_view(m, call.root) for m in models[:limit]], "total_count": len(models),
              "last_updated": state.catalogue.synced_at}
    if call.query_flag("featured"):
        answer["featured"] = [{"title": title, "key": key, "models": [_model_view(m, call.root) for m in section]}
                              for title, key, section in state.catalogue.featured()]
    return answer


def _get_model(state: _State, call: _Call) -> _Json:
    return _model_view(state.catalogue.get(call.params["model_id"]), call.root)


# -- generation --------------------------------------------------------------------------------


def _failure_reason(call: _Call, model: _Model, prompt: str) -> str:
    if call.fault == "provider":
        return "fault injected by X-Emulator-Fault"
    if model["id"] == PROVIDER_FAILURE_MODEL:
        return "the model %s always fails" % PROVIDER_FAILURE_MODEL
    if "[fail]" in prompt.lower():
        return "the prompt asked for [fail]"
    return ""


def _size_fields(fields: _Json, media_type: str) -> Tuple[int, int, int, Optional[float]]:
    """(width, height, num_images, duration) of a generation's fields."""
    if media_type == "video":
        return 1280, 720, 1, _duration(fields.get("duration_seconds", 5.0))
    return (_bounded_int(fields.get("width", 1024), "width", 1, MAX_SIDE),
            _bounded_int(fields.get("height", 1024), "height", 1, MAX_SIDE),
            _bounded_int(fields.get("num_images", 1), "num_images", 1, MAX_NUM_IMAGES), None)


def _parse_generation(state: _State, call: _Call, media_type: str, params_field: str) -> _GenSpec:
    """The generation a call asks for; ``params_field`` names the object holding the options, if any."""
    body = call.json()
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("prompt", "prompt is required and must be a non-empty string")
    fields = (body.get(params_field) or {}) if params_field else body
    if not isinstance(fields, dict):
        raise _invalid(params_field, params_field + " must be a JSON object")
    width, height, count, duration = _size_fields(fields, media_type)
    seed = fields.get("seed")
    if seed is not None:
        _bounded_int(seed, "seed", 0, 2 ** 63)
    extras = (seed, _optional_str(fields, "negative_prompt"), _optional_str(fields, "image_url"))
    model = state.catalogue.for_generation(body.get("model") or DEFAULT_MODELS[media_type], media_type)
    mode = "byok" if call.header(BYOK_HEADERS[model["provider"]]) else "managed"
    return _GenSpec(model, media_type, prompt, width, height, count, duration, extras, mode,
                    _failure_reason(call, model, prompt), call.header("Idempotency-Key") or None)


def _generation(state: _State, call: _Call, media_type: str, params_field: str = "") -> Union[_Result, _Reply]:
    """Run a generation now, or answer 202 for an async one."""
    spec = _parse_generation(state, call, media_type, params_field)
    if "respond-async" not in call.header("Prefer").lower():
        return state.generator.produce(spec)
    job = state.jobs.submit(spec)
    return _json_reply(202, {"request_id": job.request_id, "status": job.status},
                       {"Location": "%s/requests/%s" % (API_PREFIX, job.request_id)})


def _avoided(result: _Result) -> _Json:
    return {"provider_cost_avoided_micro": result.avoided_micro} if result.cache_hit else {}


def _generate(state: _State, call: _Call) -> _Answer:
    result = _generation(state, call, "image", params_field="params")
    if isinstance(result, _Reply):
        return result
    urls = [call.root + path for path in result.paths]
    megapixels = result.width * result.height * result.num_images / 1_000_000
    return dict({
        "id": result.id, "image_url": urls[0], "images": urls, "model": result.model,
        "provider": result.provider, "mode": result.mode, "estimated_cost_usd": _usd(result.billed_micro),
        "cost_per_megapixel_usd": round(_usd(result.full_billed_micro) / megapixels, 6),
        "latency_ms": result.latency_ms, "resolution": {"width": result.width, "height": result.height},
        "created_at": result.created_at, "cache_hit": result.cache_hit,
    }, **_avoided(result))


def _common_fields(result: _Result) -> _Json:
    """The fields /images/generate and /videos/generate answers share."""
    return {"id": result.id, "model": result.model, "provider": result.provider, "cost": _usd(result.billed_micro),
            "cache_hit": result.cache_hit, "latency_ms": result.latency_ms, "created_at": result.created_at}


def _generate_images(state: _State, call: _Call) -> _Answer:
    result = _generation(state, call, "image")
    if isinstance(result, _Reply):
        return result
    answer = dict(_common_fields(result), images=[call.root + path for path in result.paths], **_avoided(result))
    answer.update(output_storage="emulator", output_size_bytes=result.size)
    if call.query_flag("include_steps"):
        answer["steps"] = result.steps
    return answer


def _generate_videos(state: _State, call: _Call) -> _Answer:
    result = _generation(state, call, "video")
    if isinstance(result, _Reply):
        return result
    return dict(_common_fields(result), video_url=call.root + result.paths[0],
                provider_cost_avoided_micro=result.avoided_micro)


def _get_request(state: _State, call: _Call) -> _Json:
    job = state.jobs.poll(call.params["request_id"])
    spec = job.spec
    return {"request_id": job.request_id, "status": job.status, "media_type": spec.media_type,
            "provider": spec.model["provider"], "model": spec.model["id"],
            "output_url": call.root + job.output_path if job.output_path else None,
            "error_message": job.error_message, "created_at": _iso(job.submitted), "completed_at": job.completed_at}


def _get_media(state: _State, call: _Call) -> _Reply:
    content_type, data = state.media.get(call.params["name"])
    return _Reply(200, data, content_type, {"Cache-Control": "public, max-age=31536000"})


# -- usage -------------------------------------------------------------------------------------


def _period_summary(state: _State, call: _Call, *count_names: str) -> Tuple[List[_UsageEntry], _Tally, _Json]:
    """The ``period`` window's entries and totals, and the fields /usage and /dashboard share.

    ``count_names`` name the request, success and failure counts in the answer.
    """
    entries, window = state.usage.window(call.period())
    totals = _tally(entries)
    counts = zip(count_names, (totals["requests"], totals["successful"], totals["failed"]))
    shared = dict(window, **dict(counts), by_provider=_breakdown(entries, lambda e: e.spec.model["provider"]))
    return entries, totals, shared


def _usage(state: _State, call: _Call) -> _Json:
    entries, totals, answer = _period_summary(state, call, "total_requests", "successful_requests", "failed_requests")
    answer.update(cached_requests=totals["cached"], total_provider_cost=totals["provider_cost"],
                  total_billed_cost=totals["cost"], total_savings=totals["savings"],
                  by_model=_breakdown(entries, lambda e: e.spec.model["id"]))
    return answer


def _dashboard(state: _State, call: _Call) -> _Json:
    entries, totals, answer = _period_summary(state, call, "total_generations", "successful_generations",
                                              "failed_generations")
    answer.update(images_generated=sum(e.spec.media_type == "image" for e in entries),
                  videos_generated=sum(e.spec.media_type == "video" for e in entries),
                  total_cost_usd=totals["cost"], total_savings_usd=totals["savings"],
                  cache_hit_rate=round(totals["cached"] / totals["requests"], 4) if totals["requests"] else 0.0,
                  recent=[e.public() for e in reversed(entries[-5:])])
    return answer


def _usage_logs(state: _State, call: _Call) -> _Json:
    limit = call.query_int("limit", 50, 1, 1000)
    offset = call.query_int("offset", 0, 0, 10 ** 9)
    newest_first = [e.public() for e in reversed(state.usage.entries)]
    return {"logs": newest_first[offset:offset + limit], "total_count": len(newest_first), "limit": limit, "offset": offset}


# -- provider keys and balances ----------------------------------------------------------------


def _provider_and_key(call: _Call) -> Tuple[str, str]:
    body = call.json()
    provider = _choice(body.get("provider"), "provider", PROVIDERS)
    api_key = body.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise _invalid("api_key", "api_key is required and must be a non-empty string")
    return provider, api_key.strip()


def _list_provider_keys(state: _State, call: _Call) -> _Json:
    return {"keys": state.provider_keys.listed()}


def _put_provider_key(state: _State, call: _Call) -> _Json:
    return dict(state.provider_keys.put(*_provider_and_key(call)))


def _delete_provider_key(state: _State, call: _Call) -> _Json:
    state.provider_keys.delete(call.params["provider"])
    return {"deleted": True, "provider": call.params["provider"]}


def _validate_provider_key(state: _State, call: _Call) -> _Json:
    valid, message = _check_provider_key(*_provider_and_key(call))
    return {"valid": valid, "message": message}


def _balances(state: _State, call: _Call) -> _Json:
    spent = state.usage.managed_spend()
    answer = []
    for provider in PROVIDERS:
        remaining = max(0, MANAGED_CREDIT_MICRO - spent[provider])
        configured = provider in state.provider_keys.keys
        answer.append({
            "provider": provider, "configured": configured, "available": remaining > 0,
            "limit": _usd(MANAGED_CREDIT_MICRO), "remaining": _usd(remaining), "currency": "USD",
            "message": ("your own key is configured (BYOK); " if configured else "")
            + "emulated managed credit, no real provider account",
        })
    return {"balances": answer}


# -- account and billing -----------------------------------------------------------------------


def _auth_me(state: _State, call: _Call) -> _Json:
    return {"organization": {"id": "org_emulator", "name": "Emulator Organization"},
            "role": "api-key", "api_key_id": state.api_keys.key_id(call.api_key)}


def _list_api_keys(state: _State, call: _Call) -> List[Any]:
    return list(state.api_keys.listed())


def _billing_stats(state: _State, call: _Call) -> _Json:
    entries = state.usage.entries
    totals = _tally(entries)
    paid = [e for e in entries if e.status == "completed" and not e.cache_hit]
    billed_plus_saved = totals["cost"] + totals["savings"]
    return {
        "active_users": 1,
        "avg_image_cost_micro": _average(e.billed for e in paid if e.spec.media_type == "image"),
        "avg_video_cost_micro": _average(e.billed for e in paid if e.spec.media_type == "video"),
        "base_fee_micro": 0, "gateway_fee_percent": round(GATEWAY_FEE * 100, 2),
        "cache_hit_reduction_percent": round(100 * totals["savings"] / billed_plus_saved, 2) if billed_plus_saved else 0.0,
        "cache_hits": totals["cached"], "total_requests": totals["requests"],
        "total_cost_micro": sum(e.billed for e in entries),
        "total_savings_micro": sum(e.savings for e in entries),
    }


def _billing_info(state: _State, call: _Call) -> _Json:
    month, _ = state.usage.window("month")
    return {
        "balance_micro": ACCOUNT_CREDIT_MICRO - sum(e.billed for e in state.usage.entries), "billing_status": "active",
        "company_name": "Emulator Organization", "free_mode_enabled": False,
        "monthly_budget_cents": 10_000, "support_email": "support@emulator.invalid", "tier": "emulator",
        "usage_this_month_cents": round(sum(e.billed for e in month) / 10_000),
    }


def _billing_pricing(state: _State, call: _Call) -> _Json:
    return {"last_updated": state.catalogue.synced_at,
            "pricing": [{"model": m["id"], "provider": m["provider"], "media_type": m["media_type"],
                         "pricing_unit": m["pricing_unit"], "base_cost_micro": m["base_cost_micro"],
                         "normalized_cost_micro": m["normalized_cost_micro"], "pricing": m["pricing"]}
                        for m in state.catalogue.models.values()]}


class _Route(NamedTuple):
    method: str
    pattern: _re.Pattern[str]
    handler: _HandlerFn
    needs_key: bool


def _api(method: str, path: str, handler: _HandlerFn, needs_key: bool = True) -> _Route:
    return _Route(method, _re.compile(API_PREFIX + path), handler, needs_key)


_ROUTES = [
    _api("GET", "/health", _health, needs_key=False),
    _api("GET", "/models", _list_models, needs_key=False),
    _api("GET", "/models/(?P<model_id>.+)", _get_model, needs_key=False),
    _api("POST", "/generate", _generate),
    _api("POST", "/images/generate", _generate_images),
    _api("POST", "/videos/generate", _generate_videos),
    _api("GET", "/requests/(?P<request_id>[^/]+)", _get_request),
    _api("GET", "/usage", _usage),
    _api("GET", "/usage/logs", _usage_logs),
    _api("GET", "/dashboard", _dashboard),
    _api("GET", "/providers/keys", _list_provider_keys),
    _api("PUT", "/providers/keys", _put_provider_key),
    _api("DELETE", "/providers/keys/(?P<provider>[^/]+)", _delete_provider_key),
    _api("POST", "/providers/validate", _validate_provider_key),
    _api("GET", "/providers/balances", _balances),
    _api("GET", "/auth/me", _auth_me),
    _api("GET", "/api-keys", _list_api_keys),
    _api("GET", "/billing/stats", _billing_stats),
    _api("GET", "/billing/info", _billing_info),
    _api("GET", "/billing/pricing", _billing_pricing),
    _Route("GET", _re.compile(r"/media/(?P<name>[^/]+)"), _get_media, False),
]


def _find_route(method: str, path: str) -> Tuple[_Route, Dict[str, str]]:
    """The route and path parameters for a request; 405 or 404 when there is none."""
    allowed = []
    for route in _ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match.groupdict()
        if match:
            allowed.append(route.method)
    if allowed:
        raise _ApiError(405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s" % (method, path),
                        {"allowed": allowed}, {"Allow": ", ".join(allowed)})
    raise _not_found("route %s" % path)


###############################################################################
# Faults
###############################################################################


def _parse_fault(spec: str) -> Tuple[str, Optional[int]]:
    """``"503; times=2"`` -> ("503", 2); raises 422 on an unknown fault."""
    fault, _, options = (part.strip() for part in spec.partition(";"))
    fault = fault.lower()
    times = None
    if options:
        name, _, value = options.partition("=")
        if name.strip() != "times" or not value.strip().isdigit():
            raise _invalid("X-Emulator-Fault", "the only fault option is times=N")
        times = int(value)
    if fault in ("provider", "html", "empty", "stall") or (fault.isdigit() and 400 <= int(fault) <= 599):
        return fault, times
    if fault.startswith("delay="):
        try:
            seconds = float(fault[len("delay="):])
        except ValueError:
            seconds = -1.0
        if 0 <= seconds <= MAX_FAULT_DELAY_SECONDS:
            return fault, times
    raise _invalid("X-Emulator-Fault", "unknown fault %r: use a status 400-599, provider, html, empty, stall "
                   "or delay=SECONDS" % fault)


def _fault_reply(fault: str) -> Optional[_Reply]:
    """What a parsed fault answers; None to go on (after a delay, or to fail the provider later)."""
    if fault.startswith("delay="):
        _time.sleep(float(fault[len("delay="):]))
        return None
    if fault == "provider":
        return None
    if fault == "stall":
        return _Reply(0, stall=True)
    if fault == "html":
        page = b"<html><body><h1>502 Bad Gateway</h1><hr>emulated proxy</body></html>"
        return _Reply(502, page, "text/html")
    if fault == "empty":
        return _Reply(503, b"", "text/plain")
    status = int(fault)
    headers = {"Retry-After": "1"} if status == 429 else {}
    raise _ApiError(status, ERROR_CODES.get(status, "EMULATED_FAULT"), "fault injected by X-Emulator-Fault: %s" % fault,
                    {}, headers)


###############################################################################
# The pipeline: every request goes faults -> auth -> idempotency -> handler
###############################################################################


class _Gateway:
    """The one way into the state for an HTTP request."""

    def __init__(self, state: _State, quiet: bool) -> None:
        self.state = state
        self.quiet = quiet

    def respond(self, method: str, target: str, headers: Any, body: bytes, root: str) -> _Reply:
        """Answer one HTTP request; never raises."""
        try:
            return self._pipeline(_parse_call(method, target, headers, body, root))
        except _ApiError as err:
            return err.reply()
        except Exception:
            if not self.quiet:
                _traceback.print_exc()
            return _ApiError(500, "INTERNAL_ERROR", "emulator bug, see its log").reply()

    def _pipeline(self, parsed: Tuple[_Call, _Route]) -> _Reply:
        call, route = parsed
        fault_reply = self._fault(call)
        if fault_reply is not None:
            return fault_reply
        with self.state.lock:
            if route.needs_key:
                call.api_key = self.state.api_keys.authenticate(call.header("Authorization"))
            return self._idempotent(call, route.handler)

    def _fault(self, call: _Call) -> Optional[_Reply]:
        """Act on X-Emulator-Fault, outside the state lock so that delays and stalls block nobody else."""
        spec = call.header("X-Emulator-Fault")
        if not spec:
            return None
        fault, times = _parse_fault(spec)
        if times is not None and self.state.faults.seen((spec, call.header("Idempotency-Key"))) > times:
            return None
        if fault == "provider":
            call.fault = fault
        return _fault_reply(fault)

    def _idempotent(self, call: _Call, handler: _HandlerFn) -> _Reply:
        """Run the handler, or replay the stored answer for a repeated Idempotency-Key (state lock held)."""
        key = call.header("Idempotency-Key")
        if call.method != "POST" or not key:
            return self._run(call, handler)
        slot = (call.api_key, call.path, key)
        body_hash = _fingerprint(call.body)
        stored = self.state.idempotency.replay(slot, body_hash)
        if stored is not None:
            return stored
        reply = self._run(call, handler)
        self.state.idempotency.store(slot, body_hash, reply)
        return reply

    def _run(self, call: _Call, handler: _HandlerFn) -> _Reply:
        answer = handler(self.state, call)
        return answer if isinstance(answer, _Reply) else _json_reply(200, answer)


def _parse_call(method: str, target: str, headers: Any, body: bytes, root: str) -> Tuple[_Call, _Route]:
    """The call and its route; HEAD is routed as GET."""
    parts = _urlsplit(target)
    path = _unquote(parts.path)
    if len(path) > 1:
        path = path.rstrip("/")
    route, params = _find_route("GET" if method == "HEAD" else method, path)
    query = {k: v[0] for k, v in _parse_qs(parts.query, keep_blank_values=True).items()}
    return _Call(method, path, query, headers, body, root, params), route


###############################################################################
# HTTP server
###############################################################################


class _HttpHandler(_BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every answer has a Content-Length."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # close idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server: _Server

    def _serve(self) -> None:
        reply = self._read_body_or_error()
        if reply is None:
            host = self.headers.get("Host") or "%s:%d" % self.connection.getsockname()[:2]
            reply = self.server.gateway.respond(self.command, self.path, self.headers, self._body, "http://" + host)
        if reply.stall:
            self._stall()
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _read_body_or_error(self) -> Optional[_Reply]:
        self._body = b""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return _ApiError(411, "LENGTH_REQUIRED", "send a Content-Length").reply()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return _invalid("body", "bad Content-Length").reply()
        self._body = self.rfile.read(length)
        return None

    def _stall(self) -> None:
        """Answer nothing until the client hangs up, the emulator stops or MAX_STALL_SECONDS pass."""
        self.close_connection = True
        self.log_message("%s %s stalled (X-Emulator-Fault)", self.command, self.path)
        deadline = _time.monotonic() + MAX_STALL_SECONDS
        while not self.server.stopping.wait(STALL_CHECK_SECONDS) and _time.monotonic() < deadline:
            if self._client_gone():
                return

    def _client_gone(self) -> bool:
        readable, _, _ = _select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return not self.connection.recv(1, _socket.MSG_PEEK)  # b"": the client closed
        except OSError:
            return True

    def version_string(self) -> str:
        return "visgate-emulator/%s %s" % (_sdk_version(), self.sys_version)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # Method, path and status only: never headers, so no API or provider key.
        self.log_message("%s %s %s", self.command, self.path, code)

    def log_message(self, fmt: str, *args: Any) -> None:
        if not self.server.gateway.quiet:
            _sys.stderr.write("[visgate emulator] %s\n" % (fmt % args))


class _Server(_ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops bursts of connections (1 s SYN retry)

    def __init__(self, address: Tuple[str, int], gateway: _Gateway) -> None:
        if ":" in address[0]:
            self.address_family = _socket.AF_INET6
        self.gateway = gateway
        self.stopping = _threading.Event()  # releases stalled answers on stop
        super().__init__(address, _HttpHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is no news; other errors matter when not quiet.
        error = _sys.exc_info()[1]
        if not self.gateway.quiet and not isinstance(error, ConnectionError):
            super().handle_error(request, client_address)


###############################################################################
# Public interface
###############################################################################


class Emulator:
    """The emulated API on ``host:port`` (``port=0``: a free one), served from a daemon thread.

    ``api_keys``: the only keys accepted (default: any ``vg-...`` key but ``vg-invalid...``).
    ``quiet``: no banner and no request log on stderr. ``job_steps``: polls per async job stage;
    ``job_seconds``: async jobs finish by the clock instead, after that many seconds.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_keys: Optional[List[str]] = None,
                 quiet: bool = True, job_steps: int = 1, job_seconds: Optional[float] = None) -> None:
        if job_seconds is not None and not job_seconds >= 0:
            raise ValueError("job_seconds must be a number >= 0")
        self.host = host
        self.quiet = quiet
        self._requested_port = port
        self._gateway = _Gateway(_State(api_keys, job_steps, job_seconds), quiet)
        self._server: Optional[_Server] = None
        self._thread: Optional[_threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def root_url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, self.port)

    @property
    def base_url(self) -> str:
        return self.root_url + API_PREFIX

    def start(self, announce: Optional[bool] = None) -> Self:
        """Bind and serve in a daemon thread; ``announce`` (default: not quiet) prints a banner."""
        if self._server is None:
            self._server = _Server((self.host, self._requested_port), self._gateway)
            self._thread = _threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                             name="visgate-emulator", daemon=True)
            self._thread.start()
            if announce if announce is not None else not self.quiet:
                self._announce()
        return self

    def _announce(self) -> None:
        keys = self._gateway.state.api_keys.allowed
        key_note = DEMO_API_KEY + " (any vg-... key works)" if keys is None else "only the keys given with --api-key"
        print(BANNER.format(key=key_note), file=_sys.stderr)
        print("visgate emulator listening on " + self.base_url, file=_sys.stderr, flush=True)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stopping.set()
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = self._thread = None

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C still works)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _arguments(argv: Optional[List[str]]) -> _argparse.Namespace:
    parser = _argparse.ArgumentParser(
        prog="python -m visgate_emulator", description="Local EMULATOR of the visgate API (no real generation happens).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", dest="api_keys", action="append", metavar="KEY",
                        help="accept only this key (repeatable; default: any vg-... key)")
    jobs = parser.add_mutually_exclusive_group()
    jobs.add_argument("--job-steps", type=int, default=1, metavar="N", help="polls per async job stage (default 1)")
    jobs.add_argument("--job-seconds", type=float, default=None, metavar="S",
                      help="async jobs complete S seconds after submission instead (processing after S/2)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    if args.job_seconds is not None and not args.job_seconds >= 0:
        parser.error("--job-seconds must be >= 0")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = _arguments(argv)
    emulator = Emulator(args.host, args.port, args.api_keys, args.quiet, args.job_steps, args.job_seconds)
    try:
        emulator.start(announce=True)
    except OSError as exc:
        print("visgate emulator: cannot listen on %s:%d: %s" % (args.host, args.port, exc), file=_sys.stderr)
        return 1
    try:
        emulator.wait()
    except KeyboardInterrupt:
        print("visgate emulator: stopped", file=_sys.stderr)
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    _sys.exit(main())
