"""TraceSetting and LogSettings: defaults, updates, per-model overrides, refusals.

Each test puts the settings back to their defaults afterwards.
"""

import time

import grpc
import pytest

from oip.protocol import grpc_service_pb2 as pb
from tests.server.helpers import DEADLINE, rpc_error, simple_request
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

INVALID = grpc.StatusCode.INVALID_ARGUMENT
TRACE_DEFAULTS = {
    "trace_file": [""],
    "trace_level": ["OFF"],
    "trace_rate": ["1000"],
    "trace_count": ["-1"],
    "log_frequency": ["0"],
    "trace_mode": ["triton"],
}
LOG_DEFAULTS = {
    "log_file": "",
    "log_info": True,
    "log_warning": True,
    "log_error": True,
    "log_verbose_level": 0,
    "log_format": "default",
}
LOG_TYPES = {
    "log_file": "string_param",
    "log_format": "string_param",
    "log_verbose_level": "uint32_param",
}


def _trace(stub, model="", **settings):
    request = pb.TraceSettingRequest(model_name=model)
    for key, values in settings.items():
        request.settings[key].value.extend(values)
    response = stub.TraceSetting(request, timeout=DEADLINE)
    return {key: list(value.value) for key, value in response.settings.items()}


def _log_request(**settings):
    request = pb.LogSettingsRequest()
    for key, value in settings.items():
        member = LOG_TYPES.get(key, "bool_param")
        setattr(request.settings[key], member, value)
    return request


def _log(stub, **settings):
    response = stub.LogSettings(_log_request(**settings), timeout=DEADLINE)
    return {
        key: getattr(value, value.WhichOneof("parameter_choice"))
        for key, value in response.settings.items()
    }


@pytest.fixture(autouse=True)
def reset_settings(grpc_stub):
    yield
    clear = {key: [] for key in TRACE_DEFAULTS}
    for model in ("", "simple", "simple_int8"):
        _trace(grpc_stub, model, **clear)
    _log(grpc_stub, **LOG_DEFAULTS)


# TraceSetting.


def test_trace_defaults(grpc_stub):
    assert _trace(grpc_stub) == TRACE_DEFAULTS
    assert _trace(grpc_stub, "simple") == TRACE_DEFAULTS


def test_trace_global_update_merges(grpc_stub):
    updated = _trace(
        grpc_stub, trace_rate=["50"], trace_level=["TIMESTAMPS", "TENSORS"]
    )

    expected = dict(
        TRACE_DEFAULTS, trace_rate=["50"], trace_level=["TIMESTAMPS", "TENSORS"]
    )
    assert updated == expected
    assert _trace(grpc_stub) == expected
    assert _trace(grpc_stub, "simple") == expected


def test_trace_model_override(grpc_stub):
    model = _trace(grpc_stub, "simple", trace_count=["10"], trace_file=["/tmp/t"])

    assert model == dict(TRACE_DEFAULTS, trace_count=["10"], trace_file=["/tmp/t"])
    assert _trace(grpc_stub) == TRACE_DEFAULTS
    assert _trace(grpc_stub, "simple_int8") == TRACE_DEFAULTS


def test_trace_model_sees_later_global_changes(grpc_stub):
    _trace(grpc_stub, "simple", trace_count=["10"])

    _trace(grpc_stub, trace_count=["3"], log_frequency=["7"])

    model = _trace(grpc_stub, "simple")
    assert model["trace_count"] == ["10"]
    assert model["log_frequency"] == ["7"]


def test_trace_empty_value_clears_model_override(grpc_stub):
    _trace(grpc_stub, "simple", trace_rate=["5"], trace_count=["2"])
    _trace(grpc_stub, trace_rate=["77"])

    model = _trace(grpc_stub, "simple", trace_rate=[])

    assert model["trace_rate"] == ["77"]
    assert model["trace_count"] == ["2"]


def test_trace_empty_value_resets_global_default(grpc_stub):
    _trace(grpc_stub, trace_rate=["77"])

    assert _trace(grpc_stub, trace_rate=[])["trace_rate"] == ["1000"]


def test_trace_unknown_model(grpc_stub):
    request = pb.TraceSettingRequest(model_name="absent")
    request.settings["trace_rate"].value.append("5")

    error = rpc_error(grpc_stub.TraceSetting, request)

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'absent'" in error.details()


