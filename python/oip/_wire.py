"""Just enough of the protobuf wire format to move tensor bytes uncopied.

A ModelInferRequest is written as its small header message (serialized by
protobuf) followed by each raw input as field 7, so the tensors are copied
once, into the outgoing buffer, and never into a protobuf message. A
response is split the other way: field 6 (raw_output_contents) becomes
memoryviews into the received buffer, the rest is parsed by protobuf.
"""

from __future__ import annotations

from typing import Sequence

from oip._bytes import Buffer

REQUEST_RAW_INPUT_FIELD = 7  # ModelInferRequest.raw_input_contents
RESPONSE_RAW_OUTPUT_FIELD = 6  # ModelInferResponse.raw_output_contents
STREAM_INFER_RESPONSE_FIELD = 2  # ModelStreamInferResponse.infer_response

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class WireFormatError(ValueError):
    """Bytes that are not the protobuf message they should be."""


def encode_varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def frame_request(header: bytes, raw_inputs: Sequence[Buffer]) -> bytes:
    """`header` (a serialized ModelInferRequest) plus raw inputs as field 7."""
    tag = encode_varint(REQUEST_RAW_INPUT_FIELD << 3 | _LENGTH_DELIMITED)
    parts: list[Buffer] = [header]
    for raw in raw_inputs:
        parts.append(tag)
        parts.append(encode_varint(memoryview(raw).nbytes))
        parts.append(raw)
    return b"".join(parts)


def _read_varint(view: memoryview, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(view):
            raise WireFormatError("message ends inside a varint")
        byte = view[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise WireFormatError("varint longer than 10 bytes")


def split_field(data: Buffer, field_number: int) -> tuple[bytes, list[memoryview]]:
    """Splits out every length-delimited `field_number` of a message.

    Returns the message without that field (to parse with protobuf) and
    the field's values as memoryviews into `data`, in order.

    Raises:
        WireFormatError: `data` is not a well-formed message.
    """
    view = memoryview(data).cast("B")
    rest: list[memoryview] = []
    values: list[memoryview] = []
    offset = 0
    while offset < len(view):
        start = offset
        key, offset = _read_varint(view, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, offset = _read_varint(view, offset)
        elif wire_type == _FIXED64:
            offset += 8
        elif wire_type == _FIXED32:
            offset += 4
        elif wire_type == _LENGTH_DELIMITED:
            length, offset = _read_varint(view, offset)
            if number == field_number:
                if offset + length > len(view):
                    raise WireFormatError("field runs past the end of the message")
                values.append(view[offset : offset + length])
                offset += length
                continue
            offset += length
        else:
            raise WireFormatError(f"unsupported wire type {wire_type}")
        if offset > len(view):
            raise WireFormatError("field runs past the end of the message")
        rest.append(view[start:offset])
    return b"".join(rest), values
