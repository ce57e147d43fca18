"""visgate_sdk: the Python client for the visgate API, in one file, standard library only.

visgate is a vision-AI gateway: one API for image and video generation across Fal,
Replicate and Runway. Install it with ``pip install visgate-sdk`` or copy this file into
your project (it imports nothing outside the standard library)::

    from visgate_sdk import Client

    with Client() as client:              # reads VISGATE_API_KEY
        result = client.generate("a sunset over Istanbul")
        print(result.image_url, result.cost)

``AsyncClient`` has the same methods as coroutines. Errors are subclasses of
``VisgateError``; results are dataclasses that keep the full answer in ``raw``.
"""

from __future__ import annotations

__version__ = "0.1.0"
__author__ = "visgate-sdk developers"
__license__ = "MIT"

__all__ = [
    # clients
    "Client",
    "AsyncClient",
    "Retry",
    # errors
    "VisgateError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "ValidationError",
    "RateLimitError",
    "ProviderError",
    "ServerError",
    "TimeoutError",
    "ConnectionError",
    "TLSError",
    "InvalidResponseError",
    "DownloadError",
    # results
    "GenerateResult",
    "ImageResult",
    "VideoResult",
    "RequestStatusResult",
    "GenerationRequest",
    "AsyncGenerationRequest",
    "ModelInfo",
    "FeaturedSection",
    "ModelsResponse",
    "UsageSummary",
    "ProviderKeyInfo",
    "ProviderKeysResponse",
    "ProviderValidationResult",
    "ProviderBalanceItem",
    "ProviderBalancesResponse",
    "AuthInfo",
    "ApiKeyInfo",
    "BillingInfo",
    "BillingPricing",
    # resources
    "Images",
    "Videos",
    "Requests",
    "Models",
    "Usage",
    "Providers",
    "Auth",
    "ApiKeys",
    "Billing",
    "AsyncImages",
    "AsyncVideos",
    "AsyncRequests",
    "AsyncModels",
    "AsyncUsage",
    "AsyncProviders",
    "AsyncAuth",
    "AsyncApiKeys",
    "AsyncBilling",
    # constants
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "__version__",
    # helpers and the command line
    "parse_retry_after",
    "main",
]

import _thread
import builtins as _builtins
import functools as _functools
import math as _math
import os as _os
import sys as _sys
import time as _time
import weakref as _weakref
from datetime import datetime  # a result field type: typing.get_type_hints() must resolve it
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    FrozenSet,
    Generic,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
    overload,
)

# Typing only: at run time each module is imported where it is first needed. Standard library
# only, for type checkers too: Concatenate, ParamSpec, Self and Unpack are in typing from 3.11.
if TYPE_CHECKING:
    import concurrent.futures
    import http.client
    import logging
    import ssl
    from dataclasses import dataclass as _dataclass
    from dataclasses import field as _field
    from typing import BinaryIO as _BinaryFile
    from typing import Concatenate, Literal, ParamSpec, Self, TypedDict, Unpack

    _P = ParamSpec("_P")

    class _ClientOptions(TypedDict, total=False):
        """``Client``'s keyword arguments, which ``AsyncClient`` passes on."""

        base_url: Optional[str]
        timeout: float
        max_retries: Union[int, "Retry"]
        fal_key: Optional[str]
        replicate_key: Optional[str]
        runway_key: Optional[str]
        verify: Union[bool, str, ssl.SSLContext]
        trust_env: bool
        default_headers: Optional[Mapping[str, str]]
        max_response_bytes: int

    class _ImageOptions(TypedDict, total=False):
        """``images.generate()``'s keyword arguments besides ``wait``, for its overloads."""

        negative_prompt: Optional[str]
        width: int
        height: int
        num_images: int
        seed: Optional[int]
        params: Optional[Dict[str, Any]]
        include_steps: bool
        timeout: Optional[float]
        idempotency_key: Optional[str]

    class _VideoOptions(TypedDict, total=False):
        """``videos.generate()``'s keyword arguments besides ``wait``, for its overloads."""

        image_url: Optional[str]
        duration_seconds: float
        skip_gcs_upload: bool
        params: Optional[Dict[str, Any]]
        timeout: Optional[float]
        idempotency_key: Optional[str]


_T = TypeVar("_T")
_R = TypeVar("_R")


###############################################################################
# Constants and logging #######################################################
###############################################################################

DEFAULT_BASE_URL = "https://visgateai.com/api/v1"
DEFAULT_MODEL = "fal-ai/flux/schnell"
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 2
_DEFAULT_MAX_CONCURRENCY = 100
_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
_MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024
_MAX_REDIRECTS = 5
_USER_AGENT = "visgate-sdk-python/" + __version__
# Header name -> constructor keyword for the user's own provider keys (BYOK).
_BYOK_HEADERS = (("X-Fal-Key", "fal_key"), ("X-Replicate-Key", "replicate_key"), ("X-Runway-Key", "runway_key"))
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"} | {h.lower() for h, _ in _BYOK_HEADERS})


# -- logging: the "visgate_sdk" logger, never with secrets ---------------------------

_ENV_LOG = _os.environ.get("VISGATE_LOG", "")


def _log(level: str, msg: str, *args: Any) -> None:
    # logging costs ~4 ms to import; if nobody imported it, nobody configured a handler either.
    if not _ENV_LOG and "logging" not in _sys.modules:
        return
    logger = _logger()
    getattr(logger, level)(msg, *args)


@_functools.cache
def _logger() -> "logging.Logger":
    import logging

    logger = logging.getLogger("visgate_sdk")
    wanted = _ENV_LOG.strip().upper()
    if wanted in ("DEBUG", "INFO", "WARNING", "ERROR"):
        logger.setLevel(wanted)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
    return logger


###############################################################################
# Errors ######################################################################
###############################################################################


class VisgateError(Exception):
    """Base class of every error this client raises.

    ``message`` is human-readable, ``error_code`` machine-readable (the API's ``error``
    field), ``details`` the API's structured context, ``status_code`` the HTTP status
    (``None`` when no response arrived) and ``request_id`` the server's request id header.
    """

    default_code = "VISGATE_ERROR"
    default_message = "visgate request failed"

    def __init__(
        self,
        message: Optional[str] = None,
        error_code: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
        status_code: Optional[int] = None,
        *,
        request_id: Optional[str] = None,
    ) -> None:
        self.message: str = message if message is not None else self.default_message
        self.error_code: str = error_code or self.default_code
        self.details: Dict[str, Any] = dict(details or {})
        self.status_code: Optional[int] = status_code
        self.request_id: Optional[str] = request_id
        super().__init__(self.message)  # args == (message,), as the reference client's

    def __str__(self) -> str:
        return "[%s] %s" % (self.error_code, self.message)

    def __repr__(self) -> str:
        return "%s(message=%r, error_code=%r, status_code=%r)" % (
            type(self).__name__,
            self.message,
            self.error_code,
            self.status_code,
        )

    def __reduce__(self) -> Any:
        # Subclasses have their own positional signatures: rebuild from state, not from args.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(cls: Type[VisgateError], args: Tuple[Any, ...], state: Dict[str, Any]) -> VisgateError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class AuthenticationError(VisgateError):
    """401: the API key is missing, wrong or revoked."""

    default_code = "AUTHENTICATION_ERROR"
    default_message = "Invalid or missing API key"

    def __init__(self, message: Optional[str] = None, **kwargs: Any) -> None:
        kwargs.setdefault("status_code", 401)
        super().__init__(message, **kwargs)


class PermissionDeniedError(VisgateError):
    """403: the key is valid but may not do this."""

    default_code = "PERMISSION_DENIED"
    default_message = "Permission denied"


class NotFoundError(VisgateError):
    """404: no such model, request, key or route (``error_code`` tells which, e.g. ``MODEL_NOT_FOUND``)."""

    default_code = "NOT_FOUND"
    default_message = "Not found"


class ConflictError(VisgateError):
    """409: the request conflicts with the current state (e.g. an idempotency key reused with another body)."""

    default_code = "CONFLICT"
    default_message = "Conflict"


class ValidationError(VisgateError, ValueError):
    """Bad input, found by the API (400/422) or by this client before sending.

    ``field`` names the offending argument or body field when known. ``status_code`` is
    422 unless given: the reference client's default, and what the server would have
    answered to input refused before sending.
    """

    default_code = "VALIDATION_ERROR"
    default_message = "Invalid request"

    def __init__(self, message: Optional[str] = None, field: Optional[str] = None, **kwargs: Any) -> None:
        details = dict(kwargs.pop("details", None) or {})
        if field:  # as the reference client: field="" adds no "field" key
            details.setdefault("field", field)
        kwargs.setdefault("status_code", 422)
        super().__init__(message, details=details, **kwargs)
        self.field: Optional[str] = field