BAD_TRACE = [
    ("unknown_key", {"trace_colour": ["red"]}, "'trace_colour'"),
    ("bad_level", {"trace_level": ["LOUD"]}, "'LOUD'"),
    ("off_and_more", {"trace_level": ["OFF", "TENSORS"]}, "'OFF'"),
    ("rate_word", {"trace_rate": ["often"]}, "'often'"),
    ("rate_fraction", {"trace_rate": ["1.5"]}, "'1.5'"),
    ("rate_negative", {"trace_rate": ["-1"]}, "'trace_rate'"),
    ("count_below_minus_one", {"trace_count": ["-2"]}, "'trace_count'"),
    ("frequency_two_values", {"log_frequency": ["1", "2"]}, "'log_frequency'"),
    ("mode_unknown", {"trace_mode": ["zipkin"]}, "'zipkin'"),
    ("file_two_values", {"trace_file": ["a", "b"]}, "'trace_file'"),
]


@pytest.mark.parametrize("model", ["", "simple"], ids=["global", "model"])
@pytest.mark.parametrize(
    "settings, fragment", [c[1:] for c in BAD_TRACE], ids=[c[0] for c in BAD_TRACE]
)
def test_trace_refused_changes_nothing(grpc_stub, model, settings, fragment):
    request = pb.TraceSettingRequest(model_name=model)
    request.settings["trace_rate"].value.append("42")  # valid, must not stick
    for key, values in settings.items():
        request.settings[key].value[:] = values

    error = rpc_error(grpc_stub.TraceSetting, request)

    assert error.code() == INVALID
    assert fragment in error.details()
    assert _trace(grpc_stub, model) == TRACE_DEFAULTS


# LogSettings.


def test_log_defaults(grpc_stub):
    assert _log(grpc_stub) == LOG_DEFAULTS


def test_log_update_stored(grpc_stub):
    updated = _log(
        grpc_stub,
        log_verbose_level=2,
        log_format="ISO8601",
        log_file="/tmp/oip.log",
        log_warning=False,
    )

    expected = dict(
        LOG_DEFAULTS,
        log_verbose_level=2,
        log_format="ISO8601",
        log_file="/tmp/oip.log",
        log_warning=False,
    )
    assert updated == expected
    assert _log(grpc_stub) == expected


def _wait_for(server, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in server.read_log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _refused_marker(grpc_stub, marker):
    request = simple_request()
    request.model_name = marker
    rpc_error(grpc_stub.ModelInfer, request)


def test_verbose_level_turns_on_debug_log(grpc_stub, server):
    quiet, loud = "absent-quiet-model", "absent-loud-model"
    _refused_marker(grpc_stub, quiet)

    _log(grpc_stub, log_verbose_level=1)
    _refused_marker(grpc_stub, loud)

    assert _wait_for(server, loud)
    assert quiet not in server.read_log()


def test_info_switch_silences_info_log(grpc_stub, server):
    # The server writes each log line before it answers (stderr is line-buffered).
    load = pb.RepositoryModelLoadRequest(model_name="simple_identity")
    message = "loaded model 'simple_identity'"
    start = server.read_log().count(message)

    _log(grpc_stub, log_info=False)
    grpc_stub.RepositoryModelLoad(load, timeout=DEADLINE)
    silenced = server.read_log().count(message)
    _log(grpc_stub, log_info=True)
    grpc_stub.RepositoryModelLoad(load, timeout=DEADLINE)

    assert silenced == start
    assert server.read_log().count(message) == start + 1


BAD_LOG = [
    ("unknown_key", "log_colour", pb.LogSettingsRequest.SettingValue(bool_param=True)),
    (
        "info_as_string",
        "log_info",
        pb.LogSettingsRequest.SettingValue(string_param="true"),
    ),
    (
        "verbose_as_bool",
        "log_verbose_level",
        pb.LogSettingsRequest.SettingValue(bool_param=True),
    ),
    ("file_as_number", "log_file", pb.LogSettingsRequest.SettingValue(uint32_param=1)),
    ("unset", "log_error", pb.LogSettingsRequest.SettingValue()),
    (
        "bad_format",
        "log_format",
        pb.LogSettingsRequest.SettingValue(string_param="xml"),
    ),
]


@pytest.mark.parametrize(
    "key, value", [c[1:] for c in BAD_LOG], ids=[c[0] for c in BAD_LOG]
)
def test_log_refused_changes_nothing(grpc_stub, key, value):
    request = _log_request(log_verbose_level=3)  # valid, must not stick
    request.settings[key].CopyFrom(value)

    error = rpc_error(grpc_stub.LogSettings, request)

    assert error.code() == INVALID
    assert f"'{key}'" in error.details()
    assert _log(grpc_stub) == LOG_DEFAULTS


# Server metadata lists what is implemented.


def test_extensions(grpc_stub):
    response = grpc_stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=DEADLINE)

    assert set(response.extensions) >= {
        "model_repository",
        "model_repository(unload_dependents)",
        "statistics",
        "system_shared_memory",
        "trace",
        "logging",
        "model_configuration",
        "sequence",
    }
    assert "cuda_shared_memory" not in response.extensions
