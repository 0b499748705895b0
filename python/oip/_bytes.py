"""BYTES tensors on the wire: each element is a 4-byte little-endian length
followed by that many bytes."""

from __future__ import annotations

import struct
from typing import Iterable

import numpy as np

_LENGTH = struct.Struct("<I")


class BytesFormatError(ValueError):
    """Serialized BYTES contents that do not parse."""


def encode_bytes(elements: Iterable[object]) -> bytes:
    """Serializes elements (bytes, or str as UTF-8) in order."""
    parts = []
    for element in elements:
        data = element.encode("utf-8") if isinstance(element, str) else bytes(element)  # type: ignore[call-overload]
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_bytes(buffer: bytes | memoryview, count: int) -> np.ndarray:
    """Parses exactly `count` elements into a 1-D object array of bytes.

    Raises:
        BytesFormatError: a length runs past the end, or bytes are left over.
    """
    view = memoryview(buffer)
    if count * _LENGTH.size > len(view):
        # Checked before allocating: a small buffer cannot hold a huge count.
        raise BytesFormatError(
            f"{count} elements need at least {count * _LENGTH.size} bytes of "
            f"lengths, but the contents have {len(view)}"
        )
    out = np.empty(count, dtype=np.object_)
    offset = 0
    for index in range(count):
        if offset + 4 > len(view):
            raise BytesFormatError(
                f"element {index} has no 4-byte length: only {len(view) - offset} "
                f"bytes left of {len(view)}"
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise BytesFormatError(
                f"element {index} claims {length} bytes but only "
                f"{len(view) - offset} remain"
            )
        out[index] = bytes(view[offset : offset + length])
        offset += length
    if offset != len(view):
        raise BytesFormatError(
            f"{len(view) - offset} bytes left over after {count} elements"
        )
    return out