class RateLimitError(VisgateError):
    """429: too many requests; ``retry_after`` is the server's wait hint in seconds, if any."""

    default_code = "RATE_LIMIT_ERROR"
    default_message = "Rate limit exceeded"

    def __init__(self, message: Optional[str] = None, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        kwargs.setdefault("status_code", 429)
        if isinstance(retry_after, float) and retry_after.is_integer():
            retry_after = int(retry_after)  # "Retry after 7s", as the reference client printed, not "7.0s"
        details = dict(kwargs.pop("details", None) or {})
        if retry_after is not None:  # the reference client's details["retry_after"]; the server's own keys stay
            details.setdefault("retry_after", retry_after)
        super().__init__(message, details=details, **kwargs)
        self.retry_after: Optional[float] = retry_after


class ProviderError(VisgateError):
    """The upstream provider (fal, replicate, runway; see ``provider``) failed."""

    default_code = "PROVIDER_ERROR"
    default_message = "Provider failed"

    def __init__(self, message: Optional[str] = None, provider: str = "unknown", **kwargs: Any) -> None:
        details = dict(kwargs.pop("details", None) or {})
        details.setdefault("provider", provider)
        super().__init__(message, details=details, **kwargs)
        self.provider: str = provider


class ServerError(VisgateError):
    """5xx from the API or a proxy in front of it, after retries."""

    default_code = "SERVER_ERROR"
    default_message = "Server error"


class TimeoutError(VisgateError):  # shadows the builtin: the reference client's public name
    """No answer in time: a request timed out, or polling passed its deadline.

    When polling, ``request_id`` and ``last_status`` say where the job was, so it can be
    resumed later with ``client.requests.get(request_id, wait=True)``.
    """

    default_code = "TIMEOUT_ERROR"
    default_message = "Request timed out"

    def __init__(self, message: Optional[str] = None, *, last_status: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.last_status: Optional[str] = last_status


class ConnectionError(VisgateError):  # shadows the builtin: the reference client's public name
    """The network failed: refused, reset, dropped, DNS, proxy, or the client was closed."""

    default_code = "CONNECTION_ERROR"
    default_message = "Connection failed"


class TLSError(ConnectionError):
    """TLS failed: untrusted or wrong-host certificate, or an insecure redirect."""

    default_code = "TLS_ERROR"
    default_message = "TLS verification failed"


class InvalidResponseError(VisgateError):
    """The server answered, but not with what the API promises (not JSON, wrong shape, cut)."""

    default_code = "INVALID_RESPONSE"
    default_message = "Invalid response from server"


class DownloadError(VisgateError):
    """A media download failed: HTTP error, too large, or cut short. Nothing is left at the path."""

    default_code = "DOWNLOAD_ERROR"
    default_message = "Download failed"


# The errors part of __all__, in its order: what ``visgate_sdk.exceptions`` holds.
_EXCEPTION_NAMES = tuple(
    name for name in __all__ if isinstance(globals().get(name), type) and issubclass(globals()[name], VisgateError)
)


# -- arguments are checked before anything is sent ----------------------------------

def _check_number(name: str, value: Any, *, minimum: Optional[float] = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not _math.isfinite(value)):
        raise ValidationError("%s must be a finite number, got %r" % (name, value), field=name)
    if positive and value <= 0:
        raise ValidationError("%s must be > 0, got %r" % (name, value), field=name)
    if minimum is not None and value < minimum:
        raise ValidationError("%s must be >= %s, got %r" % (name, minimum, value), field=name)
    return float(value)


def _check_int(name: str, value: Any, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # width=1024.0 (e.g. computed by a division): the reference client sent it
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("%s must be an int, got %r" % (name, value), field=name)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = "between %s and %s" % (minimum, maximum) if maximum is not None else ">= %s" % minimum
        raise ValidationError("%s must be %s, got %d" % (name, bounds, value), field=name)
    return value


def _check_str(name: str, value: Any, *, optional: bool = False) -> Optional[str]:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("%s must be a non-empty string, got %r" % (name, value), field=name)
    return value


_HEADER_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _check_header_value(name: str, value: str) -> str:
    # http.client raises a bare ValueError on line breaks and UnicodeEncodeError past Latin-1,
    # and servers' parsers split lines on other control characters too (\x0b, \x0c, \x85).
    # The value may be a secret, so never echo it.
    if not isinstance(value, str) or any(c != "\t" and (c < " " or "\x7f" <= c <= "\x9f" or c > "\xff") for c in value):
        raise ValidationError(
            "header %s must be a string of printable Latin-1 characters, without line breaks or control characters" % name,
            field=name,
        )
    return value.strip(" \t")  # surrounding whitespace is not part of a header value (RFC 9110)


def _check_filter(name: str, value: Any) -> Optional[str]:
    """A value the server decides on (a period, a provider filter): only its type is checked
    here, so a new period or provider needs no new client. None or "" means "not given"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("%s must be a string, got %s" % (name, type(value).__name__), field=name)
    return value


###############################################################################
# Retry policy ################################################################
###############################################################################


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value: seconds or an HTTP-date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import mktime_tz, parsedate_tz

        parsed = parsedate_tz(value)
        if parsed is None:
            return None
        seconds = mktime_tz(parsed) - (_time.time() if now is None else now)
    if not _math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if _math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


class Retry:
    """When and how long to retry; an immutable value (``max_retries=Retry(...)``).

    The n-th retry sleeps ``min(backoff_max, backoff_factor * 2**n)`` minus up to
    ``jitter`` of it, or the server's ``Retry-After`` when it sends one. A ``Retry-After``
    longer than ``max_retry_after`` is not waited for: the error is raised at once.
    ``replace(**changes)`` gives a modified copy.
    """

    __slots__ = ("total", "backoff_factor", "backoff_max", "jitter", "max_retry_after", "status_forcelist", "retry_after_statuses")
    total: int
    backoff_factor: float
    backoff_max: float
    jitter: float
    max_retry_after: float
    status_forcelist: FrozenSet[int]
    retry_after_statuses: FrozenSet[int]

    def __init__(
        self,
        total: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = 0.5,
        backoff_max: float = 8.0,
        jitter: float = 0.25,
        max_retry_after: float = 60.0,
        status_forcelist: Iterable[int] = frozenset({408, 429, 500, 502, 503, 504}),
        retry_after_statuses: Iterable[int] = frozenset({413, 429, 503}),
    ) -> None:
        values: Dict[str, Any] = {
            "total": _check_int("max_retries", total, minimum=0),
            "backoff_factor": _check_number("Retry.backoff_factor", backoff_factor, minimum=0.0),
            "backoff_max": _check_number("Retry.backoff_max", backoff_max, minimum=0.0),
            "jitter": _check_number("Retry.jitter", jitter, minimum=0.0),
            "max_retry_after": _check_number("Retry.max_retry_after", max_retry_after, minimum=0.0),
            "status_forcelist": frozenset(status_forcelist),
            "retry_after_statuses": frozenset(retry_after_statuses),
        }
        if values["jitter"] > 1.0:
            raise ValidationError("Retry.jitter must be between 0 and 1", field="jitter")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Retry is immutable; use retry.replace(%s=...)" % name)

    def replace(self, **changes: Any) -> "Retry":
        """A copy with ``changes`` applied."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Retry(**values)

    def _key(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Retry) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Retry(%s)" % ", ".join("%s=%r" % (name, getattr(self, name)) for name in self.__slots__)

    def backoff(self, retry_number: int) -> float:
        """Sleep before retry ``retry_number`` (0-based), with jitter, capped."""
        import random

        base = min(self.backoff_max, self.backoff_factor * 2.0 ** min(retry_number, 64))  # no float overflow
        return base * (1.0 - self.jitter * random.random())

    def delay_for(self, retry_number: int, status: Optional[int], headers: Mapping[str, str]) -> Optional[float]:
        """Seconds to sleep before the next attempt, or None to give up now."""
        if status is not None and status in self.retry_after_statuses:
            hinted = _retry_after_seconds(headers)
            if hinted is not None:
                return hinted if hinted <= self.max_retry_after else None
        return self.backoff(retry_number)


###############################################################################
# Transport: URLs, headers, TLS, proxies, keep-alive connections ###############
###############################################################################


def _json_loads(data: bytes) -> Any:
    import json

    try:
        return json.loads(data)
    except RecursionError:  # nested deeper than the interpreter allows: not an answer we can use
        raise ValueError("JSON nested too deeply") from None


def _json_dumps(value: Any) -> bytes:
    import json

    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError("request body is not JSON-serialisable: %s" % exc, field="params") from None


def _path_segment(name: str, value: Any, *, keep_slashes: bool = False) -> str:
    """Escape a path parameter so it stays inside its route (no ``..``, no ``?`` or ``#``)."""
    from urllib.parse import quote

    text = _check_str(name, value)
    assert text is not None
    parts = text.split("/") if keep_slashes else [text]
    if any(p in ("", ".", "..") for p in parts):
        raise ValidationError("%s has an empty, '.' or '..' path segment: %r" % (name, value), field=name)
    try:
        return "/".join(quote(p, safe="") for p in parts)
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
        raise ValidationError("%s is not valid Unicode text: %r" % (name, value), field=name) from None


def _query(params: Mapping[str, Any]) -> str:
    from urllib.parse import urlencode

    items = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        items.append((key, value))
    return urlencode(items)


class _Origin:
    """scheme, host and port: what a connection, and credentials, belong to."""

    __slots__ = ("scheme", "host", "port", "netloc")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        bracketed = "[%s]" % host if ":" in host else host
        self.netloc = bracketed if port == (443 if scheme == "https" else 80) else "%s:%d" % (bracketed, port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Origin) and (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.scheme, self.host, self.port))

    def __repr__(self) -> str:
        return "_Origin(%r, %r, %r)" % (self.scheme, self.host, self.port)


def _split_url(url: str, what: str = "base_url") -> Tuple[_Origin, str]:
    """(origin, path-and-query) of an absolute http(s) URL; ValidationError otherwise."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise ValidationError("%s must be a string URL" % what, field=what)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValidationError("%s is not a valid URL: %s" % (what, exc), field=what) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("%s must be an absolute http(s) URL, got %r" % (what, url), field=what)
    if parts.username is not None or parts.password is not None:
        raise ValidationError("%s must not contain credentials; pass api_key= instead" % what, field=what)
    if any(c in url for c in "\r\n\x00 "):
        raise ValidationError("%s contains whitespace or control characters" % what, field=what)
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Origin(parts.scheme, parts.hostname, port), target


def _is_secret_header(name: str) -> bool:
    """Credentials a redirect to another origin must not carry: ours, and any ``X-...-Key``-like header."""
    low = name.lower()
    return low in _SECRET_HEADERS or low == "cookie" or (low.startswith("x-") and low.endswith(("-key", "-token", "-secret")))


def _should_strip_auth(old: _Origin, new: _Origin) -> bool:
    """requests' rule: credentials stay only on the same origin (or an http->https upgrade)."""
    if old.host != new.host:
        return True
    if old.scheme == "http" and new.scheme == "https" and old.port == 80 and new.port == 443:
        return False
    return old.scheme != new.scheme or old.port != new.port


def _proxy_for(origin: _Origin, env: Mapping[str, str]) -> Optional[str]:
    """The proxy URL for ``origin`` from HTTP(S)_PROXY / NO_PROXY, as curl and requests read them."""

    def get(name: str) -> str:
        return env.get(name.lower()) or env.get(name.upper()) or ""

    proxy = get(origin.scheme + "_proxy") or get("all_proxy")
    if not proxy:
        return None
    host = origin.host.lower()
    for entry in get("no_proxy").replace(" ", "").lower().split(","):
        if not entry:
            continue
        if entry == "*":
            return None
        name, _, port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if port and port != str(origin.port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return None
    return proxy if "://" in proxy else "http://" + proxy


class _Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _NetworkError(Exception):
    """Internal: a transport failure, with whether the request may have reached the server."""

    def __init__(self, error: VisgateError, retryable: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable


def _classify_os_error(exc: BaseException, origin: _Origin) -> _NetworkError:
    import socket

    where = "%s://%s" % (origin.scheme, origin.netloc)
    ssl = _sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        # The peer closed the connection: a network failure like a reset, not a TLS one.
        return _NetworkError(ConnectionError("connection to %s closed unexpectedly (%s)" % (where, exc)), True)
    if ssl is not None and isinstance(exc, ssl.SSLError):
        if isinstance(exc, getattr(ssl, "SSLCertVerificationError", ())):
            reason = getattr(exc, "verify_message", None) or str(exc)
            return _NetworkError(TLSError("TLS certificate verification failed for %s: %s" % (where, reason)), False)
        return _NetworkError(TLSError("TLS handshake with %s failed: %s" % (where, exc)), False)
    if isinstance(exc, (socket.timeout, _TimeoutBuiltin)):
        return _NetworkError(TimeoutError("timed out talking to %s" % where), True)
    if isinstance(exc, socket.gaierror):
        return _NetworkError(ConnectionError("cannot resolve host %r: %s" % (origin.host, exc)), True)
    if isinstance(exc, ConnectionRefusedError):
        return _NetworkError(ConnectionError("connection refused by %s" % where), True)
    name = type(exc).__name__
    return _NetworkError(ConnectionError("connection to %s failed (%s: %s)" % (where, name, exc)), True)


_TimeoutBuiltin = _builtins.TimeoutError


class _Transport:
    """HTTP/1.1 over ``http.client``: keep-alive connections per thread, one SSL context, proxies.

    Redirects are not followed here; the client decides what credentials a new origin gets.
    """

    def __init__(self, *, verify: Union[bool, str, "ssl.SSLContext"], trust_env: bool, max_response_bytes: int) -> None:
        self._verify = verify
        self._env: Mapping[str, str] = dict(_os.environ) if trust_env else {}
        self._max_response_bytes = max_response_bytes
        import threading

        self._local = threading.local()
        self._lock = threading.Lock()
        self._ssl_context: Optional["ssl.SSLContext"] = None
        self._open: "_weakref.WeakSet[http.client.HTTPConnection]" = _weakref.WeakSet()
        self.closed = False
        self._closing = threading.Event()

    # -- connections -------------------------------------------------------
    def _context(self) -> "ssl.SSLContext":
        if self._ssl_context is None:
            with self._lock:
                if self._ssl_context is None:
                    self._ssl_context = self._make_context()
        return self._ssl_context

    def _make_context(self) -> "ssl.SSLContext":
        import ssl

        verify = self._verify
        if isinstance(verify, ssl.SSLContext):
            return verify
        if verify is False:
            _log("warning", "TLS certificate verification is disabled (verify=False)")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        cafile = verify if isinstance(verify, str) else self._env.get("SSL_CERT_FILE") or None
        capath = None if isinstance(verify, str) else self._env.get("SSL_CERT_DIR") or None
        try:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as exc:
            raise ValidationError("cannot load CA certificates from %r: %s" % (cafile or capath, exc), field="verify") from None

    def _pool(self) -> Dict[_Origin, "http.client.HTTPConnection"]:
        pool: Optional[Dict[_Origin, "http.client.HTTPConnection"]] = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connect(self, origin: _Origin, timeout: float) -> "http.client.HTTPConnection":
        import http.client

        proxy = _proxy_for(origin, self._env)
        conn: http.client.HTTPConnection
        if proxy is None:
            if origin.scheme == "https":
                conn = http.client.HTTPSConnection(origin.host, origin.port, timeout=timeout, context=self._context())
            else:
                conn = http.client.HTTPConnection(origin.host, origin.port, timeout=timeout)
            conn._visgate_proxy_headers = None  # type: ignore[attr-defined]
            return conn
        p_origin, _ = _split_proxy(proxy)
        auth = _proxy_auth_header(proxy)
        if p_origin.scheme == "https" or origin.scheme == "https":
            conn = http.client.HTTPSConnection(p_origin.host, p_origin.port, timeout=timeout, context=self._context())
        else:
            conn = http.client.HTTPConnection(p_origin.host, p_origin.port, timeout=timeout)
        if origin.scheme == "https":
            conn.set_tunnel(origin.host, origin.port, headers=auth)
            conn._visgate_proxy_headers = None  # type: ignore[attr-defined]
        else:  # plain http through a proxy: absolute-form request target, credentials for the proxy only
            conn._visgate_proxy_headers = auth  # type: ignore[attr-defined]
        return conn

    def _get(self, origin: _Origin, timeout: float) -> Tuple["http.client.HTTPConnection", bool]:
        pool = self._pool()
        conn = pool.get(origin)
        if conn is not None and conn.sock is not None:
            return conn, True
        conn = self._connect(origin, timeout)
        conn.response_class = _response_class()
        pool[origin] = conn
        with self._lock:
            self._open.add(conn)
        return conn, False

    def _discard(self, origin: _Origin) -> None:
        conn = self._pool().pop(origin, None)
        if conn is not None:
            conn.close()

    def pause(self, seconds: float) -> None:
        """Sleep between attempts; ``close()`` cuts it short."""
        self._closing.wait(seconds)

    def close(self) -> None:
        """Close every connection, including those in use by other threads."""
        self.closed = True
        self._closing.set()
        with self._lock:
            conns = list(self._open)
            self._open = _weakref.WeakSet()
        for conn in conns:
            sock = conn.sock
            if sock is not None:
                try:  # wakes a thread blocked in recv() on this socket
                    import socket

                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()

    # -- one exchange ------------------------------------------------------
    def send(
        self,
        method: str,
        origin: _Origin,
        target: str,
        headers: Dict[str, str],
        body: Optional[bytes],
        timeout: float,
        *,
        max_bytes: Optional[int] = None,
        sink: Optional["_BinaryFile"] = None,
    ) -> _Response:
        """Send one request and read the whole answer (or stream it into the file ``sink``).

        Raises ``_NetworkError``. A keep-alive connection the server closed while idle is
        retried once, transparently, on a fresh connection.
        """
        if self.closed:
            raise _NetworkError(ConnectionError("the client is closed"), False)
        deadline = _time.monotonic() + timeout
        for fresh_try in (False, True):
            conn, reused = self._get(origin, timeout)
            got_status = False
            if sink is not None:  # a retry starts the file again; never append to a partial body
                sink.seek(0)
                sink.truncate()
            try:
                if conn.sock is None:
                    conn.timeout = timeout
                    conn.connect()
                with self._lock:  # a concurrent close() either sees this socket, or we see it closed
                    if self.closed:
                        raise _NetworkError(ConnectionError("the client was closed during the request"), False)
                if conn.sock.gettimeout() != timeout:  # settimeout is a system call; most calls reuse it
                    conn.sock.settimeout(timeout)
                proxy_headers = getattr(conn, "_visgate_proxy_headers", None)
                if proxy_headers is not None:
                    send_target = "%s://%s%s" % (origin.scheme, origin.netloc, target)
                    headers = dict(headers, **proxy_headers)
                else:
                    send_target = target
                conn.request(method, send_target, body=body, headers=headers)
                resp = conn.getresponse()
                got_status = True
                data = self._read(resp, deadline, max_bytes or self._max_response_bytes, sink, conn.sock)
            except _NetworkError:
                self._discard(origin)
                raise
            except Exception as exc:
                self._discard(origin)
                if self.closed:
                    raise _NetworkError(ConnectionError("the client was closed during the request"), False) from None
                if reused and not got_status and not fresh_try and _is_stale_connection(exc):
                    _log("debug", "keep-alive connection to %s was closed by the server; reconnecting", origin.host)
                    continue
                raise _classify_os_error(exc, origin) from exc
            if resp.will_close:
                self._discard(origin)
            return _Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(
        self,
        resp: "http.client.HTTPResponse",
        deadline: float,
        max_bytes: int,
        sink: Optional["_BinaryFile"],
        sock: Any = None,
    ) -> bytes:
        length = resp.getheader("content-length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and expected > max_bytes:
            raise _NetworkError(_too_large(max_bytes, sink), False)
        chunks: List[bytes] = []
        total = 0
        wait = sock.gettimeout() if sock is not None else None
        while expected is None or total < expected:
            # read1: return what has arrived instead of waiting for a full 64 KiB, and never
            # wait (much) past the deadline, so a body that trickles in cannot outlast the timeout.
            remaining = deadline - _time.monotonic()
            if remaining <= 0:
                raise _NetworkError(TimeoutError("response body still arriving when the timeout ran out"), True)
            if sock is not None and (wait is None or remaining < 0.9 * wait):
                sock.settimeout(remaining)
                wait = remaining
            chunk = resp.read1(65536)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise _NetworkError(_too_large(max_bytes, sink), False)
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
            if _time.monotonic() > deadline:
                raise _NetworkError(TimeoutError("response body still arriving when the timeout ran out"), True)
        if expected is not None and total != expected:
            raise _NetworkError(ConnectionError("response cut short: %d of %s bytes" % (total, length)), True)
        resp.close()  # read1 does not mark a complete body as done; the connection is reusable
        return b"".join(chunks)


@_functools.cache
def _response_class() -> Type["http.client.HTTPResponse"]:
    import http.client

    class _HTTPResponse(http.client.HTTPResponse):
        """Skips every informational answer (102, 103 Early Hints...), not only 100 Continue.

        http.client would take a 103 for the answer and leave the real one in the keep-alive
        connection, where the next call would read it as its own.
        """

        def _read_status(self) -> Tuple[str, int, str]:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            return version, (100 if 100 < status < 200 and status != 101 else status), reason

    return _HTTPResponse


def _too_large(limit: int, sink: Optional["_BinaryFile"]) -> VisgateError:
    cls = DownloadError if sink is not None else InvalidResponseError
    return cls("response is larger than the limit of %d bytes" % limit, error_code="RESPONSE_TOO_LARGE")


def _is_stale_connection(exc: BaseException) -> bool:
    import http.client

    ssl = _sys.modules.get("ssl")
    # Over TLS, writing to or reading from a connection the server closed raises SSLEOFError.
    closed_tls: Tuple[Type[BaseException], ...] = (ssl.SSLEOFError, ssl.SSLZeroReturnError) if ssl is not None else ()
    return isinstance(
        exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError) + closed_tls
    )


def _split_proxy(proxy: str) -> Tuple[_Origin, str]:
    from urllib.parse import urlsplit

    try:  # never echo the URL: it may hold the proxy's password
        parts = urlsplit(proxy)
        port = parts.port
    except ValueError:
        raise ConnectionError("the proxy URL from the environment is not a valid URL", error_code="INVALID_PROXY") from None
    scheme = parts.scheme or "http"
    if scheme not in ("http", "https"):
        raise ConnectionError("unsupported proxy URL scheme %r (http and https proxies are supported)" % scheme)
    if not parts.hostname:
        raise ConnectionError("the proxy URL from the environment has no host", error_code="INVALID_PROXY")
    port = port or (443 if scheme == "https" else 80)
    return _Origin(scheme, parts.hostname, port), parts.path


def _proxy_auth_header(proxy: str) -> Dict[str, str]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    import base64

    token = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
    return {"Proxy-Authorization": "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")}


# -- answers: JSON, or the typed error ------------------------------------------

_STATUS_ERRORS: Dict[int, Type[VisgateError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: TimeoutError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def _redact(text: str, secrets: Tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def _redact_all(value: Any, secrets: Tuple[str, ...]) -> Any:
    """``value`` (decoded JSON) with every secret replaced, at any depth."""
    if isinstance(value, str):
        return _redact(value, secrets)
    if isinstance(value, dict):
        return {_redact_all(k, secrets): _redact_all(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v, secrets) for v in value]
    return value


def _snippet(body: bytes, limit: int, secrets: Tuple[str, ...]) -> str:
    """The start of ``body`` as text; secrets are redacted before the cut, so no half key survives."""
    return _redact(body[: 4 * limit + 4096].decode("utf-8", "replace"), secrets)[:limit]


def _error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, secrets: Tuple[str, ...] = ()
) -> VisgateError:
    """Map one HTTP error response to the exception a caller branches on."""
    payload: Any = None
    if body:
        try:
            payload = _json_loads(body)
        except ValueError:
            payload = None
    code: Optional[str] = None
    message: Optional[str] = None
    details: Dict[str, Any] = {}
    field_name: Optional[str] = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):  # {"error": {"code": ..., "message": ...}} as some proxies answer
            code = err.get("code") or err.get("type")
            message = err["message"] if isinstance(err.get("message"), str) else None
        elif isinstance(err, str):
            code = err
        if isinstance(payload.get("message"), str):
            message = payload["message"]
        if isinstance(payload.get("details"), dict):
            details = payload["details"]
        detail = payload.get("detail")
        if message is None and isinstance(detail, str):
            message = detail
        elif isinstance(detail, list) and detail:  # FastAPI-style validation list
            first = detail[0] if isinstance(detail[0], dict) else {}
            loc = first.get("loc")
            if isinstance(loc, list) and loc:
                field_name = str(loc[-1])
            message = message or "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        if isinstance(details.get("field"), str):
            field_name = details["field"]
    if message is None:
        snippet = _snippet(body, 200, secrets).strip()
        kind = headers.get("content-type", "no content type")
        message = "HTTP %d (%s)%s" % (status, kind, ": " + snippet if snippet else ", empty body")
    # A server may echo a key back: nothing shown to the user keeps it.
    message = _redact(message, secrets)
    code = _redact(code, secrets) if isinstance(code, str) and code else None
    field_name = _redact(field_name, secrets) if field_name is not None else None
    try:
        details = _redact_all(details, secrets)
    except RecursionError:  # absurdly deep details: drop them rather than fail
        details = {}
    kwargs: Dict[str, Any] = {"status_code": status, "request_id": headers.get("x-request-id"), "details": details}
    if code:
        kwargs["error_code"] = code
    if (code and "PROVIDER" in code.upper()) or (status == 502 and "provider" in details):
        return ProviderError(message, provider=str(details.get("provider", "unknown")), **kwargs)
    cls = _STATUS_ERRORS.get(status)
    if cls is ValidationError:
        return ValidationError(message, field=field_name, **kwargs)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=_retry_after_seconds(headers), **kwargs)
    if cls is not None:
        return cls(message, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return VisgateError(message, **kwargs)


def _is_provider_failure(resp: _Response) -> bool:
    return isinstance(_error_from_response(resp.status, resp.headers, resp.body), ProviderError)


def _resolve_redirect(origin: _Origin, target: str, location: str) -> Tuple[_Origin, str]:
    from urllib.parse import urljoin

    current = "%s://%s%s" % (origin.scheme, origin.netloc, target)
    try:
        new_origin, new_target = _split_url(urljoin(current, location.strip()), "redirect location")
    except ValueError:  # ValidationError included: the server's fault, not the caller's
        raise InvalidResponseError("the server redirected to an invalid location", error_code="INVALID_REDIRECT") from None
    if origin.scheme == "https" and new_origin.scheme == "http":
        raise TLSError("refusing to follow a redirect from https to http (%s)" % new_origin.netloc, error_code="INSECURE_REDIRECT")
    return new_origin, new_target


def _decode(resp: _Response, method: str, secrets: Callable[[], Tuple[str, ...]]) -> Any:
    """The JSON of a 2xx answer, or the typed error; ``secrets()`` (only on failure) lists what to redact."""
    if resp.status >= 300:
        raise _error_from_response(resp.status, resp.headers, resp.body, secrets())
    if resp.status == 204 or (not resp.body and method == "DELETE"):
        return {}
    if not resp.body:
        raise InvalidResponseError("empty response body (HTTP %d)" % resp.status, status_code=resp.status)
    try:
        return _json_loads(resp.body)
    except ValueError:
        snippet = _snippet(resp.body, 120, secrets())
        kind = resp.headers.get("content-type", "no content type")
        raise InvalidResponseError(
            "expected JSON, got %s (HTTP %d): %r" % (kind, resp.status, snippet), status_code=resp.status
        ) from None


###############################################################################
# Result types ################################################################
###############################################################################


def _shape_error(where: str, expected: str, value: Any) -> InvalidResponseError:
    return InvalidResponseError(
        "unexpected response: %s should be %s, got %s" % (where, expected, type(value).__name__),
        error_code="INVALID_RESPONSE_SHAPE",
    )


def _as_str(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _shape_error(where, "a string", value)


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and _math.isfinite(value):
        return round(value)  # e.g. latency_ms 12.5: a number the API meant as an integer
    raise _shape_error(where, "an integer", value)


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _shape_error(where, "a number", value)


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise _shape_error(where, "a boolean", value)


def _as_dict(value: Any, where: str) -> Dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _shape_error(where, "an object", value)


def _as_list(value: Any, where: str) -> List[Any]:
    if isinstance(value, list):
        return value
    raise _shape_error(where, "a list", value)


def _as_str_list(value: Any, where: str) -> List[str]:
    return [_as_str(v, where) for v in _as_list(value, where)]


def _as_datetime(value: Any, where: str) -> Optional["datetime"]:
    """ISO 8601 to an aware datetime; an unreadable stamp is None (still in ``raw``)."""
    text = _as_str(value, where).strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, frac = text.partition(".")
    if dot:  # Python < 3.11 takes at most 6 fractional digits
        digits = len(frac) - len(frac.lstrip("0123456789"))
        frac = frac[:digits][:6].ljust(6, "0") + frac[digits:]
        text = head + "." + frac
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _list_of(cls: Any) -> Callable[[Any, str], List[Any]]:
    def convert(value: Any, where: str) -> List[Any]:
        return [cls.from_dict(item) for item in _as_list(value, where)]

    return convert


def _raw() -> Any:
    return _field(default_factory=dict, repr=False, compare=False)


# Importing ``dataclasses`` (with ``inspect``) and generating twenty classes costs ~25 ms,
# paid on every cold start even when no result is ever built. So each result class is
# made a real dataclass on first use: first instance, or first look at its fields
# (``dataclasses.fields``, ``is_dataclass``, ``asdict``). Type checkers see the decorator.
class _FieldSpec:
    """Run-time stand-in for ``dataclasses.field()`` until the class is materialised."""

    __slots__ = ("kwargs",)

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


if not TYPE_CHECKING:

    def _dataclass(cls):
        cls._lazy_dataclass = True
        return cls

    _field = _FieldSpec

_DATACLASS_LOCK = _thread.allocate_lock()


def _materialize(cls: type) -> None:
    if "__dataclass_fields__" in cls.__dict__ or not cls.__dict__.get("_lazy_dataclass"):
        return
    import dataclasses

    with _DATACLASS_LOCK:
        if "__dataclass_fields__" in cls.__dict__:
            return
        for name, value in list(cls.__dict__.items()):
            if isinstance(value, _FieldSpec):
                setattr(cls, name, dataclasses.field(**value.kwargs))
        dataclasses.dataclass(cls)


class _LazyDataclass(type):
    """Metaclass of the result types: applies the dataclass decorator on first use."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "__dataclass_fields__" not in cls.__dict__:
            _materialize(cls)
        return super().__call__(*args, **kwargs)

    if not TYPE_CHECKING:

        def __getattr__(cls, name):
            if name == "__dataclass_fields__" and cls.__dict__.get("_lazy_dataclass"):
                _materialize(cls)
                return cls.__dict__[name]
            raise AttributeError("type object %r has no attribute %r" % (cls.__name__, name))


class _Result(metaclass=_LazyDataclass):
    """Shared parsing: ``_spec`` rows are (attribute, converter, *json keys tried in order)."""

    _spec: Tuple[Tuple[Any, ...], ...] = ()
    raw: Dict[str, Any]

    @classmethod
    def from_dict(cls: Type[_T], data: Any) -> _T:
        """Build from an API answer; raise ``InvalidResponseError`` if it has the wrong shape."""
        where = cls.__name__
        mapping = _as_dict(data, where)
        kwargs: Dict[str, Any] = {}
        for attr, convert, *keys in cls._spec:  # type: ignore[attr-defined]
            for key in keys or (attr,):
                value = mapping.get(key)
                if value is not None:
                    kwargs[attr] = convert(value, "%s.%s" % (where, key))
                    break
        obj = cls(**kwargs)
        obj.raw = mapping  # type: ignore[attr-defined]
        return obj

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_client", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        _materialize(type(self))  # unpickling skips __init__, and so the metaclass
        self.__dict__.update(state)


class _Media:
    """Mixin: ``save()`` for results that point at generated media."""

    _client: Optional["Client"] = None

    def _media_urls(self) -> List[str]:
        raise NotImplementedError

    def save(self, path: Union[str, "_os.PathLike[str]"], *, index: int = 0, timeout: Optional[float] = None) -> str:
        """Download media ``index`` to ``path`` atomically; return the path written."""
        urls = self._media_urls()
        if not urls:
            raise DownloadError("this result has no media URL to save", error_code="NO_MEDIA")
        _check_int("index", index, minimum=0, maximum=len(urls) - 1)
        client = self._client
        if client is None:
            with Client(api_key="") as fresh:
                return fresh.download(urls[index], path, timeout=timeout)
        return client.download(urls[index], path, timeout=timeout)


@_dataclass
class GenerateResult(_Media, _Result):
    """Answer of ``client.generate()`` (``POST /generate``)."""

    id: str = ""
    image_url: Optional[str] = None
    images: List[str] = _field(default_factory=list)
    model: str = ""
    provider: str = ""
    mode: str = ""
    cost: float = 0.0
    cost_per_megapixel: float = 0.0
    latency_ms: int = 0
    resolution: Dict[str, int] = _field(default_factory=dict)
    created_at: Optional["datetime"] = None
    cache_hit: bool = False
    provider_cost_avoided_micro: Optional[int] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("id", _as_str, "id", "request_id"),
        ("image_url", _as_str),
        ("cache_hit", _as_bool),
        ("provider_cost_avoided_micro", _as_int),
        ("images", _as_str_list),
        ("model", _as_str),
        ("provider", _as_str),
        ("mode", _as_str),
        ("cost", _as_float, "estimated_cost_usd", "cost"),
        ("cost_per_megapixel", _as_float, "cost_per_megapixel_usd"),
        ("latency_ms", _as_int),
        ("resolution", _as_dict),
        ("created_at", _as_datetime),
    )

    def __post_init__(self) -> None:
        if self.image_url is None and self.images:
            self.image_url = self.images[0]

    def _media_urls(self) -> List[str]:
        return self.images or ([self.image_url] if self.image_url else [])


@_dataclass
class ImageResult(_Media, _Result):
    """Answer of ``images.generate()``; ``image_url`` is the first of ``images``."""

    id: str = ""
    images: List[str] = _field(default_factory=list)
    model: str = ""
    provider: str = ""
    cost: float = 0.0
    cache_hit: bool = False
    provider_cost_avoided_micro: Optional[int] = None
    latency_ms: Optional[int] = None
    created_at: Optional["datetime"] = None
    output_storage: Optional[str] = None
    output_size_bytes: Optional[int] = None
    steps: Optional[List[Dict[str, Any]]] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("id", _as_str, "id", "request_id"),
        ("images", _as_str_list),
        ("model", _as_str),
        ("provider", _as_str),
        ("cost", _as_float),
        ("cache_hit", _as_bool),
        ("provider_cost_avoided_micro", _as_int),
        ("latency_ms", _as_int),
        ("created_at", _as_datetime),
        ("output_storage", _as_str),
        ("output_size_bytes", _as_int),
        ("steps", _as_list),
    )

    @property
    def image_url(self) -> Optional[str]:
        """The first image's URL, or None."""
        return self.images[0] if self.images else None

    def _media_urls(self) -> List[str]:
        return self.images


@_dataclass
class VideoResult(_Media, _Result):
    """Answer of ``videos.generate()``."""

    id: str = ""
    video_url: Optional[str] = None
    model: str = ""
    provider: str = ""
    cost: float = 0.0
    cache_hit: bool = False
    provider_cost_avoided_micro: Optional[int] = None
    latency_ms: Optional[int] = None
    created_at: Optional["datetime"] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("id", _as_str, "id", "request_id"),
        ("video_url", _as_str, "video_url", "output_url"),
        ("model", _as_str),
        ("provider", _as_str),
        ("cost", _as_float),
        ("cache_hit", _as_bool),
        ("provider_cost_avoided_micro", _as_int),
        ("latency_ms", _as_int),
        ("created_at", _as_datetime),
    )

    def _media_urls(self) -> List[str]:
        return [self.video_url] if self.video_url else []


_TERMINAL = frozenset({"completed", "failed", "succeeded", "cancelled", "canceled"})


@_dataclass
class RequestStatusResult(_Media, _Result):
    """Status of an async generation (``GET /requests/{id}``); ``output_url`` once completed."""

    request_id: str = ""
    status: str = "pending"
    media_type: str = ""
    provider: str = ""
    model: str = ""
    output_url: Optional[str] = None
    error_message: Optional[str] = None
    created_at: Optional[str] = None
    completed_at: Optional[str] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("request_id", _as_str, "request_id", "id"),
        ("status", _as_str),
        ("media_type", _as_str),
        ("provider", _as_str),
        ("model", _as_str),
        ("output_url", _as_str),
        ("error_message", _as_str),
        ("created_at", _as_str),
        ("completed_at", _as_str),
    )

    @property
    def is_terminal(self) -> bool:
        """True once the job completed or failed."""
        return self.status.lower() in _TERMINAL

    @property
    def succeeded(self) -> bool:
        """True if the job completed."""
        return self.status.lower() in ("completed", "succeeded")

    def _media_urls(self) -> List[str]:
        return [self.output_url] if self.output_url else []


@_dataclass
class ModelInfo(_Result):
    """One model of the catalogue."""

    id: str = ""
    name: str = ""
    provider: str = ""
    media_type: str = "image"
    description: Optional[str] = None
    category: Optional[str] = None
    tags: List[str] = _field(default_factory=list)
    cover_image_url: Optional[str] = None
    author: Optional[str] = None
    url: Optional[str] = None
    base_cost_micro: int = 0
    normalized_cost_micro: int = 0
    pricing: Optional[Any] = None
    pricing_unit: Optional[str] = None
    run_count: int = 0
    input_types: List[str] = _field(default_factory=list)
    output_type: Optional[str] = None
    capabilities: List[str] = _field(default_factory=list)
    first_seen_at: Optional[str] = None
    provider_created_at: Optional[str] = None
    last_synced_at: Optional[str] = None
    raw: Dict[str, Any] = _raw()

    _spec = tuple(
        [(n, _as_str) for n in ("id", "name", "provider", "media_type", "description", "category")]
        + [("tags", _as_str_list)]
        + [(n, _as_str) for n in ("cover_image_url", "author", "url")]
        + [("base_cost_micro", _as_int), ("normalized_cost_micro", _as_int), ("pricing", lambda v, w: v)]
        + [("pricing_unit", _as_str), ("run_count", _as_int), ("input_types", _as_str_list)]
        + [("output_type", _as_str), ("capabilities", _as_str_list)]
        + [(n, _as_str) for n in ("first_seen_at", "provider_created_at", "last_synced_at")]
    )


@_dataclass
class FeaturedSection(_Result):
    """A curated section of the catalogue."""

    title: str = ""
    key: str = ""
    models: List[ModelInfo] = _field(default_factory=list)
    raw: Dict[str, Any] = _raw()

    _spec = (("title", _as_str), ("key", _as_str), ("models", _list_of(ModelInfo)))


@_dataclass
class ModelsResponse(_Result):
    """Answer of ``models.list()``; ``total_count`` counts all matches, not just this page."""

    models: List[ModelInfo] = _field(default_factory=list)
    total_count: int = 0
    last_updated: Optional[str] = None
    featured: Optional[List[FeaturedSection]] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("models", _list_of(ModelInfo)),
        ("total_count", _as_int, "total_count", "total"),
        ("last_updated", _as_str),
        ("featured", _list_of(FeaturedSection)),
    )

    def __post_init__(self) -> None:
        if self.featured == []:
            self.featured = None


@_dataclass
class UsageSummary(_Result):
    """Usage for a period (``GET /usage``)."""

    total_requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    cached_requests: int = 0
    total_provider_cost: float = 0.0
    total_billed_cost: float = 0.0
    total_savings: float = 0.0
    by_provider: Dict[str, Any] = _field(default_factory=dict)
    by_model: Dict[str, Any] = _field(default_factory=dict)
    period: str = "month"
    period_start: Optional["datetime"] = None
    period_end: Optional["datetime"] = None
    raw: Dict[str, Any] = _raw()

    _spec = tuple(
        [(n, _as_int) for n in ("total_requests", "successful_requests", "failed_requests", "cached_requests")]
        + [("total_provider_cost", _as_float), ("total_billed_cost", _as_float, "total_billed_cost", "total_cost_usd")]
        + [("total_savings", _as_float), ("by_provider", _as_dict, "by_provider", "provider_breakdown")]
        + [("by_model", _as_dict), ("period", _as_str)]
        + [("period_start", _as_datetime), ("period_end", _as_datetime)]
    )

    @property
    def cache_hit_rate(self) -> float:
        """Share of requests served from cache, in percent (0-100)."""
        return 100.0 * self.cached_requests / self.total_requests if self.total_requests else 0.0


@_dataclass
class ProviderKeyInfo(_Result):
    """A stored BYOK key, masked."""

    provider: str = ""
    validated: bool = False
    validated_at: Optional[str] = None
    masked_key: Optional[str] = None
    raw: Dict[str, Any] = _raw()

    _spec = (("provider", _as_str), ("validated", _as_bool), ("validated_at", _as_str), ("masked_key", _as_str))


@_dataclass
class ProviderKeysResponse(_Result):
    """Answer of ``providers.list_keys()``."""

    keys: List[ProviderKeyInfo] = _field(default_factory=list)
    raw: Dict[str, Any] = _raw()

    _spec = (("keys", _list_of(ProviderKeyInfo)),)


@_dataclass
class ProviderValidationResult(_Result):
    """Answer of ``providers.validate_key()``."""

    valid: bool = False
    message: str = ""
    raw: Dict[str, Any] = _raw()

    _spec = (("valid", _as_bool), ("message", _as_str))


@_dataclass
class ProviderBalanceItem(_Result):
    """One provider's balance and limit."""

    provider: str = ""
    configured: bool = False
    available: bool = False
    limit: Optional[float] = None
    remaining: Optional[float] = None
    currency: Optional[str] = None
    message: Optional[str] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("provider", _as_str),
        ("configured", _as_bool),
        ("available", _as_bool),
        ("limit", _as_float),
        ("remaining", _as_float),
        ("currency", _as_str),
        ("message", _as_str),
    )


@_dataclass
class ProviderBalancesResponse(_Result):
    """Answer of ``providers.balances()``."""

    balances: List[ProviderBalanceItem] = _field(default_factory=list)
    raw: Dict[str, Any] = _raw()

    _spec = (("balances", _list_of(ProviderBalanceItem)),)


@_dataclass
class AuthInfo(_Result):
    """Who the API key belongs to (``GET /auth/me``)."""

    organization: Dict[str, Any] = _field(default_factory=dict)
    role: str = ""
    raw: Dict[str, Any] = _raw()

    _spec = (("organization", _as_dict), ("role", _as_str))

    @property
    def organization_id(self) -> Optional[str]:
        """The organization's id, if the API sent one."""
        value = self.organization.get("id")
        return None if value is None else str(value)

    @property
    def organization_name(self) -> Optional[str]:
        """The organization's name, if the API sent one."""
        value = self.organization.get("name")
        return None if value is None else str(value)


@_dataclass
class ApiKeyInfo(_Result):
    """One of the organization's API keys (prefix only)."""

    id: str = ""
    name: str = ""
    key_prefix: str = ""
    created_at: Optional[str] = None
    last_used_at: Optional[str] = None
    raw: Dict[str, Any] = _raw()

    _spec = (("id", _as_str), ("name", _as_str), ("key_prefix", _as_str), ("created_at", _as_str), ("last_used_at", _as_str))


@_dataclass
class BillingInfo(_Result):
    """Billing account (``GET /billing/info``)."""

    balance_micro: Optional[int] = None
    billing_status: Optional[str] = None
    company_name: Optional[str] = None
    free_mode_enabled: Optional[bool] = None
    monthly_budget_cents: Optional[int] = None
    support_email: Optional[str] = None
    tier: Optional[str] = None
    usage_this_month_cents: Optional[int] = None
    raw: Dict[str, Any] = _raw()

    _spec = (
        ("balance_micro", _as_int),
        ("billing_status", _as_str),
        ("company_name", _as_str),
        ("free_mode_enabled", _as_bool),
        ("monthly_budget_cents", _as_int),
        ("support_email", _as_str),
        ("tier", _as_str),
        ("usage_this_month_cents", _as_int),
    )


@_dataclass
class BillingPricing(_Result):
    """Price list (``GET /billing/pricing``)."""

    last_updated: Optional[str] = None
    pricing: Any = None
    raw: Dict[str, Any] = _raw()

    _spec = (("last_updated", _as_str), ("pricing", lambda v, w: v))


class _Poll:
    """Deadline bookkeeping for polling a job, shared by the sync and async loops."""

    def __init__(self, request_id: str, timeout: Any, poll_interval: Any) -> None:
        self.request_id = request_id
        self.timeout = _check_number("timeout", timeout, positive=True)
        self.interval = _check_number("poll_interval", poll_interval, positive=True)
        self.deadline = _time.monotonic() + self.timeout

    def request_timeout(self, client_timeout: float) -> float:
        """Per-GET timeout: never past the polling deadline."""
        return max(0.05, min(client_timeout, self.deadline - _time.monotonic()))

    def next_delay(self, result: RequestStatusResult) -> Optional[float]:
        """None when the job is finished; else seconds to sleep. Raises TimeoutError at the deadline."""
        if result.is_terminal:
            return None
        remaining = self.deadline - _time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                "request %s still %r after %.1fs; resume with client.requests.get(%r, wait=True)"
                % (self.request_id, result.status, self.timeout, self.request_id),
                error_code="POLL_TIMEOUT",
                last_status=result.status,
                request_id=self.request_id,
            )
        return min(self.interval, remaining)


