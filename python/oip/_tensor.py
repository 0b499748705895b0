"""Tensors between numpy and the wire: inputs, requested outputs, decoding.

Everything here is transport-free: the gRPC and (later) HTTP clients hand
the same encoded buffers to their transports.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from oip._bytes import BytesFormatError, decode_bytes, encode_bytes
from oip._datatype import DataType
from oip._errors import InvalidInputError

Shape = tuple[int, ...]
ParameterValue = Union[bool, int, float, str]

DATATYPE_BY_DTYPE = {
    np.dtype(np.bool_): DataType.BOOL,
    np.dtype(np.int8): DataType.INT8,
    np.dtype(np.int16): DataType.INT16,
    np.dtype(np.int32): DataType.INT32,
    np.dtype(np.int64): DataType.INT64,
    np.dtype(np.uint8): DataType.UINT8,
    np.dtype(np.uint16): DataType.UINT16,
    np.dtype(np.uint32): DataType.UINT32,
    np.dtype(np.uint64): DataType.UINT64,
    np.dtype(np.float16): DataType.FP16,
    np.dtype(np.float32): DataType.FP32,
    np.dtype(np.float64): DataType.FP64,
}


def datatype_of(array: np.ndarray) -> DataType:
    """The protocol datatype that carries `array` (object/bytes/str: BYTES).

    Raises:
        InvalidInputError: numpy dtype with no protocol datatype.
    """
    if array.dtype.kind in "OSU":
        return DataType.BYTES
    found = DATATYPE_BY_DTYPE.get(
        array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else array.dtype
    )
    if found is None:
        raise InvalidInputError(f"numpy dtype {array.dtype} has no protocol datatype")
    return found


def _as_datatype(name: str, value: Union[DataType, str]) -> DataType:
    try:
        return value if isinstance(value, DataType) else DataType.parse(value)
    except ValueError as exc:
        raise InvalidInputError(f"input '{name}': {exc}") from None


def _check_shape(name: str, shape: Sequence[int]) -> Shape:
    checked = tuple(int(d) for d in shape)
    for index, dim in enumerate(checked):
        if dim < 0:
            raise InvalidInputError(
                f"tensor '{name}': dimension {index} is {dim}; shapes are non-negative"
            )
    return checked


class SharedMemoryRef:
    """Where a tensor lives in a registered shared memory region."""

    __slots__ = ("region", "byte_size", "offset")

    def __init__(self, region: str, byte_size: int, offset: int = 0) -> None:
        if not region:
            raise InvalidInputError("shared memory region name is empty")
        if byte_size < 0 or offset < 0:
            raise InvalidInputError(
                f"region '{region}': byte_size {byte_size} and offset {offset} "
                "must be >= 0"
            )
        self.region = region
        self.byte_size = int(byte_size)
        self.offset = int(offset)

    def parameters(self) -> dict[str, ParameterValue]:
        """The tensor parameters that point the server at the region."""
        params: dict[str, ParameterValue] = {
            "shared_memory_region": self.region,
            "shared_memory_byte_size": self.byte_size,
        }
        if self.offset:
            params["shared_memory_offset"] = self.offset
        return params

    def __repr__(self) -> str:
        return (
            f"SharedMemoryRef({self.region!r}, byte_size={self.byte_size}, "
            f"offset={self.offset})"
        )


class InferInput:
    """One input tensor of a request: a name and its data.

    Usually built from a numpy array, whose dtype gives the datatype:

        InferInput("INPUT0", np.arange(16, dtype=np.int32).reshape(1, 16))

    Name the datatype to convert (`datatype="BF16"` from float32) or for
    BYTES from a list of str/bytes. Plain Python data is converted to the
    named datatype only when no value changes. For BYTES, prefer object
    arrays: numpy's fixed-width `S`/`U` arrays drop trailing NUL bytes. For
    data in a registered shared memory region, give `shape` and `datatype`
    and call `set_shared_memory`.

    Raises:
        InvalidInputError: the data does not fit the datatype or shape; the
            message names the tensor.
    """

    def __init__(
        self,
        name: str,
        data: Any = None,
        *,
        datatype: Union[DataType, str, None] = None,
        shape: Optional[Sequence[int]] = None,
        parameters: Optional[Mapping[str, ParameterValue]] = None,
    ) -> None:
        if not name:
            raise InvalidInputError("input tensor name is empty")
        self.name = name
        self.datatype: Optional[DataType] = (
            _as_datatype(name, datatype) if datatype is not None else None
        )
        self.shape: Optional[Shape] = (
            _check_shape(name, shape) if shape is not None else None
        )
        self.parameters: dict[str, ParameterValue] = dict(parameters or {})
        self.shared_memory: Optional[SharedMemoryRef] = None
        self._raw: Optional[memoryview] = None
        if data is not None:
            self.set_data(data)

    def set_data(self, data: Any) -> InferInput:
        """Sets the tensor's data from a numpy array (or anything array-like)."""
        array = _to_array(self.name, data, self.datatype)
        try:
            datatype = self.datatype or datatype_of(array)
        except InvalidInputError as exc:
            raise InvalidInputError(f"input '{self.name}': {exc.message}") from None
        if self.shape is not None and tuple(array.shape) != self.shape:
            raise InvalidInputError(
                f"input '{self.name}': data has shape {list(array.shape)} but the "
                f"input was declared with shape {list(self.shape)}"
            )
        self._raw = encode_tensor(self.name, array, datatype)
        self.datatype = datatype
        self.shape = tuple(int(d) for d in array.shape)
        self.shared_memory = None
        return self

    def set_shared_memory(
        self, region: str, byte_size: int, offset: int = 0
    ) -> InferInput:
        """Takes the data from a registered region instead of the request."""
        if self.shape is None or self.datatype is None:
            raise InvalidInputError(
                f"input '{self.name}': give shape and datatype before placing it "
                "in shared memory"
            )
        expected = _fixed_byte_size(self.datatype, self.shape)
        if expected is not None and expected != byte_size:
            raise InvalidInputError(
                f"input '{self.name}': shape {list(self.shape)} of "
                f"{self.datatype.value} "
                f"needs {expected} bytes, but region '{region}' byte_size is "
                f"{byte_size}"
            )
        self.shared_memory = SharedMemoryRef(region, byte_size, offset)
        self._raw = None
        return self

    @property
    def raw(self) -> Optional[memoryview]:
        """The encoded bytes (None when the data is in shared memory)."""
        return self._raw

    def check_ready(self) -> None:
        """Raises InvalidInputError unless the input has data to send."""
        if self._raw is None and self.shared_memory is None:
            raise InvalidInputError(
                f"input '{self.name}' has no data: call set_data or set_shared_memory"
            )

    def __repr__(self) -> str:
        dtype = self.datatype.value if self.datatype else None
        return (
            f"InferInput({self.name!r}, datatype={dtype}, "
            f"shape={list(self.shape or [])})"
        )


