"""Model repository, statistics, trace and log settings.

These tests change the server's state (loaded models, settings), so the
module runs its own server, in explicit model control mode.
"""

from __future__ import annotations

import numpy as np
import pytest

import oip
from oip.protocol import grpc_service_pb2 as pb
from oip.server import ServerProcess
from tests.client.helpers import (  # noqa: F401
    DEADLINE,
    assert_simple,
    dead_client,
    run,
    simple_inputs,
)

ALL_MODELS = [
    "identity_fp32",
    "repeat_int32",
    "simple",
    "simple_identity",
    "simple_int8",
    "simple_sequence",
    "simple_string",
]
STARTUP = ["simple", "simple_string", "simple_identity"]


@pytest.fixture(scope="module")
def server():
    """A server of this module's own, with only STARTUP models loaded."""
    args = ["--model-control-mode", "explicit"]
    for name in STARTUP:
        args += ["--load-model", name]
    with ServerProcess(extra_args=args) as process:
        yield process


@pytest.fixture(scope="module")
def client(server):
    with oip.Client(server.url, timeout=DEADLINE) as c:
        yield c


def _index(client, **kwargs) -> dict[str, oip.RepositoryModel]:
    entries = client.get_model_repository_index(**kwargs)
    assert all(isinstance(e, oip.RepositoryModel) for e in entries)
    return {e.name: e for e in entries}


# Repository index, load and unload.


def test_index_lists_every_model_with_state(client):
    entries = client.get_model_repository_index()
    assert [e.name for e in entries] == ALL_MODELS
    by_name = {e.name: e for e in entries}
    assert all(e.version == "1" for e in entries)
    assert by_name["simple"].state == "READY" and by_name["simple"].reason == ""
    assert by_name["simple_sequence"].state == "UNAVAILABLE"
    assert by_name["simple_sequence"].reason == "not loaded"


def test_index_ready_only(client):
    ready = _index(client, ready_only=True)
    assert set(STARTUP) <= set(ready)
    assert all(entry.state == "READY" for entry in ready.values())
    assert "simple_sequence" not in ready


def test_model_not_loaded_at_start(client):
    assert client.is_model_ready("simple_sequence") is False
    with pytest.raises(oip.ModelUnavailableError) as caught:
        client.infer(
            "simple_sequence",
            {"INPUT": np.array([[1]], np.int32)},
            sequence_id=1,
            sequence_start=True,
        )
    assert caught.value.status is oip.StatusCode.UNAVAILABLE
    assert caught.value.model == "simple_sequence"


def test_load_then_infer(client):
    client.load_model("simple_int8")
    assert client.is_model_ready("simple_int8") is True
    assert _index(client)["simple_int8"].state == "READY"
    a = np.full((1, 16), 100, np.int8)
    result = client.infer("simple_int8", {"INPUT0": a, "INPUT1": a})
    assert result["OUTPUT0"].tolist() == [[-56] * 16]


@pytest.mark.parametrize(
    "config",
    [{"max_batch_size": 16}, '{"max_batch_size": 16}'],
    ids=["dict", "json-text"],
)
def test_load_with_config_override(client, config):
    try:
        client.load_model("simple", config=config)
        loaded = client.get_model_config("simple")
        assert loaded.max_batch_size == 16
        assert loaded.name == "simple"
        a, b = simple_inputs(12)  # more than the default 8
        assert_simple(client.infer("simple", {"INPUT0": a, "INPUT1": b}), a, b)
        with pytest.raises(oip.InvalidInputError, match="batch size 17"):
            client.infer("simple", dict(zip(("INPUT0", "INPUT1"), simple_inputs(17))))
    finally:
        client.load_model("simple")
    assert client.get_model_config("simple").max_batch_size == 8


def test_load_config_keeps_other_fields(client):
    try:
        client.load_model(
            "simple",
            config={
                "max_batch_size": 4,
                "parameters": {"note": {"string_value": "hi"}},
            },
        )
        config = client.get_model_config("simple")
        assert config.max_batch_size == 4
        assert config.parameters["note"].string_value == "hi"
    finally:
        client.load_model("simple")


