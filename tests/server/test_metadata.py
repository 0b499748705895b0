"""Server metadata, model metadata and model configs."""

import grpc
import pytest

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc
from oip.protocol import model_config_pb2 as mc
from oip.server import ServerProcess
from tests.server.helpers import DEADLINE, rpc_error
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

PAIR_IN = [("INPUT0", 16), ("INPUT1", 16)]
PAIR_OUT = [("OUTPUT0", 16), ("OUTPUT1", 16)]

# name -> (max_batch_size, inputs, outputs); tensors are (name, datatype, dims).
MODELS = {
    "simple": (
        8,
        [(n, "INT32", [d]) for n, d in PAIR_IN],
        [(n, "INT32", [d]) for n, d in PAIR_OUT],
    ),
    "simple_int8": (
        8,
        [(n, "INT8", [d]) for n, d in PAIR_IN],
        [(n, "INT8", [d]) for n, d in PAIR_OUT],
    ),
    "simple_string": (
        8,
        [(n, "BYTES", [d]) for n, d in PAIR_IN],
        [(n, "BYTES", [d]) for n, d in PAIR_OUT],
    ),
    "simple_identity": (8, [("INPUT0", "BYTES", [-1])], [("OUTPUT0", "BYTES", [-1])]),
    "simple_sequence": (8, [("INPUT", "INT32", [1])], [("OUTPUT", "INT32", [1])]),
    "identity_fp32": (0, [("INPUT0", "FP32", [-1])], [("OUTPUT0", "FP32", [-1])]),
    "repeat_int32": (
        0,
        [("IN", "INT32", [-1]), ("DELAY", "UINT32", [-1]), ("WAIT", "UINT32", [1])],
        [("OUT", "INT32", [1]), ("IDX", "UINT32", [1])],
    ),
}

CONFIG_TYPES = {
    "INT32": mc.TYPE_INT32,
    "INT8": mc.TYPE_INT8,
    "UINT32": mc.TYPE_UINT32,
    "BYTES": mc.TYPE_STRING,
    "FP32": mc.TYPE_FP32,
}


def _metadata_view(tensors):
    return [(t.name, t.datatype, list(t.shape)) for t in tensors]


def _config_view(tensors):
    return [(t.name, t.data_type, list(t.dims)) for t in tensors]


def test_server_metadata(grpc_stub):
    response = grpc_stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=DEADLINE)

    assert response.name
    assert response.version
    assert {"model_configuration", "sequence"} <= set(response.extensions)
    assert len(set(response.extensions)) == len(response.extensions)


@pytest.mark.parametrize("name", sorted(MODELS), ids=str)
def test_model_metadata(grpc_stub, name):
    batch, inputs, outputs = MODELS[name]
    lead = [-1] if batch else []
    request = pb.ModelMetadataRequest(name=name)

    response = grpc_stub.ModelMetadata(request, timeout=DEADLINE)

    assert response.name == name
    assert list(response.versions) == ["1"]
    assert _metadata_view(response.inputs) == [(n, t, lead + d) for n, t, d in inputs]
    assert _metadata_view(response.outputs) == [(n, t, lead + d) for n, t, d in outputs]


@pytest.mark.parametrize("version", ["", "1"], ids=["latest", "explicit"])
def test_model_metadata_version(grpc_stub, version):
    request = pb.ModelMetadataRequest(name="simple", version=version)

    response = grpc_stub.ModelMetadata(request, timeout=DEADLINE)

    assert response.name == "simple"


@pytest.mark.parametrize("name", sorted(MODELS), ids=str)
def test_model_config(grpc_stub, name):
    batch, inputs, outputs = MODELS[name]
    request = pb.ModelConfigRequest(name=name)

    config = grpc_stub.ModelConfig(request, timeout=DEADLINE).config

    assert config.name == name
    assert config.max_batch_size == batch
    assert _config_view(config.input) == [(n, CONFIG_TYPES[t], d) for n, t, d in inputs]
    assert _config_view(config.output) == [
        (n, CONFIG_TYPES[t], d) for n, t, d in outputs
    ]
    decoupled = config.model_transaction_policy.decoupled
    assert decoupled == (name == "repeat_int32")
    assert config.HasField("sequence_batching") == (name == "simple_sequence")


def test_sequence_config_control_inputs(grpc_stub):
    request = pb.ModelConfigRequest(name="simple_sequence")
    control = mc.ModelSequenceBatching.Control

    batching = grpc_stub.ModelConfig(request, timeout=DEADLINE).config.sequence_batching

    controls = {c.name: list(c.control) for c in batching.control_input}
    assert sorted(controls) == ["READY", "START"]
    kinds = {name: [k.kind for k in ks] for name, ks in controls.items()}
    assert kinds == {
        "START": [control.CONTROL_SEQUENCE_START],
        "READY": [control.CONTROL_SEQUENCE_READY],
    }
    assert all(list(ks[0].int32_false_true) == [0, 1] for ks in controls.values())
    assert batching.max_sequence_idle_microseconds == 1_000_000


@pytest.mark.parametrize("rpc", ["ModelMetadata", "ModelConfig"], ids=str)
def test_unknown_model(grpc_stub, rpc):
    request = getattr(pb, f"{rpc}Request")(name="absent")

    error = rpc_error(getattr(grpc_stub, rpc), request)

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "Request for unknown model: 'absent' is not found"


VERSIONS = [
    ("one", grpc.StatusCode.INVALID_ARGUMENT),
    ("-1", grpc.StatusCode.INVALID_ARGUMENT),
    ("1.0", grpc.StatusCode.INVALID_ARGUMENT),
    ("\u00b2", grpc.StatusCode.INVALID_ARGUMENT),  # superscript two: not ASCII
    ("2", grpc.StatusCode.NOT_FOUND),
    ("0", grpc.StatusCode.NOT_FOUND),
    ("9" * 5000, grpc.StatusCode.NOT_FOUND),  # beyond int()'s digit limit
]


@pytest.mark.parametrize("rpc", ["ModelMetadata", "ModelConfig"], ids=str)
@pytest.mark.parametrize(
    "version, code",
    VERSIONS,
    ids=["word", "negative", "decimal", "superscript", "two", "zero", "huge"],
)
def test_bad_version(grpc_stub, rpc, version, code):
    request = getattr(pb, f"{rpc}Request")(name="simple", version=version)

    error = rpc_error(getattr(grpc_stub, rpc), request)

    assert error.code() == code
    assert "'simple'" in error.details()
    assert version[:40] in error.details()


@pytest.mark.parametrize(
    "version", ["2", "\u00b2", "9" * 5000], ids=["two", "superscript", "huge"]
)
def test_model_ready_bad_version(grpc_stub, version):
    request = pb.ModelReadyRequest(name="simple", version=version)

    response = grpc_stub.ModelReady(request, timeout=DEADLINE)

    assert not response.ready


def test_server_name_can_be_set():
    with ServerProcess(extra_args=["--server-name", "triton"]) as named:
        with grpc.insecure_channel(named.url) as ch:
            stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(ch)

            response = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=DEADLINE)

    assert response.name == "triton"
