"""Reading input tensors out of a ModelInferRequest and writing outputs back.

Every check names the model and the tensor at fault, so a client sees what
was expected and what it sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from oip._bytes import BytesFormatError, decode_bytes, encode_bytes
from oip._datatype import DataType
from oip.protocol import grpc_service_pb2 as pb
from oip.server._errors import invalid
from oip.server._shm import BYTE_SIZE as SHM_BYTE_SIZE
from oip.server._shm import OFFSET as SHM_OFFSET
from oip.server._shm import PARAMETERS as SHM_PARAMETERS
from oip.server._shm import REGION as SHM_REGION
from oip.server._shm import SharedMemory, ShmRef, shm_ref

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


def check_shape(
    model: str, spec: TensorSpec, shape: Sequence[int], max_batch_size: int
) -> None:
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


def _decode_raw(
    where: str, datatype: DataType, data: bytes, shape: list[int], count: int
) -> np.ndarray:
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


def _decode_typed(
    where: str,
    datatype: DataType,
    contents: pb.InferTensorContents,
    shape: list[int],
    count: int,
) -> np.ndarray:
    field = datatype.contents_field
    if field is None:
        raise invalid(
            f"{where} is {datatype.value}, which travels only in raw_input_contents"
        )
    for descriptor, _ in contents.ListFields():
        if descriptor.name != field:
            raise invalid(
                f"{where} is {datatype.value} and must use contents.{field}, not "
                f"contents.{descriptor.name}"
            )
    values = getattr(contents, field)
    if len(values) != count:
        raise invalid(
            f"{where} has {len(values)} values in contents.{field}; shape "
            f"{_format_shape(shape)} needs {count}"
        )
    if datatype is DataType.BYTES:
        array = np.empty(count, dtype=np.object_)
        array[:] = list(values)
        return array.reshape(shape)
    if datatype in _INT_RANGES:
        low, high = _INT_RANGES[datatype]
        wide = np.asarray(values, dtype=np.int64)
        if wide.size and (wide.min() < low or wide.max() > high):
            raise invalid(
                f"{where} has a value outside the {datatype.value} range [{low}, "
                f"{high}]"
            )
    return np.asarray(values, dtype=datatype.numpy_dtype).reshape(shape)


def _decode_shm(
    where: str,
    datatype: DataType,
    memory: Optional[SharedMemory],
    ref: ShmRef,
    shape: list[int],
    count: int,
) -> np.ndarray:
    if memory is None:
        raise invalid(f"{where}: unknown shared memory region '{ref.region}'")
    region = memory.find(where, ref)
    region.check_room(where, ref.offset, ref.byte_size)
    expected = count * datatype.item_size
    if datatype is not DataType.BYTES and ref.byte_size != expected:
        raise invalid(
            f"{where} has shared_memory_byte_size {ref.byte_size} in shared memory "
            f"region '{ref.region}'; shape {_format_shape(shape)} of "
            f"{datatype.value} needs {expected}"
        )
    data = region.read(where, ref.offset, ref.byte_size)
    return _decode_raw(where, datatype, data, shape, count)


def _input_refs(model: str, request: pb.ModelInferRequest) -> list[Optional[ShmRef]]:
    """Each input's shared memory placement; checks raw_input_contents' count."""
    refs = [
        shm_ref(f"input '{tensor.name}' of model '{model}'", tensor.parameters)
        for tensor in request.inputs
    ]
    raw = request.raw_input_contents
    outside = sum(ref is None for ref in refs)
    if raw and len(raw) != outside:
        in_shm = len(refs) - outside
        also = f" (and {in_shm} in shared memory)" if in_shm else ""
        raise invalid(
            f"request to model '{model}' has {outside} inputs outside shared "
            f"memory{also} but {len(raw)} raw_input_contents entries; they must "
            "match one to one"
        )
    return refs


def decode_inputs(
    model: str,
    specs: Mapping[str, TensorSpec],
    max_batch_size: int,
    request: pb.ModelInferRequest,
    memory: Optional[SharedMemory] = None,
) -> dict[str, np.ndarray]:
    """The request's inputs as numpy arrays, after checking every rule.

    Inputs in shared memory are read from `memory`'s regions; the others
    take raw_input_contents entries in order, or their typed contents.
    """
    refs = _input_refs(model, request)
    raw = list(request.raw_input_contents)
    next_raw = 0
    arrays: dict[str, np.ndarray] = {}
    batch_size = None
    for tensor, ref in zip(request.inputs, refs):
        spec = specs.get(tensor.name)
        if spec is None:
            raise invalid(
                f"unexpected input '{tensor.name}' for model '{model}'; expected "
                f"{', '.join(sorted(specs))}"
            )
        if tensor.name in arrays:
            raise invalid(
                f"input '{tensor.name}' appears more than once in the request to "
                f"model '{model}'"
            )
        where = f"input '{tensor.name}' of model '{model}'"
        if tensor.datatype != spec.datatype.value:
            raise invalid(
                f"{where} has datatype {tensor.datatype or '(empty)'}; expected "
                f"{spec.datatype.value}"
            )
        shape = list(tensor.shape)
        check_shape(model, spec, shape, max_batch_size)
        if max_batch_size > 0:
            # Inputs of one request share the batch size; numpy would broadcast.
            if batch_size is not None and shape[0] != batch_size:
                raise invalid(
                    f"{where} has batch size {shape[0]}; the other inputs have "
                    f"batch size {batch_size}"
                )
            batch_size = shape[0]
        count = _element_count(where, shape)

        typed = tensor.HasField("contents") and tensor.contents.ByteSize() > 0
        if ref is not None:
            if typed:
                raise invalid(
                    f"{where} is in shared memory region '{ref.region}' and also "
                    "has typed contents; send one"
                )
            arrays[tensor.name] = _decode_shm(
                where, spec.datatype, memory, ref, shape, count
            )
            continue
        if typed and raw:
            raise invalid(
                f"{where} has both typed contents and raw_input_contents; send one"
            )
        if raw:
            data, next_raw = raw[next_raw], next_raw + 1
            arrays[tensor.name] = _decode_raw(where, spec.datatype, data, shape, count)
        elif typed:
            arrays[tensor.name] = _decode_typed(
                where, spec.datatype, tensor.contents, shape, count
            )
        elif count == 0:
            arrays[tensor.name] = np.empty(shape, dtype=spec.datatype.numpy_dtype)
        else:
            raise invalid(
                f"{where} has no data: neither contents nor raw_input_contents"
            )

    missing = sorted(set(specs) - set(arrays))
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        raise invalid(f"input {names} of model '{model}' is missing from the request")
    return arrays


@dataclass(frozen=True)
class OutputRequest:
    """An output to return, and the shared memory to write it to, if any."""

    name: str
    shm: Optional[ShmRef] = None
    class_count: int = 0  # > 0: return the top classes instead of the tensor


def _output_ref(
    model: str,
    output: pb.ModelInferRequest.InferRequestedOutputTensor,
    memory: Optional[SharedMemory],
) -> Optional[ShmRef]:
    where = f"output '{output.name}' of model '{model}'"
    for key in output.parameters:
        if key not in SHM_PARAMETERS and key != CLASSIFICATION:
            raise invalid(
                f"output '{output.name}': parameter '{key}' is not supported by "
                "the reference server"
            )
    ref = shm_ref(where, output.parameters)
    if ref is not None:
        if memory is None:
            raise invalid(f"{where}: unknown shared memory region '{ref.region}'")
        memory.find(where, ref).check_room(where, ref.offset, ref.byte_size)
    return ref


def requested_outputs(
    model: str,
    specs: Mapping[str, TensorSpec],
    request: pb.ModelInferRequest,
    memory: Optional[SharedMemory] = None,
) -> list[OutputRequest]:
    """Outputs to return: those requested, else all, in model order."""
    outputs: list[OutputRequest] = []
    for output in request.outputs:
        if output.name not in specs:
            raise invalid(
                f"unknown output '{output.name}' requested from model '{model}'; "
                f"it has {', '.join(specs)}"
            )
        if any(known.name == output.name for known in outputs):
            raise invalid(
                f"output '{output.name}' of model '{model}' is requested more than once"
            )
        ref = _output_ref(model, output, memory)
        classes = _class_count(model, output)
        if classes and specs[output.name].datatype is DataType.BYTES:
            raise invalid(
                f"output '{output.name}' of model '{model}' is BYTES and cannot "
                "be classified"
            )
        outputs.append(OutputRequest(output.name, ref, classes))
    return outputs or [OutputRequest(name) for name in specs]


CLASSIFICATION = "classification"


def _class_count(
    model: str, output: pb.ModelInferRequest.InferRequestedOutputTensor
) -> int:
    if CLASSIFICATION not in output.parameters:
        return 0
    parameter = output.parameters[CLASSIFICATION]
    choice = parameter.WhichOneof("parameter_choice")
    count = (
        getattr(parameter, choice)
        if choice in ("int64_param", "uint64_param")
        else None
    )
    if count is None or count <= 0:
        raise invalid(
            f"output '{output.name}' of model '{model}': parameter "
            "'classification' must be "
            "a positive integer (the number of classes to return)"
        )
    return int(count)


def _class_text(value: object) -> str:
    # Integers as integers, floats with six decimals, as Triton writes them.
    if isinstance(value, (float, np.floating)):
        return f"{float(value):f}"
    return str(int(value))  # type: ignore[call-overload]


def classify(array: np.ndarray, count: int, batched: bool) -> np.ndarray:
    """The top `count` classes per batch item as BYTES "value:index".

    Classes are ordered by value, highest first; equal values by index.
    """
    rows = array.reshape(array.shape[0], -1) if batched else array.reshape(1, -1)
    top = min(count, rows.shape[1])
    # A stable sort of the negated values keeps lower indices first on ties.
    order = np.argsort(-rows.astype(np.float64), axis=1, kind="stable")[:, :top]
    out = np.empty((rows.shape[0], top), dtype=np.object_)
    for row, indices in enumerate(order):
        out[row] = [f"{_class_text(rows[row, i])}:{i}".encode() for i in indices]
    return out if batched else out.reshape(top)


def _serialize(datatype: DataType, array: np.ndarray) -> bytes:
    if datatype is DataType.BYTES:
        return encode_bytes(array.reshape(-1))
    return np.ascontiguousarray(array, dtype=datatype.numpy_dtype).tobytes()


def _check_shm_outputs(
    model: str,
    outputs: Sequence[OutputRequest],
    data: Mapping[str, bytes],
    memory: Optional[SharedMemory],
) -> None:
    for output in outputs:
        ref = output.shm
        if ref is None:
            continue
        where = f"output '{output.name}' of model '{model}'"
        if memory is None:
            raise invalid(f"{where}: unknown shared memory region '{ref.region}'")
        region = memory.find(where, ref)
        size = len(data[output.name])
        if size > ref.byte_size:
            raise invalid(
                f"{where} needs {size} bytes but shared_memory_byte_size gives "
                f"{ref.byte_size} in shared memory region '{ref.region}'"
            )
        region.check_room(where, ref.offset, size)


def encode_outputs(
    response: pb.ModelInferResponse,
    specs: Mapping[str, TensorSpec],
    outputs: Sequence[OutputRequest],
    arrays: Mapping[str, np.ndarray],
    memory: Optional[SharedMemory] = None,
    batched: bool = False,
) -> None:
    """Appends the outputs to `response`: raw contents, or written to shared memory.

    Outputs requested with classification become BYTES "value:index" top
    classes per batch item (`batched`: the first dimension is the batch).

    Every shared memory output is checked before any is written, so a
    refused response writes nothing.
    """
    model = response.model_name
    arrays = dict(arrays)
    types = {o.name: specs[o.name].datatype for o in outputs}
    for output in outputs:
        if output.class_count:
            arrays[output.name] = classify(
                arrays[output.name], output.class_count, batched
            )
            types[output.name] = DataType.BYTES
    data = {o.name: _serialize(types[o.name], arrays[o.name]) for o in outputs}
    _check_shm_outputs(model, outputs, data, memory)
    for output in outputs:
        array, ref = arrays[output.name], output.shm
        datatype = types[output.name]
        tensor = response.outputs.add(
            name=output.name, datatype=datatype.value, shape=array.shape
        )
        if ref is None:
            response.raw_output_contents.append(data[output.name])
            continue
        assert memory is not None
        where = f"output '{output.name}' of model '{model}'"
        memory.find(where, ref).write(where, ref.offset, data[output.name])
        tensor.parameters[SHM_REGION].string_param = ref.region
        tensor.parameters[SHM_BYTE_SIZE].int64_param = len(data[output.name])
        if ref.offset:
            tensor.parameters[SHM_OFFSET].int64_param = ref.offset
