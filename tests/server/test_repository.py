"""Model repository: index, load (with config overrides), unload, control modes.

The module's server is put back after each test: every model loaded again
with its own config.
"""

import json

import grpc
import pytest

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc
from oip.server import ServerProcess
from tests.server.helpers import (
    DEADLINE,
    assert_simple_answer,
    rpc_error,
    sequence_request,
    simple_request,
)
from tests.server_fixture import LOOPBACK_OPTIONS, channel, grpc_stub, server  # noqa: F401

MODELS = [
    "identity_fp32",
    "repeat_int32",
    "simple",
    "simple_identity",
    "simple_int8",
    "simple_sequence",
    "simple_string",
]
INTERNAL = grpc.StatusCode.INTERNAL
INVALID = grpc.StatusCode.INVALID_ARGUMENT
UNAVAILABLE_MESSAGE = "Request for unknown model: 'simple' has no available versions"


@pytest.fixture(autouse=True)
def reload_all(grpc_stub):
    yield
    for name in MODELS:
        request = pb.RepositoryModelLoadRequest(model_name=name)
        grpc_stub.RepositoryModelLoad(request, timeout=DEADLINE)


def _index(stub, ready=False):
    request = pb.RepositoryIndexRequest(ready=ready)
    response = stub.RepositoryIndex(request, timeout=DEADLINE)
    return {m.name: (m.version, m.state, m.reason) for m in response.models}


def _load(stub, name="simple", config=None, **parameters):
    request = pb.RepositoryModelLoadRequest(model_name=name)
    if config is not None:
        request.parameters["config"].string_param = config
    for key, value in parameters.items():
        request.parameters[key].CopyFrom(value)
    return stub.RepositoryModelLoad(request, timeout=DEADLINE)


def _load_error(stub, name="simple", config=None, **parameters):
    with pytest.raises(grpc.RpcError) as info:
        _load(stub, name, config, **parameters)
    return info.value


def _unload(stub, name="simple", **parameters):
    request = pb.RepositoryModelUnloadRequest(model_name=name)
    for key, value in parameters.items():
        request.parameters[key].CopyFrom(value)
    return stub.RepositoryModelUnload(request, timeout=DEADLINE)


def _max_batch_size(stub, name="simple"):
    request = pb.ModelConfigRequest(name=name)
    return stub.ModelConfig(request, timeout=DEADLINE).config.max_batch_size


def _ready(stub, name="simple"):
    request = pb.ModelReadyRequest(name=name)
    return stub.ModelReady(request, timeout=DEADLINE).ready


def _param(**field):
    return pb.ModelRepositoryParameter(**field)


def test_index_lists_every_model_ready(grpc_stub):
    index = _index(grpc_stub)

    assert index == {name: ("1", "READY", "") for name in MODELS}
    assert _index(grpc_stub, ready=True) == index


def test_unload_makes_model_unavailable(grpc_stub):
    _unload(grpc_stub)

    index = _index(grpc_stub)
    assert index["simple"] == ("1", "UNAVAILABLE", "unloaded")
    assert index["simple_int8"] == ("1", "READY", "")
    assert "simple" not in _index(grpc_stub, ready=True)
    assert not _ready(grpc_stub)
    assert _ready(grpc_stub, "simple_int8")


@pytest.mark.parametrize("rpc", ["ModelMetadata", "ModelConfig", "ModelInfer"])
def test_unloaded_model_refuses_requests(grpc_stub, rpc):
    _unload(grpc_stub)
    if rpc == "ModelInfer":
        request = simple_request()
    else:
        request = getattr(pb, f"{rpc}Request")(name="simple")

    error = rpc_error(getattr(grpc_stub, rpc), request)

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == UNAVAILABLE_MESSAGE