class GenerationRequest:
    """A job accepted with ``wait=False`` (HTTP 202). ``wait()`` polls it to the end."""

    def __init__(self, request_id: str, client: "Client", status: str = "pending") -> None:
        self.request_id = request_id
        self.status = status
        self._client = client

    def wait(self, *, timeout: float = 300.0, poll_interval: float = 2.0) -> RequestStatusResult:
        """Poll until completed or failed; ``TimeoutError`` (with ``request_id``) past ``timeout``."""
        return self._client.requests.get(self.request_id, wait=True, timeout=timeout, poll_interval=poll_interval)

    def refresh(self) -> RequestStatusResult:
        """Fetch the current status once."""
        result = self._client.requests.get(self.request_id)
        self.status = result.status
        return result

    def __repr__(self) -> str:
        return "GenerationRequest(request_id=%r, status=%r)" % (self.request_id, self.status)


class AsyncGenerationRequest:
    """A job accepted with ``wait=False`` on the async client; ``await handle.wait()``."""

    def __init__(self, request_id: str, client: "AsyncClient", status: str = "pending") -> None:
        self.request_id = request_id
        self.status = status
        self._client = client

    async def wait(self, *, timeout: float = 300.0, poll_interval: float = 2.0) -> RequestStatusResult:
        """Poll until completed or failed; ``TimeoutError`` (with ``request_id``) past ``timeout``."""
        return await self._client.requests.get(self.request_id, wait=True, timeout=timeout, poll_interval=poll_interval)

    async def refresh(self) -> RequestStatusResult:
        """Fetch the current status once."""
        result = await self._client.requests.get(self.request_id)
        self.status = result.status
        return result

    def __repr__(self) -> str:
        return "AsyncGenerationRequest(request_id=%r, status=%r)" % (self.request_id, self.status)


