"""A local EMULATOR of the visgate HTTP API: no account, no network, no real generation.

It speaks the API that ``visgate_sdk`` talks to (``/api/v1``, see the API notes the project keeps),
keeps state like the real service (cache, idempotency, async jobs, usage, provider keys) and serves
the "generated" media itself: placeholder PNG images and a placeholder MP4 under ``/media/...``.
New users and CI run every example against it. Standard library only, Python 3.9+.

Start it from a shell::

    python -m visgate_emulator [--host 127.0.0.1] [--port 8765] [--api-key KEY ...]
                               [--job-steps N] [--quiet]
    export VISGATE_BASE_URL=http://127.0.0.1:8765/api/v1
    export VISGATE_API_KEY=vg-emulator-demo-key

or from Python (``port=0`` picks a free port)::

    from visgate_emulator import Emulator
    with Emulator() as emu:
        print(emu.base_url)         # http://127.0.0.1:54321/api/v1

API keys: without ``api_keys`` any key starting with ``vg-`` is accepted except ``vg-invalid...``;
with ``api_keys`` only those. ``/health``, ``/models*`` and ``/media/*`` need no key.

Emulated behaviour worth knowing:
- the cache key is model + prompt + size (+ num_images / duration / seed / negative_prompt /
  image_url); prompts with the same words in another order, case or punctuation also hit;
- a POST repeated with the same ``Idempotency-Key`` (same key, same path) returns the stored
  answer and is billed once; the same key with a different body is 409 ``IDEMPOTENCY_KEY_REUSED``;
- ``Prefer: respond-async`` answers 202; each GET ``/requests/{id}`` advances the job
  pending -> processing -> completed, ``job_steps`` polls per stage.

Fault injection:
- ``X-Emulator-Fault: 429`` -> 429 ``RATE_LIMIT_EXCEEDED`` with ``Retry-After: 1``;
- ``X-Emulator-Fault: 500`` / ``503`` / any status 400-599 -> that status, JSON error body;
- ``X-Emulator-Fault: html`` -> 502 with an HTML page; ``empty`` -> 503 with an empty body
  (what a proxy in front of the API may answer);
- ``X-Emulator-Fault: delay=SECONDS`` -> answer normally after sleeping (at most 30 s);
- ``X-Emulator-Fault: provider``, the model ``emulator/provider-failure``, or a prompt containing
  ``[fail]`` -> the provider fails: 502 ``PROVIDER_ERROR`` with ``details.provider``, or an async
  job that ends ``failed`` with an ``error_message``. The header form acts on generation only.
- append ``; times=N`` to a header fault to fail only the first N requests carrying that exact
  header value (and the same ``Idempotency-Key``, if any), so a client's retries can succeed.
Header faults apply to every route (``provider`` aside) and come before authentication.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["DEMO_API_KEY", "Emulator", "main"]

import argparse as _argparse
import hashlib as _hashlib
import json as _json
import re as _re
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
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs as _parse_qs
from urllib.parse import unquote as _unquote
from urllib.parse import urlsplit as _urlsplit

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


def _iso(ts: float) -> str:
    return _datetime.fromtimestamp(ts, _timezone.utc).isoformat(timespec="seconds")


def _usd(micro: int) -> float:
    return round(micro / 1_000_000, 6)


def _digest(*parts: Any) -> str:
    return _hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def _new_id(prefix: str) -> str:
    return prefix + _uuid.uuid4().hex[:20]


@_dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Dict[str, str] = _field(default_factory=dict)


def _json_reply(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> _Reply:
    body = _json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Reply(status, body, "application/json", dict(headers or {}))


class _ApiError(Exception):
    """An error answer: ``{"error": code, "message": message, "details": details}``."""

    def __init__(self, status: int, code: str, message: str, details: Optional[dict] = None,
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


def _optional_str(fields: dict, name: str) -> Optional[str]:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(name, name + " must be a string")
    return value


def _choice(value: Any, field: str, options: Tuple[str, ...]) -> str:
    if value not in options:
        raise _invalid(field, "%s must be one of: %s" % (field, ", ".join(options)))
    return value


def _prompt_words(prompt: str) -> Tuple[str, ...]:
    """The semantic form of a prompt: lowercase words, punctuation dropped, order ignored."""
    return tuple(sorted(_re.findall(r"\w+", prompt.lower())))


def _mask(secret: str) -> str:
    return secret[:4] + "\u2026" + secret[-4:] if len(secret) >= 12 else "\u2026"


###############################################################################
# Model catalogue
###############################################################################

_CATALOGUE_ROWS = [
    # id, name, provider, media, pricing unit, base cost (micro-USD per unit), capabilities,
    # author, run count, first seen, tags, description
    ("fal-ai/flux/schnell", "FLUX.1 [schnell]", "fal", "image", "megapixel", 3000,
     ("text-to-image",), "Black Forest Labs", 48_210_000, "2024-08-01", ("fast", "flux"),
     "Fast 12B text-to-image model, 1-4 steps; the default model."),
    ("fal-ai/flux/dev", "FLUX.1 [dev]", "fal", "image", "megapixel", 25000,
     ("text-to-image",), "Black Forest Labs", 31_400_000, "2024-08-01", ("flux", "quality"),
     "Guidance-distilled FLUX model with high prompt adherence."),
    ("fal-ai/flux-pro/v1.1", "FLUX1.1 [pro]", "fal", "image", "megapixel", 40000,
     ("text-to-image",), "Black Forest Labs", 12_900_000, "2024-10-02", ("flux", "pro"),
     "Professional-grade image generation with excellent composition."),
    ("fal-ai/recraft-v3", "Recraft V3", "fal", "image", "image", 40000,
     ("text-to-image",), "Recraft", 3_120_000, "2024-10-30", ("vector", "typography"),
     "Design-oriented model, strong at typography and vector styles."),
    ("fal-ai/ideogram/v2", "Ideogram 2.0", "fal", "image", "image", 80000,
     ("text-to-image", "image-to-image"), "Ideogram", 1_870_000, "2024-08-21",
     ("typography", "poster"), "Text rendering and poster layouts."),
    ("fal-ai/stable-diffusion-v35-large", "Stable Diffusion 3.5 Large", "fal", "image",
     "megapixel", 65000, ("text-to-image", "image-to-image"), "Stability AI", 2_450_000,
     "2024-10-22", ("sd3", "open-weights"), "MMDiT text-to-image model with fine detail."),
    ("fal-ai/flux-pro/video", "FLUX Pro Video", "fal", "video", "second", 50000,
     ("text-to-video", "image-to-video"), "fal", 640_000, "2025-03-10", ("video", "flux"),
     "Cinematic text-to-video and image-to-video clips."),
    ("fal-ai/veo3", "Veo 3", "fal", "video", "second", 750000,
     ("text-to-video",), "Google DeepMind", 910_000, "2025-05-20", ("video", "audio", "veo"),
     "Google's video model with native audio generation."),
    ("fal-ai/kling-video/v2/master/text-to-video", "Kling 2.0 Master", "fal", "video", "second",
     280000, ("text-to-video",), "Kuaishou", 1_230_000, "2025-04-15", ("video", "kling"),
     "High-motion text-to-video with strong physics."),
    ("fal-ai/minimax/video-01", "MiniMax Video-01", "fal", "video", "video", 500000,
     ("text-to-video", "image-to-video"), "MiniMax", 1_540_000, "2024-10-10",
     ("video", "hailuo"), "Hailuo video generation, 6-second clips."),
    ("black-forest-labs/flux-schnell", "FLUX.1 [schnell]", "replicate", "image", "image", 3000,
     ("text-to-image",), "black-forest-labs", 402_000_000, "2024-07-30", ("fast", "flux"),
     "The fastest FLUX model, for local development and personal use."),
    ("black-forest-labs/flux-1.1-pro", "FLUX1.1 [pro]", "replicate", "image", "image", 40000,
     ("text-to-image",), "black-forest-labs", 38_600_000, "2024-10-02", ("flux", "pro"),
     "Faster, better FLUX Pro with excellent image quality."),
    ("stability-ai/sdxl", "SDXL", "replicate", "image", "image", 4000,
     ("text-to-image", "image-to-image"), "stability-ai", 79_300_000, "2023-07-26",
     ("sdxl", "open-weights"), "A text-to-image generative AI model that creates images."),
    ("ideogram-ai/ideogram-v2", "Ideogram v2", "replicate", "image", "image", 80000,
     ("text-to-image",), "ideogram-ai", 2_100_000, "2024-10-22", ("typography",),
     "Inpainting, prompt comprehension and text rendering."),
    ("minimax/video-01", "Video-01 (Hailuo)", "replicate", "video", "video", 500000,
     ("text-to-video", "image-to-video"), "minimax", 520_000, "2024-10-28", ("video",),
     "Generate 6s videos from a prompt or a first-frame image."),
    ("kwaivgi/kling-v1.6-standard", "Kling v1.6 Standard", "replicate", "video", "second",
     50000, ("text-to-video", "image-to-video"), "kwaivgi", 780_000, "2024-12-19",
     ("video", "kling"), "5s and 10s videos in 720p resolution."),
    ("runway/gen4_image", "Gen-4 Image", "runway", "image", "image", 80000,
     ("text-to-image", "image-to-image"), "Runway", 1_050_000, "2025-04-30",
     ("reference", "consistency"), "Consistent characters and scenes from reference images."),
    ("runway/gen4_turbo", "Gen-4 Turbo", "runway", "video", "second", 50000,
     ("image-to-video", "text-to-video"), "Runway", 2_300_000, "2025-04-07", ("video", "fast"),
     "Fast image-to-video generation, 5 or 10 seconds."),
    ("runway/gen3a_turbo", "Gen-3 Alpha Turbo", "runway", "video", "second", 50000,
     ("image-to-video",), "Runway", 4_700_000, "2024-08-15", ("video",),
     "Gen-3 Alpha at 7x speed and half the price."),
]

_FAILURE_MODEL = {"id": PROVIDER_FAILURE_MODEL, "name": "Emulated provider failure",
                  "provider": "fal", "pricing_unit": "image", "base_cost_micro": 0}
_PROVIDER_PAGES = {"fal": "https://fal.ai/models/", "replicate": "https://replicate.com/",
                   "runway": "https://docs.dev.runwayml.com/guides/models/#"}


def _provider_micro(model: dict, width: int, height: int, num_images: int,
                    duration: Optional[float]) -> int:
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


def _build_catalogue(synced_at: str) -> Dict[str, dict]:
    catalogue = {}
    for (model_id, name, provider, media, unit, base, caps, author, runs, seen, tags,
         description) in _CATALOGUE_ROWS:
        model = {
            "id": model_id, "name": name, "provider": provider, "media_type": media,
            "description": description, "category": caps[0], "tags": list(tags),
            "cover_image_url": "/media/cover_%s.png" % _digest(model_id)[:16],
            "author": author, "url": _PROVIDER_PAGES[provider] + model_id,
            "base_cost_micro": base, "pricing_unit": unit,
            "pricing": {"amount_usd": _usd(base), "unit": unit, "currency": "USD"},
            "run_count": runs,
            "input_types": sorted({cap.split("-to-")[0] for cap in caps}),
            "output_type": media, "capabilities": list(caps),
            "first_seen_at": seen + "T00:00:00+00:00",
            "provider_created_at": seen + "T00:00:00+00:00",
            "last_synced_at": synced_at,
        }
        # The price of one standard output (a 1024x1024 image, a 5-second video) makes models
        # of different pricing units comparable.
        model["normalized_cost_micro"] = _provider_micro(model, 1024, 1024, 1, 5.0)
        catalogue[model_id] = model
    return catalogue


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
# Requests to the gateway
###############################################################################


@_dataclass
class _Call:
    """One HTTP request, as the gateway sees it."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes
    root: str  # http://host:port, for absolute media URLs
    params: Dict[str, str] = _field(default_factory=dict)
    api_key: str = ""
    fault: str = ""

    def header(self, name: str) -> str:
        return (self.headers.get(name) or "").strip()

    def json(self) -> dict:
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

    def query_flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true", "yes")

    def period(self) -> str:
        return _choice(self.query.get("period", "month"), "period", tuple(PERIODS))