class RequestedOutput:
    """An output to return, optionally as top-N classes or into shared memory.

    Args:
        name: the output tensor's name.
        class_count: when > 0, return the top `class_count` classes as BYTES
            "value:index[:label]" instead of the tensor.
        parameters: extra tensor parameters.
    """

    def __init__(
        self,
        name: str,
        *,
        class_count: int = 0,
        parameters: Optional[Mapping[str, ParameterValue]] = None,
    ) -> None:
        if not name:
            raise InvalidInputError("requested output name is empty")
        if class_count < 0:
            raise InvalidInputError(
                f"output '{name}': class_count {class_count} is negative"
            )
        self.name = name
        self.class_count = int(class_count)
        self.parameters: dict[str, ParameterValue] = dict(parameters or {})
        self.shared_memory: Optional[SharedMemoryRef] = None

    def set_shared_memory(
        self, region: str, byte_size: int, offset: int = 0
    ) -> RequestedOutput:
        """Asks the server to write this output into a registered region."""
        self.shared_memory = SharedMemoryRef(region, byte_size, offset)
        return self

    def __repr__(self) -> str:
        return f"RequestedOutput({self.name!r}, class_count={self.class_count})"


def _fixed_byte_size(datatype: DataType, shape: Sequence[int]) -> Optional[int]:
    if datatype is DataType.BYTES:
        return None
    return math.prod(shape) * datatype.item_size


def _to_array(name: str, data: Any, datatype: Optional[DataType]) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data
    if datatype is DataType.BYTES:
        array = (
            np.empty(len(data), dtype=np.object_)
            if isinstance(data, list) and data and not isinstance(data[0], list)
            else None
        )
        if array is not None:
            array[:] = data
            return array
        return np.asarray(data, dtype=np.object_)
    try:
        natural = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"input '{name}': cannot make an array of the data: {exc}"
        ) from exc
    if datatype is None:
        return natural
    if datatype is DataType.BF16:
        return natural.astype(np.float32)
    return _convert_exactly(name, natural, datatype)


def _convert_exactly(name: str, natural: np.ndarray, datatype: DataType) -> np.ndarray:
    """Plain Python data as `datatype`, refusing any value that would change."""
    try:
        with np.errstate(all="ignore"):
            converted = natural.astype(datatype.numpy_dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(
            f"input '{name}': the data cannot be {datatype.value}: {exc}"
        ) from exc
    if natural.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"input '{name}': data of dtype {natural.dtype} cannot be {datatype.value}"
        )
    floats = natural.dtype.kind == "f" and converted.dtype.kind == "f"
    if not np.array_equal(converted, natural, equal_nan=floats):
        flat_in, flat_out = natural.reshape(-1), converted.reshape(-1)
        changed = flat_in != flat_out
        if floats:
            changed &= ~(np.isnan(flat_in) & np.isnan(flat_out))
        index = int(np.flatnonzero(changed)[0])
        raise InvalidInputError(
            f"input '{name}': element {index} ({flat_in[index]}) does not fit "
            f"{datatype.value} exactly; convert the data first"
        )
    return converted