###############################################################################
# Resources ###################################################################
###############################################################################


class _Resource:
    def __init__(self, client: "Client") -> None:
        self._client = client


def _payload(base: Dict[str, Any], params: Optional[Mapping[str, Any]], method: Callable[..., Any]) -> Dict[str, Any]:
    """The request body: the named arguments (those that are None left out), then ``params``.

    A key of ``params`` sets any body field whose argument was left at its default (compared
    by value with ``method``'s signature: ``width=1024`` counts as not given) or that has no
    argument; the reference client sent ``params={"width": 512}`` so. A key naming an argument
    given another value (``width=768, params={"width": 512}``) is ambiguous and refused.
    """
    payload = {k: v for k, v in base.items() if v is not None}
    if params is None:
        return payload
    if not isinstance(params, Mapping):
        raise ValidationError("params must be a dict, got %s" % type(params).__name__, field="params")
    defaults = method.__kwdefaults__ or {}
    for key, value in params.items():
        if key in payload and (key not in defaults or payload[key] != defaults[key]):
            raise ValidationError("params[%r] clashes with the %s argument; give it once" % (key, key), field=str(key))
        payload[str(key)] = value
    return payload


def _accepted(data: Any, client: "Client") -> Optional[GenerationRequest]:
    if isinstance(data, dict) and data.get("request_id") and data.get("status") in ("pending", "accepted", "processing"):
        return GenerationRequest(_as_str(data["request_id"], "request_id"), client, str(data["status"]))
    return None


