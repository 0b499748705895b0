"""Reading ModelStreamInfer responses, shared by both clients."""

from __future__ import annotations

from google.protobuf import message as protobuf_message

from oip._bytes import Buffer
from oip._errors import (
    NOT_LOADED,
    UNKNOWN_MODEL_PREFIX,
    OipError,
    ServerError,
    StatusCode,
    error_for_status,
)
from oip._infer import InferResult, parse_response
from oip._ops import SERVICE
from oip._wire import STREAM_INFER_RESPONSE_FIELD, WireFormatError, split_field
from oip.protocol import grpc_service_pb2 as pb

STREAM_PATH = f"/{SERVICE}/ModelStreamInfer"


def stream_error(message: str) -> OipError:
    """The error for a stream response's error_message.

    Stream errors carry text but no status code; a missing or unloaded
    model is recognised by Triton's wording, anything else is a ServerError.
    """
    status = StatusCode.UNKNOWN
    if message.startswith(UNKNOWN_MODEL_PREFIX):
        status = (
            StatusCode.UNAVAILABLE if NOT_LOADED in message else StatusCode.NOT_FOUND
        )
    return error_for_status(status, message)


def parse_stream_response(data: Buffer) -> InferResult:
    """One ModelStreamInferResponse as an InferResult (with `error` set on errors)."""
    try:
        header, bodies = split_field(data, STREAM_INFER_RESPONSE_FIELD)
        envelope = pb.ModelStreamInferResponse.FromString(header)
    except (WireFormatError, protobuf_message.DecodeError) as exc:
        return InferResult(
            None,
            error=ServerError(
                f"malformed stream response: {exc}", status=StatusCode.DATA_LOSS
            ),
        )
    if envelope.error_message:
        return InferResult(None, error=stream_error(envelope.error_message))
    if not bodies:
        return InferResult(None)
    return parse_response(bodies[-1])