def test_unload_then_unavailable(client):
    a, b = simple_inputs()
    client.load_model("simple_int8")
    client.unload_model("simple_int8")
    try:
        assert client.is_model_ready("simple_int8") is False
        entry = _index(client)["simple_int8"]
        assert (entry.state, entry.reason) == ("UNAVAILABLE", "unloaded")
        with pytest.raises(oip.ModelUnavailableError) as caught:
            client.infer(
                "simple_int8",
                {"INPUT0": a.astype(np.int8), "INPUT1": b.astype(np.int8)},
                request_id="u",
            )
        error = caught.value
        assert error.status is oip.StatusCode.UNAVAILABLE
        assert error.model == "simple_int8" and error.request_id == "u"
        assert not isinstance(error, oip.ServerUnavailableError)
        with pytest.raises(oip.ModelUnavailableError):
            client.get_model_config("simple_int8")
        with pytest.raises(oip.ModelUnavailableError):
            client.get_model_metadata("simple_int8")
    finally:
        client.load_model("simple_int8")
    assert client.is_model_ready("simple_int8") is True


@pytest.mark.parametrize("flavor", ["Client", "AsyncClient"])
def test_unloaded_model_on_a_stream(server, client, flavor):
    a, b = simple_inputs()
    int8 = {"INPUT0": a.astype(np.int8), "INPUT1": b.astype(np.int8)}
    client.load_model("simple_int8")
    client.unload_model("simple_int8")
    try:
        if flavor == "Client":
            with client.stream(timeout=DEADLINE) as stream:
                stream.send("simple_int8", int8)
                stream.send("simple", {"INPUT0": a, "INPUT1": b})
                stream.close()
                bad, good = list(stream)
        else:

            async def go():
                async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
                    async with aio.stream(timeout=DEADLINE) as stream:
                        await stream.send("simple_int8", int8)
                        await stream.send("simple", {"INPUT0": a, "INPUT1": b})
                        await stream.close()
                        return [r async for r in stream]

            bad, good = run(go)
    finally:
        client.load_model("simple_int8")
    # As on a unary call: the model exists but is not loaded.
    assert isinstance(bad.error, oip.ModelUnavailableError)
    assert bad.error.status is oip.StatusCode.UNAVAILABLE
    with pytest.raises(oip.ModelUnavailableError):
        bad["OUTPUT0"]
    assert_simple(good, a, b)


def test_unload_with_dependents(client):
    client.load_model("simple_int8")
    client.unload_model("simple_int8", unload_dependents=True)
    assert client.is_model_ready("simple_int8") is False
    client.load_model("simple_int8")


def test_load_unknown_model_is_server_error(client):
    with pytest.raises(oip.ServerError) as caught:
        client.load_model("no_such_model")
    error = caught.value
    assert error.status is oip.StatusCode.INTERNAL
    assert error.model == "no_such_model"
    assert "failed to load 'no_such_model'" in error.message


@pytest.mark.parametrize(
    "config, reason",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"input": []}, "'input'"),
        ({"max_batch_size": -1}, "negative"),
        ({"no_such_field": 1}, "not a valid ModelConfig"),
    ],
    ids=["bad-json", "not-object", "changes-inputs", "negative-batch", "unknown-field"],
)
def test_load_bad_config_refused_and_model_kept(client, config, reason):
    with pytest.raises(oip.ServerError, match=reason) as caught:
        client.load_model("simple", config=config)
    assert caught.value.status is oip.StatusCode.INTERNAL
    assert client.is_model_ready("simple") is True
    assert client.get_model_config("simple").max_batch_size == 8


def test_unload_unknown_model(client):
    with pytest.raises(oip.ModelNotFoundError) as caught:
        client.unload_model("no_such_model")
    assert caught.value.model == "no_such_model"


def test_load_with_files_and_config(client):
    try:
        client.load_model(
            "simple_int8",
            config={"max_batch_size": 2},
            files={"1/model.py": b"print('hi')\n", "README": b"x"},
        )
        assert client.get_model_config("simple_int8").max_batch_size == 2
    finally:
        client.load_model("simple_int8")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(files={"1/model.py": b"x"}), "files need a config"),
        (dict(config={}, files={"../escape.py": b"x"}), "'../escape.py'"),
        (dict(config={}, files={"/abs.py": b"x"}), "'/abs.py'"),
        (dict(config={}, files={"1/model.py": "text, not bytes"}), "'1/model.py'"),
    ],
    ids=["files-without-config", "parent-path", "absolute-path", "str-content"],
)
def test_load_refused_before_sending(dead_client, kwargs, message):
    with pytest.raises(oip.InvalidInputError, match=message) as caught:
        dead_client.load_model("simple", **kwargs)
    assert caught.value.model == "simple"