class Images(_Resource):
    """Image generation (``client.images``)."""

    # wait=True (the default) gives a result, wait=False a handle: typed callers need no isinstance.
    @overload
    def generate(
        self, model: str, prompt: str, *, wait: "Literal[True]" = ..., **options: "Unpack[_ImageOptions]"
    ) -> ImageResult: ...
    @overload
    def generate(
        self, model: str, prompt: str, *, wait: "Literal[False]", **options: "Unpack[_ImageOptions]"
    ) -> GenerationRequest: ...
    @overload
    def generate(
        self, model: str, prompt: str, *, wait: bool, **options: "Unpack[_ImageOptions]"
    ) -> Union[ImageResult, GenerationRequest]: ...

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        negative_prompt: Optional[str] = None,
        width: int = 1024,
        height: int = 1024,
        num_images: int = 1,
        seed: Optional[int] = None,
        params: Optional[Dict[str, Any]] = None,
        include_steps: bool = False,
        wait: bool = True,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
    ) -> Union[ImageResult, GenerationRequest]:
        """Generate images. ``wait=False`` returns a ``GenerationRequest`` to poll.

        ``params`` adds model-specific body fields and may set a named one left at its default
        (``params={"width": 512}``); a field given both ways with another value is refused.
        """
        body = _payload(
            {
                "model": _check_str("model", model),
                "prompt": _check_str("prompt", prompt),
                "width": _check_int("width", width, minimum=1),
                "height": _check_int("height", height, minimum=1),
                "num_images": _check_int("num_images", num_images, minimum=1),
                "negative_prompt": _check_str("negative_prompt", negative_prompt, optional=True) if negative_prompt else None,
                "seed": None if seed is None else _check_int("seed", seed),
            },
            params,
            Images.generate,
        )
        query = {"include_steps": True} if include_steps else None
        data = self._client._post("/images/generate", body, query, wait, timeout, idempotency_key)
        handle = _accepted(data, self._client)
        return handle if handle is not None else self._client._attach(ImageResult.from_dict(data))