@_dataclass
class _GenSpec:
    """A validated generation request."""

    model: dict
    media_type: str
    prompt: str
    width: int
    height: int
    num_images: int
    duration: Optional[float]
    extras: Tuple[Any, ...]
    mode: str
    failure: str  # why the provider will fail, or ""

    def cache_key(self) -> tuple:
        return (self.model["id"], _prompt_words(self.prompt), self.width, self.height,
                self.num_images, self.duration, self.extras)

    def provider_micro(self) -> int:
        return _provider_micro(self.model, self.width, self.height, self.num_images,
                               self.duration)


###############################################################################
# The gateway: state and endpoints
###############################################################################


_Endpoint = Callable[[_Call], Any]  # a JSON-able answer (200) or a _Reply
_Route = Tuple[str, "_re.Pattern[str]", _Endpoint, bool]


class _Gateway:
    """All the emulated service: state behind one lock, one method per endpoint."""

    def __init__(self, api_keys: Optional[List[str]], quiet: bool, job_steps: int) -> None:
        self.lock = _threading.Lock()
        self.quiet = quiet
        self.job_steps = max(1, job_steps)
        self.allowed_keys = list(api_keys) if api_keys else None
        self.started = _time.time()
        self.catalogue = _build_catalogue(_iso(self.started))
        self.covers = {m["cover_image_url"]: m["id"] for m in self.catalogue.values()}
        self.media: Dict[str, Tuple[str, bytes]] = {}
        self.cache: Dict[tuple, dict] = {}
        self.idempotent: Dict[tuple, Tuple[str, _Reply]] = {}
        self.fault_counts: Dict[tuple, int] = {}
        self.jobs: Dict[str, dict] = {}
        self.logs: List[Tuple[float, dict]] = []
        self.provider_keys: Dict[str, dict] = {}
        self.api_keys: Dict[str, dict] = {}
        for key in self.allowed_keys or [DEMO_API_KEY]:
            self._remember_key(key)
        self.routes = self._routes()

    # -- routing ------------------------------------------------------------------------

    def _routes(self) -> List[_Route]:
        table: List[Tuple[str, str, _Endpoint, bool]] = [
            # method, path under /api/v1, endpoint, needs an API key
            ("GET", "/health", self.health, False),
            ("GET", "/models", self.list_models, False),
            ("GET", "/models/(?P<model_id>.+)", self.get_model, False),
            ("POST", "/generate", self.generate, True),
            ("POST", "/images/generate", self.generate_images, True),
            ("POST", "/videos/generate", self.generate_videos, True),
            ("GET", "/requests/(?P<request_id>[^/]+)", self.get_request, True),
            ("GET", "/usage", self.usage, True),
            ("GET", "/usage/logs", self.usage_logs, True),
            ("GET", "/dashboard", self.dashboard, True),
            ("GET", "/providers/keys", self.list_provider_keys, True),
            ("PUT", "/providers/keys", self.put_provider_key, True),
            ("DELETE", "/providers/keys/(?P<provider>[^/]+)", self.delete_provider_key, True),
            ("POST", "/providers/validate", self.validate_provider_key, True),
            ("GET", "/providers/balances", self.balances, True),
            ("GET", "/auth/me", self.auth_me, True),
            ("GET", "/api-keys", self.list_api_keys, True),
            ("GET", "/billing/stats", self.billing_stats, True),
            ("GET", "/billing/info", self.billing_info, True),
            ("GET", "/billing/pricing", self.billing_pricing, True),
        ]
        routes: List[_Route] = [(m, _re.compile(API_PREFIX + p), f, auth)
                                for m, p, f, auth in table]
        routes.append(("GET", _re.compile(r"/media/(?P<name>[^/]+)"), self.get_media, False))
        return routes

    def _route(self, method: str, path: str) -> Tuple[_Endpoint, bool, dict]:
        allowed = []
        for route_method, pattern, endpoint, needs_key in self.routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return endpoint, needs_key, match.groupdict()
            if match:
                allowed.append(route_method)
        if allowed:
            raise _ApiError(405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s" % (method, path),
                            {"allowed": allowed}, {"Allow": ", ".join(allowed)})
        raise _not_found("route %s" % path)

    def respond(self, method: str, target: str, headers: Any, body: bytes, root: str) -> _Reply:
        """Answer one HTTP request; never raises."""
        try:
            return self._respond(method, target, headers, body, root)
        except _ApiError as err:
            return err.reply()
        except Exception:  # a bug in the emulator: answer like a server would
            if not self.quiet:
                _traceback.print_exc()
            return _ApiError(500, "INTERNAL_ERROR", "emulator bug, see its log").reply()

    def _respond(self, method: str, target: str, headers: Any, body: bytes, root: str) -> _Reply:
        parts = _urlsplit(target)
        path = _unquote(parts.path)
        if len(path) > 1:
            path = path.rstrip("/")
        endpoint, needs_key, params = self._route("GET" if method == "HEAD" else method, path)
        query = {k: v[0] for k, v in _parse_qs(parts.query, keep_blank_values=True).items()}
        call = _Call(method, path, query, headers, body, root, params)
        fault_reply = self._apply_fault(call)
        if fault_reply is not None:
            return fault_reply
        with self.lock:
            if needs_key:
                self._authenticate(call)
            return self._idempotent(call, endpoint)

    def _idempotent(self, call: _Call, endpoint: _Endpoint) -> _Reply:
        """Run the endpoint, or replay the stored answer for a repeated Idempotency-Key."""
        key = call.header("Idempotency-Key")
        if call.method != "POST" or not key:
            return self._run(call, endpoint)
        slot = (call.api_key, call.path, key)
        body_hash = _fingerprint(call.body)
        if slot in self.idempotent:
            stored_hash, reply = self.idempotent[slot]
            if stored_hash != body_hash:
                raise _ApiError(409, "IDEMPOTENCY_KEY_REUSED",
                                "this Idempotency-Key was used with a different request body",
                                {"field": "Idempotency-Key"})
            return _Reply(reply.status, reply.body, reply.content_type,
                          dict(reply.headers, **{"Idempotent-Replayed": "true"}))
        reply = self._run(call, endpoint)
        if 200 <= reply.status < 300:
            self.idempotent[slot] = (body_hash, reply)
        return reply

    @staticmethod
    def _run(call: _Call, endpoint: _Endpoint) -> _Reply:
        result = endpoint(call)
        return result if isinstance(result, _Reply) else _json_reply(200, result)

    # -- authentication and faults ---------------------------------------------------------

    def _key_ok(self, key: str) -> bool:
        if self.allowed_keys is not None:
            return key in self.allowed_keys
        return key.startswith("vg-") and not key.startswith("vg-invalid")

    def _authenticate(self, call: _Call) -> None:
        scheme, _, key = call.header("Authorization").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _ApiError(401, "AUTHENTICATION_ERROR",
                            "missing API key: send 'Authorization: Bearer vg-...'")
        if not self._key_ok(key):
            raise _ApiError(401, "AUTHENTICATION_ERROR", "invalid API key")
        self._remember_key(key)["last_used_at"] = _iso(_time.time())
        call.api_key = key

    def _remember_key(self, key: str) -> dict:
        if key not in self.api_keys:
            name = "Emulator demo key" if key == DEMO_API_KEY else "API key %d" % (
                len(self.api_keys) + 1)
            self.api_keys[key] = {
                "id": "key_" + _digest(key)[:12], "name": name,
                "key_prefix": key[:min(8, len(key) // 2)],
                "created_at": _iso(self.started), "last_used_at": None,
            }
        return self.api_keys[key]

    def _apply_fault(self, call: _Call) -> Optional[_Reply]:
        """Act on X-Emulator-Fault: an error reply, a delay, or a mark for generation."""
        spec = call.header("X-Emulator-Fault")
        if not spec:
            return None
        fault, times = _parse_fault(spec)
        if times is not None:
            with self.lock:
                slot = (spec, call.header("Idempotency-Key"))
                self.fault_counts[slot] = seen = self.fault_counts.get(slot, 0) + 1
            if seen > times:
                return None
        if fault.startswith("delay="):
            _time.sleep(float(fault[len("delay="):]))
            return None
        if fault == "provider":
            call.fault = fault
            return None
        if fault == "html":
            page = b"<html><body><h1>502 Bad Gateway</h1><hr>emulated proxy</body></html>"
            return _Reply(502, page, "text/html")
        if fault == "empty":
            return _Reply(503, b"", "text/plain")
        status = int(fault)
        headers = {"Retry-After": "1"} if status == 429 else {}
        raise _ApiError(status, ERROR_CODES.get(status, "EMULATED_FAULT"),
                        "fault injected by X-Emulator-Fault: %s" % fault, {}, headers)

    # -- health and models -------------------------------------------------------------------

    def health(self, call: _Call) -> dict:
        return {"status": "ok", "version": __version__ + "-emulator", "database": "ok",
                "cache": "ok", "emulator": True}

    def _model_view(self, model: dict, root: str) -> dict:
        return dict(model, cover_image_url=root + model["cover_image_url"])

    def list_models(self, call: _Call) -> dict:
        models = list(self.catalogue.values())
        for field, options in (("provider", PROVIDERS), ("media_type", MEDIA_TYPES)):
            wanted = call.query.get(field)
            if wanted:
                _choice(wanted, field, options)
                models = [m for m in models if m[field] == wanted]
        capability = call.query.get("capability")
        if capability:
            models = [m for m in models if capability in m["capabilities"]]
        search = call.query.get("search", "").lower()
        if search:
            models = [m for m in models if any(
                search in m[k].lower() for k in ("id", "name", "description", "author"))]
        sort = call.query.get("sort")
        if sort:
            models = _sorted_models(models, _choice(sort, "sort", MODEL_SORTS))
        limit = call.query_int("limit", 100, 1, 1000)
        answer = {"models": [self._model_view(m, call.root) for m in models[:limit]],
                  "total_count": len(models), "last_updated": _iso(self.started)}
        if call.query_flag("featured"):
            answer["featured"] = self._featured(call.root)
        return answer

    def _featured(self, root: str) -> List[dict]:
        everything = list(self.catalogue.values())
        sections = [
            ("Popular image models", "popular-images", "popular", "image"),
            ("Popular video models", "popular-videos", "popular", "video"),
            ("Budget picks", "budget", "cost", None),
            ("New arrivals", "new", "newest", None),
        ]
        return [{"title": title, "key": key,
                 "models": [self._model_view(m, root) for m in _sorted_models(
                     [m for m in everything if media in (None, m["media_type"])], sort)[:4]]}
                for title, key, sort, media in sections]

    def get_model(self, call: _Call) -> dict:
        model_id = call.params["model_id"]
        if model_id not in self.catalogue:
            raise _not_found("model %s" % model_id, "MODEL_NOT_FOUND", model=model_id)
        return self._model_view(self.catalogue[model_id], call.root)

    # -- generation ---------------------------------------------------------------------------

    def generate(self, call: _Call) -> Any:
        return self._generation(call, "image", _generate_answer, params_field="params")

    def generate_images(self, call: _Call) -> Any:
        return self._generation(call, "image", _images_answer)

    def generate_videos(self, call: _Call) -> Any:
        return self._generation(call, "video", _videos_answer)

    def _generation(self, call: _Call, media_type: str, answer: Callable[..., dict],
                    params_field: str = "") -> Any:
        spec = self._parse_generation(call, media_type, params_field)
        if "respond-async" in call.header("Prefer").lower():
            return self._submit_job(spec)
        return answer(self._produce(spec), call)

    def _parse_generation(self, call: _Call, media_type: str, params_field: str) -> _GenSpec:
        body = call.json()
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("prompt", "prompt is required and must be a non-empty string")
        fields = (body.get(params_field) or {}) if params_field else body
        if not isinstance(fields, dict):
            raise _invalid(params_field, params_field + " must be a JSON object")
        if media_type == "image":
            width = _bounded_int(fields.get("width", 1024), "width", 1, MAX_SIDE)
            height = _bounded_int(fields.get("height", 1024), "height", 1, MAX_SIDE)
            count = _bounded_int(fields.get("num_images", 1), "num_images", 1, MAX_NUM_IMAGES)
            duration = None
        else:
            width, height, count = 1280, 720, 1
            duration = _duration(fields.get("duration_seconds", 5.0))
        seed = fields.get("seed")
        if seed is not None:
            _bounded_int(seed, "seed", 0, 2 ** 63)
        extras = (seed, _optional_str(fields, "negative_prompt"),
                  _optional_str(fields, "image_url"))
        model = self._resolve_model(body.get("model") or DEFAULT_MODELS[media_type], media_type)
        mode = "byok" if call.header(BYOK_HEADERS[model["provider"]]) else "managed"
        return _GenSpec(model, media_type, prompt, width, height, count, duration, extras, mode,
                        _failure_reason(call, model, prompt))

    def _resolve_model(self, model_id: Any, media_type: str) -> dict:
        if not isinstance(model_id, str):
            raise _invalid("model", "model must be a string")
        if model_id == PROVIDER_FAILURE_MODEL:
            return dict(_FAILURE_MODEL, media_type=media_type)
        model = self.catalogue.get(model_id)
        if model is None:
            raise _not_found("model %s" % model_id, "MODEL_NOT_FOUND", model=model_id)
        if model["media_type"] != media_type:
            raise _invalid("model", "%s makes %ss, this endpoint makes %ss"
                           % (model_id, model["media_type"], media_type))
        return model

    def _produce(self, spec: _GenSpec) -> dict:
        """One generation through cache and provider, logged; raises PROVIDER_ERROR on failure."""
        now = _time.time()
        provider = spec.model["provider"]
        if spec.failure:
            self._log(spec, now, "failed", cache_hit=False, billed=0, provider_cost=0)
            raise _ApiError(502, "PROVIDER_ERROR",
                            "%s failed to generate: %s (emulated)" % (provider, spec.failure),
                            {"provider": provider, "model": spec.model["id"]})
        key = spec.cache_key()
        full_provider = spec.provider_micro()
        full_billed = _billed_micro(full_provider, spec.mode)
        entry = self.cache.get(key)
        hit = entry is not None
        if entry is None:
            entry = self.cache[key] = self._render(spec, key)
        billed = 0 if hit else full_billed
        log = self._log(spec, now, "completed", cache_hit=hit, billed=billed,
                        provider_cost=0 if hit else full_provider,
                        savings=full_billed if hit else 0)
        kind = ("exact" if entry["prompt"] == spec.prompt else "semantic") if hit else ""
        steps = _steps(_digest(key), kind, spec.media_type)
        return {
            "id": log["id"], "model": spec.model["id"], "provider": provider,
            "paths": entry["paths"], "size": entry["size"], "cache_hit": hit,
            "billed_micro": billed, "full_billed_micro": full_billed,
            "avoided_micro": full_provider if hit else 0, "mode": spec.mode,
            "width": spec.width, "height": spec.height, "num_images": spec.num_images,
            "steps": steps, "latency_ms": sum(s["duration_ms"] for s in steps),
            "created_at": _iso(now),
        }

    def _render(self, spec: _GenSpec, key: tuple) -> dict:
        """Make and store the placeholder media of a cache miss."""
        paths, size = [], 0
        for index in range(spec.num_images):
            seed = bytes.fromhex(_digest(key, index))
            if spec.media_type == "image":
                name, kind = "img_%s.png" % seed[:8].hex(), "image/png"
                data = _make_png(seed, *_placeholder_size(spec.width, spec.height))
            else:
                name, kind, data = "vid_%s.mp4" % seed[:8].hex(), "video/mp4", _make_mp4(seed)
            self.media[name] = (kind, data)
            paths.append("/media/" + name)
            size += len(data)
        return {"paths": paths, "size": size, "prompt": spec.prompt}

    def _log(self, spec: _GenSpec, now: float, status: str, cache_hit: bool, billed: int,
             provider_cost: int, savings: int = 0) -> dict:
        entry = {
            "id": _new_id("gen_"), "model": spec.model["id"],
            "provider": spec.model["provider"], "media_type": spec.media_type,
            "cost": _usd(billed), "provider_cost": _usd(provider_cost), "cache_hit": cache_hit,
            "status": status, "mode": spec.mode, "created_at": _iso(now),
            "_billed": billed, "_provider": provider_cost, "_savings": savings,
        }
        self.logs.append((now, entry))
        return entry

    # -- async jobs ---------------------------------------------------------------------------

    def _submit_job(self, spec: _GenSpec) -> _Reply:
        request_id = _new_id("req_")
        self.jobs[request_id] = {"spec": spec, "polls": 0, "created_at": _iso(_time.time()),
                                 "status": "pending", "output_url": None,
                                 "error_message": None, "completed_at": None}
        location = "%s/requests/%s" % (API_PREFIX, request_id)
        return _json_reply(202, {"request_id": request_id, "status": "pending"},
                           {"Location": location})

    def get_request(self, call: _Call) -> dict:
        request_id = call.params["request_id"]
        job = self.jobs.get(request_id)
        if job is None:
            raise _not_found("request %s" % request_id, request_id=request_id)
        if job["completed_at"] is None:
            job["polls"] += 1
            stage = job["polls"] // self.job_steps
            if stage >= 2:
                self._finish_job(job, call.root)
            elif stage == 1:
                job["status"] = "processing"
        spec = job["spec"]
        return {"request_id": request_id, "status": job["status"],
                "media_type": spec.media_type, "provider": spec.model["provider"],
                "model": spec.model["id"], "output_url": job["output_url"],
                "error_message": job["error_message"], "created_at": job["created_at"],
                "completed_at": job["completed_at"]}

    def _finish_job(self, job: dict, root: str) -> None:
        try:
            result = self._produce(job["spec"])
        except _ApiError as err:
            job.update(status="failed", error_message=err.message)
        else:
            job.update(status="completed", output_url=root + result["paths"][0])
        job["completed_at"] = _iso(_time.time())

    # -- media ----------------------------------------------------------------------------------

    def get_media(self, call: _Call) -> _Reply:
        name = call.params["name"]
        if call.path in self.covers:  # model covers are drawn on first request
            seed = bytes.fromhex(_digest(self.covers.pop(call.path)))
            self.media[name] = ("image/png", _make_png(seed))
        stored = self.media.get(name)
        if stored is None:
            raise _not_found("media %s" % name)
        content_type, data = stored
        return _Reply(200, data, content_type, {"Cache-Control": "public, max-age=31536000"})

    # -- usage ------------------------------------------------------------------------------------

    def _entries(self, period: str) -> Tuple[List[dict], dict]:
        """The log entries of the last ``period``, and the answer fields naming the window."""
        end = _time.time()
        start = end - PERIODS[period] * 86400
        window = {"period": period, "period_start": _iso(start), "period_end": _iso(end)}
        return [e for ts, e in self.logs if ts >= start], window

    def usage(self, call: _Call) -> dict:
        entries, window = self._entries(call.period())
        totals = _tally(entries)
        return dict(window, **{
            "total_requests": totals["requests"],
            "successful_requests": totals["successful"],
            "failed_requests": totals["failed"],
            "cached_requests": totals["cached"],
            "total_provider_cost": totals["provider_cost"],
            "total_billed_cost": totals["cost"],
            "total_savings": totals["savings"],
            "by_provider": _breakdown(entries, "provider"),
            "by_model": _breakdown(entries, "model"),
        })

    def usage_logs(self, call: _Call) -> dict:
        limit = call.query_int("limit", 50, 1, 1000)
        offset = call.query_int("offset", 0, 0, 10 ** 9)
        newest_first = [_public(e) for _, e in reversed(self.logs)]
        return {"logs": newest_first[offset:offset + limit], "total_count": len(newest_first),
                "limit": limit, "offset": offset}

    def dashboard(self, call: _Call) -> dict:
        entries, window = self._entries(call.period())
        totals = _tally(entries)
        return dict(window, **{
            "total_generations": totals["requests"],
            "successful_generations": totals["successful"],
            "failed_generations": totals["failed"],
            "images_generated": sum(e["media_type"] == "image" for e in entries),
            "videos_generated": sum(e["media_type"] == "video" for e in entries),
            "total_cost_usd": totals["cost"], "total_savings_usd": totals["savings"],
            "cache_hit_rate": round(totals["cached"] / totals["requests"], 4)
            if totals["requests"] else 0.0,
            "by_provider": _breakdown(entries, "provider"),
            "recent": [_public(e) for e in reversed(entries[-5:])],
        })

    # -- provider keys and balances -------------------------------------------------------------

    def list_provider_keys(self, call: _Call) -> dict:
        return {"keys": [self.provider_keys[p] for p in PROVIDERS if p in self.provider_keys]}

    def put_provider_key(self, call: _Call) -> dict:
        provider, api_key = _provider_and_key(call.json())
        valid, _ = _check_provider_key(provider, api_key)
        entry = {"provider": provider, "validated": valid,
                 "validated_at": _iso(_time.time()) if valid else None,
                 "masked_key": _mask(api_key)}
        self.provider_keys[provider] = entry
        return entry

    def delete_provider_key(self, call: _Call) -> dict:
        provider = call.params["provider"]
        if self.provider_keys.pop(provider, None) is None:
            raise _not_found("key for provider %s" % provider, provider=provider)
        return {"deleted": True, "provider": provider}

    def validate_provider_key(self, call: _Call) -> dict:
        valid, message = _check_provider_key(*_provider_and_key(call.json()))
        return {"valid": valid, "message": message}

    def balances(self, call: _Call) -> dict:
        spent = {p: 0 for p in PROVIDERS}
        for _, entry in self.logs:
            if entry["mode"] == "managed" and entry["provider"] in spent:
                spent[entry["provider"]] += entry["_provider"]
        answer = []
        for provider in PROVIDERS:
            remaining = max(0, MANAGED_CREDIT_MICRO - spent[provider])
            configured = provider in self.provider_keys
            answer.append({
                "provider": provider, "configured": configured, "available": remaining > 0,
                "limit": _usd(MANAGED_CREDIT_MICRO), "remaining": _usd(remaining),
                "currency": "USD",
                "message": ("your own key is configured (BYOK); " if configured else "")
                + "emulated managed credit, no real provider account",
            })
        return {"balances": answer}

    # -- account and billing ----------------------------------------------------------------------

    def auth_me(self, call: _Call) -> dict:
        return {"organization": {"id": "org_emulator", "name": "Emulator Organization"},
                "role": "api-key", "api_key_id": self.api_keys[call.api_key]["id"]}

    def list_api_keys(self, call: _Call) -> list:
        return [dict(entry) for entry in self.api_keys.values()]

    def billing_stats(self, call: _Call) -> dict:
        entries = [e for _, e in self.logs]
        totals = _tally(entries)
        paid = [e for e in entries if e["status"] == "completed" and not e["cache_hit"]]
        billed_plus_saved = totals["cost"] + totals["savings"]
        return {
            "active_users": 1,
            "avg_image_cost_micro": _average(e["_billed"] for e in paid
                                             if e["media_type"] == "image"),
            "avg_video_cost_micro": _average(e["_billed"] for e in paid
                                             if e["media_type"] == "video"),
            "base_fee_micro": 0, "gateway_fee_percent": round(GATEWAY_FEE * 100, 2),
            "cache_hit_reduction_percent": round(100 * totals["savings"] / billed_plus_saved, 2)
            if billed_plus_saved else 0.0,
            "cache_hits": totals["cached"], "total_requests": totals["requests"],
            "total_cost_micro": sum(e["_billed"] for e in entries),
            "total_savings_micro": sum(e["_savings"] for e in entries),
        }

    def billing_info(self, call: _Call) -> dict:
        billed_all = sum(e["_billed"] for _, e in self.logs)
        month, _ = self._entries("month")
        return {
            "balance_micro": ACCOUNT_CREDIT_MICRO - billed_all, "billing_status": "active",
            "company_name": "Emulator Organization", "free_mode_enabled": False,
            "monthly_budget_cents": 10_000, "support_email": "support@emulator.invalid",
            "tier": "emulator",
            "usage_this_month_cents": round(sum(e["_billed"] for e in month) / 10_000),
        }

    def billing_pricing(self, call: _Call) -> dict:
        fields = ("provider", "media_type", "pricing_unit", "base_cost_micro",
                  "normalized_cost_micro", "pricing")
        return {"last_updated": _iso(self.started),
                "pricing": [dict({"model": m["id"]}, **{k: m[k] for k in fields})
                            for m in self.catalogue.values()]}


###############################################################################
# Gateway helpers without state
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
    if fault in ("provider", "html", "empty") or (fault.isdigit() and 400 <= int(fault) <= 599):
        return fault, times
    if fault.startswith("delay="):
        try:
            seconds = float(fault[len("delay="):])
        except ValueError:
            seconds = -1.0
        if 0 <= seconds <= MAX_FAULT_DELAY_SECONDS:
            return fault, times
    raise _invalid("X-Emulator-Fault", "unknown fault %r: use a status 400-599, provider, html, "
                   "empty or delay=SECONDS" % fault)


def _failure_reason(call: _Call, model: dict, prompt: str) -> str:
    if call.fault == "provider":
        return "fault injected by X-Emulator-Fault"
    if model["id"] == PROVIDER_FAILURE_MODEL:
        return "the model %s always fails" % PROVIDER_FAILURE_MODEL
    if "[fail]" in prompt.lower():
        return "the prompt asked for [fail]"
    return ""


def _duration(value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value <= MAX_DURATION_SECONDS):
        raise _invalid("duration_seconds",
                       "duration_seconds must be a number in (0, %g]" % MAX_DURATION_SECONDS)
    return float(value)


def _sorted_models(models: List[dict], sort: str) -> List[dict]:
    keys = {
        "name": lambda m: (m["name"].lower(), m["id"]),
        "cost": lambda m: (m["normalized_cost_micro"], m["id"]),
        "newest": lambda m: (m["first_seen_at"], m["id"]),
        "popular": lambda m: (m["run_count"], m["id"]),
    }
    return sorted(models, key=keys[sort], reverse=sort in ("newest", "popular"))


def _steps(digest: str, hit_kind: str, media_type: str) -> List[dict]:
    """Emulated pipeline timings, stable for a given request (no real waiting happens).

    ``hit_kind`` is "exact" or "semantic" for a cache hit, "" for a miss.
    """
    jitter = int(digest[:8], 16)
    if hit_kind:
        return [{"name": "cache", "status": "hit", "match": hit_kind,
                 "duration_ms": 4 + jitter % 12},
                {"name": "provider", "status": "skipped", "duration_ms": 0},
                {"name": "storage", "status": "skipped", "duration_ms": 0}]
    provider_ms = (30_000 + jitter % 60_000) if media_type == "video" else 700 + jitter % 1800
    return [{"name": "cache", "status": "miss", "duration_ms": 3 + jitter % 5},
            {"name": "provider", "status": "completed", "duration_ms": provider_ms},
            {"name": "storage", "status": "completed", "duration_ms": 40 + jitter % 120}]


def _media_urls(result: dict, call: _Call) -> List[str]:
    return [call.root + path for path in result["paths"]]


def _cost_fields(result: dict) -> dict:
    return {"cost": _usd(result["billed_micro"]), "cache_hit": result["cache_hit"],
            "latency_ms": result["latency_ms"], "created_at": result["created_at"]}


def _generate_answer(result: dict, call: _Call) -> dict:
    urls = _media_urls(result, call)
    megapixels = result["width"] * result["height"] * result["num_images"] / 1_000_000
    return {
        "id": result["id"], "image_url": urls[0], "images": urls, "model": result["model"],
        "provider": result["provider"], "mode": result["mode"],
        "estimated_cost_usd": _usd(result["billed_micro"]),
        "cost_per_megapixel_usd": round(_usd(result["full_billed_micro"]) / megapixels, 6),
        "latency_ms": result["latency_ms"],
        "resolution": {"width": result["width"], "height": result["height"]},
        "created_at": result["created_at"],
        "cache_hit": result["cache_hit"],
        **({"provider_cost_avoided_micro": result["avoided_micro"]} if result["cache_hit"] else {}),
    }


def _images_answer(result: dict, call: _Call) -> dict:
    answer = dict({"id": result["id"], "images": _media_urls(result, call),
                   "model": result["model"], "provider": result["provider"]},
                  **_cost_fields(result))
    if result["cache_hit"]:
        answer["provider_cost_avoided_micro"] = result["avoided_micro"]
    answer.update(output_storage="emulator", output_size_bytes=result["size"])
    if call.query_flag("include_steps"):
        answer["steps"] = result["steps"]
    return answer


def _videos_answer(result: dict, call: _Call) -> dict:
    return dict({"id": result["id"], "video_url": _media_urls(result, call)[0],
                 "model": result["model"], "provider": result["provider"]},
                provider_cost_avoided_micro=result["avoided_micro"], **_cost_fields(result))


def _tally(entries: List[dict]) -> dict:
    return {
        "requests": len(entries),
        "successful": sum(e["status"] == "completed" for e in entries),
        "failed": sum(e["status"] == "failed" for e in entries),
        "cached": sum(bool(e["cache_hit"]) for e in entries),
        "cost": _usd(sum(e["_billed"] for e in entries)),
        "provider_cost": _usd(sum(e["_provider"] for e in entries)),
        "savings": _usd(sum(e["_savings"] for e in entries)),
    }


def _breakdown(entries: List[dict], key: str) -> Dict[str, dict]:
    groups: Dict[str, List[dict]] = {}
    for entry in entries:
        groups.setdefault(entry[key], []).append(entry)
    return {name: _tally(group) for name, group in groups.items()}


def _fingerprint(body: bytes) -> str:
    """Equal for equal JSON bodies, whatever their key order or spacing."""
    try:
        return _digest(_json.dumps(_json.loads(body or b"null"), sort_keys=True))
    except ValueError:
        return _digest(body)


def _public(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def _average(values: Any) -> int:
    values = list(values)
    return round(sum(values) / len(values)) if values else 0


def _provider_and_key(body: dict) -> Tuple[str, str]:
    provider = _choice(body.get("provider"), "provider", PROVIDERS)
    api_key = body.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise _invalid("api_key", "api_key is required and must be a non-empty string")
    return provider, api_key.strip()


def _check_provider_key(provider: str, api_key: str) -> Tuple[bool, str]:
    """Format check only: the emulator never calls a provider."""
    prefixes = {"fal": ("fal_",), "replicate": ("r8_",), "runway": ("rw_", "key_")}[provider]
    valid = api_key.startswith(prefixes) or (provider == "fal" and len(api_key) >= 8)
    if valid:
        return True, "%s key format looks valid (emulator: no provider was called)" % provider
    also = " or have 8+ characters" if provider == "fal" else ""
    return False, "%s keys start with %s%s" % (provider, " or ".join(prefixes), also)


###############################################################################
# HTTP server
###############################################################################


class _Handler(_BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every answer has a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "visgate-emulator/" + __version__
    timeout = 60  # close idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

    def _serve(self) -> None:
        gateway: _Gateway = self.server.gateway  # type: ignore[attr-defined]
        reply = self._read_body_or_error()
        if reply is None:
            host = self.headers.get("Host") or "%s:%d" % self.connection.getsockname()[:2]
            reply = gateway.respond(self.command, self.path, self.headers, self._body,
                                    "http://" + host)
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

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # Method, path and status only: never headers, so no API or provider key.
        self.log_message("%s %s %s", self.command, self.path, code)

    def log_message(self, fmt: str, *args: Any) -> None:
        if not self.server.gateway.quiet:  # type: ignore[attr-defined]
            _sys.stderr.write("[visgate emulator] %s\n" % (fmt % args))


class _Server(_ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops bursts of connections (1 s SYN retry)

    def __init__(self, address: Tuple[str, int], gateway: _Gateway) -> None:
        if ":" in address[0]:
            self.address_family = _socket.AF_INET6
        self.gateway = gateway
        super().__init__(address, _Handler)

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
    ``quiet``: no banner and no request log on stderr. ``job_steps``: polls per async job stage.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 api_keys: Optional[List[str]] = None, quiet: bool = True,
                 job_steps: int = 1) -> None:
        self.host = host
        self.quiet = quiet
        self._requested_port = port
        self._gateway = _Gateway(api_keys, quiet, job_steps)
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

    def start(self, announce: Optional[bool] = None) -> "Emulator":
        """Bind and serve in a daemon thread; ``announce`` (default: not quiet) prints a banner."""
        if self._server is None:
            self._server = _Server((self.host, self._requested_port), self._gateway)
            self._thread = _threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                             name="visgate-emulator", daemon=True)
            self._thread.start()
            if announce if announce is not None else not self.quiet:
                keys = self._gateway.allowed_keys
                key_note = DEMO_API_KEY + " (any vg-... key works)" if keys is None else (
                    "only the keys given with --api-key")
                print(BANNER.format(key=key_note), file=_sys.stderr)
                print("visgate emulator listening on " + self.base_url, file=_sys.stderr,
                      flush=True)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = self._thread = None

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C still works)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def main(argv: Optional[List[str]] = None) -> int:
    parser = _argparse.ArgumentParser(
        prog="python -m visgate_emulator",
        description="Local EMULATOR of the visgate API (no real generation happens).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", dest="api_keys", action="append", metavar="KEY",
                        help="accept only this key (repeatable; default: any vg-... key)")
    parser.add_argument("--job-steps", type=int, default=1, metavar="N",
                        help="polls per async job stage (default 1)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    emulator = Emulator(args.host, args.port, args.api_keys, args.quiet, args.job_steps)
    try:
        emulator.start(announce=True)
    except OSError as exc:
        print("visgate emulator: cannot listen on %s:%d: %s" % (args.host, args.port, exc),
              file=_sys.stderr)
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