def test_unloaded_model_refuses_stream_requests(grpc_stub):
    _unload(grpc_stub)

    responses = list(
        grpc_stub.ModelStreamInfer(iter([simple_request()]), timeout=DEADLINE)
    )

    assert [r.error_message for r in responses] == [UNAVAILABLE_MESSAGE]


def test_unload_twice_keeps_model_unavailable(grpc_stub):
    _unload(grpc_stub)
    _unload(grpc_stub)

    assert _index(grpc_stub)["simple"][1] == "UNAVAILABLE"


def test_load_after_unload_serves_again(grpc_stub):
    _unload(grpc_stub)

    _load(grpc_stub)

    assert _ready(grpc_stub)
    assert _index(grpc_stub)["simple"] == ("1", "READY", "")
    assert_simple_answer(grpc_stub.ModelInfer(simple_request(), timeout=DEADLINE))


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_unload_dependents_accepted(grpc_stub, value):
    _unload(grpc_stub, unload_dependents=_param(bool_param=value))

    assert not _ready(grpc_stub)


def test_unload_unknown_model(grpc_stub):
    error = rpc_error(
        grpc_stub.RepositoryModelUnload,
        pb.RepositoryModelUnloadRequest(model_name="absent"),
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'absent'" in error.details()


@pytest.mark.parametrize(
    "key, parameter, fragment",
    [
        ("unload_dependents", _param(string_param="yes"), "'unload_dependents'"),
        ("cascade", _param(bool_param=True), "'cascade'"),
    ],
    ids=["wrong_type", "unknown_key"],
)
def test_unload_bad_parameter(grpc_stub, key, parameter, fragment):
    with pytest.raises(grpc.RpcError) as info:
        _unload(grpc_stub, **{key: parameter})

    assert info.value.code() == INVALID
    assert fragment in info.value.details()
    assert _ready(grpc_stub)


def test_load_unknown_model(grpc_stub):
    error = _load_error(grpc_stub, "absent")

    assert error.code() == INTERNAL
    assert error.details().startswith("failed to load 'absent', ")
    assert "absent" not in _index(grpc_stub)


@pytest.mark.parametrize("value", [16, "16"], ids=["number", "string"])
def test_config_override_sets_max_batch_size(grpc_stub, value):
    big = simple_request(batch=12)

    _load(grpc_stub, config=json.dumps({"max_batch_size": value}))

    assert _max_batch_size(grpc_stub) == 16
    assert_simple_answer(grpc_stub.ModelInfer(big, timeout=DEADLINE), batch=12)
    error = rpc_error(grpc_stub.ModelInfer, simple_request(batch=17))
    assert error.code() == INVALID
    assert "1 to 16" in error.details()


def test_config_override_can_shrink_batching(grpc_stub):
    _load(grpc_stub, config='{"max_batch_size": 2}')

    error = rpc_error(grpc_stub.ModelInfer, simple_request(batch=3))

    assert error.code() == INVALID
    assert "1 to 2" in error.details()


def test_config_override_keeps_other_fields(grpc_stub):
    override = {"max_batch_size": 4, "parameters": {"note": {"string_value": "x"}}}

    _load(grpc_stub, config=json.dumps(override))

    config = grpc_stub.ModelConfig(
        pb.ModelConfigRequest(name="simple"), timeout=DEADLINE
    ).config
    assert config.max_batch_size == 4
    assert config.parameters["note"].string_value == "x"
    assert [t.name for t in config.input] == ["INPUT0", "INPUT1"]


def test_reload_without_config_resets_override(grpc_stub):
    _load(grpc_stub, config='{"max_batch_size": 16}')

    _load(grpc_stub)

    assert _max_batch_size(grpc_stub) == 8
    error = rpc_error(grpc_stub.ModelInfer, simple_request(batch=12))
    assert error.code() == INVALID
    assert "1 to 8" in error.details()


def test_override_reaches_metadata_without_batching(grpc_stub):
    _load(grpc_stub, config='{"max_batch_size": 0}')

    metadata = grpc_stub.ModelMetadata(
        pb.ModelMetadataRequest(name="simple"), timeout=DEADLINE
    )

    assert [list(t.shape) for t in metadata.inputs] == [[16], [16]]
    assert _max_batch_size(grpc_stub) == 0


BAD_CONFIGS = [
    ("not_json", "{max_batch_size: 16", "JSON"),
    ("not_object", "[16]", "JSON object"),
    ("unknown_field", '{"max_batch_sizes": 16}', "max_batch_sizes"),
    ("wrong_type_word", '{"max_batch_size": "many"}', "max_batch_size"),
    ("wrong_type_fraction", '{"max_batch_size": 1.5}', "max_batch_size"),
    ("wrong_type_bool", '{"max_batch_size": true}', "max_batch_size"),
    ("wrong_type_list", '{"max_batch_size": [16]}', "max_batch_size"),
    ("negative", '{"max_batch_size": -1}', "-1"),
    ("renamed", '{"name": "other"}', "'name'"),
    ("new_inputs", '{"input": []}', "'input'"),
    (
        "decoupled",
        '{"model_transaction_policy": {"decoupled": true}}',
        "'model_transaction_policy'",
    ),
]


@pytest.mark.parametrize(
    "config, fragment", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_keeps_previous_state(grpc_stub, config, fragment):
    _load(grpc_stub, config='{"max_batch_size": 12}')

    error = _load_error(grpc_stub, config=config)

    assert error.code() == INTERNAL
    assert error.details().startswith("failed to load 'simple', ")
    assert fragment in error.details()
    assert _max_batch_size(grpc_stub) == 12
    assert _ready(grpc_stub)


def test_bad_config_leaves_unloaded_model_unloaded(grpc_stub):
    _unload(grpc_stub)

    error = _load_error(grpc_stub, config='{"bogus": 1}')

    assert error.code() == INTERNAL
    assert _index(grpc_stub)["simple"] == ("1", "UNAVAILABLE", "unloaded")


def test_non_batching_model_refuses_batch_size(grpc_stub):
    error = _load_error(grpc_stub, "repeat_int32", config='{"max_batch_size": 4}')

    assert error.code() == INTERNAL
    assert error.details().startswith("failed to load 'repeat_int32', ")
    assert _max_batch_size(grpc_stub, "repeat_int32") == 0


def test_file_needs_config(grpc_stub):
    error = _load_error(grpc_stub, **{"file:1/model.py": _param(bytes_param=b"x")})

    assert error.code() == INVALID
    assert "file:1/model.py" in error.details()
    assert "'config'" in error.details()


def test_file_with_config_is_accepted(grpc_stub):
    files = {"file:1/model.py": _param(bytes_param=b"print('never run')")}

    _load(grpc_stub, config='{"max_batch_size": 3}', **files)

    assert _max_batch_size(grpc_stub) == 3
    assert_simple_answer(grpc_stub.ModelInfer(simple_request(), timeout=DEADLINE))


@pytest.mark.parametrize(
    "key, parameter, fragment",
    [
        ("config", _param(int64_param=16), "'config'"),
        ("file:1/model.py", _param(string_param="x"), "'file:1/model.py'"),
        ("file:../escape", _param(bytes_param=b"x"), "'file:../escape'"),
        ("colour", _param(string_param="red"), "'colour'"),
    ],
    ids=["config_not_string", "file_not_bytes", "file_escapes", "unknown_key"],
)
def test_load_bad_parameter(grpc_stub, key, parameter, fragment):
    request = pb.RepositoryModelLoadRequest(model_name="simple")
    request.parameters[key].CopyFrom(parameter)
    if key.startswith("file:"):
        request.parameters["config"].string_param = "{}"

    error = rpc_error(grpc_stub.RepositoryModelLoad, request)

    assert error.code() == INVALID
    assert fragment in error.details()


@pytest.mark.parametrize(
    "rpc", ["RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"]
)
def test_named_repository_refused(grpc_stub, rpc):
    request = getattr(pb, f"{rpc}Request")(repository_name="elsewhere")
    if rpc != "RepositoryIndex":
        request.model_name = "simple"

    error = rpc_error(getattr(grpc_stub, rpc), request)

    assert error.code() == INVALID
    assert "'elsewhere'" in error.details()
    assert _ready(grpc_stub)


def test_reload_ends_live_sequences(grpc_stub):
    grpc_stub.ModelInfer(sequence_request(1, 77, start=True), timeout=DEADLINE)

    _load(grpc_stub, "simple_sequence")

    error = rpc_error(grpc_stub.ModelInfer, sequence_request(1, 77))
    assert error.code() == INVALID
    assert "START" in error.details()


def test_load_loaded_model_keeps_serving(grpc_stub):
    _load(grpc_stub)

    assert _ready(grpc_stub)
    assert_simple_answer(grpc_stub.ModelInfer(simple_request(), timeout=DEADLINE))


# Explicit model control mode: a server of its own.


def _stub(process):
    channel = grpc.insecure_channel(process.url, options=LOOPBACK_OPTIONS)
    grpc.channel_ready_future(channel).result(timeout=DEADLINE)
    return channel, grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)


def test_explicit_mode_loads_only_named_models():
    args = [
        "--model-control-mode",
        "explicit",
        "--load-model",
        "simple",
        "--load-model",
        "simple_string",
    ]
    with ServerProcess(extra_args=args) as process:
        channel, stub = _stub(process)
        with channel:
            index = _index(stub)
            ready = _index(stub, ready=True)
            int8_ready = _ready(stub, "simple_int8")
            _load(stub, "simple_int8")
            after = _index(stub, ready=True)
            stats = stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=DEADLINE)

    assert sorted(ready) == ["simple", "simple_string"]
    assert index["simple_int8"] == ("1", "UNAVAILABLE", "not loaded")
    assert index["repeat_int32"][1] == "UNAVAILABLE"
    assert not int8_ready
    assert sorted(after) == ["simple", "simple_int8", "simple_string"]
    assert [s.name for s in stats.model_stats] == [
        "simple",
        "simple_int8",
        "simple_string",
    ]


