"""Tensor datatypes of the Open Inference Protocol and their numpy twins.

One table holds every fact about a datatype: its numpy dtype, its size on
the wire and the typed-contents field of `InferTensorContents` that carries
it. Client and reference server both read it.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, Optional

import numpy as np


class _Facts(NamedTuple):
    dtype: np.dtype
    item_size: int  # bytes per element on the wire; 0 for BYTES
    contents_field: Optional[str]  # None: raw contents only


class DataType(str, enum.Enum):
    """A tensor datatype as the protocol spells it (`"INT32"`, `"BYTES"`)."""

    BOOL = "BOOL"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    FP16 = "FP16"
    BF16 = "BF16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype that holds this datatype (BF16: raw uint16 bits)."""
        return _FACTS[self].dtype

    @property
    def item_size(self) -> int:
        """Bytes per element in raw contents; 0 for variable-size BYTES."""
        return _FACTS[self].item_size

    @property
    def contents_field(self) -> Optional[str]:
        """The `InferTensorContents` field for typed contents, if any."""
        return _FACTS[self].contents_field

    @classmethod
    def parse(cls, text: str) -> DataType:
        """The datatype named `text`; ValueError names the unknown one."""
        found = _BY_NAME.get(text)
        if found is not None:
            return found
        known = ", ".join(member.value for member in cls)
        raise ValueError(f"unknown datatype {text!r}; expected one of {known}")


_FACTS: dict[DataType, _Facts] = {
    DataType.BOOL: _Facts(np.dtype(np.bool_), 1, "bool_contents"),
    DataType.INT8: _Facts(np.dtype("<i1"), 1, "int_contents"),
    DataType.INT16: _Facts(np.dtype("<i2"), 2, "int_contents"),
    DataType.INT32: _Facts(np.dtype("<i4"), 4, "int_contents"),
    DataType.INT64: _Facts(np.dtype("<i8"), 8, "int64_contents"),
    DataType.UINT8: _Facts(np.dtype("<u1"), 1, "uint_contents"),
    DataType.UINT16: _Facts(np.dtype("<u2"), 2, "uint_contents"),
    DataType.UINT32: _Facts(np.dtype("<u4"), 4, "uint_contents"),
    DataType.UINT64: _Facts(np.dtype("<u8"), 8, "uint64_contents"),
    DataType.FP16: _Facts(np.dtype("<f2"), 2, None),
    DataType.BF16: _Facts(np.dtype("<u2"), 2, None),
    DataType.FP32: _Facts(np.dtype("<f4"), 4, "fp32_contents"),
    DataType.FP64: _Facts(np.dtype("<f8"), 8, "fp64_contents"),
    DataType.BYTES: _Facts(np.dtype(np.object_), 0, "bytes_contents"),
}

_BY_NAME: dict[str, DataType] = {member.value: member for member in DataType}