def _float32_to_bf16(array: np.ndarray) -> np.ndarray:
    """Rounds float32 to bfloat16 bits (nearest, ties to even; NaN kept)."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4")
    rounding = ((bits >> 16) & 1) + 0x7FFF
    rounded: np.ndarray = ((bits + rounding) >> 16).astype("<u2")
    nan = np.isnan(array)
    if nan.any():
        rounded[nan] = 0x7FC0
    return rounded


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Expands bfloat16 bits (uint16) to float32, exactly."""
    return (bits.astype("<u4") << 16).view("<f4")


def encode_tensor(name: str, array: np.ndarray, datatype: DataType) -> memoryview:
    """`array` as raw contents of `datatype`: a view when no copy is needed.

    Raises:
        InvalidInputError: the array's values cannot be carried losslessly
            as `datatype`, naming the tensor.
    """
    if datatype is DataType.BYTES:
        return memoryview(encode_bytes_tensor(name, array))
    if datatype is DataType.BF16:
        if array.dtype == np.uint16:
            bits = np.ascontiguousarray(array, dtype="<u2")
        elif array.dtype.kind == "f":
            bits = _float32_to_bf16(array.astype(np.float32, copy=False))
        else:
            raise InvalidInputError(
                f"input '{name}': BF16 takes float or uint16 (raw bits) data, not "
                f"{array.dtype}"
            )
        return memoryview(bits).cast("B")

    want = datatype.numpy_dtype
    if array.dtype != want and not _same_kind(array.dtype, want):
        raise InvalidInputError(
            f"input '{name}': data of dtype {array.dtype} does not match datatype "
            f"{datatype.value} (numpy {want}); convert it first"
        )
    contiguous = np.ascontiguousarray(array, dtype=want)
    return memoryview(contiguous).cast("B")


def _same_kind(have: np.dtype, want: np.dtype) -> bool:
    # Byte order differs only: still the same values.
    return have.kind == want.kind and have.itemsize == want.itemsize


def encode_bytes_tensor(name: str, array: np.ndarray) -> bytes:
    """BYTES elements, each behind its 4-byte little-endian length.

    Raises:
        InvalidInputError: an element is neither bytes nor str, naming the
            tensor and the element.
    """
    items = np.asarray(array).reshape(-1).tolist()
    try:
        return encode_bytes(items)
    except BytesFormatError as exc:
        raise InvalidInputError(f"input '{name}': BYTES {exc}") from None


def decode_tensor(
    name: str, datatype_text: str, shape: Sequence[int], raw: Union[bytes, memoryview]
) -> np.ndarray:
    """Raw contents as a numpy array: a read-only view when possible.

    Raises:
        InvalidInputError: the bytes do not fit the shape and datatype.
    """
    try:
        datatype = DataType.parse(datatype_text)
    except ValueError as exc:
        raise InvalidInputError(f"output '{name}': {exc}") from None
    checked = tuple(shape)
    if checked and min(checked) < 0:
        raise InvalidInputError(
            f"output '{name}' has a negative dimension: {list(checked)}"
        )
    count = math.prod(checked)
    if datatype is DataType.BYTES:
        try:
            return decode_bytes(raw, count).reshape(checked)
        except BytesFormatError as exc:
            raise InvalidInputError(
                f"output '{name}': malformed BYTES contents: {exc}"
            ) from exc

    expected = count * datatype.item_size
    if memoryview(raw).nbytes != expected:
        raise InvalidInputError(
            f"output '{name}' has {memoryview(raw).nbytes} bytes; shape "
            f"{list(checked)} of {datatype.value} needs {expected}"
        )
    array = np.frombuffer(raw, dtype=datatype.numpy_dtype).reshape(checked)
    if datatype is DataType.BF16:
        return bf16_to_float32(array)
    return array


def decode_typed_contents(
    name: str, datatype_text: str, shape: Sequence[int], contents: Any
) -> np.ndarray:
    """Typed `InferTensorContents` as a numpy array."""
    try:
        datatype = DataType.parse(datatype_text)
    except ValueError as exc:
        raise InvalidInputError(f"output '{name}': {exc}") from None
    field = datatype.contents_field
    checked = _check_shape(name, shape)
    if field is None:
        raise InvalidInputError(
            f"output '{name}': {datatype.value} arrived as typed contents, which "
            "cannot carry it"
        )
    values = getattr(contents, field)
    if len(values) != math.prod(checked):
        raise InvalidInputError(
            f"output '{name}' has {len(values)} values; shape {list(checked)} "
            f"needs {math.prod(checked)}"
        )
    if datatype is DataType.BYTES:
        array = np.empty(len(values), dtype=np.object_)
        array[:] = list(values)
        return array.reshape(checked)
    return np.asarray(values, dtype=datatype.numpy_dtype).reshape(checked)
