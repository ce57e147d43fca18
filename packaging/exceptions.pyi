"""Exceptions of the visgate client; the same classes as ``visgate_sdk.<Name>``."""

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
