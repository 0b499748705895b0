"""Classification outputs: the top classes as BYTES "value:index"."""

import grpc
import numpy as np
import pytest

from oip.protocol import grpc_service_pb2 as pb
from tests.server.helpers import DEADLINE, deserialize_bytes, raw_of
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401


def _request(a, b, classification=None, outputs=("OUTPUT0",)):
    request = pb.ModelInferRequest(model_name="simple")
    for name, array in (("INPUT0", a), ("INPUT1", b)):
        request.inputs.add(name=name, datatype="INT32", shape=list(array.shape))
        request.raw_input_contents.append(raw_of(array, "INT32"))
    for name in outputs:
        output = request.outputs.add(name=name)
        if classification is not None and name == "OUTPUT0":
            output.parameters["classification"].CopyFrom(classification)
    return request


def _count(n):
    return pb.InferParameter(int64_param=n)


def _outputs(response):
    return {
        t.name: (t, raw)
        for t, raw in zip(response.outputs, response.raw_output_contents)
    }


def test_top_classes_per_batch_item(grpc_stub):
    a = np.stack([np.arange(16), np.arange(16)[::-1]]).astype(np.int32)
    b = np.zeros((2, 16), dtype=np.int32)

    response = grpc_stub.ModelInfer(_request(a, b, _count(3)), timeout=DEADLINE)

    tensor, raw = _outputs(response)["OUTPUT0"]
    assert tensor.datatype == "BYTES"
    assert list(tensor.shape) == [2, 3]
    assert deserialize_bytes(raw) == [
        b"15:15",
        b"14:14",
        b"13:13",
        b"15:0",
        b"14:1",
        b"13:2",
    ]


def test_ties_keep_lower_index_first(grpc_stub):
    a = np.full((1, 16), 7, dtype=np.int32)

    response = grpc_stub.ModelInfer(
        _request(a, np.zeros_like(a), _count(2)), timeout=DEADLINE
    )

    assert deserialize_bytes(_outputs(response)["OUTPUT0"][1]) == [b"7:0", b"7:1"]


def test_count_larger_than_tensor_returns_all(grpc_stub):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)

    response = grpc_stub.ModelInfer(_request(a, a, _count(100)), timeout=DEADLINE)

    tensor, raw = _outputs(response)["OUTPUT0"]
    assert list(tensor.shape) == [1, 16]
    assert deserialize_bytes(raw)[0] == b"30:15"


def test_other_outputs_stay_tensors(grpc_stub):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    request = _request(a, a, _count(1), outputs=("OUTPUT0", "OUTPUT1"))

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    tensor, raw = _outputs(response)["OUTPUT1"]
    assert tensor.datatype == "INT32"
    assert np.frombuffer(raw, "<i4").tolist() == [0] * 16


@pytest.mark.parametrize(
    "parameter",
    [
        _count(0),
        _count(-2),
        pb.InferParameter(string_param="3"),
        pb.InferParameter(bool_param=True),
    ],
    ids=["zero", "negative", "string", "bool"],
)
def test_bad_classification_parameter(grpc_stub, parameter):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)

    with pytest.raises(grpc.RpcError) as info:
        grpc_stub.ModelInfer(_request(a, a, parameter), timeout=DEADLINE)

    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        "OUTPUT0" in info.value.details() and "classification" in info.value.details()
    )


def test_bytes_output_cannot_be_classified(grpc_stub):
    request = pb.ModelInferRequest(model_name="simple_identity")
    request.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 1])
    request.raw_input_contents.append(b"\x01\x00\x00\x00x")
    request.outputs.add(name="OUTPUT0").parameters["classification"].int64_param = 1

    with pytest.raises(grpc.RpcError) as info:
        grpc_stub.ModelInfer(request, timeout=DEADLINE)

    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "BYTES" in info.value.details()
