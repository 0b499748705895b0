"""Reading input tensors out of a ModelInferRequest and writing outputs back.

Every check names the model and the tensor at fault, so a client sees what
was expected and what it sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from oip._bytes import BytesFormatError, decode_bytes, encode_bytes
from oip._datatype import DataType
from oip.protocol import grpc_service_pb2 as pb
from oip.server._errors import invalid

# A tensor larger than this many elements is refused before any allocation.
MAX_ELEMENTS = 1 << 30

_INT_RANGES = {
    DataType.INT8: (-(1 << 7), (1 << 7) - 1),
    DataType.INT16: (-(1 << 15), (1 << 15) - 1),
    DataType.UINT8: (0, (1 << 8) - 1),
    DataType.UINT16: (0, (1 << 16) - 1),
}


@dataclass(frozen=True)
class TensorSpec:
    """A model's input or output: name, datatype and dims without batch."""

    name: str
    datatype: DataType
    dims: tuple[int, ...]

    def shape(self, max_batch_size: int) -> list[int]:
        """The shape clients see: a leading -1 when the model batches."""
        return ([-1] if max_batch_size > 0 else []) + list(self.dims)


def _format_shape(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def check_shape(model: str, spec: TensorSpec, shape: Sequence[int], max_batch_size: int) -> None:
    """Refuses a shape that does not fit `spec` (batch dimension included)."""
    where = f"input '{spec.name}' of model '{model}'"
    for index, dim in enumerate(shape):
        if dim < 0:
            raise invalid(f"{where} has negative dimension {dim} at index {index}")
    expected = spec.shape(max_batch_size)
    if len(shape) != len(expected):
        raise invalid(
            f"{where} has shape {_format_shape(shape)} of rank {len(shape)}; "
            f"expected rank {len(expected)}, shape {_format_shape(expected)}"
        )
    if max_batch_size > 0 and not 1 <= shape[0] <= max_batch_size:
        raise invalid(
            f"{where} has batch size {shape[0]}; model '{model}' accepts 1 to "
            f"{max_batch_size}"
        )
    for got, want in zip(shape, expected):
        if want != -1 and got != want:
            raise invalid(
                f"{where} has shape {_format_shape(shape)}; expected "
                f"{_format_shape(expected)}"
            )


def _element_count(where: str, shape: Sequence[int]) -> int:
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise invalid(f"{where} has {count} elements; the limit is {MAX_ELEMENTS}")
    return count


def _decode_raw(where: str, datatype: DataType, data: bytes, shape: list[int], count: int) -> np.ndarray:
    if datatype is DataType.BYTES:
        try:
            return decode_bytes(data, count).reshape(shape)
        except BytesFormatError as exc:
            raise invalid(f"{where}: malformed BYTES contents: {exc}") from exc
    expected = count * datatype.item_size
    if len(data) != expected:
        raise invalid(
            f"{where} has {len(data)} bytes of raw contents; shape "
            f"{_format_shape(shape)} of {datatype.value} needs {expected}"
        )
    return np.frombuffer(data, dtype=datatype.numpy_dtype).reshape(shape)


def _decode_typed(where: str, datatype: DataType, contents: pb.InferTensorContents, shape: list[int], count: int) -> np.ndarray:
    field = datatype.contents_field
    if field is None:
        raise invalid(f"{where} is {datatype.value}, which travels only in raw_input_contents")
    for descriptor, _ in contents.ListFields():
        if descriptor.name != field:
            raise invalid(f"{where} is {datatype.value} and must use contents.{field}, not contents.{descriptor.name}")
    values = getattr(contents, field)
    if len(values) != count:
        raise invalid(f"{where} has {len(values)} values in contents.{field}; shape {_format_shape(shape)} needs {count}")
    if datatype is DataType.BYTES:
        array = np.empty(count, dtype=np.object_)
        array[:] = list(values)
        return array.reshape(shape)
    if datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        wide = np.asarray(values, dtype=np.int64)
        if wide.size and (wide.min() < low or wide.max() > high):
            raise invalid(f"{where} has a value outside the {datatype.value} range [{low}, {high}]")
    return np.asarray(values, dtype=datatype.numpy_dtype).reshape(shape)


def decode_inputs(model: str, specs: Mapping[str, TensorSpec], max_batch_size: int, request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    """The request's inputs as numpy arrays, after checking every rule."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise invalid(
            f"request to model '{model}' has {len(request.inputs)} inputs but "
            f"{len(raw)} raw_input_contents entries; they must match one to one"
        )

    arrays: dict[str, np.ndarray] = {}
    batch_size = None
    for index, tensor in enumerate(request.inputs):
        spec = specs.get(tensor.name)
        if spec is None:
            raise invalid(f"unexpected input '{tensor.name}' for model '{model}'; expected {', '.join(sorted(specs))}")
        if tensor.name in arrays:
            raise invalid(f"input '{tensor.name}' appears more than once in the request to model '{model}'")
        where = f"input '{tensor.name}' of model '{model}'"
        if tensor.datatype != spec.datatype.value:
            raise invalid(f"{where} has datatype {tensor.datatype or '(empty)'}; expected {spec.datatype.value}")
        shape = list(tensor.shape)
        check_shape(model, spec, shape, max_batch_size)
        if max_batch_size > 0:
            # Inputs of one request share the batch size; numpy would broadcast.
            if batch_size is not None and shape[0] != batch_size:
                raise invalid(f"{where} has batch size {shape[0]}; the other inputs have batch size {batch_size}")
            batch_size = shape[0]
        count = _element_count(where, shape)

        typed = tensor.HasField("contents") and tensor.contents.ByteSize() > 0
        if typed and raw:
            raise invalid(f"{where} has both typed contents and raw_input_contents; send one")
        if raw:
            arrays[tensor.name] = _decode_raw(where, spec.datatype, raw[index], shape, count)
        elif typed:
            arrays[tensor.name] = _decode_typed(where, spec.datatype, tensor.contents, shape, count)
        elif count == 0:
            arrays[tensor.name] = np.empty(shape, dtype=spec.datatype.numpy_dtype)
        else:
            raise invalid(f"{where} has no data: neither contents nor raw_input_contents")

    missing = sorted(set(specs) - set(arrays))
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        raise invalid(f"input {names} of model '{model}' is missing from the request")
    return arrays


def requested_outputs(model: str, specs: Mapping[str, TensorSpec], request: pb.ModelInferRequest) -> list[str]:
    """Output names to return: those requested, else all, in model order."""
    names: list[str] = []
    for output in request.outputs:
        if output.name not in specs:
            raise invalid(f"unknown output '{output.name}' requested from model '{model}'; it has {', '.join(specs)}")
        if output.name in names:
            raise invalid(f"output '{output.name}' of model '{model}' is requested more than once")
        for key in output.parameters:
            raise invalid(f"output '{output.name}': parameter '{key}' is not supported by the reference server")
        names.append(output.name)
    return names or list(specs)


def encode_outputs(response: pb.ModelInferResponse, specs: Mapping[str, TensorSpec], names: Sequence[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Appends the named outputs to `response` as raw contents."""
    for name in names:
        array = arrays[name]
        datatype = specs[name].datatype
        tensor = response.outputs.add(name=name, datatype=datatype.value, shape=array.shape)
        del tensor  # filled in place
        if datatype is DataType.BYTES:
            response.raw_output_contents.append(encode_bytes(array.reshape(-1)))
        else:
            data = np.ascontiguousarray(array, dtype=datatype.numpy_dtype)
            response.raw_output_contents.append(data.tobytes())
