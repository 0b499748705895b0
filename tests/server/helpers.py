"""Request builders and response readers shared by the server tests.

They encode tensors on their own (not with oip's helpers), so the tests
check the server against the wire format rather than against itself.
"""

from __future__ import annotations

import struct
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import grpc
import numpy as np
import pytest

from oip.protocol import grpc_service_pb2 as pb

DEADLINE = 10

NUMPY_TYPES = {
    "INT8": np.dtype("<i1"),
    "INT32": np.dtype("<i4"),
    "UINT32": np.dtype("<u4"),
    "BYTES": np.dtype(np.object_),
}

SequenceId = Union[int, str, tuple]


def serialize_bytes(elements: Iterable[bytes]) -> bytes:
    """BYTES raw contents: each element as a 4-byte LE length, then its bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in elements)


def deserialize_bytes(data: bytes) -> list[bytes]:
    """The elements of BYTES raw contents."""
    items, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        items.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    assert offset == len(data), "BYTES contents overrun"
    return items


def raw_of(array: np.ndarray, datatype: str) -> bytes:
    """`array` as raw contents of `datatype`."""
    if datatype == "BYTES":
        return serialize_bytes(bytes(item) for item in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=NUMPY_TYPES[datatype]).tobytes()


def typed_of(array: np.ndarray, datatype: str) -> pb.InferTensorContents:
    """`array` as typed contents of `datatype`."""
    flat = array.reshape(-1).tolist()
    if datatype == "BYTES":
        return pb.InferTensorContents(bytes_contents=flat)
    if datatype == "UINT32":
        return pb.InferTensorContents(uint_contents=flat)
    return pb.InferTensorContents(int_contents=flat)


def infer_request(
    model: str,
    inputs: Mapping[str, tuple[str, np.ndarray]],
    typed: bool = False,
    outputs: Sequence[str] = (),
    **fields: object,
) -> pb.ModelInferRequest:
    """A request with `inputs` (name -> (datatype, array)), raw or typed."""
    request = pb.ModelInferRequest(model_name=model, **fields)
    for name, (datatype, array) in inputs.items():
        tensor = request.inputs.add(name=name, datatype=datatype, shape=array.shape)
        if typed:
            tensor.contents.CopyFrom(typed_of(array, datatype))
        else:
            request.raw_input_contents.append(raw_of(array, datatype))
    for name in outputs:
        request.outputs.add(name=name)
    return request


def simple_inputs(batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """INPUT0 and INPUT1 for `simple`: 0..16*batch-1 and a varying column."""
    a = np.arange(batch * 16, dtype=np.int32).reshape(batch, 16)
    b = (np.arange(batch * 16, dtype=np.int32) % 5 - 2).reshape(batch, 16)
    return a, b


def simple_request(batch: int = 1, **fields: object) -> pb.ModelInferRequest:
    """A correct raw request to `simple`."""
    a, b = simple_inputs(batch)
    inputs = {"INPUT0": ("INT32", a), "INPUT1": ("INT32", b)}
    return infer_request("simple", inputs, **fields)


def output(response: pb.ModelInferResponse, name: str) -> np.ndarray:
    """The output called `name`, decoded from raw_output_contents."""
    names = [tensor.name for tensor in response.outputs]
    assert name in names, f"no output {name} in {names}"
    assert len(response.raw_output_contents) == len(names)
    index = names.index(name)
    tensor, data = response.outputs[index], response.raw_output_contents[index]
    shape = list(tensor.shape)
    if tensor.datatype == "BYTES":
        array = np.empty(len(deserialize_bytes(data)), dtype=np.object_)
        array[:] = deserialize_bytes(data)
        return array.reshape(shape)
    return np.frombuffer(data, dtype=NUMPY_TYPES[tensor.datatype]).reshape(shape)


def assert_simple_answer(response: pb.ModelInferResponse, batch: int = 1) -> None:
    """`response` holds the right sum and difference for simple_request()."""
    a, b = simple_inputs(batch)
    np.testing.assert_array_equal(output(response, "OUTPUT0"), a + b)
    np.testing.assert_array_equal(output(response, "OUTPUT1"), a - b)


def rpc_error(call: Callable[..., object], *args: object) -> grpc.RpcError:
    """The error `call(*args, timeout=DEADLINE)` raises; fails if it succeeds."""
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=DEADLINE)
    return info.value


def set_sequence(
    request: pb.ModelInferRequest,
    sequence_id: Optional[SequenceId],
    start: bool = False,
    end: bool = False,
) -> pb.ModelInferRequest:
    """Adds sequence parameters: int -> int64, str -> string, ("u", n) -> uint64."""
    parameters = request.parameters
    if isinstance(sequence_id, tuple):
        parameters["sequence_id"].uint64_param = sequence_id[1]
    elif isinstance(sequence_id, str):
        parameters["sequence_id"].string_param = sequence_id
    elif isinstance(sequence_id, float):
        parameters["sequence_id"].double_param = sequence_id
    elif sequence_id is not None:
        parameters["sequence_id"].int64_param = sequence_id
    if start:
        parameters["sequence_start"].bool_param = True
    if end:
        parameters["sequence_end"].bool_param = True
    return request


def sequence_request(
    value: int,
    sequence_id: Optional[SequenceId],
    start: bool = False,
    end: bool = False,
    batch: int = 1,
) -> pb.ModelInferRequest:
    """A request to simple_sequence with INPUT = `value` in every batch row."""
    array = np.full((batch, 1), value, dtype=np.int32)
    request = infer_request("simple_sequence", {"INPUT": ("INT32", array)})
    return set_sequence(request, sequence_id, start, end)


def repeat_request(
    values: Sequence[int],
    delays: Optional[Sequence[int]] = None,
    wait: int = 0,
    final: Optional[bool] = None,
    model: str = "repeat_int32",
    **fields: object,
) -> pb.ModelInferRequest:
    """A request to repeat_int32; `final` sets triton_enable_empty_final_response."""
    delays = [0] * len(values) if delays is None else delays
    inputs = {
        "IN": ("INT32", np.array(values, dtype=np.int32)),
        "DELAY": ("UINT32", np.array(delays, dtype=np.uint32)),
        "WAIT": ("UINT32", np.array([wait], dtype=np.uint32)),
    }
    request = infer_request(model, inputs, **fields)
    if final is not None:
        request.parameters["triton_enable_empty_final_response"].bool_param = final
    return request
