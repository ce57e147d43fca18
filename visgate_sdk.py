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
    "BudgetExceededError",
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
    "BatchResult",
    "BatchIterator",
    "AsyncBatchIterator",
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
    "HookEvent",
    "DoctorCheck",
    "DoctorReport",
    "parse_retry_after",
    "main",
]

import _thread
import builtins as _builtins
import contextlib as _contextlib
import contextvars as _contextvars
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
    Generator,
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
    import contextvars
    import http.client
    import logging
    import queue
    import ssl
    import threading
    from dataclasses import dataclass as _dataclass
    from dataclasses import field as _field
    from typing import BinaryIO as _BinaryFile
    from typing import Concatenate, Iterator, Literal, ParamSpec, Self, TypedDict, Unpack

    _P = ParamSpec("_P")

    class _ClientOptions(TypedDict, total=False):
        """``Client``'s keyword arguments, which ``AsyncClient`` passes on."""

        base_url: Optional[str]
        timeout: Optional[float]
        max_retries: Union[int, "Retry"]
        fal_key: Optional[str]
        replicate_key: Optional[str]
        runway_key: Optional[str]
        verify: Union[bool, str, ssl.SSLContext]
        trust_env: bool
        default_headers: Optional[Mapping[str, str]]
        max_response_bytes: int
        deadline: Optional[float]
        hooks: Optional[Mapping[str, Any]]
        budget_usd: Optional[float]

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
        deadline: Optional[float]
        headers: Optional[Mapping[str, str]]

    class _VideoOptions(TypedDict, total=False):
        """``videos.generate()``'s keyword arguments besides ``wait``, for its overloads."""

        image_url: Optional[str]
        duration_seconds: float
        skip_gcs_upload: bool
        params: Optional[Dict[str, Any]]
        timeout: Optional[float]
        idempotency_key: Optional[str]
        deadline: Optional[float]
        headers: Optional[Mapping[str, str]]


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
_POLL_TIMEOUT = 300.0  # how long requests.get(wait=True) and handle.wait() poll by default
_JOB_TIMEOUT = 600.0  # how long a wait=True generation answered with 202 polls for its result
_POLL_INTERVAL = 2.0
_USER_AGENT = "visgate-sdk-python/" + __version__
# The user's own provider keys (BYOK): header, constructor keyword, and the environment variable
# that ``to_curl()`` names in their place.
_BYOK_HEADERS = (
    ("X-Fal-Key", "fal_key", "VISGATE_FAL_API_KEY"),
    ("X-Replicate-Key", "replicate_key", "VISGATE_REPLICATE_API_KEY"),
    ("X-Runway-Key", "runway_key", "VISGATE_RUNWAY_API_KEY"),
)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"} | {h.lower() for h, _, _ in _BYOK_HEADERS})


# -- logging: the "visgate_sdk" logger, never with secrets ---------------------------

_ENV_LOG = _os.environ.get("VISGATE_LOG", "")


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


def _log(level: str, msg: str, *args: Any) -> None:
    # logging costs ~4 ms to import; if nobody imported it, nobody configured a handler either.
    if not _ENV_LOG and "logging" not in _sys.modules:
        return
    logger = _logger()
    getattr(logger, level)(msg, *args)


###############################################################################
# Errors ######################################################################
###############################################################################


def _shell_word(parts: _ShellParts) -> str:
    """One shell word from (text, is_variable) parts: text single-quoted (nothing in it expands),
    variables as ``"$NAME"``, so only the placeholders are filled in by the shell."""
    from shlex import quote

    return "".join('"$%s"' % text if variable else quote(text) for text, variable in parts if text) or "''"


def _rebuild_error(cls: Type[VisgateError], args: Tuple[Any, ...], state: Dict[str, Any]) -> VisgateError:
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class VisgateError(Exception):
    """Base class of every error this client raises.

    ``message`` is human-readable, ``error_code`` machine-readable (the API's ``error``
    field), ``details`` the API's structured context, ``status_code`` the HTTP status
    (``None`` when no response arrived) and ``request_id`` the server's request id header.
    """

    default_code = "VISGATE_ERROR"
    default_message = "visgate request failed"
    # Which request failed, set when the error comes from a call: for logs and ``to_curl()``.
    method: Optional[str] = None
    url: Optional[str] = None
    attempts: int = 0
    elapsed: Optional[float] = None
    # (method, url, headers, body) for ``to_curl()``: each header value and the body as parts,
    # (text, is_variable), so a secret is only ever kept as the name of a shell variable.
    _curl: Optional[Tuple[str, str, Tuple[Tuple[str, "_ShellParts"], ...], Optional["_ShellParts"]]] = None

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

    def to_curl(self) -> str:
        """A curl command that repeats the failed request; keys appear as ``$VISGATE_API_KEY`` etc."""
        if self._curl is None:
            # One line: a server's message with a line break must not become a shell command.
            return "# no HTTP request to repeat (the error came before or outside one): %s" % " ".join(str(self).split())
        method, url, headers, body = self._curl
        words = ["curl", "-X", method, _shell_word(((url, False),))]
        for name, parts in headers:
            words += ["-H", _shell_word(((name + ": ", False), *parts))]
        if body is not None:
            words += ["--data-raw", _shell_word(body)]
        return " ".join(words)


_ShellParts = Tuple[Tuple[str, bool], ...]


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


class BudgetExceededError(VisgateError):
    """The client's or the batch's ``budget_usd`` is spent: the call was refused, nothing was sent.

    ``details`` has ``budget_usd`` and ``spent_usd``.
    """

    default_code = "BUDGET_EXCEEDED"
    default_message = "Budget exceeded"


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


def _check_timeout(value: Any) -> Optional[float]:
    return None if value is None else _check_number("timeout", value, positive=True)


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


def _check_headers(name: str, headers: Optional[Mapping[str, str]]) -> Dict[str, str]:
    checked = {}
    for key, value in (headers or {}).items():
        if not isinstance(key, str) or not key or not _HEADER_TOKEN.issuperset(key):
            raise ValidationError("%s has an invalid header name %r" % (name, key), field=name)
        checked[key] = _check_header_value(key, value)
    return checked


def _check_choice(name: str, value: Any, choices: Tuple[str, ...]) -> str:
    """One of the client's own options (not a value the server decides on)."""
    if value not in choices:
        raise ValidationError("%s must be one of %s, got %r" % (name, ", ".join(choices), value), field=name)
    return str(value)


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

    def __reduce__(self) -> Any:
        # __setattr__ refuses the default slot-by-slot unpickling: rebuild through __init__.
        return (Retry, self._key())

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

    def is_retry(self, method: str, status: int, headers: Mapping[str, str], provider_failure: bool = False) -> bool:
        """Whether an answer may be retried: a status in ``status_forcelist``, or one in
        ``retry_after_statuses`` that says when (``Retry-After``). A provider's failure is retried
        for reads only: a repeated generation would bill the failed run again."""
        if provider_failure and method == "POST":
            return False
        if status in self.status_forcelist:
            return True
        return status in self.retry_after_statuses and _retry_after_seconds(headers) is not None

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


_TimeoutBuiltin = _builtins.TimeoutError


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


def _is_stale_connection(exc: BaseException) -> bool:
    import http.client

    ssl = _sys.modules.get("ssl")
    # Over TLS, writing to or reading from a connection the server closed raises SSLEOFError.
    closed_tls: Tuple[Type[BaseException], ...] = (ssl.SSLEOFError, ssl.SSLZeroReturnError) if ssl is not None else ()
    return isinstance(
        exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError, *closed_tls)
    )


def _too_large(limit: int, sink: Optional["_BinaryFile"]) -> VisgateError:
    cls = DownloadError if sink is not None else InvalidResponseError
    return cls("response is larger than the limit of %d bytes" % limit, error_code="RESPONSE_TOO_LARGE")


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


# -- reading against a deadline --------------------------------------------------------


class _Clock:
    """The monotonic time by which the exchange on one connection must be over (None: never)."""

    __slots__ = ("deadline", "last")

    def __init__(self) -> None:
        self.deadline: Optional[float] = None
        self.last: Any = None  # the last answer read on the connection (a proxy's answer to CONNECT, say)


def _settle_timeout(sock: Any, seconds: Optional[float]) -> None:
    # settimeout is a system call: leave the socket alone when it already waits no longer.
    current = sock.gettimeout()
    if seconds is None:
        if current is not None:
            sock.settimeout(None)
    elif current is None or current > seconds + 0.01:
        sock.settimeout(max(seconds, 0.001))


@_functools.cache
def _deadline_io_class() -> Type[Any]:
    import io

    class _DeadlineIO(io.RawIOBase):
        """The socket as a stream whose reads stop at the clock's deadline: a server that trickles
        its status line, headers or body a byte at a time cannot outlast it."""

        def __init__(self, raw: Any, sock: Any, clock: _Clock) -> None:
            self._raw = raw  # the socket's own reader: while open, it keeps the socket open too
            self._sock = sock
            self._clock = clock

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            deadline = self._clock.deadline
            if deadline is not None:
                remaining = deadline - _time.monotonic()
                if remaining <= 0:
                    raise _TimeoutBuiltin("the response did not arrive in time")
                _settle_timeout(self._sock, remaining)
            count = int(self._raw.readinto(buffer))
            if deadline is not None:  # what follows on the socket (a TLS handshake after CONNECT) gets what is left
                _settle_timeout(self._sock, max(deadline - _time.monotonic(), 0.001))
            return count

        def close(self) -> None:
            self._raw.close()
            super().close()

    return _DeadlineIO


@_functools.cache
def _response_class() -> Type["http.client.HTTPResponse"]:
    import http.client
    import io

    deadline_io = _deadline_io_class()

    class _HTTPResponse(http.client.HTTPResponse):
        """Reads through ``_DeadlineIO``, and skips every informational answer (102, 103 Early
        Hints...), not only 100 Continue: http.client would take a 103 for the answer and leave
        the real one in the keep-alive connection, where the next call would read it as its own."""

        def __init__(self, sock: Any, *args: Any, clock: _Clock, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            self.fp = io.BufferedReader(deadline_io(self.fp.detach(), sock, clock))
            clock.last = self

        def _read_status(self) -> Tuple[str, int, str]:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            return version, (100 if 100 < status < 200 and status != 101 else status), reason

    return _HTTPResponse


def _connect_by(clock: _Clock, address: Tuple[str, int], timeout: Any, source_address: Any = None) -> Any:
    """``socket.create_connection`` for http.client, leaving the TLS handshake (or proxy CONNECT)
    that follows only what is left of the deadline, not a whole new ``timeout``."""
    import socket

    sock = socket.create_connection(address, timeout, source_address)
    if clock.deadline is not None:
        _settle_timeout(sock, max(clock.deadline - _time.monotonic(), 0.001))
    return sock


# -- connections, and what a fork or an interrupt does to them --------------------------

# Objects holding sockets or threads that a forked child must not share with its parent.
_FORK_SENSITIVE: "_weakref.WeakSet[Any]" = _weakref.WeakSet()
# Sockets a forked child inherited: kept referenced, so no garbage collection closes them under
# the parent. One entry per client per fork; their file descriptors close when the child exits.
_INHERITED: List[Any] = []


def _after_fork_in_child() -> None:
    for obj in list(_FORK_SENSITIVE):
        obj._after_fork()


if hasattr(_os, "register_at_fork"):  # POSIX; gunicorn --preload, Celery prefork, multiprocessing "fork"
    _os.register_at_fork(after_in_child=_after_fork_in_child)


class _Pool(Dict[_Origin, "http.client.HTTPConnection"]):
    """One thread's keep-alive connections: closed when the thread ends and its locals go."""

    def __del__(self) -> None:
        for conn in self.values():
            with _contextlib.suppress(Exception):  # at thread exit or interpreter shutdown: no one to tell
                conn.close()


class _Transport:
    """HTTP/1.1 over ``http.client``: keep-alive connections per thread, one SSL context, proxies.

    Redirects are not followed here; the session decides what credentials a new origin gets.
    """

    def __init__(self, *, verify: Union[bool, str, "ssl.SSLContext"], trust_env: bool, max_response_bytes: int) -> None:
        self._verify = verify
        self._env: Mapping[str, str] = dict(_os.environ) if trust_env else {}
        self._max_response_bytes = max_response_bytes
        self._ssl_context: Optional["ssl.SSLContext"] = None
        self.closed = False
        self._fresh_state()
        _FORK_SENSITIVE.add(self)

    def _fresh_state(self) -> None:
        import threading

        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: "_weakref.WeakSet[http.client.HTTPConnection]" = _weakref.WeakSet()
        self._closing = threading.Event()

    def _after_fork(self) -> None:
        # The child shares the parent's sockets: reading one would take the parent's answers,
        # and closing (shutdown) one would cut the parent off. Keep them, unused and open, and
        # start with new connections, locks and thread-locals (another thread may have held one).
        _INHERITED.append((self._open, self._local))
        closed = self._closing.is_set()
        self._fresh_state()
        if closed:
            self._closing.set()

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
            pool = self._local.pool = _Pool()
        return pool

    def _connect(self, origin: _Origin) -> "http.client.HTTPConnection":
        import http.client

        proxy = _proxy_for(origin, self._env)
        target = _split_proxy(proxy)[0] if proxy is not None else origin
        conn: http.client.HTTPConnection
        if target.scheme == "https" or origin.scheme == "https":
            conn = http.client.HTTPSConnection(target.host, target.port, context=self._context())
        else:
            conn = http.client.HTTPConnection(target.host, target.port)
        conn._visgate_proxy_headers = None  # type: ignore[attr-defined]
        if proxy is not None and origin.scheme == "https":
            conn.set_tunnel(origin.host, origin.port, headers=_proxy_auth_header(proxy))
        elif proxy is not None:  # plain http through a proxy: absolute-form target, credentials for the proxy only
            conn._visgate_proxy_headers = _proxy_auth_header(proxy)  # type: ignore[attr-defined]
        return conn

    def _get(self, origin: _Origin, timeout: Optional[float]) -> Tuple["http.client.HTTPConnection", bool]:
        pool = self._pool()
        conn = pool.get(origin)
        if conn is not None and conn.sock is not None:
            return conn, True
        conn = self._connect(origin)
        clock = conn._visgate_clock = _Clock()  # type: ignore[attr-defined]
        conn._create_connection = _functools.partial(_connect_by, clock)  # type: ignore[attr-defined]
        conn.response_class = _functools.partial(_response_class(), clock=clock)  # type: ignore[assignment, call-arg]
        pool[origin] = conn
        with self._lock:
            self._open.add(conn)
        return conn, False

    def _discard(self, origin: _Origin) -> None:
        conn = self._pool().pop(origin, None)
        if conn is not None:
            conn.close()

    def pause(self, seconds: float) -> bool:
        """Sleep between attempts; ``close()`` cuts it short (then returns True)."""
        return self._closing.wait(seconds)

    def close(self) -> None:
        """Close every connection, including those in use by other threads."""
        import socket

        self.closed = True
        self._closing.set()
        with self._lock:
            conns = list(self._open)
            self._open = _weakref.WeakSet()
        for conn in conns:
            sock = conn.sock
            if sock is not None:
                with _contextlib.suppress(OSError):  # wakes a thread blocked in recv() on this socket
                    sock.shutdown(socket.SHUT_RDWR)
            conn.close()

    # -- one exchange ------------------------------------------------------
    def send(
        self,
        method: str,
        origin: _Origin,
        target: str,
        headers: Dict[str, str],
        body: Optional[bytes],
        timeout: Optional[float],
        *,
        deadline: Optional[float] = None,
        max_bytes: Optional[int] = None,
        sink: Optional["_BinaryFile"] = None,
    ) -> _Response:
        """Send one request and read the whole answer (or stream it into the file ``sink``).

        ``timeout`` bounds connecting and each wait for data; ``deadline`` (monotonic) the whole
        exchange, headers included. Raises ``_NetworkError``. A keep-alive connection the server
        closed while idle is retried once, transparently, on a fresh connection.
        """
        if self.closed:
            raise _NetworkError(ConnectionError("the client is closed"), False)
        if timeout is not None:
            own = _time.monotonic() + timeout
            deadline = own if deadline is None else min(deadline, own)
        for fresh_try in (False, True):
            conn, reused = self._get(origin, timeout)
            try:
                return self._exchange(conn, method, origin, target, headers, body, deadline, max_bytes, sink)
            except Exception as exc:
                self._discard(origin)
                if not self._stale(exc, origin, reused and not fresh_try):
                    raise
                _log("debug", "keep-alive connection to %s was closed by the server; reconnecting", origin.host)
            except BaseException:
                # KeyboardInterrupt, a cancelled thread...: the exchange is half done and the
                # connection is out of step with the server. It must never serve another call.
                self._discard(origin)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _stale(self, exc: Exception, origin: _Origin, may_retry: bool) -> bool:
        """True when ``exc`` means an idle keep-alive connection was closed under us (worth one
        more try); otherwise raises the typed ``_NetworkError``."""
        if isinstance(exc, _NetworkError):
            raise exc
        if self.closed:
            raise _NetworkError(ConnectionError("the client was closed during the request"), False) from None
        if may_retry and getattr(exc, "_visgate_before_status", False) and _is_stale_connection(exc):
            return True
        raise _classify_os_error(exc, origin) from exc

    def _ready(self, conn: "http.client.HTTPConnection", deadline: Optional[float]) -> None:
        """Connect if needed, within the deadline; the socket then waits no longer than what is left."""
        if conn.sock is None:
            conn.timeout = None if deadline is None else max(deadline - _time.monotonic(), 0.001)
            try:
                conn.connect()
            finally:
                # Before 3.11, http.client leaves a proxy's answer to CONNECT open, and with it the
                # socket, until a garbage collection finds them (a ResourceWarning).
                clock = conn._visgate_clock  # type: ignore[attr-defined]
                if clock.last is not None:
                    clock.last.close()
                    clock.last = None
        with self._lock:  # a concurrent close() either sees this socket, or we see it closed
            if self.closed:
                raise _NetworkError(ConnectionError("the client was closed during the request"), False)
        # Connecting may have used up part of the budget: sending gets only what is left.
        _settle_timeout(conn.sock, None if deadline is None else max(deadline - _time.monotonic(), 0.001))

    def _exchange(
        self,
        conn: "http.client.HTTPConnection",
        method: str,
        origin: _Origin,
        target: str,
        headers: Dict[str, str],
        body: Optional[bytes],
        deadline: Optional[float],
        max_bytes: Optional[int],
        sink: Optional["_BinaryFile"],
    ) -> _Response:
        if sink is not None:  # a retry starts the file again; never append to a partial body
            sink.seek(0)
            sink.truncate()
        conn._visgate_clock.deadline = deadline  # type: ignore[attr-defined]
        try:
            self._ready(conn, deadline)
            proxy_headers = getattr(conn, "_visgate_proxy_headers", None)
            if proxy_headers is not None:
                target = "%s://%s%s" % (origin.scheme, origin.netloc, target)
                headers = dict(headers, **proxy_headers)
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
        except Exception as exc:
            exc._visgate_before_status = True  # type: ignore[attr-defined]
            raise
        try:
            data = self._read(resp, max_bytes or self._max_response_bytes, sink)
        except BaseException:
            resp.close()  # its reader holds the socket open until closed, whatever the connection does
            raise
        if resp.will_close:
            self._discard(origin)
        return _Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def _read(self, resp: "http.client.HTTPResponse", max_bytes: int, sink: Optional["_BinaryFile"]) -> bytes:
        length = resp.getheader("content-length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None and expected > max_bytes:
            raise _NetworkError(_too_large(max_bytes, sink), False)
        chunks: List[bytes] = []
        total = 0
        while expected is None or total < expected:
            # read1 returns what has arrived instead of waiting for a full 64 KiB buffer.
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
        if expected is not None and total != expected:
            raise _NetworkError(ConnectionError("response cut short: %d of %s bytes" % (total, length)), True)
        resp.close()  # read1 does not mark a complete body as done; the connection is reusable
        return b"".join(chunks)


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


def _error_fields(payload: Any) -> Tuple[Optional[str], Optional[str], Dict[str, Any], Optional[str]]:
    """(code, message, details, field) from an error body, in any of the shapes servers use."""
    code: Optional[str] = None
    message: Optional[str] = None
    details: Dict[str, Any] = {}
    field_name: Optional[str] = None
    if not isinstance(payload, dict):
        return code, message, details, field_name
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
    return code, message, details, field_name


def _error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, secrets: Tuple[str, ...] = ()
) -> VisgateError:
    """Map one HTTP error response to the exception a caller branches on."""
    try:
        payload: Any = _json_loads(body) if body else None
    except ValueError:
        payload = None
    code, message, details, field_name = _error_fields(payload)
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
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else VisgateError)
    if cls is ValidationError:
        return ValidationError(message, field=field_name, **kwargs)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=_retry_after_seconds(headers), **kwargs)
    return cls(message, **kwargs)


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
# Session: one call, from arguments to answer ##################################
###############################################################################

