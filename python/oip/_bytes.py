"""BYTES tensors on the wire: each element is a 4-byte little-endian length
followed by that many bytes.

Both directions avoid per-element Python code where they can: encoding
joins length prefixes and elements with map/zip (iteration in C), and
decoding slices elements out with map once the offsets are known. Offsets
depend on each other, so finding them is a loop over the lengths alone,
except when every element has the same length, which is checked at once.
"""

from __future__ import annotations

import struct
from itertools import chain
from typing import Iterable, Union

import numpy as np

_LENGTH = struct.Struct("<I")
Buffer = Union[bytes, bytearray, memoryview]  # what a tensor's bytes may be


class BytesFormatError(ValueError):
    """Serialized BYTES contents that do not parse, or elements that are not bytes."""


def encode_bytes(elements: Iterable[object]) -> bytes:
    """Serializes elements in order: bytes-like as they are, str as UTF-8.

    Raises:
        BytesFormatError: an element is neither bytes-like nor str, or is
            4 GiB or larger.
    """
    items = elements if isinstance(elements, list) else list(elements)
    try:
        return _join(items)
    except (TypeError, struct.error):
        pass
    return _join([_as_bytes(index, item) for index, item in enumerate(items)])


def _join(items: list[object]) -> bytes:
    # b"".join refuses str and other non-buffers with TypeError, and pack
    # refuses lengths of 4 GiB or more with struct.error.
    prefixes = map(_LENGTH.pack, map(len, items))  # type: ignore[arg-type]
    return b"".join(chain.from_iterable(zip(prefixes, items)))  # type: ignore[arg-type]


def _as_bytes(index: int, item: object) -> bytes:
    if isinstance(item, str):
        data = item.encode("utf-8")
    elif isinstance(item, (bytes, bytearray, memoryview, np.bytes_)):
        data = bytes(item)
    else:
        raise BytesFormatError(
            f"element {index} is {type(item).__name__}; give bytes or str"
        )
    if len(data) >= 1 << 32:
        raise BytesFormatError(
            f"element {index} has {len(data)} bytes; the limit is 4 GiB - 1"
        )
    return data


def decode_bytes(buffer: Buffer, count: int) -> np.ndarray:
    """Parses exactly `count` elements into a 1-D object array of bytes.

    Raises:
        BytesFormatError: a length runs past the end, or bytes are left over.
    """
    view = memoryview(buffer).cast("B")
    size = len(view)
    if count * _LENGTH.size > size:
        # Checked before allocating: a small buffer cannot hold a huge count.
        raise BytesFormatError(
            f"{count} elements need at least {count * _LENGTH.size} bytes of "
            f"lengths, but the contents have {size}"
        )
    starts, ends = _uniform_offsets(view, count) or _scan_offsets(view, count)
    out = np.empty(count, dtype=np.object_)
    out[:] = list(map(bytes, map(view.__getitem__, map(slice, starts, ends))))
    return out


def _uniform_offsets(view: memoryview, count: int) -> Union[tuple[range, range], None]:
    """Offsets when every element has the same length, checked in one step."""
    size = len(view)
    if count == 0 or size % count:
        return None
    stride = size // count
    lengths = np.ndarray((count,), dtype="<u4", buffer=view, strides=(stride,))
    if not (lengths == stride - _LENGTH.size).all():
        return None
    first = _LENGTH.size
    return range(first, first + count * stride, stride), range(
        stride, stride + count * stride, stride
    )


def _scan_offsets(view: memoryview, count: int) -> tuple[list[int], list[int]]:
    size = len(view)
    unpack = _LENGTH.unpack_from
    starts: list[int] = []
    ends: list[int] = []
    offset = 0
    for index in range(count):
        if offset + 4 > size:
            raise BytesFormatError(
                f"element {index} has no 4-byte length: only {size - offset} "
                f"bytes left of {size}"
            )
        (length,) = unpack(view, offset)
        offset += 4
        if offset + length > size:
            raise BytesFormatError(
                f"element {index} claims {length} bytes but only {size - offset} remain"
            )
        starts.append(offset)
        offset += length
        ends.append(offset)
    if offset != size:
        raise BytesFormatError(
            f"{size - offset} bytes left over after {count} elements"
        )
    return starts, ends