class Videos(_Resource):
    """Video generation (``client.videos``)."""

    @overload
    def generate(
        self, model: str, prompt: str, *, wait: "Literal[True]" = ..., **options: "Unpack[_VideoOptions]"
    ) -> VideoResult: ...
    @overload
    def generate(
        self, model: str, prompt: str, *, wait: "Literal[False]", **options: "Unpack[_VideoOptions]"
    ) -> GenerationRequest: ...
    @overload
    def generate(
        self, model: str, prompt: str, *, wait: bool, **options: "Unpack[_VideoOptions]"
    ) -> Union[VideoResult, GenerationRequest]: ...

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        image_url: Optional[str] = None,
        duration_seconds: float = 5.0,
        skip_gcs_upload: bool = False,
        params: Optional[Dict[str, Any]] = None,
        wait: bool = True,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
    ) -> Union[VideoResult, GenerationRequest]:
        """Generate a video (optionally from ``image_url``). ``wait=False`` returns a handle to poll.

        ``params`` adds model-specific body fields and may set a named one left at its default
        (``params={"duration_seconds": 8}``); a field given both ways with another value is refused.
        """
        body = _payload(
            {
                "model": _check_str("model", model),
                "prompt": _check_str("prompt", prompt),
                "duration_seconds": _check_number("duration_seconds", duration_seconds, positive=True),
                "image_url": _check_str("image_url", image_url, optional=True) if image_url != "" else None,  # "": none, as in 0.0.3
                "skip_gcs_upload": True if skip_gcs_upload else None,
            },
            params,
            Videos.generate,
        )
        data = self._client._post("/videos/generate", body, None, wait, timeout, idempotency_key)
        handle = _accepted(data, self._client)
        return handle if handle is not None else self._client._attach(VideoResult.from_dict(data))


class Requests(_Resource):
    """Status of async generations (``client.requests``)."""

    def get(
        self,
        request_id: str,
        *,
        wait: bool = False,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
    ) -> RequestStatusResult:
        """Current status; with ``wait=True`` poll until completed or failed.

        Past ``timeout`` seconds of polling, raises ``TimeoutError`` carrying ``request_id``
        and ``last_status``: the job goes on server-side and can be polled again later.
        """
        path = "/requests/" + _path_segment("request_id", request_id)
        if not wait:
            return self._fetch(path, None)
        poll = _Poll(request_id, timeout, poll_interval)
        while True:
            result = self._fetch(path, poll.request_timeout(self._client._timeout))
            delay = poll.next_delay(result)
            if delay is None:
                return result
            _time.sleep(delay)

    def _fetch(self, path: str, timeout: Optional[float]) -> RequestStatusResult:
        return self._client._attach(RequestStatusResult.from_dict(self._client._request("GET", path, timeout=timeout)))


class Models(_Resource):
    """The model catalogue (``client.models``); needs no API key."""

    def list(
        self,
        *,
        provider: Optional[str] = None,
        media_type: Optional[str] = None,
        model_type: Optional[str] = None,
        capability: Optional[str] = None,
        search: Optional[str] = None,
        sort: Optional[str] = None,
        limit: int = 100,
        featured: bool = False,
        timeout: Optional[float] = None,
    ) -> ModelsResponse:
        """Filter and page the catalogue; ``model_type`` is an alias of ``media_type``."""
        query = {
            "limit": _check_int("limit", limit, minimum=1),
            "provider": _check_filter("provider", provider),
            "media_type": _check_filter("media_type", media_type if media_type is not None else model_type),
            "capability": _check_filter("capability", capability),
            "search": _check_filter("search", search),
            "sort": _check_filter("sort", sort),
            "featured": True if featured else None,
        }
        data = self._client._request("GET", "/models", query=query, auth=False, timeout=timeout)
        return ModelsResponse.from_dict(data)

    def get(self, model_id: str, *, timeout: Optional[float] = None) -> ModelInfo:
        """One model by id (ids contain slashes: ``fal-ai/flux/schnell``)."""
        path = "/models/" + _path_segment("model_id", model_id, keep_slashes=True)
        return ModelInfo.from_dict(self._client._request("GET", path, auth=False, timeout=timeout))

    def search(self, query: str, *, limit: int = 20, timeout: Optional[float] = None) -> ModelsResponse:
        """Search by name, description or author; shorthand for ``list(search=query)``."""
        return self.list(search=_check_filter("query", query), limit=limit, timeout=timeout)  # "": all, as in 0.0.3