# -- deadlines: one budget for a whole call, however many attempts and polls -----------

# The monotonic time by which calls made in this context must end, set by ``client.deadline()``.
# Context variables follow a call into the AsyncClient's worker threads (see ``AsyncClient._run``).
_DEADLINE: "contextvars.ContextVar[Optional[float]]" = _contextvars.ContextVar("visgate_deadline", default=None)
# Set when the awaiting coroutine was cancelled: its worker thread stops at the next safe point.
_CANCELLED: "contextvars.ContextVar[Optional[threading.Event]]" = _contextvars.ContextVar("visgate_cancelled", default=None)


def _budget_seconds(budget: Any, margin: float) -> float:
    """Seconds from a number, or from a Lambda-style context (less ``margin``)."""
    remaining = getattr(budget, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return _check_number("deadline", remaining()) / 1000.0 - _check_number("margin", margin, minimum=0.0)
    return _check_number("deadline", budget)


class _DeadlineScope:
    """``with client.deadline(x):`` (or ``async with``); the nearest of nested deadlines wins."""

    def __init__(self, at: float) -> None:
        self._at = at
        self._tokens: List[Any] = []

    def __enter__(self) -> Self:
        outer = _DEADLINE.get()
        self._tokens.append(_DEADLINE.set(self._at if outer is None else min(outer, self._at)))
        return self

    def __exit__(self, *exc: object) -> None:
        _DEADLINE.reset(self._tokens.pop())

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    @property
    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self._at - _time.monotonic()


def _deadline_error(what: str, cause: Optional[VisgateError] = None, **kwargs: Any) -> TimeoutError:
    message = "deadline exceeded: " + what
    if cause is not None:
        message += " (last error: %s)" % cause
    return TimeoutError(message, error_code="DEADLINE_EXCEEDED", **kwargs)


# -- hooks: what happened, for tracing and logs ---------------------------------------


class HookEvent:
    """What a hook is given: one request attempt, its answer, a retry or a failure. Read-only.

    ``kind`` is "request", "response", "retry" or "error"; ``url`` never holds a secret;
    ``attempt`` counts from 1; ``delay`` is the wait before a retry; ``error`` the exception.
    Hooks run on the thread making the call: for ``AsyncClient`` a worker thread of its pool,
    inside a copy of the awaiting task's context, so context variables (OpenTelemetry's current
    span) are the caller's. A hook should be quick: the call waits for it.
    """

    __slots__ = ("kind", "method", "url", "attempt", "status", "elapsed", "request_id", "delay", "error")
    kind: str
    method: str
    url: str
    attempt: int
    status: Optional[int]
    elapsed: float
    request_id: Optional[str]
    delay: Optional[float]
    error: Optional[BaseException]

    def __init__(self, kind: str, method: str, url: str, attempt: int, elapsed: float, **more: Any) -> None:
        # Defaults first, then what was given: dict(status=None, **more) would raise on a given status.
        values: Dict[str, Any] = {"status": None, "request_id": None, "delay": None, "error": None}
        values.update(more)
        values.update(kind=kind, method=method, url=url, attempt=attempt, elapsed=elapsed)
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("HookEvent is read-only")

    def __repr__(self) -> str:
        shown = ("%s=%r" % (n, getattr(self, n)) for n in self.__slots__ if getattr(self, n) is not None)
        return "HookEvent(%s)" % ", ".join(shown)


_HOOK_KINDS = ("request", "response", "retry", "error")


def _check_hooks(hooks: Optional[Mapping[str, Any]]) -> Dict[str, Tuple[Callable[[HookEvent], Any], ...]]:
    """``{"request": fn or [fn, ...], ...}`` -> a tuple of callables per kind."""
    checked: Dict[str, Tuple[Callable[[HookEvent], Any], ...]] = {kind: () for kind in _HOOK_KINDS}
    for kind, value in (hooks or {}).items():
        if kind not in _HOOK_KINDS:
            raise ValidationError("hooks has an unknown event %r (known: %s)" % (kind, ", ".join(_HOOK_KINDS)), field="hooks")
        fns = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if not all(callable(fn) for fn in fns):
            raise ValidationError("hooks[%r] must be a callable or a list of callables" % kind, field="hooks")
        checked[kind] = fns
    return checked


# -- one call's state -------------------------------------------------------------------


def _secret_parts(text: str, named: Tuple[Tuple[str, str], ...]) -> _ShellParts:
    """``text`` cut into (text, False) and (variable, True) parts, every secret replaced by its variable."""
    parts: List[Tuple[str, bool]] = [(text, False)]
    for secret, variable in sorted(named, key=lambda pair: -len(pair[0])):  # a longer secret may hold a shorter
        if not secret:
            continue
        cut: List[Tuple[str, bool]] = []
        for piece, is_variable in parts:
            if is_variable or secret not in piece:
                cut.append((piece, is_variable))
                continue
            for i, literal in enumerate(piece.split(secret)):
                cut += ([(variable, True)] if i else []) + [(literal, False)]
        parts = cut
    return tuple(parts)


def _curl_header(name: str, value: str, named: Tuple[Tuple[str, str], ...]) -> _ShellParts:
    parts = _secret_parts(value, named)
    if _is_secret_header(name) and not any(is_variable for _text, is_variable in parts):
        # A credential we do not know by name (a cookie, an X-...-Token in default_headers).
        return (("VISGATE_HEADER_" + name.upper().replace("-", "_"), True),)
    return parts


class _Call:
    """One call as its attempts see it: where it goes, what it sends, how long it may take."""

    __slots__ = ("method", "origin", "target", "headers", "body", "timeout", "deadline", "started", "attempts",
                 "sink", "max_bytes", "secrets", "named")

    def __init__(self, method: str, origin: _Origin, target: str, headers: Dict[str, str], body: Optional[bytes],
                 timeout: Optional[float], deadline: Optional[float], named: Tuple[Tuple[str, str], ...] = ()) -> None:
        self.method = method
        self.origin = origin
        self.target = target
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.deadline = deadline
        self.started = _time.monotonic()
        self.attempts = 0
        self.sink: Optional["_BinaryFile"] = None
        self.max_bytes: Optional[int] = None
        # Every secret this call carries, with the shell variable ``to_curl()`` shows instead.
        self.named = tuple(pair for pair in named if pair[0])
        self.secrets = tuple(secret for secret, _variable in self.named)

    @property
    def url(self) -> str:
        return "%s://%s%s" % (self.origin.scheme, self.origin.netloc, self.target)

    def event(self, kind: str, **more: Any) -> HookEvent:
        return HookEvent(kind, self.method, self.url, self.attempts, _time.monotonic() - self.started, **more)

    def annotate(self, error: VisgateError) -> VisgateError:
        """Say on ``error`` which request failed, and keep what ``to_curl()`` needs (no secrets)."""
        import json

        error.method, error.url, error.attempts = self.method, self.url, self.attempts
        error.elapsed = round(_time.monotonic() - self.started, 3)
        headers = tuple((k, _curl_header(k, v, self.named)) for k, v in self.headers.items() if k.lower() != "proxy-authorization")
        body = None
        if self.body:
            # In the JSON text a secret appears escaped: look for that form too.
            escaped = tuple((json.dumps(s, ensure_ascii=False)[1:-1], v) for s, v in self.named)
            body = _secret_parts(self.body.decode("utf-8", "replace"), escaped + self.named)
        error._curl = (self.method, self.url, headers, body)
        return error


def _hook_headers(extra: Any, present: Mapping[str, str]) -> Dict[str, str]:
    """What a request hook may add: valid headers the call does not already have (whatever the
    case: per-call ``headers=`` win, and Idempotency-Key or User-Agent stay the call's), and never
    a credential (it would also reach hosts a redirect leads to)."""
    if not isinstance(extra, Mapping):
        raise ValidationError("a request hook must return None or a dict of headers, not %s" % type(extra).__name__)
    checked = _check_headers("hook headers", extra)
    for name in checked:
        if _is_secret_header(name):
            raise ValidationError("a request hook may not set %r; credentials come from the client's options" % name)
    have = {name.lower() for name in present}
    return {name: value for name, value in checked.items() if name.lower() not in have}


def _redirect_target(call: _Call, resp: _Response) -> Optional[Tuple[_Origin, str]]:
    location = resp.headers.get("location")
    if resp.status not in (301, 302, 303, 307, 308) or not location:
        return None
    return _resolve_redirect(call.origin, call.target, location)


def _follow(call: _Call, resp: _Response, hops: int) -> bool:
    """The one redirect rule: same method unless 303 (or 301/302 after a POST), no credentials to
    another origin, no https -> http. Returns False when ``resp`` is not a redirect."""
    found = _redirect_target(call, resp)
    if found is None:
        return False
    if hops > _MAX_REDIRECTS:
        cls = DownloadError if call.sink is not None else ConnectionError
        raise cls("too many redirects (%d)" % hops, error_code="TOO_MANY_REDIRECTS")
    origin, call.target = found
    if _should_strip_auth(call.origin, origin):
        call.headers = {k: v for k, v in call.headers.items() if not _is_secret_header(k)}
    if resp.status == 303 or (resp.status in (301, 302) and call.method == "POST"):
        call.method, call.body = "GET", None
        call.headers = {k: v for k, v in call.headers.items() if k.lower() not in ("content-type", "idempotency-key")}
    call.origin = origin
    return True


# -- the session: configuration and the one request loop -------------------------------


_SECRET_FIELDS = frozenset({"api_key", "key", "token", "secret", "password"})


def _body_secrets(body: Any) -> Tuple[Tuple[str, str], ...]:
    """Secrets in a request body (the provider key of ``providers.set_key``), with their variable:
    kept out of error messages and ``to_curl()`` like the client's own keys."""
    if not isinstance(body, dict):
        return ()
    provider = body.get("provider")
    named = provider.upper() if isinstance(provider, str) and provider.isalnum() else "PROVIDER"
    variable = "VISGATE_%s_API_KEY" % named
    return tuple((v, variable) for k, v in body.items() if isinstance(v, str) and v and str(k).lower() in _SECRET_FIELDS)


def _partial_file(dest: str) -> Tuple[int, str]:
    """A new temporary file beside ``dest``: (descriptor, path). Created with mode 0666 as
    ``open()`` would, so the umask decides its permissions (mkstemp's 0600 would hide the media
    from a web server running as another user); reading the umask would race other threads."""
    folder = _os.path.dirname(_os.path.abspath(dest))
    flags = _os.O_WRONLY | _os.O_CREAT | _os.O_EXCL | getattr(_os, "O_BINARY", 0)
    for _ in range(100):
        tmp = _os.path.join(folder, ".visgate-%s.part" % _os.urandom(6).hex())
        try:
            return _os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise _not_writable(dest, exc) from None
    raise _not_writable(dest, FileExistsError("no free temporary name"))


def _not_writable(dest: str, exc: OSError) -> DownloadError:
    return DownloadError("cannot write %s: %s" % (dest, exc.strerror or exc), error_code="DOWNLOAD_NOT_WRITABLE")


def _publish(tmp: str, dest: str) -> None:
    """Move the finished download into place (an atomic rename: never a partial file at ``dest``)."""
    try:
        _os.replace(tmp, dest)
    except OSError as exc:
        raise _not_writable(dest, exc) from None


class _Session:
    """What every call shares: the key, the base URL, retries, deadlines, hooks, connections."""

    def __init__(self, *, api_key: str, base_url: str, timeout: Optional[float], retry: Retry, deadline: Optional[float],
                 hooks: Optional[Mapping[str, Any]], transport: _Transport, default_headers: Dict[str, str]) -> None:
        self.api_key = api_key
        self.origin, prefix = _split_url(base_url)
        if "?" in prefix or "#" in base_url:
            raise ValidationError("base_url must not have a query or fragment", field="base_url")
        self.prefix = prefix.rstrip("/")
        self.base_url = "%s://%s%s" % (self.origin.scheme, self.origin.netloc, self.prefix)
        self.timeout = timeout
        self.retry = retry
        self.deadline = deadline
        self.hooks = _check_hooks(hooks)
        self.transport = transport
        self.default_headers = default_headers
        self.byok: Dict[str, str] = {}

    def secrets(self) -> Tuple[str, ...]:
        return (self.api_key, *tuple(self.byok.values()))

    def named_secrets(self) -> Tuple[Tuple[str, str], ...]:
        """The key and the BYOK keys, each with the variable ``to_curl()`` names in its place."""
        variables = {header.lower(): variable for header, _arg, variable in _BYOK_HEADERS}
        return ((self.api_key, "VISGATE_API_KEY"), *tuple((v, variables[h.lower()]) for h, v in self.byok.items()))

    # -- per-call options --------------------------------------------------------------
    def timeout_for(self, timeout: Optional[float]) -> Optional[float]:
        return self.timeout if timeout is None else _check_number("timeout", timeout, positive=True)

    def deadline_for(self, deadline: Optional[float]) -> Optional[float]:
        """The monotonic time a call must end by: the nearest of its own, the scope's and the client's."""
        own = self.deadline if deadline is None else _check_number("deadline", deadline)
        scoped = _DEADLINE.get()
        at = None if own is None else _time.monotonic() + own
        if scoped is not None and (at is None or scoped < at):
            return scoped
        return at

    def headers_for(self, auth: bool, extra: Optional[Mapping[str, str]]) -> Dict[str, str]:
        if auth and not self.api_key:
            raise AuthenticationError(
                "No API key provided. Pass api_key= or set the VISGATE_API_KEY environment variable.",
                status_code=None,
                error_code="MISSING_API_KEY",
            )
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        headers.update(self.default_headers)
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        headers.update(self.byok)
        added = _check_headers("headers", extra)
        for name in added:
            if _is_secret_header(name):
                raise ValidationError("headers may not set %r; credentials come from the client's options" % name, field="headers")
        headers.update(added)
        return headers

    # -- one API call ------------------------------------------------------------------
    def call(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None, body: Any = None,
             auth: bool = True, timeout: Optional[float] = None, at: Optional[float] = None,
             headers: Optional[Mapping[str, str]] = None) -> Any:
        """Send one API call with retries; return the decoded JSON or raise a ``VisgateError``.

        ``at`` is the monotonic deadline from ``deadline_for()``.
        """
        all_headers = self.headers_for(auth, headers)
        data = None
        if body is not None:
            data = _json_dumps(body)
            all_headers["Content-Type"] = "application/json"
        if method == "POST" and "Idempotency-Key" not in all_headers:
            import uuid

            # One key for every attempt of this call: the server can drop a duplicate charge.
            all_headers["Idempotency-Key"] = "vg-sdk-" + uuid.uuid4().hex
        target = self.prefix + path
        qs = _query(query) if query else ""
        if qs:
            target += "?" + qs
        named = self.named_secrets() + _body_secrets(body)
        call = _Call(method, self.origin, target, all_headers, data, self.timeout_for(timeout), at, named)
        try:
            return _decode(self.exchange(call), call.method, lambda: call.secrets)
        except VisgateError as exc:
            self.emit("error", call, error=call.annotate(exc), status=exc.status_code, request_id=exc.request_id)
            raise

    def exchange(self, call: _Call) -> _Response:
        """The one request loop: attempts, retries with backoff, redirects, the deadline."""
        hops = 0
        while True:
            call.attempts += 1
            resp = self._attempt(call)
            if resp is None:
                continue
            if _follow(call, resp, hops + 1):
                hops += 1
                call.attempts -= 1  # a redirect is the same attempt, somewhere else
                continue
            if not self._retry_answer(call, resp):
                return resp

    def _attempt(self, call: _Call) -> Optional[_Response]:
        """One attempt: the answer, or None after a network failure worth retrying (slept already)."""
        self._checkpoint(call)
        extra = self.emit("request", call)
        headers = dict(call.headers, **extra) if extra else call.headers
        try:
            resp = self.transport.send(call.method, call.origin, call.target, headers, call.body, call.timeout,
                                       deadline=call.deadline, max_bytes=call.max_bytes, sink=call.sink)
        except _NetworkError as exc:
            error = self._past_deadline(call, exc.error)
            out_of_time = error is not exc.error  # no retry can help: raise it as it is, not wrapped again
            if out_of_time or not exc.retryable or call.attempts > self.retry.total or self.transport.closed:
                if call.attempts > 1:
                    error.message += " (after %d attempts)" % call.attempts
                raise error from None
            self._wait(call, self.retry.backoff(call.attempts - 1), error, None)
            return None
        _log("debug", "%s %s -> %d in %.0f ms", call.method, call.url, resp.status, 1000 * (_time.monotonic() - call.started))
        self.emit("response", call, status=resp.status, request_id=resp.headers.get("x-request-id"))
        return resp

    def _retry_answer(self, call: _Call, resp: _Response) -> bool:
        """After an error answer worth retrying, wait and say True; else False (the answer stands)."""
        retry = self.retry
        if resp.status < 400 or call.attempts > retry.total:
            return False
        provider = call.method == "POST" and resp.status >= 500 and _is_provider_failure(resp)
        if not retry.is_retry(call.method, resp.status, resp.headers, provider):
            return False
        delay = retry.delay_for(call.attempts - 1, resp.status, resp.headers)
        if delay is None:  # the server asks for a longer wait than we may sleep
            return False
        self._wait(call, delay, _error_from_response(resp.status, resp.headers, resp.body, call.secrets), resp.status)
        return True

    def _past_deadline(self, call: _Call, error: VisgateError) -> VisgateError:
        if call.deadline is not None and isinstance(error, TimeoutError) and _time.monotonic() >= call.deadline - 0.01:
            return _deadline_error("%s %s did not finish in time" % (call.method, call.url), error)
        return error

    def _wait(self, call: _Call, delay: float, error: VisgateError, status: Optional[int]) -> None:
        """Sleep before the next attempt, unless that would pass the deadline: then raise at once."""
        if call.deadline is not None and _time.monotonic() + delay > call.deadline:
            raise _deadline_error("no time left to retry %s %s after %.2fs" % (call.method, call.url, delay), error,
                                  status_code=error.status_code, request_id=error.request_id)
        outcome = "-> %d" % status if status is not None else "failed (%s)" % error.error_code
        _log("info", "%s %s %s; retry %d in %.2fs", call.method, call.url, outcome, call.attempts, delay)
        self.emit("retry", call, delay=delay, status=status, error=error, request_id=error.request_id)
        self.pause(delay)

    def pause(self, seconds: float) -> None:
        """Sleep; a closed client or a cancelled caller ends it early with an error."""
        cancelled = _CANCELLED.get()
        if cancelled is None:
            closed = self.transport.pause(seconds)
        else:  # wake up for the cancellation too: check it a few times a second
            end = _time.monotonic() + seconds
            closed = False
            while not closed and not cancelled.is_set() and _time.monotonic() < end:
                closed = bool(self.transport.pause(min(0.05, max(0.0, end - _time.monotonic()))))
        if closed or self.transport.closed:
            raise ConnectionError("the client was closed")
        self._checkpoint(None)

    def _checkpoint(self, call: Optional[_Call]) -> None:
        cancelled = _CANCELLED.get()
        if cancelled is not None and cancelled.is_set():
            raise ConnectionError("the call was cancelled", error_code="CANCELLED")
        if call is not None and call.deadline is not None and _time.monotonic() >= call.deadline:
            raise _deadline_error("%s %s was not sent" % (call.method, call.url))

    def emit(self, kind: str, call: _Call, **fields: Any) -> Dict[str, str]:
        """Run the hooks for ``kind``; a hook's failure is logged, never raised. A request hook
        may return headers to add (e.g. ``traceparent``): new ones only, never credentials."""
        fns = self.hooks[kind]
        if not fns:
            return {}
        event = call.event(kind, **fields)
        added: Dict[str, str] = {}
        for fn in fns:
            try:
                extra = fn(event)
                if kind == "request" and extra is not None:
                    added.update(_hook_headers(extra, call.headers))
            except Exception as exc:
                _log("warning", "visgate %s hook %r raised %s: %s", kind, fn, type(exc).__name__, exc)
        return added

    # -- downloads -----------------------------------------------------------------------
    def download(self, url: str, path: Union[str, "_os.PathLike[str]"], *, timeout: Optional[float], at: Optional[float],
                 max_bytes: int) -> str:
        """Stream ``url`` into ``path`` through a temporary file renamed into place. Sends no key."""
        origin, target = _split_url(url, "url")
        headers = {"User-Agent": _USER_AGENT, "Accept": "*/*"}
        call = _Call("GET", origin, target, headers, None, self.timeout_for(timeout), at)
        call.max_bytes = _check_int("max_bytes", max_bytes, minimum=1)
        dest = _os.fspath(path)
        fd, tmp = _partial_file(dest)
        try:
            with _os.fdopen(fd, "wb") as out:
                call.sink = out
                resp = self.exchange(call)
            if resp.status >= 400:
                raise DownloadError("download of %s failed: HTTP %d" % (url, resp.status), status_code=resp.status)
            _publish(tmp, dest)
            tmp = ""
            return dest
        except VisgateError as exc:
            self.emit("error", call, error=call.annotate(exc), status=exc.status_code, request_id=exc.request_id)
            raise
        finally:
            if tmp and _os.path.exists(tmp):
                _os.unlink(tmp)


def _standalone_session() -> _Session:
    """A keyless session with default settings, for downloads by results not tied to a client."""
    transport = _Transport(verify=True, trust_env=True, max_response_bytes=_MAX_RESPONSE_BYTES)
    return _Session(api_key="", base_url=DEFAULT_BASE_URL, timeout=DEFAULT_TIMEOUT, retry=Retry(), deadline=None,
                    hooks=None, transport=transport, default_headers={})


class _Polling:
    """The one polling loop, as steps: ``("fetch", timeout)`` then ``("sleep", seconds)`` until the
    job ends. The sync client, the async client and the CLI each drive it with their own I/O."""

    def __init__(self, session: _Session, request_id: str, timeout: Any, interval: Any, deadline: Optional[float]) -> None:
        self.request_id = request_id
        self.session = session
        self.timeout = _check_number("timeout", timeout, positive=True)
        self.interval = _check_number("poll_interval", interval, positive=True)
        own = _time.monotonic() + self.timeout
        self.by_deadline = deadline is not None and deadline < own
        self.end = deadline if deadline is not None and deadline < own else own
        # Each status fetch, retries included, is bound by the call's deadline, also when the
        # polling's own (shorter) timeout is what ends the polling.
        self.at = deadline

    def steps(self) -> "Generator[Tuple[str, Optional[float]], Any, Any]":
        """Yields what to do next; is sent each fetched status; returns the final status."""
        while True:
            left = self.end - _time.monotonic()
            session_timeout = self.session.timeout
            status = yield ("fetch", max(0.05, left if session_timeout is None else min(session_timeout, left)))
            if status.is_terminal:
                return status
            left = self.end - _time.monotonic()
            if left <= 0 or (self.by_deadline and left < self.interval):
                raise self._expired(status.status)
            yield ("sleep", min(self.interval, left))

    def _expired(self, last_status: Optional[str]) -> TimeoutError:
        rid = self.request_id
        resume = "resume with client.requests.get(%r, wait=True)" % rid
        if self.by_deadline:
            return _deadline_error("request %s still %r; %s" % (rid, last_status, resume), request_id=rid, last_status=last_status)
        return TimeoutError("request %s still %r after %.1fs; %s" % (rid, last_status, self.timeout, resume),
                            error_code="POLL_TIMEOUT", last_status=last_status, request_id=rid)

    def run(self, fetch: Callable[[Optional[float]], Any], on_status: Optional[Callable[[Any], None]] = None) -> Any:
        """Drive the steps with blocking I/O: ``fetch(timeout)`` gets one status."""
        steps = self.steps()
        reply = None
        try:
            while True:
                kind, value = steps.send(reply)
                if kind == "fetch":
                    reply = fetch(value)
                    if on_status is not None:
                        on_status(reply)
                else:
                    self.session.pause(value or 0.0)
                    reply = None
        except StopIteration as stop:
            return stop.value


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


def _as_datetime(value: Any, where: str) -> Optional[datetime]:
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


def _as_any(value: Any, where: str) -> Any:
    return value


def _list_of(cls: Any) -> Callable[[Any, str], List[Any]]:
    def convert(value: Any, where: str) -> List[Any]:
        return [cls.from_dict(item) for item in _as_list(value, where)]

    return convert


_CONVERTERS: Dict[Any, Callable[[Any, str], Any]] = {
    str: _as_str, int: _as_int, float: _as_float, bool: _as_bool, datetime: _as_datetime, dict: _as_dict, Any: _as_any
}


def _converter(hint: Any) -> Callable[[Any, str], Any]:
    """The parser a field's type names: ``Optional[X]`` reads as ``X``, ``Any`` takes any value."""
    import typing

    origin, args = typing.get_origin(hint), [a for a in typing.get_args(hint) if a is not type(None)]
    if origin is Union:
        return _converter(args[0])
    if origin is list:
        if args[0] is str:
            return _as_str_list
        if isinstance(args[0], type) and hasattr(args[0], "from_dict"):  # a list of results
            return _list_of(args[0])
        return _as_list
    return _CONVERTERS[origin or hint]  # a KeyError here: a field type with no parser yet


def _f(default: Any, *keys: str) -> Any:
    """A field read from JSON ``keys``, the first present wins (default: its name); a class
    as ``default`` (``list``, ``dict``) makes a fresh one per instance."""
    spec: Dict[str, Any] = {"default_factory" if isinstance(default, type) else "default": default}
    if keys:
        spec["metadata"] = {"keys": keys}
    return _field(**spec)


def _raw() -> Any:
    return _field(default_factory=dict, repr=False, compare=False)


# Importing ``dataclasses`` (with ``inspect``) and generating twenty classes costs ~15 ms, paid
# on every cold start even when no result is ever built. So each result class is made a real
# dataclass on first use: first instance, unpickling, or a first look at its fields or signature
# (``dataclasses.fields``, ``is_dataclass``, ``inspect.signature``, ``help``). Type checkers see
# the decorator.
class _FieldSpec(Dict[str, Any]):
    """Run-time stand-in for ``dataclasses.field()``: its arguments, until the class is materialised."""


if not TYPE_CHECKING:

    def _dataclass(cls):
        cls._lazy_dataclass = True
        return cls

    _field = _FieldSpec

_DATACLASS_LOCK = _thread.allocate_lock()


def _materialize(cls: type) -> None:
    """Make ``cls`` and its lazy bases dataclasses, bases first, once."""
    for klass in reversed(cls.__mro__):
        if "__dataclass_fields__" in klass.__dict__ or not klass.__dict__.get("_lazy_dataclass"):
            continue
        import dataclasses

        with _DATACLASS_LOCK:
            if "__dataclass_fields__" not in klass.__dict__:
                for name, value in list(klass.__dict__.items()):
                    if isinstance(value, _FieldSpec):
                        setattr(klass, name, dataclasses.field(**value))
                dataclasses.dataclass(klass)


class _LazyDataclass(type):
    """Metaclass of the result types: a look at a class's fields or signature materialises it."""

    if not TYPE_CHECKING:

        def __getattr__(cls, name):  # only called for what the class lacks
            if name == "__signature__":  # inspect.signature(), help(): None = "read __init__"
                _materialize(cls)
                return None
            if name == "__dataclass_fields__":
                _materialize(cls)
                return type.__getattribute__(cls, name)
            raise AttributeError("type object %r has no attribute %r" % (cls.__name__, name))


def _parse_table(cls: type) -> Tuple[Tuple[str, Callable[[Any, str], Any], Tuple[str, ...]], ...]:
    """(attribute, converter, JSON keys) per field but ``raw``, worked out on the first ``from_dict``."""
    table = cls.__dict__.get("_parse_table")
    if table is None:
        import dataclasses
        import typing

        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.name != "raw"]
        table = tuple((f.name, _converter(hints[f.name]), f.metadata.get("keys", (f.name,))) for f in fields)
        cls._parse_table = table  # type: ignore[attr-defined]  # per class: a subclass has its own fields
    return table


