"""The one error the reference server raises for a request it refuses."""

from __future__ import annotations

import grpc


class RequestError(Exception):
    """A request refused with a gRPC status code and a message for the user."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> RequestError:
    """An INVALID_ARGUMENT refusal."""
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> RequestError:
    """A NOT_FOUND refusal."""
    return RequestError(grpc.StatusCode.NOT_FOUND, message)
