"""Health, server and model metadata, model config: Client and AsyncClient."""

from __future__ import annotations

import pytest

import oip
from oip.protocol import model_config_pb2 as mc
from tests.client.helpers import api, client, dead_client, server  # noqa: F401

MODELS = [
    "simple",
    "simple_int8",
    "simple_string",
    "simple_identity",
    "simple_sequence",
    "repeat_int32",
    "identity_fp32",
]

T = oip.TensorMetadata
METADATA = {
    "simple": (
        (T("INPUT0", "INT32", (-1, 16)), T("INPUT1", "INT32", (-1, 16))),
        (T("OUTPUT0", "INT32", (-1, 16)), T("OUTPUT1", "INT32", (-1, 16))),
    ),
    "simple_int8": (
        (T("INPUT0", "INT8", (-1, 16)), T("INPUT1", "INT8", (-1, 16))),
        (T("OUTPUT0", "INT8", (-1, 16)), T("OUTPUT1", "INT8", (-1, 16))),
    ),
    "simple_string": (
        (T("INPUT0", "BYTES", (-1, 16)), T("INPUT1", "BYTES", (-1, 16))),
        (T("OUTPUT0", "BYTES", (-1, 16)), T("OUTPUT1", "BYTES", (-1, 16))),
    ),
    "simple_identity": (
        (T("INPUT0", "BYTES", (-1, -1)),),
        (T("OUTPUT0", "BYTES", (-1, -1)),),
    ),
    "simple_sequence": (
        (T("INPUT", "INT32", (-1, 1)),),
        (T("OUTPUT", "INT32", (-1, 1)),),
    ),
    "repeat_int32": (
        (
            T("IN", "INT32", (-1,)),
            T("DELAY", "UINT32", (-1,)),
            T("WAIT", "UINT32", (1,)),
        ),
        (T("OUT", "INT32", (1,)), T("IDX", "UINT32", (1,))),
    ),
    "identity_fp32": ((T("INPUT0", "FP32", (-1,)),), (T("OUTPUT0", "FP32", (-1,)),)),
}


def test_server_live(api):
    assert api.is_server_live() is True


def test_server_ready(api):
    assert api.is_server_ready() is True


@pytest.mark.parametrize("model", MODELS)
def test_known_model_ready(api, model):
    assert api.is_model_ready(model) is True


@pytest.mark.parametrize(
    "model, version, ready",
    [
        ("simple", "1", True),
        ("simple", "2", False),
        ("nope", "", False),
        ("nope", "1", False),
    ],
    ids=["simple-v1", "simple-v2", "unknown", "unknown-v1"],
)
def test_model_ready_by_version(api, model, version, ready):
    assert api.is_model_ready(model, version) is ready


def test_server_metadata(api):
    metadata = api.get_server_metadata()
    assert isinstance(metadata, oip.ServerMetadata)
    assert metadata.name == "oip-reference"
    assert metadata.version == "0.1.0"
    assert isinstance(metadata.extensions, tuple)
    for extension in (
        "model_repository",
        "statistics",
        "system_shared_memory",
        "sequence",
        "logging",
        "trace",
    ):
        assert extension in metadata.extensions


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata(api, model):
    metadata = api.get_model_metadata(model)
    assert isinstance(metadata, oip.ModelMetadata)
    assert metadata.name == model
    assert metadata.versions == ("1",)
    assert metadata.platform == "oip_reference"
    assert (metadata.inputs, metadata.outputs) == METADATA[model]
    assert all(
        isinstance(t, oip.TensorMetadata) for t in metadata.inputs + metadata.outputs
    )


def test_model_metadata_at_version(api):
    assert api.get_model_metadata("simple", "1").name == "simple"


@pytest.mark.parametrize(
    "model, max_batch, decoupled, sequence",
    [
        ("simple", 8, False, False),
        ("simple_string", 8, False, False),
        ("simple_sequence", 8, False, True),
        ("repeat_int32", 0, True, False),
    ],
    ids=["simple", "simple_string", "simple_sequence", "repeat_int32"],
)
def test_model_config(api, model, max_batch, decoupled, sequence):
    config = api.get_model_config(model)
    assert isinstance(config, mc.ModelConfig)
    assert config.name == model
    assert config.max_batch_size == max_batch
    assert config.model_transaction_policy.decoupled is decoupled
    assert (config.WhichOneof("scheduling_choice") == "sequence_batching") is sequence
    expected_inputs = [t.name for t in METADATA[model][0]]
    assert [i.name for i in config.input] == expected_inputs


def test_model_config_tensor_types(api):
    config = api.get_model_config("simple_string")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("INPUT0", mc.TYPE_STRING, [16]),
        ("INPUT1", mc.TYPE_STRING, [16]),
    ]


@pytest.mark.parametrize("method", ["get_model_metadata", "get_model_config"])
@pytest.mark.parametrize(
    "model, version",
    [("nope", ""), ("simple", "2")],
    ids=["unknown-model", "unknown-version"],
)
def test_unknown_model_not_found(api, method, model, version):
    with pytest.raises(oip.ModelNotFoundError) as caught:
        getattr(api, method)(model, version)
    error = caught.value
    assert error.model == model
    assert error.status is oip.StatusCode.NOT_FOUND
    assert model in error.message
    assert isinstance(error.__cause__, Exception)


@pytest.mark.parametrize(
    "method", ["is_model_ready", "get_model_metadata", "get_model_config"]
)
def test_empty_model_name_refused_before_sending(dead_client, method):
    with pytest.raises(oip.InvalidInputError, match="model name is empty"):
        getattr(dead_client, method)("")


def test_bad_version_text_is_invalid(api):
    with pytest.raises(oip.InvalidInputError) as caught:
        api.get_model_metadata("simple", "one")
    assert caught.value.status is oip.StatusCode.INVALID_ARGUMENT
    assert "'one'" in caught.value.message