class _Result(metaclass=_LazyDataclass):
    """Shared parsing: each field is read from its JSON keys with the converter its type names."""

    raw: Dict[str, Any]

    if not TYPE_CHECKING:

        def __init__(self, *args, **kwargs):
            # Runs only before the class is materialised, which gives it a dataclass __init__.
            _materialize(type(self))
            if type(self).__init__ is _Result.__init__:
                raise TypeError("%s is not a result type" % type(self).__name__)
            type(self).__init__(self, *args, **kwargs)

    @classmethod
    def from_dict(cls: Type[_T], data: Any) -> _T:
        """Build from an API answer; raise ``InvalidResponseError`` if it has the wrong shape."""
        where = cls.__name__
        mapping = _as_dict(data, where)
        kwargs: Dict[str, Any] = {}
        for attr, convert, keys in _parse_table(cls):
            for key in keys:
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
        _materialize(type(self))  # unpickling skips __init__
        self.__dict__.update(state)


class _Media:
    """Mixin: ``save()`` for results that point at generated media."""

    _client: Optional["Client"] = None

    def _media_urls(self) -> List[str]:
        raise NotImplementedError

    def save(self, path: Union[str, "_os.PathLike[str]"], *, index: int = 0, timeout: Optional[float] = None,
             deadline: Optional[float] = None) -> str:
        """Download media ``index`` to ``path`` atomically; return the path written."""
        urls = self._media_urls()
        if not urls:
            raise DownloadError("this result has no media URL to save", error_code="NO_MEDIA")
        _check_int("index", index, minimum=0, maximum=len(urls) - 1)
        client = self._client
        if client is not None:
            return client.download(urls[index], path, timeout=timeout, deadline=deadline)
        session = _standalone_session()
        try:
            return session.download(urls[index], path, timeout=timeout, at=session.deadline_for(deadline),
                                    max_bytes=_MAX_DOWNLOAD_BYTES)
        finally:
            session.transport.close()