class Usage(_Resource):
    """Usage, logs and dashboard (``client.usage``)."""

    def get(self, period: str = "month", *, timeout: Optional[float] = None) -> UsageSummary:
        """Totals for ``period`` (day, week, month, year; the server decides which it knows)."""
        query = {"period": _check_filter("period", period)}
        return UsageSummary.from_dict(self._client._request("GET", "/usage", query=query, timeout=timeout))

    def logs(self, *, limit: int = 50, offset: int = 0, timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        """Recent request log entries, newest first."""
        query = {"limit": _check_int("limit", limit, minimum=1), "offset": _check_int("offset", offset, minimum=0)}
        data = self._client._request("GET", "/usage/logs", query=query, timeout=timeout)
        logs = data.get("logs", []) if isinstance(data, dict) else data
        return [_as_dict(entry, "usage log entry") for entry in _as_list(logs, "logs")]

    def dashboard(self, period: str = "month", *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Dashboard figures for ``period``, as the API sends them."""
        query = {"period": _check_filter("period", period)}
        return _as_dict(self._client._request("GET", "/dashboard", query=query, timeout=timeout), "dashboard")


class Providers(_Resource):
    """BYOK provider keys and balances (``client.providers``)."""

    def list_keys(self, *, timeout: Optional[float] = None) -> ProviderKeysResponse:
        """Stored provider keys, masked."""
        return ProviderKeysResponse.from_dict(self._client._request("GET", "/providers/keys", timeout=timeout))

    def set_key(self, provider: str, api_key: str, *, timeout: Optional[float] = None) -> ProviderKeyInfo:
        """Store (or replace) your key for ``provider``."""
        body = {"provider": _check_str("provider", provider), "api_key": _check_str("api_key", api_key)}
        return ProviderKeyInfo.from_dict(self._client._request("PUT", "/providers/keys", body=body, timeout=timeout))

    def delete_key(self, provider: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Delete your stored key for ``provider``."""
        path = "/providers/keys/" + _path_segment("provider", provider)
        data = self._client._request("DELETE", path, timeout=timeout)
        return _as_dict(data if data is not None else {}, "delete_key")

    def validate_key(self, provider: str, api_key: str, *, timeout: Optional[float] = None) -> ProviderValidationResult:
        """Ask the provider whether ``api_key`` works, without storing it."""
        body = {"provider": _check_str("provider", provider), "api_key": _check_str("api_key", api_key)}
        data = self._client._request("POST", "/providers/validate", body=body, timeout=timeout)
        return ProviderValidationResult.from_dict(data)

    def balances(self, *, timeout: Optional[float] = None) -> ProviderBalancesResponse:
        """Each provider's balance and limit."""
        return ProviderBalancesResponse.from_dict(self._client._request("GET", "/providers/balances", timeout=timeout))


class Auth(_Resource):
    """Identity of the API key (``client.auth``)."""

    def me(self, *, timeout: Optional[float] = None) -> AuthInfo:
        """The organization and role behind the key."""
        return AuthInfo.from_dict(self._client._request("GET", "/auth/me", timeout=timeout))


class ApiKeys(_Resource):
    """The organization's API keys (``client.api_keys``)."""

    def list(self, *, timeout: Optional[float] = None) -> List[ApiKeyInfo]:
        """All API keys, by prefix."""
        data = self._client._request("GET", "/api-keys", timeout=timeout)
        items = data.get("keys", data.get("api_keys", [])) if isinstance(data, dict) else data
        return _list_of(ApiKeyInfo)(items, "api_keys")


class Billing(_Resource):
    """Read-only billing (``client.billing``)."""

    def stats(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Billing statistics, as the API sends them."""
        return _as_dict(self._client._request("GET", "/billing/stats", timeout=timeout), "billing stats")

    def info(self, *, timeout: Optional[float] = None) -> BillingInfo:
        """Account, tier, balance and budget."""
        return BillingInfo.from_dict(self._client._request("GET", "/billing/info", timeout=timeout))

    def pricing(self, *, timeout: Optional[float] = None) -> BillingPricing:
        """The current price list."""
        return BillingPricing.from_dict(self._client._request("GET", "/billing/pricing", timeout=timeout))


# -- async mirrors: the sync method runs on the client's thread pool ------------


def _to_async(method: "Callable[Concatenate[Any, _P], _R]") -> "Callable[Concatenate[Any, _P], Awaitable[_R]]":
    name = method.__name__

    @_functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._run(getattr(self._sync, name), *args, **kwargs)

    return cast("Callable[Concatenate[Any, _P], Awaitable[_R]]", call)


def _to_async_job(method: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``_to_async``, and a ``GenerationRequest`` handle becomes an ``AsyncGenerationRequest``."""
    name = method.__name__

    @_functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await self._run(getattr(self._sync, name), *args, **kwargs)
        if isinstance(result, GenerationRequest):
            return AsyncGenerationRequest(result.request_id, self._client, result.status)
        return result

    return call


_S = TypeVar("_S", bound=_Resource)


class _AsyncResource(Generic[_S]):
    def __init__(self, client: "AsyncClient", sync: _S) -> None:
        self._client = client
        self._sync = sync

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return await self._client._run(fn, *args, **kwargs)


class AsyncImages(_AsyncResource[Images]):
    """Image generation (``await client.images.generate(...)``)."""

    if TYPE_CHECKING:  # the typed view of the wrapper below

        @overload
        async def generate(
            self, model: str, prompt: str, *, wait: "Literal[True]" = ..., **options: "Unpack[_ImageOptions]"
        ) -> ImageResult: ...
        @overload
        async def generate(
            self, model: str, prompt: str, *, wait: "Literal[False]", **options: "Unpack[_ImageOptions]"
        ) -> AsyncGenerationRequest: ...
        @overload
        async def generate(
            self, model: str, prompt: str, *, wait: bool, **options: "Unpack[_ImageOptions]"
        ) -> Union[ImageResult, AsyncGenerationRequest]: ...
        async def generate(
            self, model: str, prompt: str, *, wait: bool = True, **options: "Unpack[_ImageOptions]"
        ) -> Union[ImageResult, AsyncGenerationRequest]: ...

    else:
        generate = _to_async_job(Images.generate)


class AsyncVideos(_AsyncResource[Videos]):
    """Video generation (``await client.videos.generate(...)``)."""

    if TYPE_CHECKING:  # the typed view of the wrapper below

        @overload
        async def generate(
            self, model: str, prompt: str, *, wait: "Literal[True]" = ..., **options: "Unpack[_VideoOptions]"
        ) -> VideoResult: ...
        @overload
        async def generate(
            self, model: str, prompt: str, *, wait: "Literal[False]", **options: "Unpack[_VideoOptions]"
        ) -> AsyncGenerationRequest: ...
        @overload
        async def generate(
            self, model: str, prompt: str, *, wait: bool, **options: "Unpack[_VideoOptions]"
        ) -> Union[VideoResult, AsyncGenerationRequest]: ...
        async def generate(
            self, model: str, prompt: str, *, wait: bool = True, **options: "Unpack[_VideoOptions]"
        ) -> Union[VideoResult, AsyncGenerationRequest]: ...

    else:
        generate = _to_async_job(Videos.generate)


class AsyncRequests(_AsyncResource[Requests]):
    """Status of async generations; polling sleeps on the event loop, not a thread."""

    async def get(
        self,
        request_id: str,
        *,
        wait: bool = False,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
    ) -> RequestStatusResult:
        """Current status; with ``wait=True`` poll until completed or failed (see ``Requests.get``)."""
        if not wait:
            return await self._run(self._sync.get, request_id)
        import asyncio

        path = "/requests/" + _path_segment("request_id", request_id)
        poll = _Poll(request_id, timeout, poll_interval)
        while True:
            result = await self._run(self._sync._fetch, path, poll.request_timeout(self._sync._client._timeout))
            delay = poll.next_delay(result)
            if delay is None:
                return result
            await asyncio.sleep(delay)


class AsyncModels(_AsyncResource[Models]):
    """The model catalogue (async)."""

    list = _to_async(Models.list)
    get = _to_async(Models.get)
    search = _to_async(Models.search)


class AsyncUsage(_AsyncResource[Usage]):
    """Usage, logs and dashboard (async)."""

    get = _to_async(Usage.get)
    logs = _to_async(Usage.logs)
    dashboard = _to_async(Usage.dashboard)


class AsyncProviders(_AsyncResource[Providers]):
    """BYOK provider keys and balances (async)."""

    list_keys = _to_async(Providers.list_keys)
    set_key = _to_async(Providers.set_key)
    delete_key = _to_async(Providers.delete_key)
    validate_key = _to_async(Providers.validate_key)
    balances = _to_async(Providers.balances)


class AsyncAuth(_AsyncResource[Auth]):
    """Identity of the API key (async)."""

    me = _to_async(Auth.me)


class AsyncApiKeys(_AsyncResource[ApiKeys]):
    """The organization's API keys (async)."""

    list = _to_async(ApiKeys.list)


class AsyncBilling(_AsyncResource[Billing]):
    """Read-only billing (async)."""

    stats = _to_async(Billing.stats)
    info = _to_async(Billing.info)
    pricing = _to_async(Billing.pricing)


###############################################################################
# Clients #####################################################################
###############################################################################


class Client:
    """Synchronous visgate client; safe to share between threads.

    ``api_key`` defaults to ``$VISGATE_API_KEY`` and ``base_url`` to ``$VISGATE_BASE_URL``
    or the public API. ``timeout`` bounds each request; ``max_retries`` is a count or a
    ``Retry``. ``verify`` is True, a CA bundle path, or an ``ssl.SSLContext``.
    ``trust_env`` reads ``HTTPS_PROXY``/``NO_PROXY``/``SSL_CERT_FILE``.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: Union[int, Retry] = DEFAULT_MAX_RETRIES,
        fal_key: Optional[str] = None,
        replicate_key: Optional[str] = None,
        runway_key: Optional[str] = None,
        verify: Union[bool, str, "ssl.SSLContext"] = True,
        trust_env: bool = True,
        default_headers: Optional[Mapping[str, str]] = None,
        max_response_bytes: int = _MAX_RESPONSE_BYTES,
    ) -> None:
        key = api_key if api_key is not None else _os.environ.get("VISGATE_API_KEY", "")
        self._api_key: str = _check_header_value("api_key", key.strip() if isinstance(key, str) else key)
        url = base_url if base_url is not None else _os.environ.get("VISGATE_BASE_URL") or DEFAULT_BASE_URL
        self._origin, prefix = _split_url(url)
        if "?" in prefix or "#" in url:
            raise ValidationError("base_url must not have a query or fragment", field="base_url")
        self._prefix = prefix.rstrip("/")
        self.base_url: str = "%s://%s%s" % (self._origin.scheme, self._origin.netloc, self._prefix)
        self._timeout = _check_number("timeout", timeout, positive=True)
        if isinstance(max_retries, Retry):
            self._retry = max_retries
        else:
            self._retry = Retry(total=_check_int("max_retries", max_retries, minimum=0))
        if verify is not True and verify is not False and not isinstance(verify, str) and type(verify).__name__ != "SSLContext":
            raise ValidationError("verify must be True, False, a CA bundle path or an ssl.SSLContext", field="verify")
        extra = dict(default_headers or {})
        for name, value in extra.items():
            if not isinstance(name, str) or not name or not _HEADER_TOKEN.issuperset(name):
                raise ValidationError("default_headers has an invalid header name %r" % (name,), field="default_headers")
            extra[name] = _check_header_value(name, value)
        self._default_headers = extra
        self._byok: Dict[str, str] = {}
        self.set_provider_headers(fal_key=fal_key, replicate_key=replicate_key, runway_key=runway_key)
        self._transport = _Transport(
            verify=verify,
            trust_env=bool(trust_env),
            max_response_bytes=_check_int("max_response_bytes", max_response_bytes, minimum=1),
        )
        self.images = Images(self)
        self.videos = Videos(self)
        self.requests = Requests(self)
        self.models = Models(self)
        self.usage = Usage(self)
        self.providers = Providers(self)
        self.auth = Auth(self)
        self.api_keys = ApiKeys(self)
        self.billing = Billing(self)

    # -- public ------------------------------------------------------------
    @property
    def api_key(self) -> str:
        """The visgate API key in use ('' if none)."""
        return self._api_key

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried."""
        return self._retry.total

    @property
    def timeout(self) -> float:
        """Default per-request timeout in seconds."""
        return self._timeout

    def generate(
        self,
        prompt: str,
        model: str = DEFAULT_MODEL,
        params: Optional[Dict[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
    ) -> GenerateResult:
        """Generate an image in one call (``POST /generate``)."""
        body: Dict[str, Any] = {"prompt": _check_str("prompt", prompt), "model": _check_str("model", model)}
        if params is not None:
            if not isinstance(params, Mapping):
                raise ValidationError("params must be a dict, got %s" % type(params).__name__, field="params")
            if params:  # {} is not sent, as in 0.0.3
                body["params"] = dict(params)
        data = self._post("/generate", body, None, True, timeout, idempotency_key)
        return self._attach(GenerateResult.from_dict(data))

    def health(self, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """API health: ``{"status": "ok", "version": ..., ...}``."""
        return _as_dict(self._request("GET", "/health", auth=False, timeout=timeout), "health")

    def set_provider_headers(
        self,
        *,
        fal_key: Optional[str] = None,
        replicate_key: Optional[str] = None,
        runway_key: Optional[str] = None,
    ) -> None:
        """Replace the BYOK keys sent with each request; an omitted key means managed mode."""
        given = {"fal_key": fal_key, "replicate_key": replicate_key, "runway_key": runway_key}
        byok = {}
        for header, name in _BYOK_HEADERS:
            value = given[name]
            checked = _check_header_value(name, value) if value else ""
            if checked:
                byok[header] = checked
        self._byok = byok  # one assignment: a request in flight sees the old or the new set, never a mix

    def download(
        self,
        url: str,
        path: Union[str, "_os.PathLike[str]"],
        *,
        timeout: Optional[float] = None,
        max_bytes: int = _MAX_DOWNLOAD_BYTES,
    ) -> str:
        """Stream ``url`` into ``path`` through a temporary file, then rename it into place.

        No visgate or provider key is sent to the media host. Raises ``DownloadError`` on an
        HTTP error or past ``max_bytes``; a failed download leaves nothing at ``path``.
        """
        import tempfile

        origin, target = _split_url(url, "url")
        limit = _check_int("max_bytes", max_bytes, minimum=1)
        t = self._timeout if timeout is None else _check_number("timeout", timeout, positive=True)
        dest = _os.fspath(path)
        folder = _os.path.dirname(_os.path.abspath(dest))
        headers = {"User-Agent": _USER_AGENT, "Accept": "*/*"}
        for _hop in range(_MAX_REDIRECTS + 1):
            fd, tmp = tempfile.mkstemp(prefix=".visgate-", suffix=".part", dir=folder)
            try:
                with _os.fdopen(fd, "wb") as out:
                    resp = self._send_with_retries("GET", origin, target, headers, None, t, max_bytes=limit, sink=out)
                location = resp.headers.get("location")
                if resp.status in (301, 302, 303, 307, 308) and location:
                    new_origin, target = _resolve_redirect(origin, target, location)
                    origin = new_origin
                    continue
                if resp.status >= 400:
                    raise DownloadError("download of %s failed: HTTP %d" % (url, resp.status), status_code=resp.status)
                _os.replace(tmp, dest)
                tmp = ""
                return dest
            finally:
                if tmp and _os.path.exists(tmp):
                    _os.unlink(tmp)
        raise DownloadError("too many redirects downloading %s" % url, error_code="TOO_MANY_REDIRECTS")

    def close(self) -> None:
        """Close all connections; calls still running fail with ``ConnectionError``."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "%s(base_url=%r)" % (type(self).__name__, self.base_url)

    # -- the one request loop ------------------------------------------------
    def _attach(self, result: _T) -> _T:
        object.__setattr__(result, "_client", self)
        return result

    def _secrets(self) -> Tuple[str, ...]:
        return (self._api_key,) + tuple(self._byok.values())

    def _post(
        self,
        path: str,
        body: Dict[str, Any],
        query: Optional[Mapping[str, Any]],
        wait: bool,
        timeout: Optional[float],
        idempotency_key: Optional[str],
    ) -> Any:
        headers = {} if wait else {"Prefer": "respond-async"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = _check_header_value("Idempotency-Key", _check_str("idempotency_key", idempotency_key) or "")
        return self._request("POST", path, query=query, body=body, timeout=timeout, headers=headers)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        auth: bool = True,
        timeout: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Any:
        """Send one API call with retries; return the decoded JSON or raise a ``VisgateError``."""
        t = self._timeout if timeout is None else _check_number("timeout", timeout, positive=True)
        if auth and not self._api_key:
            raise AuthenticationError(
                "No API key provided. Pass api_key= or set the VISGATE_API_KEY environment variable.",
                status_code=None,
                error_code="MISSING_API_KEY",
            )
        all_headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        all_headers.update(self._default_headers)
        if self._api_key:
            all_headers["Authorization"] = "Bearer " + self._api_key
        all_headers.update(self._byok)
        data = None
        if body is not None:
            data = _json_dumps(body)
            all_headers["Content-Type"] = "application/json"
        if method == "POST":
            import uuid

            # One key for every attempt of this call: the server can drop a duplicate charge.
            all_headers["Idempotency-Key"] = "vg-sdk-" + uuid.uuid4().hex
        if headers:
            all_headers.update(headers)
        target = self._prefix + path
        if query:
            qs = _query(query)
            if qs:
                target += "?" + qs
        resp = self._send_with_retries(method, self._origin, target, all_headers, data, t)
        return _decode(resp, method, self._secrets)

    def _send_with_retries(
        self,
        method: str,
        origin: _Origin,
        target: str,
        headers: Dict[str, str],
        data: Optional[bytes],
        timeout: float,
        **send_kwargs: Any,
    ) -> _Response:
        retry = self._retry
        attempt = 0
        hops = 0
        while True:
            started = _time.monotonic()
            try:
                resp = self._transport.send(method, origin, target, headers, data, timeout, **send_kwargs)
            except _NetworkError as exc:
                error = exc.error
                if not exc.retryable or attempt >= retry.total or self._transport.closed:
                    if attempt:
                        error.message += " (after %d attempts)" % (attempt + 1)
                    raise error from None
                delay = retry.backoff(attempt)
                _log("info", "%s %s%s failed (%s); retry %d in %.2fs", method, origin.netloc, target, error.error_code, attempt + 1, delay)
            else:
                _log("debug", "%s %s%s -> %d in %.0f ms", method, origin.netloc, target, resp.status, 1000 * (_time.monotonic() - started))
                status = resp.status
                location = resp.headers.get("location")
                if status in (301, 302, 303, 307, 308) and location and "sink" not in send_kwargs:
                    hops += 1
                    if hops > _MAX_REDIRECTS:
                        raise ConnectionError("too many redirects (%d)" % hops, error_code="TOO_MANY_REDIRECTS")
                    new_origin, target = _resolve_redirect(origin, target, location)
                    if _should_strip_auth(origin, new_origin):
                        headers = {k: v for k, v in headers.items() if not _is_secret_header(k)}
                    if status == 303 or (status in (301, 302) and method == "POST"):
                        method, data = "GET", None
                        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "idempotency-key")}
                    origin = new_origin
                    continue
                if status < 400 or status not in retry.status_forcelist or attempt >= retry.total:
                    return resp
                if _is_provider_failure(resp):  # the provider said no; a retry would bill a failed run again
                    return resp
                hinted = retry.delay_for(attempt, status, resp.headers)
                if hinted is None:  # the server asks for a longer wait than we may sleep
                    return resp
                delay = hinted
                _log("info", "%s %s%s -> %d; retry %d in %.2fs", method, origin.netloc, target, status, attempt + 1, delay)
            self._transport.pause(delay)
            attempt += 1


class AsyncClient:
    """Asynchronous visgate client: the same methods as ``Client``, awaitable.

    Calls run on a thread pool of up to ``max_concurrency`` threads (created on demand),
    so a ``gather`` of 100 calls really runs 100 at once.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        max_concurrency: int = _DEFAULT_MAX_CONCURRENCY,
        **options: "Unpack[_ClientOptions]",
    ) -> None:
        """Takes ``Client``'s arguments, plus ``max_concurrency``."""
        self._max_concurrency = _check_int("max_concurrency", max_concurrency, minimum=1)
        self._sync = Client(api_key, **options)
        self._pool: Optional["concurrent.futures.ThreadPoolExecutor"] = None
        self._pool_lock = _thread.allocate_lock()
        sync = self._sync
        self.images = AsyncImages(self, sync.images)
        self.videos = AsyncVideos(self, sync.videos)
        self.requests = AsyncRequests(self, sync.requests)
        self.models = AsyncModels(self, sync.models)
        self.usage = AsyncUsage(self, sync.usage)
        self.providers = AsyncProviders(self, sync.providers)
        self.auth = AsyncAuth(self, sync.auth)
        self.api_keys = AsyncApiKeys(self, sync.api_keys)
        self.billing = AsyncBilling(self, sync.billing)

    @property
    def base_url(self) -> str:
        """The API base URL."""
        return self._sync.base_url

    @property
    def api_key(self) -> str:
        """The visgate API key in use ('' if none)."""
        return self._sync.api_key

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried."""
        return self._sync.max_retries

    generate = _to_async(Client.generate)
    health = _to_async(Client.health)
    download = _to_async(Client.download)

    def set_provider_headers(
        self,
        *,
        fal_key: Optional[str] = None,
        replicate_key: Optional[str] = None,
        runway_key: Optional[str] = None,
    ) -> None:
        """Replace the BYOK keys sent with each request; an omitted key means managed mode."""
        self._sync.set_provider_headers(fal_key=fal_key, replicate_key=replicate_key, runway_key=runway_key)

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        import asyncio

        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    pool = self._pool = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="visgate")
        call = _functools.partial(fn, *args, **kwargs) if kwargs else (lambda: fn(*args))
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except RuntimeError as exc:  # executor shut down by close()
            if "shutdown" in str(exc):
                raise ConnectionError("the client is closed") from None
            raise

    async def close(self) -> None:
        """Close connections and stop the thread pool; calls in flight fail with ``ConnectionError``."""
        self._sync.close()
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "AsyncClient(base_url=%r)" % self.base_url


###############################################################################
# Module glue: ``visgate_sdk.exceptions`` and the command line ###################
###############################################################################


def _install_exceptions_module() -> None:
    """Register ``<this module>.exceptions`` so the reference client's import path works."""
    import types
    from importlib.machinery import ModuleSpec

    name = __name__ + ".exceptions"
    module = types.ModuleType(name, "Exceptions of the visgate client (also importable from the top level).")
    for attr in _EXCEPTION_NAMES:
        setattr(module, attr, globals()[attr])
    module.__all__ = list(_EXCEPTION_NAMES)  # type: ignore[attr-defined]
    module.__file__ = __file__
    module.__spec__ = ModuleSpec(name, None, origin=__file__)
    module.__package__ = __name__
    _sys.modules[name] = module
    globals()["exceptions"] = module


if __name__ != "__main__":
    _install_exceptions_module()


_CLI_EXIT_API = 1
_CLI_EXIT_USAGE = 2


def _cli_parser() -> Any:
    import argparse

    def add_common(p: Any) -> None:
        p.add_argument("--api-key", help="visgate API key (default: $VISGATE_API_KEY)")
        p.add_argument("--base-url", help="API base URL (default: $VISGATE_BASE_URL or the public API)")
        p.add_argument("--timeout", type=float, help="per-request timeout, seconds (default: %g)" % DEFAULT_TIMEOUT)
        p.add_argument("--json", action="store_true", help="print the raw JSON answer")

    # The global options are accepted before and after the command; SUPPRESS keeps an
    # option given before the command from being reset by the command's parser.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    add_common(common)
    parser = argparse.ArgumentParser(
        prog="visgate",
        description="visgate API from the command line (key: --api-key or $VISGATE_API_KEY).",
    )
    parser.add_argument("--version", action="version", version="visgate-sdk " + __version__)
    add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add_parser(name: str, helptext: str) -> Any:
        return sub.add_parser(name, help=helptext, parents=[common])

    def media(name: str, helptext: str, model: str) -> Any:
        cmd = add_parser(name, helptext)
        cmd.add_argument("prompt")
        cmd.add_argument("--model", default=model, help="model id (default: %(default)s)")
        cmd.add_argument("-o", "--output", help="save the result to this file")
        cmd.add_argument("--no-wait", action="store_true", help="print the request id and return at once")
        cmd.add_argument("--poll-timeout", type=float, default=600.0, help="seconds to wait for the job")
        return cmd

    gen = add_parser("generate", "one-call image generation (POST /generate)")
    gen.add_argument("prompt")
    gen.add_argument("--model", default=DEFAULT_MODEL, help="model id (default: %(default)s)")
    gen.add_argument("-o", "--output", help="save the image to this file")
    image = media("image", "generate images", DEFAULT_MODEL)
    image.add_argument("--width", type=int, default=1024)
    image.add_argument("--height", type=int, default=1024)
    image.add_argument("--num-images", type=int, default=1)
    image.add_argument("--seed", type=int)
    image.add_argument("--negative-prompt")
    video = media("video", "generate a video", "fal-ai/flux-pro/video")
    video.add_argument("--duration", type=float, default=5.0, help="seconds (default: %(default)s)")
    video.add_argument("--image-url", help="animate this image (image-to-video)")
    status = add_parser("status", "status of an async request")
    status.add_argument("request_id")
    status.add_argument("--wait", action="store_true", help="poll until completed or failed")
    status.add_argument("--poll-timeout", type=float, default=600.0)
    status.add_argument("-o", "--output", help="save the output once completed")
    models = add_parser("models", "list the model catalogue")
    # No choices= for values the server decides on: a new provider or period needs no new client.
    models.add_argument("--provider", help="fal, replicate, runway, ...")
    models.add_argument("--media-type", help="image, video, ...")
    models.add_argument("--search")
    models.add_argument("--limit", type=int, default=20)
    model = add_parser("model", "show one model")
    model.add_argument("model_id")
    usage = add_parser("usage", "usage totals")
    usage.add_argument("--period", default="month", help="day, week, month, year, ... (default: %(default)s)")
    add_parser("balances", "provider balances")
    add_parser("health", "API health")
    return parser


class _Progress:
    """One status line on stderr: redrawn in place on a terminal, plain lines otherwise."""

    def __init__(self) -> None:
        self.tty = _sys.stderr.isatty()
        self.started = _time.monotonic()
        self.last = ""

    def show(self, request_id: str, status: str) -> None:
        line = "%s: %s (%.0fs)" % (request_id, status, _time.monotonic() - self.started)
        if self.tty:
            _sys.stderr.write("\r\x1b[2K" + line)
        elif status != self.last:
            _sys.stderr.write(line + "\n")
        self.last = status
        _sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.last:
            _sys.stderr.write("\n")


def _cli_poll(client: Client, request_id: str, timeout: float) -> RequestStatusResult:
    progress = _Progress()
    poll = _Poll(request_id, timeout, 1.0)
    try:
        while True:
            result = client.requests.get(request_id, timeout=poll.request_timeout(client.timeout))
            progress.show(request_id, result.status)
            delay = poll.next_delay(result)
            if delay is None:
                return result
            _time.sleep(delay)
    finally:
        progress.done()


def _cli_print(value: Any, as_json: bool, lines: List[str]) -> None:
    if as_json:
        import json

        raw = getattr(value, "raw", value)
        print(json.dumps(raw, indent=2, ensure_ascii=False, default=str))
    else:
        print("\n".join(lines))


def _cli_run(args: Any) -> int:
    client = Client(args.api_key, base_url=args.base_url, timeout=args.timeout or DEFAULT_TIMEOUT)
    with client:
        cmd = args.command
        if cmd == "health":
            health = client.health()
            _cli_print(health, args.json, ["%s: %s" % item for item in health.items()])
        elif cmd == "generate":
            gen = client.generate(args.prompt, model=args.model)
            saved = gen.save(args.output) if args.output else None
            _cli_print(gen, args.json, ["image_url: %s" % gen.image_url, "cost: %s" % gen.cost, "provider: %s" % gen.provider]
                       + (["saved: %s" % saved] if saved else []))
        elif cmd in ("image", "video", "status"):
            if cmd == "status":
                job: Union[RequestStatusResult, ImageResult, VideoResult, GenerationRequest]
                job = GenerationRequest(args.request_id, client)
                wait = args.wait
            elif cmd == "image":
                job = client.images.generate(
                    args.model, args.prompt, width=args.width, height=args.height, num_images=args.num_images,
                    seed=args.seed, negative_prompt=args.negative_prompt, wait=False,
                )
                wait = not args.no_wait
            else:
                job = client.videos.generate(
                    args.model, args.prompt, duration_seconds=args.duration, image_url=args.image_url, wait=False
                )
                wait = not args.no_wait
            if isinstance(job, GenerationRequest):
                if not wait and cmd != "status":
                    _cli_print({"request_id": job.request_id, "status": job.status}, args.json,
                               ["request_id: %s" % job.request_id, "status: %s" % job.status])
                    return 0
                job = _cli_poll(client, job.request_id, args.poll_timeout) if wait else job.refresh()
            urls = job._media_urls()
            lines = ["url: %s" % u for u in urls]
            if isinstance(job, RequestStatusResult):
                lines = ["request_id: %s" % job.request_id, "status: %s" % job.status] + lines
                if job.error_message:
                    lines.append("error: %s" % job.error_message)
            if getattr(args, "output", None) and urls:
                lines.append("saved: %s" % job.save(args.output))
            _cli_print(job, args.json, lines)
            if isinstance(job, RequestStatusResult) and job.status == "failed":
                return _CLI_EXIT_API
        elif cmd == "models":
            found = client.models.list(provider=args.provider, media_type=args.media_type, search=args.search, limit=args.limit)
            rows = [(m.id, m.provider, m.media_type, m.name) for m in found.models]
            # Widths from the data: model ids run to 60+ characters ("owner/model/variant/...").
            widths = [max((len(str(row[i])) for row in rows), default=0) for i in range(3)]
            _cli_print(found, args.json, [
                "  ".join(str(cell).ljust(width) for cell, width in zip(row[:3], widths)) + "  " + str(row[3]) for row in rows
            ] + ["(%d of %d)" % (len(found.models), found.total_count)])
        elif cmd == "model":
            info = client.models.get(args.model_id)
            _cli_print(info, args.json, ["%s: %s" % (k, getattr(info, k)) for k in ("id", "name", "provider", "media_type", "description", "pricing")])
        elif cmd == "usage":
            summary = client.usage.get(args.period)
            _cli_print(summary, args.json, [
                "period: %s" % summary.period,
                "requests: %d (cached %d, %.1f%%)" % (summary.total_requests, summary.cached_requests, summary.cache_hit_rate),
                "billed: $%.4f" % summary.total_billed_cost,
            ])
        elif cmd == "balances":
            balances = client.providers.balances()
            _cli_print(balances, args.json, [
                "%s: configured=%s available=%s remaining=%s limit=%s currency=%s"
                % (b.provider, b.configured, b.available, b.remaining, b.limit, b.currency)
                for b in balances.balances
            ])
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Command line entry point: ``python -m visgate_sdk`` or ``visgate``. Returns the exit code."""
    args = _cli_parser().parse_args(argv)
    try:
        return _cli_run(args)
    except AuthenticationError as exc:
        if exc.error_code != "MISSING_API_KEY":
            print("visgate: error: %s" % exc, file=_sys.stderr)
            return _CLI_EXIT_API
        # The library's message says api_key=; on the command line the spelling differs.
        print("visgate: error: no API key: pass --api-key or set VISGATE_API_KEY", file=_sys.stderr)
        return _CLI_EXIT_USAGE
    except ValidationError as exc:
        # Refused arguments, by this client's checks or by the API (400/422): a usage error.
        print("visgate: error: %s" % exc, file=_sys.stderr)
        return _CLI_EXIT_USAGE
    except VisgateError as exc:
        print("visgate: error: %s" % exc, file=_sys.stderr)
        return _CLI_EXIT_API
    except OSError as exc:  # e.g. the -o path cannot be written
        print("visgate: error: %s" % exc, file=_sys.stderr)
        return _CLI_EXIT_API
    except KeyboardInterrupt:
        print("visgate: interrupted", file=_sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