def test_explicit_mode_without_models_serves_none():
    with ServerProcess(extra_args=["--model-control-mode", "explicit"]) as process:
        channel, stub = _stub(process)
        with channel:
            index = _index(stub)
            error = rpc_error(stub.ModelInfer, simple_request())
            stats_error = rpc_error(
                stub.ModelStatistics, pb.ModelStatisticsRequest(name="simple")
            )
            _load(stub)
            response = stub.ModelInfer(simple_request(), timeout=DEADLINE)

    assert {state for _, state, _ in index.values()} == {"UNAVAILABLE"}
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == UNAVAILABLE_MESSAGE
    assert stats_error.code() == grpc.StatusCode.NOT_FOUND
    assert "'simple'" in stats_error.details()
    assert_simple_answer(response)


def test_explicit_mode_star_loads_every_model():
    args = ["--model-control-mode", "explicit", "--load-model", "*"]
    with ServerProcess(extra_args=args) as process:
        channel, stub = _stub(process)
        with channel:
            ready = _index(stub, ready=True)

    assert sorted(ready) == MODELS


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model-control-mode", "explicit", "--load-model", "absent"], "'absent'"),
        (["--load-model", "simple"], "--load-model"),
        (["--model-control-mode", "lazy"], "lazy"),
    ],
    ids=["unknown_model", "load_without_explicit", "unknown_mode"],
)
def test_bad_startup_arguments(args, fragment):
    process = ServerProcess(extra_args=args, startup_timeout=20)

    with pytest.raises(RuntimeError) as info:
        process.start()

    assert fragment in str(info.value)