# Field order is visgate-sdk 0.0.3's, which positional construction relies on: that is why
# ImageResult and VideoResult repeat their common fields instead of sharing a base (a base's
# fields would come first). A field's type names its parser (see ``_converter``); ``_f`` adds
# the JSON keys where they are not just the field's name.
@_dataclass
class GenerateResult(_Media, _Result):
    """Answer of ``client.generate()`` (``POST /generate``)."""

    id: str = _f("", "id", "request_id")
    image_url: Optional[str] = None
    images: List[str] = _f(list)
    model: str = ""
    provider: str = ""
    mode: str = ""
    cost: float = _f(0.0, "estimated_cost_usd", "cost")
    cost_per_megapixel: float = _f(0.0, "cost_per_megapixel_usd")
    latency_ms: int = 0
    resolution: Dict[str, int] = _f(dict)
    created_at: Optional[datetime] = None
    cache_hit: bool = False
    provider_cost_avoided_micro: Optional[int] = None
    raw: Dict[str, Any] = _raw()

    def __post_init__(self) -> None:
        if self.image_url is None and self.images:
            self.image_url = self.images[0]

    def _media_urls(self) -> List[str]:
        return self.images or ([self.image_url] if self.image_url else [])


@_dataclass
class ImageResult(_Media, _Result):
    """Answer of ``images.generate()``; ``image_url`` is the first of ``images``."""

    id: str = _f("", "id", "request_id")
    images: List[str] = _f(list)
    model: str = ""
    provider: str = ""
    cost: float = 0.0
    cache_hit: bool = False
    provider_cost_avoided_micro: Optional[int] = None
    latency_ms: Optional[int] = None
    created_at: Optional[datetime] = None
    output_storage: Optional[str] = None
    output_size_bytes: Optional[int] = None
    steps: Optional[List[Dict[str, Any]]] = None
    raw: Dict[str, Any] = _raw()

    @property
    def image_url(self) -> Optional[str]:
        """The first image's URL, or None."""
        return self.images[0] if self.images else None

    def _media_urls(self) -> List[str]:
        return self.images


@_dataclass
class VideoResult(_Media, _Result):
    """Answer of ``videos.generate()``."""

    id: str = _f("", "id", "request_id")
    video_url: Optional[str] = _f(None, "video_url", "output_url")
    model: str = ""
    provider: str = ""
    cost: float = 0.0
    cache_hit: bool = False
    provider_cost_avoided_micro: Optional[int] = None
    latency_ms: Optional[int] = None
    created_at: Optional[datetime] = None
    raw: Dict[str, Any] = _raw()

    def _media_urls(self) -> List[str]:
        return [self.video_url] if self.video_url else []


_TERMINAL = frozenset({"completed", "failed", "succeeded", "cancelled", "canceled"})


@_dataclass
class RequestStatusResult(_Media, _Result):
    """Status of an async generation (``GET /requests/{id}``); ``output_url`` once completed."""

    request_id: str = _f("", "request_id", "id")
    status: str = "pending"
    media_type: str = "video"  # what visgate-sdk 0.0.3 assumes when the answer has none
    provider: str = ""
    model: str = ""
    output_url: Optional[str] = None
    error_message: Optional[str] = None
    created_at: Optional[str] = None
    completed_at: Optional[str] = None
    raw: Dict[str, Any] = _raw()

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
    tags: List[str] = _f(list)
    cover_image_url: Optional[str] = None
    author: Optional[str] = None
    url: Optional[str] = None
    base_cost_micro: int = 0
    normalized_cost_micro: int = 0
    pricing: Optional[Any] = None
    pricing_unit: Optional[str] = None
    run_count: int = 0
    input_types: List[str] = _f(list)
    output_type: Optional[str] = None
    capabilities: List[str] = _f(list)
    first_seen_at: Optional[str] = None
    provider_created_at: Optional[str] = None
    last_synced_at: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@_dataclass
class FeaturedSection(_Result):
    """A curated section of the catalogue."""

    title: str = ""
    key: str = ""
    models: List[ModelInfo] = _f(list)
    raw: Dict[str, Any] = _raw()


@_dataclass
class ModelsResponse(_Result):
    """Answer of ``models.list()``; ``total_count`` counts all matches, not just this page."""

    models: List[ModelInfo] = _f(list)
    total_count: int = _f(0, "total_count", "total")
    last_updated: Optional[str] = None
    featured: Optional[List[FeaturedSection]] = None
    raw: Dict[str, Any] = _raw()

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
    total_billed_cost: float = _f(0.0, "total_billed_cost", "total_cost_usd")
    total_savings: float = 0.0
    by_provider: Dict[str, Any] = _f(dict, "by_provider", "provider_breakdown")
    by_model: Dict[str, Any] = _f(dict)
    period: str = "month"
    period_start: Optional[datetime] = None
    period_end: Optional[datetime] = None
    raw: Dict[str, Any] = _raw()

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


@_dataclass
class ProviderKeysResponse(_Result):
    """Answer of ``providers.list_keys()``."""

    keys: List[ProviderKeyInfo] = _f(list)
    raw: Dict[str, Any] = _raw()


@_dataclass
class ProviderValidationResult(_Result):
    """Answer of ``providers.validate_key()``."""

    valid: bool = False
    message: str = ""
    raw: Dict[str, Any] = _raw()


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


@_dataclass
class ProviderBalancesResponse(_Result):
    """Answer of ``providers.balances()``."""

    balances: List[ProviderBalanceItem] = _f(list)
    raw: Dict[str, Any] = _raw()


@_dataclass
class AuthInfo(_Result):
    """Who the API key belongs to (``GET /auth/me``)."""

    organization: Dict[str, Any] = _f(dict)
    role: str = ""
    raw: Dict[str, Any] = _raw()

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


@_dataclass
class BillingPricing(_Result):
    """Price list (``GET /billing/pricing``)."""

    last_updated: Optional[str] = None
    pricing: Any = None
    raw: Dict[str, Any] = _raw()


_Generated = TypeVar("_Generated", GenerateResult, ImageResult, VideoResult)


def _result_from_status(cls: Type[_Generated], status_raw: Dict[str, Any]) -> _Generated:
    """The result a completed ``GET /requests/{id}`` answer stands for: ``id`` from ``request_id``,
    the image or video URL from ``output_url``, the status answer as ``raw``. The caller checks
    that the job succeeded."""
    status = RequestStatusResult.from_dict(status_raw)  # a wrong shape names RequestStatusResult.<key>
    answer = dict(status.raw, id=status.request_id)
    if status.output_url:
        answer.setdefault("images", [status.output_url])  # VideoResult reads output_url itself
    result = cls.from_dict(answer)
    result.raw = status.raw
    return result


class _JobHandle:
    """A job accepted with ``wait=False`` (HTTP 202): its ``request_id`` and last known ``status``."""

    def __init__(self, request_id: str, client: Any, status: str = "pending") -> None:
        self.request_id = request_id
        self.status = status
        self._client = client

    def __repr__(self) -> str:
        return "%s(request_id=%r, status=%r)" % (type(self).__name__, self.request_id, self.status)


class GenerationRequest(_JobHandle):
    """A job accepted with ``wait=False``; ``wait()`` polls it to the end."""

    _client: "Client"

    def wait(self, *, timeout: float = _POLL_TIMEOUT, poll_interval: float = _POLL_INTERVAL,
             deadline: Optional[float] = None) -> RequestStatusResult:
        """Poll until completed or failed; ``TimeoutError`` (with ``request_id``) past ``timeout``."""
        result = self._client.requests.get(self.request_id, wait=True, timeout=timeout, poll_interval=poll_interval,
                                           deadline=deadline)
        self.status = result.status
        return result

    def refresh(self) -> RequestStatusResult:
        """Fetch the current status once."""
        result = self._client.requests.get(self.request_id)
        self.status = result.status
        return result


class AsyncGenerationRequest(_JobHandle):
    """A job accepted with ``wait=False`` on the async client; ``await handle.wait()``."""

    _client: "AsyncClient"

    async def wait(self, *, timeout: float = _POLL_TIMEOUT, poll_interval: float = _POLL_INTERVAL,
                   deadline: Optional[float] = None) -> RequestStatusResult:
        """Poll until completed or failed; ``TimeoutError`` (with ``request_id``) past ``timeout``."""
        result = await self._client.requests.get(self.request_id, wait=True, timeout=timeout, poll_interval=poll_interval,
                                                 deadline=deadline)
        self.status = result.status
        return result

    async def refresh(self) -> RequestStatusResult:
        """Fetch the current status once."""
        result = await self._client.requests.get(self.request_id)
        self.status = result.status
        return result


###############################################################################
# Resources ###################################################################
###############################################################################

# Every method takes these per-call options: ``timeout`` bounds one attempt (connect, send, each
# wait for data); ``deadline`` (seconds from now) the whole call, retries and polling included;
# ``headers`` adds request headers (e.g. a W3C ``traceparent``), never credentials.


class _Resource:
    def __init__(self, client: "Client") -> None:
        self._client = client
        self._session: _Session = client._session

    def _call(self, method: str, path: str, timeout: Optional[float], deadline: Optional[float],
              headers: Optional[Mapping[str, str]], **request: Any) -> Any:
        session = self._session
        return session.call(method, path, timeout=timeout, at=session.deadline_for(deadline), headers=headers, **request)


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


def _job_of(data: Any) -> Optional[Tuple[str, str]]:
    """(request_id, status) when the answer accepts a job instead of giving its result."""
    if isinstance(data, dict) and data.get("request_id") and data.get("status") in ("pending", "accepted", "processing"):
        return _as_str(data["request_id"], "request_id"), str(data["status"])
    return None


class _Generating(_Resource):
    """What the three generate calls share: idempotency, ``wait``, and jobs that outlive a deadline."""

    def _generate(self, path: str, body: Dict[str, Any], cls: Type[_Generated], *, query: Optional[Mapping[str, Any]] = None,
                  wait: bool, timeout: Optional[float], deadline: Optional[float], headers: Optional[Mapping[str, str]],
                  idempotency_key: Optional[str], prefer_async: bool = True) -> Union[_Generated, "GenerationRequest"]:
        session = self._session
        at = session.deadline_for(deadline)
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra["Idempotency-Key"] = _check_header_value("Idempotency-Key", _check_str("idempotency_key", idempotency_key) or "")
        if prefer_async and (not wait or at is not None):
            # With a deadline, even wait=True starts a job: its request_id is known before the
            # budget can run out, so a caller cut short can resume it instead of paying again.
            extra["Prefer"] = "respond-async"
        budget = self._client._budget
        budget.check()  # the one place the spending cap is enforced and counted: all generations pass here
        data = session.call("POST", path, query=query, body=body, timeout=timeout, at=at, headers=extra)
        job = _job_of(data)
        if job is None:
            return budget.spend(self._client._attach(cls.from_dict(data)))
        if not wait:
            return GenerationRequest(job[0], self._client, job[1])
        final = self._client.requests._wait(job[0], timeout=_JOB_TIMEOUT, poll_interval=_POLL_INTERVAL, at=at, headers=headers)
        if not final.succeeded:
            raise ProviderError(final.error_message or "generation %s %s" % (job[0], final.status), provider=final.provider or "unknown",
                                error_code="GENERATION_FAILED", request_id=job[0], details={"status": final.status})
        return budget.spend(self._client._attach(_result_from_status(cls, final.raw)))


class Images(_Generating):
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
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
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
        return self._generate("/images/generate", body, ImageResult, query={"include_steps": True} if include_steps else None,
                              wait=wait, timeout=timeout, deadline=deadline, headers=headers, idempotency_key=idempotency_key)


class Videos(_Generating):
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
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
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
        return self._generate("/videos/generate", body, VideoResult, wait=wait, timeout=timeout, deadline=deadline,
                              headers=headers, idempotency_key=idempotency_key)


def _request_path(request_id: str) -> str:
    return "/requests/" + _path_segment("request_id", request_id)