@pytest.mark.parametrize("method", ["load_model", "unload_model"])
def test_empty_model_name_refused(dead_client, method):
    with pytest.raises(oip.InvalidInputError, match="model name is empty"):
        getattr(dead_client, method)("")


def test_async_load_unload(server):
    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            await aio.load_model("simple_sequence", config={"max_batch_size": 2})
            ready = await aio.is_model_ready("simple_sequence")
            batch = (await aio.get_model_config("simple_sequence")).max_batch_size
            index = {e.name: e.state for e in await aio.get_model_repository_index()}
            await aio.unload_model("simple_sequence")
            after = await aio.is_model_ready("simple_sequence")
            return ready, batch, index["simple_sequence"], after

    assert run(go) == (True, 2, "READY", False)


# Statistics.


def _stats(client, model="simple") -> pb.ModelStatistics:
    response = client.get_inference_statistics(model)
    assert isinstance(response, pb.ModelStatisticsResponse)
    (stats,) = response.model_stats
    assert stats.name == model and stats.version == "1"
    return stats


def test_statistics_count_requests(client):
    before = _stats(client, "simple_identity")
    items = np.array([[b"a", b"b"]], dtype=np.object_)
    for _ in range(3):
        client.infer("simple_identity", {"INPUT0": items})
    client.infer("simple_identity", {"INPUT0": np.concatenate([items] * 4)})  # batch 4
    with pytest.raises(oip.InvalidInputError):
        client.infer(
            "simple_identity", {"INPUT0": np.zeros((1, 2), np.int32)}
        )  # wrong datatype
    after = _stats(client, "simple_identity")

    assert (
        after.inference_stats.success.count - before.inference_stats.success.count == 4
    )
    assert after.inference_stats.fail.count - before.inference_stats.fail.count == 1
    assert after.inference_count - before.inference_count == 3 + 4
    assert after.execution_count - before.execution_count == 4
    assert after.inference_stats.success.ns > before.inference_stats.success.ns
    assert after.last_inference > 0 and after.last_inference >= before.last_inference


def test_statistics_of_all_models(client):
    response = client.get_inference_statistics()
    names = [stats.name for stats in response.model_stats]
    assert set(STARTUP) <= set(names)
    assert "repeat_int32" not in names  # never loaded: no statistics
    assert names == sorted(names)


def test_statistics_at_version(client):
    assert client.get_inference_statistics("simple", "1").model_stats[0].version == "1"
    with pytest.raises(oip.ModelNotFoundError):
        client.get_inference_statistics("simple", "2")


def test_statistics_unknown_model(client):
    with pytest.raises(oip.ModelNotFoundError) as caught:
        client.get_inference_statistics("no_such_model")
    assert caught.value.model == "no_such_model"


def test_statistics_async(server, client):
    before = _stats(client).inference_stats.success.count
    a, b = simple_inputs()

    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            await aio.infer("simple", {"INPUT0": a, "INPUT1": b})
            return await aio.get_inference_statistics("simple")

    response = run(go)
    assert response.model_stats[0].inference_stats.success.count == before + 1


# Trace settings.

TRACE_DEFAULTS = {
    "trace_file": [""],
    "trace_level": ["OFF"],
    "trace_rate": ["1000"],
    "trace_count": ["-1"],
    "log_frequency": ["0"],
    "trace_mode": ["triton"],
}


@pytest.fixture
def trace_reset(client):
    yield
    client.update_trace_settings({key: None for key in TRACE_DEFAULTS})
    client.update_trace_settings({key: None for key in TRACE_DEFAULTS}, model="simple")


def test_trace_settings_defaults(client, trace_reset):
    assert client.get_trace_settings() == TRACE_DEFAULTS
    assert client.get_trace_settings("simple") == TRACE_DEFAULTS


def test_trace_settings_update_and_clear(client, trace_reset):
    updated = client.update_trace_settings(
        {"trace_level": ["TIMESTAMPS", "TENSORS"], "trace_rate": "50"}
    )
    assert updated["trace_level"] == ["TIMESTAMPS", "TENSORS"]
    assert updated["trace_rate"] == ["50"]
    assert client.get_trace_settings()["trace_rate"] == ["50"]

    cleared = client.update_trace_settings({"trace_rate": None})
    assert cleared["trace_rate"] == ["1000"]
    assert cleared["trace_level"] == ["TIMESTAMPS", "TENSORS"]


