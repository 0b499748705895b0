"""The errors oip raises: one hierarchy, each carrying what went wrong where.

    OipError                      every error oip raises
    ├── InvalidInputError         a tensor, parameter or argument is wrong
    │                             (found before sending, or INVALID_ARGUMENT)
    ├── NotFoundError             NOT_FOUND: no such thing (region, ...)
    │   └── ModelNotFoundError    no such model or version
    ├── ModelUnavailableError     the model exists but is not loaded
    ├── ServerUnavailableError    UNAVAILABLE: cannot connect, or went away
    ├── DeadlineExceededError     DEADLINE_EXCEEDED: the call ran out of time
    ├── CancelledError            CANCELLED: the call was cancelled
    ├── NotSupportedError         UNIMPLEMENTED, or a feature this server or
    │                             this machine lacks
    ├── AlreadyExistsError        ALREADY_EXISTS (e.g. a region name)
    └── ServerError               any other status (INTERNAL, UNKNOWN, ...)

Every error has `status` (a StatusCode), `model` and `request_id` where
known, and keeps the underlying exception as `__cause__`.
"""

from __future__ import annotations

import enum
from typing import Optional


class StatusCode(enum.Enum):
    """Status of a failed call, named as gRPC names them (HTTP maps onto them)."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    DATA_LOSS = "DATA_LOSS"
    UNAUTHENTICATED = "UNAUTHENTICATED"


class OipError(Exception):
    """Base of every error oip raises.

    Attributes:
        message: what went wrong, in words.
        status: the status code (the server's, or the one that fits a
            problem found before sending).
        model: the model the call was about, if any.
        request_id: the request id, if one was given.
    """

    default_status = StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        status: Optional[StatusCode] = None,
        model: Optional[str] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.default_status
        self.model = model
        self.request_id = request_id

    def __str__(self) -> str:
        where = []
        if self.model:
            where.append(f"model '{self.model}'")
        if self.request_id:
            where.append(f"request '{self.request_id}'")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"[{self.status.value}] {self.message}{suffix}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments need help to survive pickling.
        return (
            _rebuild,
            (type(self), self.message, self.status, self.model, self.request_id),
        )


def _rebuild(
    cls: type[OipError],
    message: str,
    status: StatusCode,
    model: Optional[str],
    request_id: Optional[str],
) -> OipError:
    return cls(message, status=status, model=model, request_id=request_id)


class InvalidInputError(OipError, ValueError):
    """A tensor, parameter or argument is wrong; the message names it."""

    default_status = StatusCode.INVALID_ARGUMENT


class NotFoundError(OipError):
    """The server has nothing of that name (a region, a setting's model...)."""

    default_status = StatusCode.NOT_FOUND


class ModelNotFoundError(NotFoundError):
    """The server has no such model, or no such version of it."""


class ModelUnavailableError(OipError):
    """The model is known but not loaded (unloaded, or failed to load)."""

    default_status = StatusCode.UNAVAILABLE


class ServerUnavailableError(OipError, ConnectionError):
    """The server cannot be reached, or the connection broke."""

    default_status = StatusCode.UNAVAILABLE


class DeadlineExceededError(OipError, TimeoutError):
    """The call did not finish before its deadline."""

    default_status = StatusCode.DEADLINE_EXCEEDED


class CancelledError(OipError):
    """The call was cancelled before it finished."""

    default_status = StatusCode.CANCELLED


class NotSupportedError(OipError):
    """The server (or this machine) does not offer what was asked."""

    default_status = StatusCode.UNIMPLEMENTED


class AlreadyExistsError(OipError):
    """Something of that name is already there (a shared memory region)."""

    default_status = StatusCode.ALREADY_EXISTS


class ServerError(OipError):
    """The server failed the call for another reason (INTERNAL, UNKNOWN...)."""

    default_status = StatusCode.INTERNAL


_BY_STATUS: dict[StatusCode, type[OipError]] = {
    StatusCode.INVALID_ARGUMENT: InvalidInputError,
    StatusCode.OUT_OF_RANGE: InvalidInputError,
    StatusCode.NOT_FOUND: NotFoundError,
    StatusCode.UNAVAILABLE: ServerUnavailableError,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    StatusCode.CANCELLED: CancelledError,
    StatusCode.UNIMPLEMENTED: NotSupportedError,
    StatusCode.ALREADY_EXISTS: AlreadyExistsError,
}


# Triton's wording for a model that does not exist, or is not loaded.
UNKNOWN_MODEL_PREFIX = "Request for unknown model"
NOT_LOADED = "no available versions"


def error_for_status(
    status: StatusCode,
    message: str,
    *,
    model: Optional[str] = None,
    request_id: Optional[str] = None,
) -> OipError:
    """The error class that fits a server's status, built with `message`.

    NOT_FOUND is about a model when the call named one or the message uses
    Triton's wording for a missing model; UNAVAILABLE with "no available
    versions" is a model that is not loaded, not an unreachable server.
    """
    cls = _BY_STATUS.get(status, ServerError)
    about_model = bool(model) or message.startswith(UNKNOWN_MODEL_PREFIX)
    if status is StatusCode.NOT_FOUND and about_model:
        cls = ModelNotFoundError
    if status is StatusCode.UNAVAILABLE and about_model and NOT_LOADED in message:
        cls = ModelUnavailableError
    return cls(message, status=status, model=model, request_id=request_id)