class Requests(_Resource):
    """Status of async generations (``client.requests``)."""

    def get(
        self,
        request_id: str,
        *,
        wait: bool = False,
        timeout: float = _POLL_TIMEOUT,
        poll_interval: float = _POLL_INTERVAL,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> RequestStatusResult:
        """Current status; with ``wait=True`` poll until completed or failed.

        ``timeout`` bounds the polling. Past it (or past ``deadline``), raises ``TimeoutError``
        carrying ``request_id`` and ``last_status``: the job goes on server-side and can be
        polled again later.
        """
        at = self._session.deadline_for(deadline)
        if not wait:
            return self._fetch(request_id, None, at, headers)
        return self._wait(request_id, timeout=timeout, poll_interval=poll_interval, at=at, headers=headers)

    def _wait(self, request_id: str, *, timeout: float, poll_interval: float, at: Optional[float],
              headers: Optional[Mapping[str, str]], on_status: Optional[Callable[[RequestStatusResult], None]] = None
              ) -> RequestStatusResult:
        polling = _Polling(self._session, request_id, timeout, poll_interval, at)
        return cast(RequestStatusResult, polling.run(lambda t: self._fetch(request_id, t, polling.at, headers), on_status))

    def _fetch(self, request_id: str, timeout: Optional[float], at: Optional[float], headers: Optional[Mapping[str, str]]
               ) -> RequestStatusResult:
        try:
            data = self._session.call("GET", _request_path(request_id), timeout=timeout, at=at, headers=headers)
        except TimeoutError as exc:
            if exc.request_id is None:  # the job's id, so that the caller can resume it later
                exc.request_id = request_id
            raise
        return self._client._attach(RequestStatusResult.from_dict(data))


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
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
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
        return ModelsResponse.from_dict(self._call("GET", "/models", timeout, deadline, headers, query=query, auth=False))

    def get(self, model_id: str, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
            headers: Optional[Mapping[str, str]] = None) -> ModelInfo:
        """One model by id (ids contain slashes: ``fal-ai/flux/schnell``)."""
        path = "/models/" + _path_segment("model_id", model_id, keep_slashes=True)
        return ModelInfo.from_dict(self._call("GET", path, timeout, deadline, headers, auth=False))

    def search(self, query: str, *, limit: int = 20, timeout: Optional[float] = None, deadline: Optional[float] = None,
               headers: Optional[Mapping[str, str]] = None) -> ModelsResponse:
        """Search by name, description or author; shorthand for ``list(search=query)``."""
        return self.list(search=_check_filter("query", query), limit=limit, timeout=timeout, deadline=deadline,
                         headers=headers)  # "": all, as in 0.0.3


class Usage(_Resource):
    """Usage, logs and dashboard (``client.usage``)."""

    def get(self, period: str = "month", *, timeout: Optional[float] = None, deadline: Optional[float] = None,
            headers: Optional[Mapping[str, str]] = None) -> UsageSummary:
        """Totals for ``period`` (day, week, month, year; the server decides which it knows)."""
        query = {"period": _check_filter("period", period)}
        return UsageSummary.from_dict(self._call("GET", "/usage", timeout, deadline, headers, query=query))

    def logs(self, *, limit: int = 50, offset: int = 0, timeout: Optional[float] = None, deadline: Optional[float] = None,
             headers: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
        """Recent request log entries, newest first."""
        query = {"limit": _check_int("limit", limit, minimum=1), "offset": _check_int("offset", offset, minimum=0)}
        data = self._call("GET", "/usage/logs", timeout, deadline, headers, query=query)
        logs = data.get("logs", []) if isinstance(data, dict) else data
        return [_as_dict(entry, "usage log entry") for entry in _as_list(logs, "logs")]

    def dashboard(self, period: str = "month", *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                  headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """Dashboard figures for ``period``, as the API sends them."""
        query = {"period": _check_filter("period", period)}
        return _as_dict(self._call("GET", "/dashboard", timeout, deadline, headers, query=query), "dashboard")


class Providers(_Resource):
    """BYOK provider keys and balances (``client.providers``)."""

    def list_keys(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                  headers: Optional[Mapping[str, str]] = None) -> ProviderKeysResponse:
        """Stored provider keys, masked."""
        return ProviderKeysResponse.from_dict(self._call("GET", "/providers/keys", timeout, deadline, headers))

    def set_key(self, provider: str, api_key: str, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                headers: Optional[Mapping[str, str]] = None) -> ProviderKeyInfo:
        """Store (or replace) your key for ``provider``."""
        body = {"provider": _check_str("provider", provider), "api_key": _check_str("api_key", api_key)}
        return ProviderKeyInfo.from_dict(self._call("PUT", "/providers/keys", timeout, deadline, headers, body=body))

    def delete_key(self, provider: str, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                   headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """Delete your stored key for ``provider``."""
        path = "/providers/keys/" + _path_segment("provider", provider)
        data = self._call("DELETE", path, timeout, deadline, headers)
        return _as_dict(data if data is not None else {}, "delete_key")

    def validate_key(self, provider: str, api_key: str, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                     headers: Optional[Mapping[str, str]] = None) -> ProviderValidationResult:
        """Ask the provider whether ``api_key`` works, without storing it."""
        body = {"provider": _check_str("provider", provider), "api_key": _check_str("api_key", api_key)}
        return ProviderValidationResult.from_dict(self._call("POST", "/providers/validate", timeout, deadline, headers, body=body))

    def balances(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                 headers: Optional[Mapping[str, str]] = None) -> ProviderBalancesResponse:
        """Each provider's balance and limit."""
        return ProviderBalancesResponse.from_dict(self._call("GET", "/providers/balances", timeout, deadline, headers))


class Auth(_Resource):
    """Identity of the API key (``client.auth``)."""

    def me(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
           headers: Optional[Mapping[str, str]] = None) -> AuthInfo:
        """The organization and role behind the key."""
        return AuthInfo.from_dict(self._call("GET", "/auth/me", timeout, deadline, headers))


class ApiKeys(_Resource):
    """The organization's API keys (``client.api_keys``)."""

    def list(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
             headers: Optional[Mapping[str, str]] = None) -> List[ApiKeyInfo]:
        """All API keys, by prefix."""
        data = self._call("GET", "/api-keys", timeout, deadline, headers)
        items = data.get("keys", data.get("api_keys", [])) if isinstance(data, dict) else data
        return _list_of(ApiKeyInfo)(items, "api_keys")


class Billing(_Resource):
    """Read-only billing (``client.billing``)."""

    def stats(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
              headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """Billing statistics, as the API sends them."""
        return _as_dict(self._call("GET", "/billing/stats", timeout, deadline, headers), "billing stats")

    def info(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
             headers: Optional[Mapping[str, str]] = None) -> BillingInfo:
        """Account, tier, balance and budget."""
        return BillingInfo.from_dict(self._call("GET", "/billing/info", timeout, deadline, headers))

    def pricing(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
                headers: Optional[Mapping[str, str]] = None) -> BillingPricing:
        """The current price list."""
        return BillingPricing.from_dict(self._call("GET", "/billing/pricing", timeout, deadline, headers))


# -- async mirrors: the sync method runs on the client's thread pool ------------


def _to_async(method: "Callable[Concatenate[Any, _P], _R]") -> "Callable[Concatenate[Any, _P], Awaitable[_R]]":
    name = method.__name__

    @_functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await self._run(getattr(self._sync, name), *args, **kwargs)
        if isinstance(result, GenerationRequest):  # a job handle whose wait() can be awaited
            return AsyncGenerationRequest(result.request_id, self._client, result.status)
        return result

    return cast("Callable[Concatenate[Any, _P], Awaitable[_R]]", call)


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
        generate = _to_async(Images.generate)


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
        generate = _to_async(Videos.generate)


class AsyncRequests(_AsyncResource[Requests]):
    """Status of async generations; polling sleeps on the event loop, not a thread."""

    async def get(
        self,
        request_id: str,
        *,
        wait: bool = False,
        timeout: float = _POLL_TIMEOUT,
        poll_interval: float = _POLL_INTERVAL,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> RequestStatusResult:
        """Current status; with ``wait=True`` poll until completed or failed (see ``Requests.get``)."""
        sync = self._sync
        at = sync._session.deadline_for(deadline)
        if not wait:
            return await self._run(sync._fetch, request_id, None, at, headers)
        import asyncio

        polling = _Polling(sync._session, request_id, timeout, poll_interval, at)
        steps = polling.steps()
        reply: Any = None
        try:
            while True:
                kind, value = steps.send(reply)
                if kind == "sleep":
                    await asyncio.sleep(value or 0.0)
                    reply = None
                else:
                    reply = await self._run(sync._fetch, request_id, value, polling.at, headers)
        except StopIteration as stop:
            return cast(RequestStatusResult, stop.value)


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
# Batches and the spending cap ################################################
###############################################################################


def _cost_of(outcome: Any) -> float:
    """What a result reports it cost (a cache hit or an error: nothing)."""
    if isinstance(outcome, BaseException) or getattr(outcome, "cache_hit", False):
        return 0.0
    cost = getattr(outcome, "cost", 0.0)
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost > 0 else 0.0


def _budget_error(what: str, limit: float, spent: float) -> BudgetExceededError:
    return BudgetExceededError("%s $%.4f is spent ($%.4f so far); nothing was sent" % (what, limit, spent),
                               details={"budget_usd": limit, "spent_usd": round(spent, 6)})


class _Budget:
    """A spending cap: adds up what results report they cost; refuses calls once it is spent.

    Calls already in flight still land, so the total may pass the limit by what they cost.
    """

    def __init__(self, limit: Optional[float]) -> None:
        self.limit = None if limit is None else _check_number("budget_usd", limit, minimum=0.0)
        self.spent = 0.0
        self._lock = _thread.allocate_lock()
        _FORK_SENSITIVE.add(self)

    def _after_fork(self) -> None:
        self._lock = _thread.allocate_lock()  # another thread may have held it at the fork

    def check(self) -> None:
        """Raise ``BudgetExceededError`` when nothing more may be spent."""
        if self.limit is not None:
            with self._lock:
                spent = self.spent
            if spent >= self.limit:
                raise _budget_error("budget_usd", self.limit, spent)

    def spend(self, result: _T) -> _T:
        cost = _cost_of(result)
        if cost:
            with self._lock:
                self.spent += cost
        return result

    def remaining(self) -> Optional[float]:
        with self._lock:
            return None if self.limit is None else max(0.0, self.limit - self.spent)


# -- one batch ------------------------------------------------------------------------

_BATCH_KINDS = ("generate", "image", "video")
_BATCH_VIDEO_MODEL = "fal-ai/flux-pro/video"  # the CLI's default video model too
# What an item may set, per kind: the generation arguments. The per-call options are the batch's,
# and the Idempotency-Key above all is derived, so that a rerun sends the same keys.
_BATCH_ARGS = {
    "generate": frozenset({"prompt", "model", "params"}),
    "image": frozenset({"model", "prompt", "negative_prompt", "width", "height", "num_images", "seed", "params", "include_steps"}),
    "video": frozenset({"model", "prompt", "image_url", "duration_seconds", "skip_gcs_upload", "params"}),
}


def _batch_key(batch_id: str, index: int, kind: str, args: Dict[str, Any]) -> str:
    """The item's Idempotency-Key: the same batch id, index and arguments give the same key."""
    import hashlib
    import json

    try:
        canonical = json.dumps({"kind": kind, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError("items[%d] cannot be sent as JSON: %s" % (index, exc), field="items") from None
    return "vg-batch-" + hashlib.sha256(("%s|%d|%s" % (batch_id, index, canonical)).encode("utf-8")).hexdigest()[:32]


def _batch_items(items: Any, kind: str, model: Optional[str]) -> List[Dict[str, Any]]:
    """Each item as the keyword arguments of its call; a malformed item is refused before anything is sent."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise ValidationError("items must be a list of prompts (str) or dicts of arguments", field="items")
    allowed = _BATCH_ARGS[kind]
    default_model = model or (_BATCH_VIDEO_MODEL if kind == "video" else DEFAULT_MODEL)
    planned = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            args: Dict[str, Any] = {"prompt": item}
        elif isinstance(item, Mapping):
            args = dict(item)
        else:
            raise ValidationError("items[%d] must be a prompt (str) or a dict, got %s" % (index, type(item).__name__), field="items")
        unknown = sorted(str(name) for name in args if name not in allowed)
        if unknown or "prompt" not in args:
            problem = "has unknown arguments %s" % ", ".join(unknown) if unknown else "has no prompt"
            raise ValidationError("items[%d] %s for kind=%r (it may set: %s)" % (index, problem, kind, ", ".join(sorted(allowed))),
                                  field="items")
        args.setdefault("model", default_model)
        planned.append(args)
    return planned


def _run_batch_item(client: "Client", kind: str, args: Dict[str, Any], key: str, options: Dict[str, Any]) -> Any:
    """Run one item, here or in a worker; its typed error is returned, not raised, to travel back as a value."""
    try:
        if kind == "generate":
            return client.generate(idempotency_key=key, **args, **options)
        resource: Any = client.images if kind == "image" else client.videos
        return resource.generate(idempotency_key=key, wait=True, **args, **options)
    except VisgateError as exc:
        return exc


def _report_landed(landed: "queue.SimpleQueue[int]", index: int, _future: Any) -> None:
    landed.put(index)  # from whichever thread finished the future: the coordinator picks it up


def _not_run(index: int, why: str) -> TimeoutError:
    return TimeoutError("item %d was not run: %s" % (index, why), error_code="NOT_RUN")


def _was_not_run(error: VisgateError) -> bool:
    return isinstance(error, BudgetExceededError) or error.error_code == "NOT_RUN"


class BatchResult(List[Any]):
    """What ``generate_many`` returns: a list with one entry per item, in input order, the result
    or the ``VisgateError`` for that item; plus ``batch_id`` (to rerun it) and counts by outcome."""

    def __init__(self, batch_id: str, size: int) -> None:
        super().__init__([None] * size)
        self.batch_id = batch_id

    @property
    def succeeded(self) -> List[int]:
        """Indices of the items that gave a result."""
        return [i for i, entry in enumerate(self) if entry is not None and not isinstance(entry, VisgateError)]

    @property
    def failed(self) -> List[int]:
        """Indices of the items that were sent and failed."""
        return [i for i, entry in enumerate(self) if isinstance(entry, VisgateError) and not _was_not_run(entry)]

    @property
    def not_run(self) -> List[int]:
        """Indices of the items never sent: the deadline passed (``NOT_RUN``) or the budget was spent."""
        return [i for i, entry in enumerate(self) if isinstance(entry, VisgateError) and _was_not_run(entry)]

    @property
    def cost(self) -> float:
        """What the results report they cost, in USD."""
        return sum(_cost_of(entry) for entry in self)

    def __repr__(self) -> str:
        return "BatchResult(batch_id=%r, items=%d, succeeded=%d, failed=%d, not_run=%d)" % (
            self.batch_id, len(self), len(self.succeeded), len(self.failed), len(self.not_run))


def _new_event() -> "threading.Event":
    import threading

    return threading.Event()


def _batch_deadline(deadline: Optional[float]) -> Optional[float]:
    """When the batch must end: its own ``deadline`` or a ``client.deadline()`` scope, the nearer."""
    own = None if deadline is None else _time.monotonic() + _check_number("deadline", deadline)
    scoped = _DEADLINE.get()
    if own is None or (scoped is not None and scoped < own):
        return scoped
    return own


def _check_executor(client: "Client", executor: Any) -> None:
    if executor is None:
        return
    if not callable(getattr(executor, "submit", None)):
        raise ValidationError("executor must be a concurrent.futures.Executor, got %s" % type(executor).__name__, field="executor")
    from concurrent.futures import ThreadPoolExecutor

    if not isinstance(executor, ThreadPoolExecutor):
        client._config()  # the client travels pickled: one that cannot fails now, before anything is sent


class BatchIterator:
    """``client.iter_generate_many(...)``: yields ``(index, result_or_error)`` as each item lands.

    ``batch_id`` is known at once; ``result`` is the ``BatchResult``, complete when the iteration
    ends. ``close()`` (or leaving a ``with`` block) submits nothing more.
    """

    def __init__(self, client: "Client", items: Iterable[Union[str, Mapping[str, Any]]], *, kind: str, model: Optional[str],
                 max_concurrency: int, batch_id: Optional[str], budget_usd: Optional[float], deadline: Optional[float],
                 timeout: Optional[float], headers: Optional[Mapping[str, str]], executor: Any, skip: Iterable[int] = ()) -> None:
        self._kind = _check_choice("kind", kind, _BATCH_KINDS)
        self._args = _batch_items(items, self._kind, _check_str("model", model, optional=True))
        self.batch_id: str = _check_str("batch_id", batch_id, optional=True) or _os.urandom(16).hex()
        self._keys = [_batch_key(self.batch_id, i, self._kind, args) for i, args in enumerate(self._args)]
        self.result = BatchResult(self.batch_id, len(self._args))
        self._client = client
        self._max = _check_int("max_concurrency", max_concurrency, minimum=1)
        self._budget = None if budget_usd is None else _check_number("budget_usd", budget_usd, minimum=0.0)
        self._spent = 0.0
        self._at = _batch_deadline(deadline)
        self._expired = False
        self._stop = _new_event()  # set when the iteration ends: items still in flight stop at their next safe point
        self._options: Dict[str, Any] = {"timeout": _check_timeout(timeout), "headers": _check_headers("headers", headers)}
        _check_executor(client, executor)
        self._executor = executor
        self._skip = frozenset(_check_int("skip", i, minimum=0) for i in skip)
        self._steps = self._run()

    def __iter__(self) -> "BatchIterator":
        return self

    def __next__(self) -> Tuple[int, Any]:
        return next(self._steps)

    def close(self) -> None:
        """Stop: submit nothing more, cancel what an executor has not started yet."""
        self._steps.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "BatchIterator(batch_id=%r, kind=%r, items=%d)" % (self.batch_id, self._kind, len(self._args))

    def _run(self) -> "Generator[Tuple[int, Any], None, None]":
        import queue
        from concurrent.futures import ThreadPoolExecutor

        pool = None
        runner = self._executor
        if runner is None:  # one pool per batch: no thread per item
            runner = pool = ThreadPoolExecutor(min(self._max, max(1, len(self._args))), thread_name_prefix="visgate-batch")
        landed: "queue.SimpleQueue[int]" = queue.SimpleQueue()
        in_flight: Dict[int, "concurrent.futures.Future[Any]"] = {}
        try:
            for index in range(len(self._args)):
                if index in self._skip:
                    continue
                refusal = self._refusal(index)
                while refusal is None and len(in_flight) >= self._max:
                    yield from self._land_next(landed, in_flight)
                    refusal = self._refusal(index)
                if refusal is not None:
                    yield self._land(index, refusal)
                    continue
                in_flight[index] = future = self._submit(runner, index, isinstance(runner, ThreadPoolExecutor))
                future.add_done_callback(_functools.partial(_report_landed, landed, index))
            while in_flight:
                yield from self._land_next(landed, in_flight)
        finally:
            self._stop.set()
            for future in in_flight.values():
                future.cancel()
            if pool is not None:
                pool.shutdown(wait=False)

    def _refusal(self, index: int) -> Optional[VisgateError]:
        """Why item ``index`` may not start now (deadline, budget), or None. Raises when cancelled."""
        cancelled = _CANCELLED.get()
        if cancelled is not None and cancelled.is_set():
            raise ConnectionError("the batch was cancelled", error_code="CANCELLED")
        if self._at is not None and _time.monotonic() >= self._at:
            return _not_run(index, "the batch deadline passed before it started")
        if self._budget is not None and self._spent >= self._budget:
            return _budget_error("the batch's budget_usd", self._budget, self._spent)
        try:
            self._client._budget.check()
        except BudgetExceededError as exc:
            return exc
        return None

    def _submit(self, runner: Any, index: int, threads: bool) -> "concurrent.futures.Future[Any]":
        options = dict(self._options)
        if self._at is not None:  # seconds, not a monotonic time: it may run in another process
            left, own = self._at - _time.monotonic(), self._client._session.deadline
            options["deadline"] = left if own is None else min(left, own)
        call = (self._client, self._kind, self._args[index], self._keys[index], options)
        if threads:  # deadline scopes and cancellation (an async caller's, or the batch's own) follow the item
            context = _contextvars.copy_context()
            if context.get(_CANCELLED) is None:
                context.run(_CANCELLED.set, self._stop)
            return cast("concurrent.futures.Future[Any]", runner.submit(context.run, _run_batch_item, *call))
        return cast("concurrent.futures.Future[Any]", runner.submit(_run_batch_item, *call))

    def _land_next(self, landed: "queue.SimpleQueue[int]", in_flight: Dict[int, "concurrent.futures.Future[Any]"]
                   ) -> "Generator[Tuple[int, Any], None, None]":
        """Yield the next item to land; at the deadline, cancel those an executor has not started."""
        import queue

        wait = None if self._at is None or self._expired else max(0.0, self._at - _time.monotonic())
        try:
            index = landed.get(timeout=wait)
        except queue.Empty:
            self._expired = True
            for future in in_flight.values():
                future.cancel()  # succeeds only for items still queued: they were never sent
            return
        yield self._land(index, self._outcome(index, in_flight.pop(index)))

    def _outcome(self, index: int, future: "concurrent.futures.Future[Any]") -> Any:
        if future.cancelled():
            return _not_run(index, "the batch deadline passed before it started")
        error = future.exception()
        if error is None:
            return future.result()
        if isinstance(error, VisgateError):
            return error
        return VisgateError("item %d failed in the executor: %s: %s" % (index, type(error).__name__, error), error_code="EXECUTOR_ERROR")

    def _land(self, index: int, outcome: Any) -> Tuple[int, Any]:
        if isinstance(outcome, _Media) and outcome._client is None:
            # From a worker's copy of the client: count it here too, and let save() use this client.
            self._client._budget.spend(self._client._attach(outcome))
        self._spent += _cost_of(outcome)
        self.result[index] = outcome
        return index, outcome


class AsyncBatchIterator:
    """``await aclient.iter_generate_many(...)``: ``async for index, outcome in it`` as items land."""

    def __init__(self, client: "AsyncClient", batch: BatchIterator) -> None:
        self._client = client
        self._batch = batch
        self.batch_id = batch.batch_id
        self.result = batch.result

    def __aiter__(self) -> "AsyncBatchIterator":
        return self

    async def __anext__(self) -> Tuple[int, Any]:
        # next() with a default: a StopIteration cannot travel through an asyncio future.
        landed: Optional[Tuple[int, Any]] = await self._client._run(next, self._batch, None)
        if landed is None:
            raise StopAsyncIteration
        return landed

    async def aclose(self) -> None:
        """Stop: submit nothing more."""
        await self._client._run(self._batch.close)

    def __repr__(self) -> str:
        return "Async" + repr(self._batch)


###############################################################################
# Doctor: is this machine set up to reach the API? ############################
###############################################################################


class DoctorCheck:
    """One check of ``client.doctor()``: ``name``, ``status`` ("pass", "fail" or "skip"),
    ``detail`` (what was found) and ``hint`` (what to do about it). Never holds a key."""

    __slots__ = ("name", "title", "status", "detail", "hint")

    def __init__(self, name: str, title: str, status: str, detail: str, hint: str = "") -> None:
        self.name, self.title, self.status, self.detail, self.hint = name, title, status, detail, hint

    @property
    def ok(self) -> bool:
        """True when the check passed."""
        return self.status == "pass"

    def as_dict(self) -> Dict[str, Any]:
        """The check as JSON-able data."""
        return {"name": self.name, "title": self.title, "status": self.status, "ok": self.ok, "detail": self.detail, "hint": self.hint}

    def __repr__(self) -> str:
        return "DoctorCheck(%r, %r, %r)" % (self.name, self.status, self.detail)


class DoctorReport:
    """What ``client.doctor()`` found: ``checks`` in order; ``ok`` when none failed.
    ``str(report)`` is the text ``visgate doctor`` prints, ``as_dict()`` its ``--json``."""

    def __init__(self, checks: List[DoctorCheck]) -> None:
        self.checks = checks

    @property
    def ok(self) -> bool:
        """True when no check failed (a check that does not apply is skipped, not failed)."""
        return not any(check.status == "fail" for check in self.checks)

    def __iter__(self) -> Iterator[DoctorCheck]:
        yield from self.checks

    def __getitem__(self, name: str) -> DoctorCheck:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def as_dict(self) -> Dict[str, Any]:
        """The report as JSON-able data."""
        return {"ok": self.ok, "version": __version__, "checks": [check.as_dict() for check in self.checks]}

    def __str__(self) -> str:
        lines = ["visgate doctor (visgate-sdk %s)" % __version__]
        for check in self.checks:
            lines.append("  %-4s  %-12s %s" % (check.status.upper(), check.title, check.detail))
            if check.hint:
                lines.append("  %-4s  %-12s hint: %s" % ("", "", check.hint))
        failed = sum(check.status == "fail" for check in self.checks)
        lines.append("all checks passed" if not failed else "%d check%s failed" % (failed, "s" * (failed != 1)))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return "DoctorReport(ok=%r, checks=%r)" % (self.ok, self.checks)


class _DoctorFailed(Exception):
    """A check failed: ``detail`` says what was found, ``hint`` what to do."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.detail, self.hint = detail, hint


class _DoctorSkip(Exception):
    """The check does not apply here (e.g. TLS for an http base URL)."""


class _DoctorNote(Exception):
    """The check passed, with a caveat worth a hint (plain http, verification disabled)."""

    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail, self.hint = detail, hint


class _Doctor:
    """The state the checks share: what the earlier ones found is what the later ones use."""

    def __init__(self, session: Optional[_Session], key: str, setup_error: Optional[str], timeout: float) -> None:
        self.session, self.key, self.setup_error, self.timeout = session, key, setup_error, timeout
        self.proxy: Optional[str] = None
        self.hop: Optional[_Origin] = None  # the first host we connect to: the proxy, or the API
        self.addresses: List[Any] = []

    @property
    def origin(self) -> _Origin:
        assert self.session is not None
        return self.session.origin

    def at(self) -> float:
        return _time.monotonic() + self.timeout


def _doctor_key(doc: _Doctor) -> str:
    key = doc.key
    if not key:
        raise _DoctorFailed("no API key", "set VISGATE_API_KEY, or pass api_key= (--api-key on the command line)")
    if any(c.isspace() for c in key) or any(c < " " or c == "\x7f" for c in key):
        raise _DoctorFailed("the key (%d characters) has whitespace or control characters inside" % len(key),
                            "copy the key again from the visgate dashboard: a space or line break got into it")
    if not key.startswith("vg-"):
        raise _DoctorFailed("the key (%d characters) does not start with \"vg-\"" % len(key),
                            "visgate keys start with vg-; provider keys go in fal_key=, replicate_key= or runway_key=")
    return "present: %d characters, starts with \"vg-\"" % len(key)


def _doctor_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _doctor_base_url(doc: _Doctor) -> str:
    if doc.session is None:
        raise _DoctorFailed("cannot configure the client: %s" % doc.setup_error,
                            "check VISGATE_BASE_URL / --base-url (an absolute http(s) URL such as %s)" % DEFAULT_BASE_URL)
    if doc.origin.scheme == "http" and not _doctor_loopback(doc.origin.host):
        # Allowed (an emulator in another container), but worth saying.
        raise _DoctorNote(doc.session.base_url, "plain http: the key travels unencrypted; use https:// beyond a local test setup")
    return doc.session.base_url


def _doctor_proxy(doc: _Doctor) -> str:
    assert doc.session is not None
    env, origin = doc.session.transport._env, doc.origin
    names = [v for base in (origin.scheme + "_proxy", "all_proxy") for v in (base, base.upper()) if env.get(v)]
    proxy = _proxy_for(origin, env)
    if proxy is None:
        doc.hop = origin
        if names:
            return "%s is set, but NO_PROXY covers %s: connecting directly" % (names[0], origin.host)
        return "none: connecting directly" + ("" if doc.session.transport._env else " (trust_env=False)")
    try:
        hop, _path = _split_proxy(proxy)
    except ConnectionError as exc:
        raise _DoctorFailed("%s is set but unusable: %s" % (names[0], exc.message), "fix or unset %s" % names[0]) from None
    from urllib.parse import urlsplit

    doc.proxy, doc.hop = proxy, hop
    auth = " with credentials" if urlsplit(proxy).username is not None else ""  # never the password itself
    how = "CONNECT tunnel" if origin.scheme == "https" else "forwarding"
    return "%s://%s%s from %s (%s); NO_PROXY does not cover %s" % (hop.scheme, hop.netloc, auth, names[0], how, origin.host)


def _doctor_ca(doc: _Doctor) -> str:
    import ssl

    assert doc.session is not None
    transport = doc.session.transport
    if doc.origin.scheme != "https":
        raise _DoctorSkip("not used: the base URL is http")
    verify, env = transport._verify, transport._env
    if verify is False:
        raise _DoctorNote("verification DISABLED (verify=False)", "any certificate is accepted: fine for a local test server only")
    try:
        context = transport._context()
    except ValidationError as exc:
        raise _DoctorFailed(exc.message, "point verify= (or SSL_CERT_FILE) at a readable PEM bundle") from None
    count = context.cert_store_stats().get("x509_ca", 0)
    if isinstance(verify, ssl.SSLContext):
        return "the ssl.SSLContext passed as verify= (%d CA certificates loaded)" % count
    if isinstance(verify, str):
        return "%s (verify=, %d CA certificates)" % (verify, count)
    if env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"):
        where = ", ".join("%s=%s" % (n, env[n]) for n in ("SSL_CERT_FILE", "SSL_CERT_DIR") if env.get(n))
        return "%s (%d CA certificates)" % (where, count)
    paths = ssl.get_default_verify_paths()
    return "system default: %s (%d CA certificates loaded)" % (paths.cafile or paths.capath or "OpenSSL's built-in paths", count)


def _doctor_dns(doc: _Doctor) -> str:
    import socket
    import threading

    hop = doc.hop
    assert hop is not None
    found: Dict[str, Any] = {}

    def resolve() -> None:  # getaddrinfo has no timeout of its own: wait for it on a thread
        try:
            found["addresses"] = socket.getaddrinfo(hop.host, hop.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    thread = threading.Thread(target=resolve, daemon=True, name="visgate-doctor-dns")
    thread.start()
    thread.join(doc.timeout)
    if "addresses" not in found:
        why = "timed out after %gs" % doc.timeout if thread.is_alive() else str(found.get("error"))
        raise _DoctorFailed("cannot resolve %s: %s" % (hop.host, why), "check the host name, your DNS server or VPN")
    doc.addresses = found["addresses"]
    shown = sorted({str(info[4][0]) for info in doc.addresses})
    tail = " (the proxy resolves %s)" % doc.origin.host if doc.proxy else ""
    return "%s -> %s%s" % (hop.host, ", ".join(shown), tail)


def _doctor_socket(doc: _Doctor) -> Tuple[Any, float]:
    """A TCP connection to the first address that answers, and how long connecting took."""
    import socket

    last: Optional[OSError] = None
    for family, kind, proto, _name, address in doc.addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(doc.timeout)
        started = _time.monotonic()
        try:
            sock.connect(address)
            return sock, _time.monotonic() - started
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None
    raise last


def _doctor_tcp(doc: _Doctor) -> str:
    hop = doc.hop
    assert hop is not None
    try:
        sock, took = _doctor_socket(doc)
    except OSError as exc:
        error = _classify_os_error(exc, hop).error
        what = "the proxy" if doc.proxy else "the API"
        hint = ("nothing listens there: check the port in the base URL, or that %s is running" % what
                if isinstance(exc, ConnectionRefusedError) else "a firewall may drop the traffic; check the host, port and proxy")
        raise _DoctorFailed(error.message, hint) from None
    sock.close()
    return "%s:%d in %.1f ms%s" % (hop.host, hop.port, took * 1000, " (the proxy)" if doc.proxy else "")


def _doctor_tunnel(doc: _Doctor, sock: Any) -> None:
    """Ask the proxy for a CONNECT tunnel to the API, as the client does."""
    origin = doc.origin
    head = "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n" % (origin.host, origin.port, origin.host, origin.port)
    for name, value in _proxy_auth_header(doc.proxy or "").items():
        head += "%s: %s\r\n" % (name, value)
    sock.sendall((head + "\r\n").encode("latin-1"))
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    status = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if status.split(" ")[1:2] != ["200"]:
        hint = "check the proxy's user and password" if " 407" in status else "the proxy refused the tunnel"
        raise _DoctorFailed("the proxy answered the CONNECT with %r" % status[:80], hint)


_TLS_UNTRUSTED_HINT = ("the certificate is not trusted by the CA bundle above: pass verify='/path/to/ca.pem' or set "
                       "SSL_CERT_FILE (a company proxy that inspects TLS has its own CA)")


def _doctor_tls(doc: _Doctor) -> str:
    assert doc.session is not None
    if doc.origin.scheme != "https":
        raise _DoctorSkip("the base URL is http")
    if doc.proxy and doc.hop is not None and doc.hop.scheme == "https":
        raise _DoctorSkip("not checked through an https:// proxy")
    sock = None
    try:
        sock, _took = _doctor_socket(doc)
        if doc.proxy:
            _doctor_tunnel(doc, sock)
        tls = doc.session.transport._context().wrap_socket(sock, server_hostname=doc.origin.host)
        version, cert = tls.version(), tls.getpeercert()
        tls.close()
    except OSError as exc:
        error = _classify_os_error(exc, doc.origin).error
        untrusted = "verification failed" in error.message
        raise _DoctorFailed(error.message, _TLS_UNTRUSTED_HINT if untrusted else "the server did not complete a TLS "
                            "handshake: does this port speak https? Is a proxy in the way?") from None
    finally:
        if sock is not None:
            sock.close()
    issuer: Dict[str, str] = {}
    for rdn in (cert or {}).get("issuer", ()):  # ((("organizationName", "..."),), ...)
        for pair in rdn:
            issuer[str(pair[0])] = str(pair[1])
    shown = issuer.get("organizationName") or issuer.get("commonName") or "not checked (verify=False)"
    return "%s, certificate issued by %s" % (version, shown)


def _doctor_clock(doc: _Doctor) -> str:
    from email.utils import parsedate_to_datetime

    session = doc.session
    assert session is not None
    call = _Call("GET", session.origin, session.prefix + "/health", session.headers_for(False, None), None, doc.timeout,
                 doc.at(), session.named_secrets())
    try:
        date = session.exchange(call).headers.get("date")
    except VisgateError as exc:
        raise _DoctorFailed("no answer to read the server's clock from: %s" % exc.message) from None
    if not date:
        raise _DoctorSkip("the server sent no Date header")
    try:
        skew = parsedate_to_datetime(date).timestamp() - _time.time()
    except (TypeError, ValueError):
        raise _DoctorSkip("the server's Date header is not a date") from None
    if abs(skew) > 30:
        raise _DoctorFailed("this machine's clock is %.0f s %s the server's" % (abs(skew), "behind" if skew > 0 else "ahead of"),
                            "sync the clock (NTP): signed media URLs and retry timing depend on it")
    return "within %.0f s of the server's Date header" % max(abs(skew), 1)


def _doctor_health(doc: _Doctor) -> str:
    assert doc.session is not None
    try:
        health = _as_dict(doc.session.call("GET", "/health", auth=False, timeout=doc.timeout, at=doc.at()), "health")
    except VisgateError as exc:
        raise _DoctorFailed(str(exc), "the API (or something in front of it) is not answering normally; "
                            "check the base URL, or try again later") from None
    return "status %s, version %s" % (health.get("status", "?"), health.get("version", "?"))


def _doctor_auth(doc: _Doctor) -> str:
    assert doc.session is not None
    try:
        info = AuthInfo.from_dict(doc.session.call("GET", "/auth/me", timeout=doc.timeout, at=doc.at()))
    except (AuthenticationError, PermissionDeniedError) as exc:
        raise _DoctorFailed("the key was rejected: %s" % exc, "create or copy a current key in the visgate dashboard "
                            "(API keys); a revoked or test-environment key is refused") from None
    except VisgateError as exc:
        raise _DoctorFailed(str(exc), "the key could not be checked; try again, or look at the health check above") from None
    org = info.organization_name or info.organization_id or "?"
    return "key accepted: organization %s, role %s" % (org, info.role or "?")


# name, title, check, and the checks it needs to have passed
_DOCTOR_CHECKS: Tuple[Tuple[str, str, Callable[[_Doctor], str], Tuple[str, ...]], ...] = (
    ("api_key", "API key", _doctor_key, ()),
    ("base_url", "base URL", _doctor_base_url, ()),
    ("proxy", "proxy", _doctor_proxy, ("base_url",)),
    ("ca_bundle", "CA bundle", _doctor_ca, ("proxy",)),
    ("dns", "DNS", _doctor_dns, ("proxy",)),
    ("tcp", "TCP connect", _doctor_tcp, ("dns",)),
    ("tls", "TLS", _doctor_tls, ("tcp", "ca_bundle")),
    ("clock", "clock", _doctor_clock, ("tls",)),
    ("health", "health", _doctor_health, ("tls",)),
    ("auth", "auth", _doctor_auth, ("tls", "api_key")),
)


def _doctor_run(session: Optional[_Session], key: str, setup_error: Optional[str] = None, timeout: float = 5.0) -> DoctorReport:
    """Run the checks in order; a check whose prerequisite did not pass is skipped, saying why."""
    doc = _Doctor(session, key, setup_error, _check_number("timeout", timeout, positive=True))
    secrets = tuple(s for s in (key,) + (session.secrets() if session else ()) if s)
    done: Dict[str, DoctorCheck] = {}
    usable: Dict[str, bool] = {}  # passed, or does not apply here (TLS for http): later checks may go on
    cause: Dict[str, str] = {}  # the failed check that a skipped one is waiting for, however far back
    for name, title, check, needs in _DOCTOR_CHECKS:
        blocked = [n for n in needs if not usable[n]]
        status, hint = "skip", ""
        if blocked:
            cause[name] = cause.get(blocked[0], done[blocked[0]].title)
            detail = "skipped: the %s check did not pass" % cause[name]
        else:
            try:
                status, detail = "pass", check(doc)
            except _DoctorSkip as skip:
                detail = str(skip)
            except _DoctorNote as note:
                status, detail, hint = "pass", note.detail, note.hint
            except _DoctorFailed as failed:
                status, detail, hint = "fail", failed.detail, failed.hint
            except (VisgateError, OSError) as exc:  # unforeseen: reported as this check's failure, never a crash
                status, detail = "fail", "%s: %s" % (type(exc).__name__, exc)
        usable[name] = status == "pass" or (status == "skip" and not blocked)
        # Belt and braces: whatever a server or an OS error said, no key reaches the report; one line each.
        done[name] = DoctorCheck(name, title, status, " ".join(_redact(detail, secrets).split()), _redact(hint, secrets))
    return DoctorReport(list(done.values()))


###############################################################################
# Clients #####################################################################
###############################################################################


def _api_key_from(api_key: Optional[str]) -> str:
    key = api_key or _os.environ.get("VISGATE_API_KEY", "")  # "" too falls back, as in 0.0.3
    return _check_header_value("api_key", key.strip() if isinstance(key, str) else key)


def _check_verify(verify: Any) -> Any:
    if verify is not True and verify is not False and not isinstance(verify, str) and type(verify).__name__ != "SSLContext":
        raise ValidationError("verify must be True, False, a CA bundle path or an ssl.SSLContext", field="verify")
    return verify


# Clients rebuilt from a pickle in this process, by the original's token: a worker reuses one
# client (its connections, its spending tally) for every item it runs. Bounded; never closed here,
# since an item may still be using an evicted one.
class _Rebuilt:
    def __init__(self) -> None:
        self.clients: Dict[str, Tuple[Dict[str, Any], "Client"]] = {}
        self.lock = _thread.allocate_lock()
        _FORK_SENSITIVE.add(self)

    def _after_fork(self) -> None:
        self.lock = _thread.allocate_lock()  # another thread may have held it at the fork


_REBUILT = _Rebuilt()


class Client:
    """Synchronous visgate client; safe to share between threads.

    ``api_key`` defaults to ``$VISGATE_API_KEY`` and ``base_url`` to ``$VISGATE_BASE_URL``
    or the public API. ``timeout`` bounds each attempt (None: no limit); ``deadline`` (seconds)
    each whole call, retries and polling included. ``max_retries`` is a count or a ``Retry``.
    ``verify`` is True, a CA bundle path, or an ``ssl.SSLContext``. ``trust_env`` reads
    ``HTTPS_PROXY``/``NO_PROXY``/``SSL_CERT_FILE``. ``hooks`` maps "request", "response",
    "retry" and "error" to callables given a ``HookEvent``. ``budget_usd`` caps what generations
    may cost (see ``spent_usd``): past it they raise ``BudgetExceededError`` before sending.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        max_retries: Union[int, Retry] = DEFAULT_MAX_RETRIES,
        fal_key: Optional[str] = None,
        replicate_key: Optional[str] = None,
        runway_key: Optional[str] = None,
        verify: Union[bool, str, "ssl.SSLContext"] = True,
        trust_env: bool = True,
        default_headers: Optional[Mapping[str, str]] = None,
        max_response_bytes: int = _MAX_RESPONSE_BYTES,
        deadline: Optional[float] = None,
        hooks: Optional[Mapping[str, Any]] = None,
        budget_usd: Optional[float] = None,
    ) -> None:
        self._session = _Session(
            api_key=_api_key_from(api_key),
            base_url=base_url if base_url is not None else _os.environ.get("VISGATE_BASE_URL") or DEFAULT_BASE_URL,
            timeout=_check_timeout(timeout),
            retry=max_retries if isinstance(max_retries, Retry) else Retry(total=_check_int("max_retries", max_retries, minimum=0)),
            deadline=None if deadline is None else _check_number("deadline", deadline, positive=True),
            hooks=hooks,
            default_headers=_check_headers("default_headers", default_headers),
            transport=_Transport(
                verify=_check_verify(verify),
                trust_env=bool(trust_env),
                max_response_bytes=_check_int("max_response_bytes", max_response_bytes, minimum=1),
            ),
        )
        self.set_provider_headers(fal_key=fal_key, replicate_key=replicate_key, runway_key=runway_key)
        self._budget = _Budget(budget_usd)
        self._trust_env = bool(trust_env)  # kept for pickling: the transport keeps only the environment it read
        self._mount()

    def _mount(self) -> None:
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
        return self._session.api_key

    @property
    def base_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return self._session.base_url

    @property
    def max_retries(self) -> int:
        """How many times a failed request is retried."""
        return self._session.retry.total

    @property
    def timeout(self) -> Optional[float]:
        """Default per-attempt timeout in seconds (None: no limit)."""
        return self._session.timeout

    @property
    def spent_usd(self) -> float:
        """What this client's generations reported they cost so far, in USD (cache hits: 0)."""
        return self._budget.spent

    def deadline(self, budget: Any, *, margin: float = 1.0) -> _DeadlineScope:
        """``with client.deadline(x):`` bounds every call inside it, on this thread or task.

        ``budget`` is seconds, or a Lambda context (``get_remaining_time_in_millis()``), less
        ``margin`` seconds so the function still has time to return a ``request_id``.
        """
        return _DeadlineScope(_time.monotonic() + _budget_seconds(budget, margin))

    def generate(
        self,
        prompt: str,
        model: str = DEFAULT_MODEL,
        params: Optional[Dict[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
        deadline: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> GenerateResult:
        """Generate an image in one call (``POST /generate``)."""
        body: Dict[str, Any] = {"prompt": _check_str("prompt", prompt), "model": _check_str("model", model)}
        if params is not None:
            if not isinstance(params, Mapping):
                raise ValidationError("params must be a dict, got %s" % type(params).__name__, field="params")
            if params:  # {} is not sent, as in 0.0.3
                body["params"] = dict(params)
        result = self.images._generate("/generate", body, GenerateResult, wait=True, prefer_async=False, timeout=timeout,
                                       deadline=deadline, headers=headers, idempotency_key=idempotency_key)
        return cast(GenerateResult, result)

    def generate_many(
        self,
        items: Iterable[Union[str, Mapping[str, Any]]],
        *,
        kind: str = "generate",
        model: Optional[str] = None,
        max_concurrency: int = 8,
        batch_id: Optional[str] = None,
        budget_usd: Optional[float] = None,
        deadline: Optional[float] = None,
        timeout: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        executor: Optional["concurrent.futures.Executor"] = None,
        skip: Iterable[int] = (),
    ) -> BatchResult:
        """Run many generations; return a ``BatchResult``: per item, in order, its result or its error.

        ``items`` are prompts or dicts of arguments of ``generate`` (``kind="generate"``: prompt,
        model, params), ``images.generate`` (``"image"``) or ``videos.generate`` (``"video"``);
        ``model`` is the default for items without one. At most ``max_concurrency`` run at once,
        on threads, or on ``executor`` (e.g. a ``ProcessPoolExecutor``: the client travels pickled).
        Each item's Idempotency-Key derives from ``batch_id`` (made when None), its index and its
        arguments: rerun the same batch id and nothing is billed twice. Items not started before
        ``deadline`` get ``TimeoutError`` ``NOT_RUN``, after ``budget_usd`` ``BudgetExceededError``.
        Indices in ``skip`` (done in an earlier run) are not run; their entries stay None.
        """
        batch = self.iter_generate_many(items, kind=kind, model=model, max_concurrency=max_concurrency, batch_id=batch_id,
                                        budget_usd=budget_usd, deadline=deadline, timeout=timeout, headers=headers,
                                        executor=executor, skip=skip)
        with batch:
            for _landed in batch:
                pass
        return batch.result

    def iter_generate_many(
        self,
        items: Iterable[Union[str, Mapping[str, Any]]],
        *,
        kind: str = "generate",
        model: Optional[str] = None,
        max_concurrency: int = 8,
        batch_id: Optional[str] = None,
        budget_usd: Optional[float] = None,
        deadline: Optional[float] = None,
        timeout: Optional[float] = None,
        headers: Optional[Mapping[str, str]] = None,
        executor: Optional["concurrent.futures.Executor"] = None,
        skip: Iterable[int] = (),
    ) -> BatchIterator:
        """``generate_many``, as an iterator of ``(index, result_or_error)`` in the order items land.

        Arguments are checked now; items are sent as it is iterated. ``.batch_id``, ``.result``.
        """
        return BatchIterator(self, items, kind=kind, model=model, max_concurrency=max_concurrency, batch_id=batch_id,
                             budget_usd=budget_usd, deadline=deadline, timeout=timeout, headers=headers, executor=executor,
                             skip=skip)

    def health(self, *, timeout: Optional[float] = None, deadline: Optional[float] = None,
               headers: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """API health: ``{"status": "ok", "version": ..., ...}``."""
        return _as_dict(self.images._call("GET", "/health", timeout, deadline, headers, auth=False), "health")

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
        for header, name, _variable in _BYOK_HEADERS:
            value = given[name]
            checked = _check_header_value(name, value) if value else ""
            if checked:
                byok[header] = checked
        self._session.byok = byok  # one assignment: a request in flight sees the old or the new set, never a mix

    def download(
        self,
        url: str,
        path: Union[str, "_os.PathLike[str]"],
        *,
        timeout: Optional[float] = None,
        max_bytes: int = _MAX_DOWNLOAD_BYTES,
        deadline: Optional[float] = None,
    ) -> str:
        """Stream ``url`` into ``path`` through a temporary file, then rename it into place.

        No visgate or provider key is sent to the media host. Raises ``DownloadError`` on an
        HTTP error or past ``max_bytes``; a failed download leaves nothing at ``path``.
        """
        session = self._session
        return session.download(url, path, timeout=timeout, at=session.deadline_for(deadline), max_bytes=max_bytes)

    def doctor(self, *, timeout: float = 5.0) -> "DoctorReport":
        """Check this client's setup, in order: key, base URL, proxy, CA bundle, DNS, TCP, TLS,
        clock, ``health()`` and ``auth.me()``; each network step bounded by ``timeout``. Never raises
        for a failed check: see ``report.ok`` and each check's ``hint``. No key is ever shown."""
        return _doctor_run(self._session, self._session.api_key, None, timeout)

    def close(self) -> None:
        """Close all connections; calls still running fail with ``ConnectionError``."""
        self._session.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "%s(base_url=%r)" % (type(self).__name__, self.base_url)

    def __reduce__(self) -> Any:
        """Pickles as its configuration (API key included), never its connections or locks; each
        process rebuilds one client per original and reuses it. ``budget_usd`` becomes what is left."""
        token = self.__dict__.setdefault("_token", _os.urandom(12).hex())
        return (Client._from_config, (token, self._config()))

    @staticmethod
    def _from_config(token: str, config: Dict[str, Any]) -> "Client":
        """Unpickle a ``Client``: the one already rebuilt here from the same configuration, or a new one."""
        same = {k: v for k, v in config.items() if k != "budget_usd"}
        with _REBUILT.lock:
            clients = _REBUILT.clients
            found = clients.get(token)
            if found is not None and found[0] == same and not found[1]._session.transport.closed:
                return found[1]
            client = Client(**config)
            if len(clients) >= 16:
                clients.pop(next(iter(clients)))
            clients[token] = (same, client)
            return client

    def _config(self) -> Dict[str, Any]:
        """The constructor arguments that rebuild this client; refuses what cannot leave the process."""
        session, transport = self._session, self._session.transport
        if not isinstance(transport._verify, (bool, str)):
            raise ValidationError("a Client with verify=<ssl.SSLContext> cannot be pickled: pass verify= a CA bundle path",
                                  field="verify")
        if any(session.hooks.values()):
            raise ValidationError("a Client with hooks cannot be pickled: hooks are this process's callables; "
                                  "add them where the client is rebuilt", field="hooks")
        config: Dict[str, Any] = {
            "api_key": session.api_key, "base_url": session.base_url, "timeout": session.timeout, "max_retries": session.retry,
            "verify": transport._verify, "trust_env": self._trust_env, "default_headers": dict(session.default_headers),
            "max_response_bytes": transport._max_response_bytes, "deadline": session.deadline,
            "budget_usd": self._budget.remaining(),
        }
        for header, name, _variable in _BYOK_HEADERS:
            config[name] = session.byok.get(header)
        return config

    def _attach(self, result: _T) -> _T:
        object.__setattr__(result, "_client", self)
        return result


def _forward(name: str) -> Any:
    """A property of ``AsyncClient`` that reads the same property of its ``Client``."""
    prop = getattr(Client, name)
    return property(lambda self: getattr(self._sync, name), doc=prop.__doc__)


class AsyncClient:
    """Asynchronous visgate client: the same methods as ``Client``, awaitable.

    Calls run on a thread pool of up to ``max_concurrency`` threads (created on demand),
    so a ``gather`` of 100 calls really runs 100 at once. A cancelled call stops at its next
    safe point (before a retry or a poll); a request already sent may still complete.
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
        _FORK_SENSITIVE.add(self)
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

    base_url = _forward("base_url")
    api_key = _forward("api_key")
    max_retries = _forward("max_retries")
    timeout = _forward("timeout")
    spent_usd = _forward("spent_usd")

    generate = _to_async(Client.generate)
    health = _to_async(Client.health)
    doctor = _to_async(Client.doctor)
    download = _to_async(Client.download)

    def deadline(self, budget: Any, *, margin: float = 1.0) -> _DeadlineScope:
        """``async with client.deadline(x):`` (or ``with``), as ``Client.deadline``."""
        return self._sync.deadline(budget, margin=margin)

    # The batch runs on its own threads, coordinated from one of this client's; cancelling stops it.
    generate_many = _to_async(Client.generate_many)

    @_functools.wraps(Client.iter_generate_many)  # the same signature as the sync client's
    async def iter_generate_many(self, *args: Any, **kwargs: Any) -> "AsyncBatchIterator":
        # ``async for index, outcome in await aclient.iter_generate_many(...)``: arguments checked now.
        return AsyncBatchIterator(self, self._sync.iter_generate_many(*args, **kwargs))

    def set_provider_headers(
        self,
        *,
        fal_key: Optional[str] = None,
        replicate_key: Optional[str] = None,
        runway_key: Optional[str] = None,
    ) -> None:
        """Replace the BYOK keys sent with each request; an omitted key means managed mode."""
        self._sync.set_provider_headers(fal_key=fal_key, replicate_key=replicate_key, runway_key=runway_key)

    def _after_fork(self) -> None:
        self._pool = None  # its threads do not exist in the child
        self._pool_lock = _thread.allocate_lock()

    def _executor(self) -> "concurrent.futures.ThreadPoolExecutor":
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    pool = self._pool = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="visgate")
        return pool

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        import asyncio
        import threading

        cancelled = threading.Event()
        context = _contextvars.copy_context()  # deadline scopes reach the worker thread
        context.run(_CANCELLED.set, cancelled)
        # The call's deadline counts from this await, not from when a busy pool gets to the call.
        context.run(_DEADLINE.set, self._sync._session.deadline_for(kwargs.get("deadline")))
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor(), _functools.partial(context.run, fn, *args, **kwargs))
        except asyncio.CancelledError:
            cancelled.set()
            raise
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


def _doctor_cli(args: Any) -> int:
    """``visgate doctor``: the report on stdout; exit status 0 only when no check failed."""
    key = args.api_key if getattr(args, "api_key", None) else _os.environ.get("VISGATE_API_KEY", "")
    timeout = getattr(args, "timeout", None) or 5.0
    client: Optional[Client] = None
    setup_error: Optional[str] = None
    try:
        client = Client(args.api_key, base_url=args.base_url, timeout=timeout)
    except ValidationError as exc:
        setup_error = exc.message
    try:
        report = _doctor_run(client._session if client else None, key.strip(), setup_error, timeout)
    finally:
        if client is not None:
            client.close()
    if getattr(args, "json", False):
        import json

        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report)
    return 0 if report.ok else _CLI_EXIT_API


def _cli_common(p: Any) -> None:
    p.add_argument("--api-key", help="visgate API key (default: $VISGATE_API_KEY)")
    p.add_argument("--base-url", help="API base URL (default: $VISGATE_BASE_URL or the public API)")
    p.add_argument("--timeout", type=float, help="per-request timeout, seconds (default: %g; doctor: 5 per check)" % DEFAULT_TIMEOUT)
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")


def _cli_batch_parser(cmd: Any) -> None:
    cmd.add_argument("file", help="one prompt per line, or JSON lines of arguments ('-': standard input)")
    cmd.add_argument("-o", "--output-dir", required=True, help="where each item's media goes, named by index (0007.png)")
    cmd.add_argument("--kind", choices=_BATCH_KINDS, default="generate", help="what each item calls (default: %(default)s)")
    cmd.add_argument("--model", help="model for items that name none")
    cmd.add_argument("--batch-id", help="rerun a batch: the same keys, nothing billed twice, saved items skipped")
    cmd.add_argument("--max-concurrency", type=int, default=8, help="items in flight (default: %(default)s)")
    cmd.add_argument("--budget-usd", type=float, help="start no item once the batch has cost this much")
    cmd.add_argument("--deadline", type=float, help="seconds for the whole batch; items not started by then are not run")


def _cli_generation_parsers(add_parser: Callable[[str, str], Any]) -> None:
    gen = add_parser("generate", "one-call image generation (POST /generate)")
    gen.add_argument("prompt")
    gen.add_argument("--model", default=DEFAULT_MODEL, help="model id (default: %(default)s)")
    gen.add_argument("-o", "--output", help="save the image to this file")
    for name, helptext, model in (("image", "generate images", DEFAULT_MODEL), ("video", "generate a video", "fal-ai/flux-pro/video")):
        cmd = add_parser(name, helptext)
        cmd.add_argument("prompt")
        cmd.add_argument("--model", default=model, help="model id (default: %(default)s)")
        cmd.add_argument("-o", "--output", help="save the result to this file")
        cmd.add_argument("--no-wait", action="store_true", help="print the request id and return at once")
        cmd.add_argument("--poll-timeout", type=float, default=600.0, help="seconds to wait for the job")
        if name == "image":
            cmd.add_argument("--width", type=int, default=1024)
            cmd.add_argument("--height", type=int, default=1024)
            cmd.add_argument("--num-images", type=int, default=1)
            cmd.add_argument("--seed", type=int)
            cmd.add_argument("--negative-prompt")
        else:
            cmd.add_argument("--duration", type=float, default=5.0, help="seconds (default: %(default)s)")
            cmd.add_argument("--image-url", help="animate this image (image-to-video)")
    status = add_parser("status", "status of an async request")
    status.add_argument("request_id")
    status.add_argument("--wait", action="store_true", help="poll until completed or failed")
    status.add_argument("--poll-timeout", type=float, default=600.0)
    status.add_argument("-o", "--output", help="save the output once completed")


def _cli_account_parsers(add_parser: Callable[[str, str], Any]) -> None:
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
    add_parser("doctor", "check the key, network, proxy, TLS, clock and API; exit 0 when all is well")


def _cli_parser() -> Any:
    import argparse

    # The global options are accepted before and after the command; SUPPRESS keeps an
    # option given before the command from being reset by the command's parser.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _cli_common(common)
    parser = argparse.ArgumentParser(
        prog="visgate",
        description="visgate API from the command line (key: --api-key or $VISGATE_API_KEY).",
    )
    parser.add_argument("--version", action="version", version="visgate-sdk " + __version__)
    _cli_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add_parser(name: str, helptext: str) -> Any:
        return sub.add_parser(name, help=helptext, parents=[common])

    _cli_generation_parsers(add_parser)
    _cli_account_parsers(add_parser)
    _cli_batch_parser(add_parser("batch", "run many generations from a file; each result is saved as it lands"))
    vendor = sub.add_parser("vendor", help="copy this module and its bytecode into DIR (for Lambda, read-only deployments)")
    vendor.add_argument("dir", metavar="DIR")
    vendor.add_argument("--force", action="store_true", help="replace a different visgate_sdk.py already in DIR")
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
    try:
        return client.requests._wait(request_id, timeout=timeout, poll_interval=1.0, at=client._session.deadline_for(None),
                                     headers=None, on_status=lambda status: progress.show(request_id, status.status))
    finally:
        progress.done()


def _cli_print(value: Any, as_json: bool, lines: List[str]) -> None:
    if as_json:
        import json

        raw = getattr(value, "raw", value)
        print(json.dumps(raw, indent=2, ensure_ascii=False, default=str))
    else:
        print("\n".join(lines))


def _cli_health(client: Client, args: Any) -> int:
    health = client.health()
    _cli_print(health, args.json, ["%s: %s" % item for item in health.items()])
    return 0


def _cli_generate(client: Client, args: Any) -> int:
    gen = client.generate(args.prompt, model=args.model)
    saved = gen.save(args.output) if args.output else None
    lines = ["image_url: %s" % gen.image_url, "cost: %s" % gen.cost, "provider: %s" % gen.provider]
    _cli_print(gen, args.json, lines + (["saved: %s" % saved] if saved else []))
    return 0


def _cli_job_outcome(job: Union[RequestStatusResult, ImageResult, VideoResult], args: Any) -> int:
    urls = job._media_urls()
    lines = ["url: %s" % u for u in urls]
    if isinstance(job, RequestStatusResult):
        lines = ["request_id: %s" % job.request_id, "status: %s" % job.status, *lines]
        if job.error_message:
            lines.append("error: %s" % job.error_message)
    if getattr(args, "output", None) and urls:
        lines.append("saved: %s" % job.save(args.output))
    _cli_print(job, args.json, lines)
    return _CLI_EXIT_API if isinstance(job, RequestStatusResult) and job.status == "failed" else 0


def _cli_job(client: Client, args: Any) -> int:
    """``image``, ``video`` and ``status``: start (or look up) a job, wait for it unless told not to."""
    job: Union[RequestStatusResult, ImageResult, VideoResult, GenerationRequest]
    if args.command == "status":
        job, wait = GenerationRequest(args.request_id, client), args.wait
    elif args.command == "image":
        job = client.images.generate(args.model, args.prompt, width=args.width, height=args.height, num_images=args.num_images,
                                     seed=args.seed, negative_prompt=args.negative_prompt, wait=False)
        wait = not args.no_wait
    else:
        job = client.videos.generate(args.model, args.prompt, duration_seconds=args.duration, image_url=args.image_url, wait=False)
        wait = not args.no_wait
    if isinstance(job, GenerationRequest):
        if not wait and args.command != "status":
            _cli_print({"request_id": job.request_id, "status": job.status}, args.json,
                       ["request_id: %s" % job.request_id, "status: %s" % job.status])
            return 0
        job = _cli_poll(client, job.request_id, args.poll_timeout) if wait else job.refresh()
    return _cli_job_outcome(job, args)


def _cli_models(client: Client, args: Any) -> int:
    found = client.models.list(provider=args.provider, media_type=args.media_type, search=args.search, limit=args.limit)
    rows = [(m.id, m.provider, m.media_type, m.name) for m in found.models]
    # Widths from the data: model ids run to 60+ characters ("owner/model/variant/...").
    widths = [max((len(str(row[i])) for row in rows), default=0) for i in range(3)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row[:3], widths)) + "  " + str(row[3]) for row in rows]
    _cli_print(found, args.json, [*lines, "(%d of %d)" % (len(found.models), found.total_count)])
    return 0


def _cli_model(client: Client, args: Any) -> int:
    info = client.models.get(args.model_id)
    shown = ("id", "name", "provider", "media_type", "description", "pricing")
    _cli_print(info, args.json, ["%s: %s" % (k, getattr(info, k)) for k in shown])
    return 0


def _cli_usage(client: Client, args: Any) -> int:
    summary = client.usage.get(args.period)
    _cli_print(summary, args.json, [
        "period: %s" % summary.period,
        "requests: %d (cached %d, %.1f%%)" % (summary.total_requests, summary.cached_requests, summary.cache_hit_rate),
        "billed: $%.4f" % summary.total_billed_cost,
    ])
    return 0


def _cli_balances(client: Client, args: Any) -> int:
    balances = client.providers.balances()
    _cli_print(balances, args.json, [
        "%s: configured=%s available=%s remaining=%s limit=%s currency=%s"
        % (b.provider, b.configured, b.available, b.remaining, b.limit, b.currency)
        for b in balances.balances
    ])
    return 0


def _cli_batch_items(path: str) -> List[Union[str, Dict[str, Any]]]:
    """A prompt per line, or a JSON object of arguments per line; blank lines are left out."""
    import json

    if path == "-":
        lines = [line.strip() for line in _sys.stdin]
    else:
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    items: List[Union[str, Dict[str, Any]]] = []
    for number, line in enumerate(lines, 1):
        if line.startswith("{"):
            try:
                items.append(dict(json.loads(line)))
            except ValueError as exc:
                raise ValidationError("%s line %d is not a JSON object: %s" % (path, number, exc), field="file") from None
        elif line:
            items.append(line)
    return items


def _cli_saved(outdir: str) -> FrozenSet[int]:
    """The items an earlier run already saved (as NNNN.ext), by index: one listing for the batch."""
    return frozenset(int(stem) for stem in (name.split(".", 1)[0] for name in _os.listdir(outdir)) if stem.isdigit())


def _cli_save(outcome: Any, outdir: str, index: int, kind: str) -> List[str]:
    """Save each media file of a result as NNNN.ext (NNNN-k.ext after the first)."""
    saved = []
    for k, url in enumerate(outcome._media_urls()):
        ext = _os.path.splitext(url.split("?", 1)[0])[1] or (".mp4" if kind == "video" else ".png")
        name = "%04d%s%s" % (index, "-%d" % k if k else "", ext)
        saved.append(outcome.save(_os.path.join(outdir, name), index=k))
    return saved


def _cli_batch(client: Client, args: Any) -> int:
    items = _cli_batch_items(args.file)
    _os.makedirs(args.output_dir, exist_ok=True)
    saved = _cli_saved(args.output_dir)
    skip = [i for i in range(len(items)) if i in saved]
    batch = client.iter_generate_many(items, kind=args.kind, model=args.model, batch_id=args.batch_id, skip=skip,
                                      max_concurrency=args.max_concurrency, budget_usd=args.budget_usd, deadline=args.deadline)
    progress, landed, errors = _Progress(), 0, 0
    with batch:
        for index, outcome in batch:
            if not isinstance(outcome, VisgateError):
                try:
                    _cli_save(outcome, args.output_dir, index, args.kind)
                except VisgateError as exc:  # generated and paid for, but not saved: the rerun replays it
                    outcome = batch.result[index] = exc
            if isinstance(outcome, VisgateError):
                errors += 1
                _sys.stderr.write(("\n" if progress.tty else "") + "item %d: %s\n" % (index, outcome))
            landed += 1
            progress.show("batch %s" % batch.batch_id, "%d/%d done, %d failed, $%.4f"
                          % (landed, len(items) - len(skip), errors, batch.result.cost))
    progress.done()
    result = batch.result
    print("batch %s: %d succeeded, %d failed, %d skipped, %d not run; cost $%.4f"
          % (result.batch_id, len(result.succeeded), len(result.failed), len(skip), len(result.not_run), result.cost))
    if result.failed or result.not_run:
        print("rerun with --batch-id %s to retry the rest; nothing done is billed twice" % result.batch_id)
        return _CLI_EXIT_API
    return 0


def _vendor_problem(dest_dir: str, target: str, code: bytes, force: bool) -> Tuple[Optional[str], bool]:
    """(why not to vendor into ``dest_dir``, or None; whether ``target`` already is this source)."""
    if _os.path.exists(dest_dir) and not _os.path.isdir(dest_dir):
        return "%s is not a directory" % dest_dir, False
    if not _os.path.exists(target):
        return None, False
    if _os.path.samefile(target, _os.path.abspath(__file__)):
        # An unchecked pyc beside the working copy would hide every later edit of it.
        return "%s is this module's own source; vendor into a build directory" % target, False
    with open(target, "rb") as f:
        same = f.read() == code
    if not same and not force:
        return "%s exists and differs from this visgate_sdk %s; use --force to replace it" % (target, __version__), False
    return None, same


def _vendor_write(dest_dir: str, target: str, code: bytes, same: bool) -> None:
    _os.makedirs(dest_dir, exist_ok=True)
    if same:
        return
    tmp = target + ".tmp"
    with open(tmp, "wb") as out:
        out.write(code)
    _os.replace(tmp, target)
    # Unchecked pycs of the old source for other Pythons would still be trusted: remove them.
    cache_dir = _os.path.join(dest_dir, "__pycache__")
    for name in _os.listdir(cache_dir) if _os.path.isdir(cache_dir) else ():
        if name.startswith("visgate_sdk.") and name.endswith(".pyc"):
            _os.unlink(_os.path.join(cache_dir, name))


def _cli_vendor(dest_dir: str, force: bool) -> int:
    """Copy this module to ``DIR/visgate_sdk.py`` with an unchecked-hash pyc (PEP 552) beside it:
    a read-only deployment (AWS Lambda) then loads bytecode instead of compiling on every cold start."""
    import py_compile

    tag = _sys.implementation.cache_tag
    target = _os.path.join(dest_dir, "visgate_sdk.py")
    with open(_os.path.abspath(__file__), "rb") as f:  # visgate_sdk.py, or visgate_sdk/__init__.py when installed
        code = f.read()
    problem, same = _vendor_problem(dest_dir, target, code, force)
    if problem is None and tag is None:
        problem = "this Python (%s) caches no bytecode" % _sys.implementation.name
    if problem is not None:
        print("visgate: error: %s" % problem, file=_sys.stderr)
        return _CLI_EXIT_USAGE
    # Not importlib.util.cache_from_source(): PYTHONPYCACHEPREFIX would move the pyc out of DIR.
    pyc = _os.path.join(dest_dir, "__pycache__", "visgate_sdk.%s.pyc" % tag)
    try:
        _vendor_write(dest_dir, target, code, same)
        py_compile.compile(target, cfile=pyc, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (OSError, py_compile.PyCompileError) as exc:
        print("visgate: error: cannot vendor into %s: %s" % (dest_dir, exc), file=_sys.stderr)
        return _CLI_EXIT_API
    version = "%s %d.%d" % (_sys.implementation.name, _sys.version_info[0], _sys.version_info[1])
    print("visgate_sdk %s %s %s" % (__version__, "refreshed in" if same else "vendored into", dest_dir))
    print("  %s" % target)
    print("  %s  (bytecode for %s, cache tag %s, unchecked hash)" % (pyc, version, tag))
    print("Only %s uses this bytecode; other versions compile the source on every cold start." % version)
    print("Build with the Lambda runtime's Python version, e.g. python%d.%d -m visgate_sdk vendor %s"
          % (_sys.version_info[0], _sys.version_info[1], dest_dir))
    return 0


_CLI_COMMANDS: Dict[str, Callable[[Client, Any], int]] = {
    "health": _cli_health,
    "generate": _cli_generate,
    "image": _cli_job,
    "video": _cli_job,
    "status": _cli_job,
    "models": _cli_models,
    "model": _cli_model,
    "usage": _cli_usage,
    "balances": _cli_balances,
    "batch": _cli_batch,
}


def _cli_run(args: Any) -> int:
    if args.command == "doctor":  # before a Client exists: a bad key or base URL is what it reports
        return _doctor_cli(args)
    client = Client(args.api_key, base_url=args.base_url, timeout=args.timeout or DEFAULT_TIMEOUT)
    with client:
        return _CLI_COMMANDS[args.command](client, args)


def main(argv: Optional[List[str]] = None) -> int:
    """Command line entry point: ``python -m visgate_sdk`` or ``visgate``. Returns the exit code."""
    args = _cli_parser().parse_args(argv)
    if args.command == "vendor":  # works offline: no client, no key
        return _cli_vendor(args.dir, args.force)
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