def test_trace_settings_per_model(client, trace_reset):
    client.update_trace_settings({"trace_rate": "50"})
    model = client.update_trace_settings(
        {"trace_rate": "7", "trace_count": ["3"]}, model="simple"
    )
    assert model["trace_rate"] == ["7"] and model["trace_count"] == ["3"]
    assert client.get_trace_settings()["trace_rate"] == ["50"]
    assert client.get_trace_settings("simple_string")["trace_rate"] == ["50"]

    # Clearing the model's setting falls back to the global one.
    assert client.update_trace_settings({"trace_rate": None}, model="simple")[
        "trace_rate"
    ] == ["50"]
    assert client.get_trace_settings("simple")["trace_count"] == ["3"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"trace_level": "LOUD"}, "'LOUD'"),
        ({"trace_level": ["OFF", "TENSORS"]}, "'OFF'"),
        ({"trace_rate": "fast"}, "'fast'"),
        ({"trace_count": "-2"}, "out of range"),
        ({"trace_mode": "other"}, "'other'"),
        ({"no_such_setting": "1"}, "'no_such_setting'"),
    ],
    ids=[
        "bad-level",
        "off-with-others",
        "not-integer",
        "out-of-range",
        "bad-mode",
        "unknown-key",
    ],
)
def test_trace_settings_refused(client, trace_reset, settings, message):
    with pytest.raises(oip.InvalidInputError, match=message):
        client.update_trace_settings(settings)
    assert client.get_trace_settings() == TRACE_DEFAULTS  # nothing changed


def test_trace_settings_unknown_model(client):
    with pytest.raises(oip.ModelNotFoundError) as caught:
        client.get_trace_settings("no_such_model")
    assert caught.value.model == "no_such_model"


def test_trace_settings_async(server, trace_reset):
    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            await aio.update_trace_settings({"trace_level": ["TIMESTAMPS"]})
            return await aio.get_trace_settings()

    assert run(go)["trace_level"] == ["TIMESTAMPS"]


# Log settings.


@pytest.fixture
def log_reset(client):
    original = client.get_log_settings()
    yield original
    assert client.update_log_settings(original) == original


def test_log_settings_read(client, log_reset):
    settings = client.get_log_settings()
    assert set(settings) == {
        "log_file",
        "log_info",
        "log_warning",
        "log_error",
        "log_verbose_level",
        "log_format",
    }
    assert isinstance(settings["log_info"], bool)
    assert isinstance(settings["log_verbose_level"], int) and not isinstance(
        settings["log_verbose_level"], bool
    )
    assert settings["log_format"] == "default"
    assert settings["log_file"] == ""


def test_log_settings_update(client, log_reset):
    updated = client.update_log_settings(
        {"log_verbose_level": 2, "log_format": "ISO8601", "log_info": False}
    )
    assert updated["log_verbose_level"] == 2
    assert updated["log_format"] == "ISO8601"
    assert updated["log_info"] is False
    assert client.get_log_settings() == updated
    assert client.update_log_settings({}) == updated  # an empty update reads


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"log_info": "yes"}, "'log_info' must be bool_param"),
        ({"log_verbose_level": True}, "'log_verbose_level' must be uint32_param"),
        ({"log_file": 3}, "'log_file' must be string_param"),
        ({"log_format": "json"}, "'json'"),
        ({"no_such_setting": True}, "'no_such_setting'"),
    ],
    ids=["str-for-bool", "bool-for-int", "int-for-str", "bad-format", "unknown-key"],
)
def test_log_settings_wrong_type_refused_by_server(
    client, log_reset, settings, message
):
    with pytest.raises(oip.InvalidInputError, match=message) as caught:
        client.update_log_settings(settings)
    assert caught.value.status is oip.StatusCode.INVALID_ARGUMENT
    assert client.get_log_settings() == log_reset


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"log_verbose_level": -1}, "outside uint32"),
        ({"log_verbose_level": 2**32}, "outside uint32"),
        ({"log_info": 1.5}, "float"),
        ({"log_file": None}, "NoneType"),
    ],
    ids=["negative", "too-big", "float", "none"],
)
def test_log_settings_wrong_type_refused_by_client(dead_client, settings, message):
    with pytest.raises(oip.InvalidInputError, match=message):
        dead_client.update_log_settings(settings)


def test_log_settings_async(server, log_reset):
    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            return await aio.update_log_settings({"log_warning": False})

    assert run(go)["log_warning"] is False
