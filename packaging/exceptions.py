"""Exceptions of the visgate client; the same classes as ``visgate_sdk.<Name>``.

Installed as ``visgate_sdk/exceptions.py`` so that type checkers find a source for
``from visgate_sdk.exceptions import ...`` (pyright warns on a stub alone). The classes are
defined once, in visgate_sdk.py, which also registers this sub-module itself (so a vendored
copy has it too); importing the package first means this file normally never runs.
"""

from visgate_sdk import (
    VisgateError as VisgateError,
    AuthenticationError as AuthenticationError,
    PermissionDeniedError as PermissionDeniedError,
    NotFoundError as NotFoundError,
    ConflictError as ConflictError,
    ValidationError as ValidationError,
    RateLimitError as RateLimitError,
    ProviderError as ProviderError,
    ServerError as ServerError,
    TimeoutError as TimeoutError,
    ConnectionError as ConnectionError,
    TLSError as TLSError,
    InvalidResponseError as InvalidResponseError,
    DownloadError as DownloadError,
    BudgetExceededError as BudgetExceededError,
)

__all__ = [
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
]
