"""Unreachable servers, deadlines, headers, compression, retries, channel settings.

Besides the reference server, a few tests run a small in-process gRPC server
that records what arrives (headers, attempts), to check what the client
really sends.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import grpc
import numpy as np
import pytest

import oip
from oip._grpc import ChannelSettings
from oip.protocol import grpc_service_pb2 as pb
from oip.server import ServerProcess
from tests.client.helpers import (  # noqa: F401
    DEADLINE,
    assert_simple,
    client,
    closed_port_url,
    frozen_server,
    run,
    server,
    simple_inputs,
    stopped,
)

SERVICE = "inference.GRPCInferenceService"
A, B = simple_inputs()
INPUTS = {"INPUT0": A, "INPUT1": B}


def _call_sync(url: str, method: str, **client_kwargs):
    with oip.Client(url, **client_kwargs) as c:
        if method == "infer":
            return c.infer("simple", INPUTS, request_id="rid")
        return getattr(c, method)()


def _call_async(url: str, method: str, **client_kwargs):
    async def go():
        async with oip.AsyncClient(url, **client_kwargs) as c:
            if method == "infer":
                return await c.infer("simple", INPUTS, request_id="rid")
            return await getattr(c, method)()

    return run(go)


CALLERS = {"Client": _call_sync, "AsyncClient": _call_async}
METHODS = ["is_server_live", "get_server_metadata", "infer"]


# Unreachable servers.


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flavor", list(CALLERS))
def test_server_down(flavor, method):
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(oip.ServerUnavailableError) as caught:
        CALLERS[flavor](url, method, timeout=DEADLINE)
    elapsed = time.monotonic() - started
    error = caught.value
    assert elapsed < DEADLINE / 2, (
        f"took {elapsed:.1f} s: waited for the deadline instead of failing"
    )
    assert url in error.message
    assert error.status is oip.StatusCode.UNAVAILABLE
    assert isinstance(error, ConnectionError)
    assert isinstance(error.__cause__, grpc.RpcError)
    if method == "infer":
        assert error.model == "simple" and error.request_id == "rid"


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_server_went_away(flavor):
    process = ServerProcess().start()
    url = process.url
    try:
        assert CALLERS[flavor](url, "is_server_live", timeout=DEADLINE) is True
    finally:
        process.close()
    with pytest.raises(oip.ServerUnavailableError, match=url):
        CALLERS[flavor](url, "infer", timeout=DEADLINE)


def test_server_went_away_under_a_connected_client():
    process = ServerProcess().start()
    try:
        c = oip.Client(process.url, timeout=DEADLINE)
        assert c.is_server_live()
    finally:
        process.close()
    try:
        with pytest.raises(oip.ServerUnavailableError):
            c.infer("simple", INPUTS)
        with pytest.raises(oip.ServerUnavailableError):
            c.is_server_ready()
    finally:
        c.close()


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_tls_client_to_plaintext_server_fails_fast(server, flavor):
    started = time.monotonic()
    with pytest.raises(oip.ServerUnavailableError) as caught:
        CALLERS[flavor](
            server.url, "is_server_live", timeout=DEADLINE, tls=oip.TlsOptions()
        )
    assert time.monotonic() - started < DEADLINE / 2
    assert server.url in caught.value.message


def test_tls_options_read_pem_files(tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_bytes(
        b"-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n"
    )
    options = oip.TlsOptions(
        root_certificates=str(garbage), target_name_override="example.org"
    )
    assert isinstance(options.credentials(), grpc.ChannelCredentials)
    settings = ChannelSettings("127.0.0.1:1", tls=options)
    assert ("grpc.ssl_target_name_override", "example.org") in settings.options()


# Deadlines. A frozen server (SIGSTOP) answers nothing, so deadlines expire
# for certain; a tiny timeout against a live server may not (gRPC rounds
# deadlines to milliseconds and a loopback call can beat that).


def _frozen_call(
    url: str, flavor: str, method: str, client_timeout: float, call_timeout, process
) -> float:
    """Connects, freezes the server, runs `method`; returns seconds until it failed."""
    call_kwargs = {} if call_timeout is None else {"timeout": call_timeout}

    def invoke_sync():
        with oip.Client(url, timeout=client_timeout) as c:
            assert c.is_server_live(timeout=DEADLINE)
            with stopped(process):
                started = time.monotonic()
                with pytest.raises(oip.DeadlineExceededError) as caught:
                    if method == "infer":
                        c.infer("simple", INPUTS, request_id="late", **call_kwargs)
                    else:
                        getattr(c, method)(**call_kwargs)
                return time.monotonic() - started, caught.value

    async def invoke_async():
        async with oip.AsyncClient(url, timeout=client_timeout) as c:
            assert await c.is_server_live(timeout=DEADLINE)
            with stopped(process):
                started = time.monotonic()
                with pytest.raises(oip.DeadlineExceededError) as caught:
                    if method == "infer":
                        await c.infer(
                            "simple", INPUTS, request_id="late", **call_kwargs
                        )
                    else:
                        await getattr(c, method)(**call_kwargs)
                return time.monotonic() - started, caught.value

    elapsed, error = (
        invoke_sync() if flavor == "Client" else asyncio.run(invoke_async())
    )
    assert error.status is oip.StatusCode.DEADLINE_EXCEEDED
    assert isinstance(error, TimeoutError)
    assert isinstance(error.__cause__, grpc.RpcError)
    if method == "infer":
        assert error.model == "simple" and error.request_id == "late"
    return elapsed


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flavor", list(CALLERS))
def test_client_default_timeout_applies(frozen_server, flavor, method):
    elapsed = _frozen_call(frozen_server.url, flavor, method, 0.5, None, frozen_server)
    assert 0.4 < elapsed < 5


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flavor", list(CALLERS))
def test_per_call_timeout_shorter_than_default(frozen_server, flavor, method):
    elapsed = _frozen_call(
        frozen_server.url, flavor, method, DEADLINE, 0.5, frozen_server
    )
    assert 0.4 < elapsed < 5


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_per_call_timeout_longer_than_default(frozen_server, flavor):
    elapsed = _frozen_call(frozen_server.url, flavor, "infer", 0.2, 1.5, frozen_server)
    assert 1.4 < elapsed < 6


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_deadline_while_connecting_to_a_hanging_server(frozen_server, flavor):
    with oip.Client(frozen_server.url, timeout=DEADLINE) as warm:
        assert warm.is_server_live()
    with stopped(frozen_server):
        started = time.monotonic()
        with pytest.raises(oip.DeadlineExceededError):
            CALLERS[flavor](frozen_server.url, "infer", timeout=0.5)
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_stream_deadline(server, flavor):
    from tests.client.helpers import repeat_inputs

    inputs = repeat_inputs([1, 2], delay_ms=3000)

    def sync():
        with (
            oip.Client(server.url, timeout=DEADLINE) as c,
            c.stream(timeout=0.5) as stream,
        ):
            stream.send("repeat_int32", inputs)
            list(stream)

    async def body():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as c:
            async with c.stream(timeout=0.5) as stream:
                await stream.send("repeat_int32", inputs)
                async for _ in stream:
                    pass

    started = time.monotonic()
    with pytest.raises(oip.DeadlineExceededError):
        sync() if flavor == "Client" else asyncio.run(body())
    assert time.monotonic() - started < 2.5


# Headers.


class RecordingServer:
    """An in-process gRPC server answering ServerLive, ServerReady and ModelInfer.

    It records each call's metadata; `fail_first` calls of each method end
    with UNAVAILABLE before it answers.
    """

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts: dict[str, int] = {}
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        handlers = {
            "ServerLive": self._handler("ServerLive", pb.ServerLiveResponse(live=True)),
            "ServerReady": self._handler(
                "ServerReady", pb.ServerReadyResponse(ready=True)
            ),
            "ModelInfer": self._handler(
                "ModelInfer", pb.ModelInferResponse(model_name="simple", id="echo")
            ),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.url = f"127.0.0.1:{self.port}"

    def _handler(self, method: str, response) -> grpc.RpcMethodHandler:
        data = response.SerializeToString()

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self._lock:
                self.attempts[method] = self.attempts.get(method, 0) + 1
                attempt = self.attempts[method]
                self.metadata.append(
                    {key: value for key, value in context.invocation_metadata()}
                )
            if attempt <= self.fail_first:
                context.abort(
                    grpc.StatusCode.UNAVAILABLE, f"attempt {attempt} refused, try again"
                )
            return data

        return grpc.unary_unary_rpc_method_handler(handle)

    def __enter__(self) -> RecordingServer:
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop(grace=None).wait()


@pytest.fixture
def recording() -> Iterator[RecordingServer]:
    with RecordingServer() as recorder:
        yield recorder


@pytest.mark.parametrize("flavor", ["Client", "AsyncClient"])
def test_headers_reach_the_server(recording, flavor):
    client_headers = {"X-Team": "infer", "x-shared": "from-client"}
    call_headers = {"X-Shared": "from-call", "x-call-only": "1"}
    if flavor == "Client":
        with oip.Client(recording.url, timeout=DEADLINE, headers=client_headers) as c:
            assert c.is_server_live() is True
            assert c.is_server_live(headers=call_headers) is True
    else:

        async def go():
            async with oip.AsyncClient(
                recording.url, timeout=DEADLINE, headers=client_headers
            ) as c:
                assert await c.is_server_live() is True
                assert await c.is_server_live(headers=call_headers) is True

        run(go)
    plain, merged = recording.metadata
    assert plain["x-team"] == "infer" and plain["x-shared"] == "from-client"
    assert "x-call-only" not in plain
    assert merged["x-team"] == "infer"
    assert merged["x-shared"] == "from-call"  # the call's header wins
    assert merged["x-call-only"] == "1"


def test_headers_on_infer_and_stream_work_with_reference_server(server):
    with oip.Client(
        server.url, timeout=DEADLINE, headers={"authorization": "Bearer abc"}
    ) as c:
        assert_simple(c.infer("simple", INPUTS, headers={"x-request": "1"}), A, B)
        with c.stream(timeout=DEADLINE, headers={"x-stream": "yes"}) as stream:
            stream.send("simple", INPUTS)
            stream.close()
            (result,) = list(stream)
        assert_simple(result, A, B)


def test_header_values_stay_out_of_errors():
    secret = "s3cr3t-token-value"
    url = closed_port_url()
    with oip.Client(
        url, timeout=DEADLINE, headers={"authorization": f"Bearer {secret}"}
    ) as c:
        with pytest.raises(oip.ServerUnavailableError) as caught:
            c.infer("simple", INPUTS, headers={"x-api-key": secret})
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


# Compression.


@pytest.mark.parametrize("flavor", list(CALLERS))
@pytest.mark.parametrize("compression", ["gzip", "deflate", "GZIP", "none", None])
def test_client_compression(server, flavor, compression):
    result = CALLERS[flavor](
        server.url, "infer", timeout=DEADLINE, compression=compression
    )
    assert_simple(result, A, B)


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_per_call_compression(client, compression):
    big = np.arange(8 * 16, dtype=np.int32).reshape(8, 16)
    result = client.infer(
        "simple", {"INPUT0": big, "INPUT1": big}, compression=compression
    )
    assert_simple(result, big, big)


def test_per_call_compression_async(server):
    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as c:
            return await c.infer("simple", INPUTS, compression="gzip")

    assert_simple(run(go), A, B)


def test_unknown_compression_refused(client):
    with pytest.raises(oip.InvalidInputError, match="brotli"):
        oip.Client("127.0.0.1:1", compression="brotli")
    with pytest.raises(oip.InvalidInputError, match="zstd"):
        client.infer("simple", INPUTS, compression="zstd")


# Retries.


def _service_config(settings: ChannelSettings) -> dict:
    values = [
        value for key, value in settings.options() if key == "grpc.service_config"
    ]
    assert len(values) == 1
    return json.loads(values[0])


def test_default_retry_service_config_is_valid_json():
    config = _service_config(ChannelSettings("127.0.0.1:8001"))
    (method_config,) = config["methodConfig"]
    names = {entry["method"] for entry in method_config["name"]}
    assert all(entry["service"] == SERVICE for entry in method_config["name"])
    assert {
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ModelMetadata",
        "ModelConfig",
    } <= names
    assert "ModelInfer" not in names
    assert (
        "RepositoryModelLoad" not in names and "SystemSharedMemoryRegister" not in names
    )
    policy = method_config["retryPolicy"]
    assert policy == {
        "maxAttempts": 3,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    assert ("grpc.enable_retries", 1) in ChannelSettings("127.0.0.1:8001").options()


def test_custom_retry_service_config():
    retry = oip.RetryPolicy(
        max_attempts=9,
        initial_backoff_s=0.5,
        max_backoff_s=4,
        backoff_multiplier=3,
        retryable_status_codes=(oip.StatusCode.UNAVAILABLE, oip.StatusCode.ABORTED),
        include_inference=True,
    )
    (method_config,) = _service_config(ChannelSettings("127.0.0.1:8001", retry=retry))[
        "methodConfig"
    ]
    assert "ModelInfer" in {entry["method"] for entry in method_config["name"]}
    policy = method_config["retryPolicy"]
    assert policy["maxAttempts"] == 5  # gRPC's ceiling
    assert policy["initialBackoff"] == "0.5s" and policy["maxBackoff"] == "4s"
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE", "ABORTED"]


@pytest.mark.parametrize(
    "seconds, text",
    [
        (1e-5, "0.001s"),
        (1e-9, "0.001s"),
        (0.0015, "0.002s"),
        (0.25, "0.25s"),
        (3, "3s"),
        (0.1, "0.1s"),
        (1.234, "1.234s"),
    ],
    ids=["1e-5", "1e-9", "1.5ms-rounds-up", "quarter", "int", "tenth", "ms-precision"],
)
def test_backoff_durations_in_decimal(seconds, text):
    retry = oip.RetryPolicy(initial_backoff_s=seconds, max_backoff_s=seconds)
    (method_config,) = _service_config(ChannelSettings("127.0.0.1:8001", retry=retry))[
        "methodConfig"
    ]
    assert method_config["retryPolicy"]["initialBackoff"] == text
    assert method_config["retryPolicy"]["maxBackoff"] == text


@pytest.mark.parametrize(
    "kwargs, named",
    [
        (dict(initial_backoff_s=0), "initial_backoff_s"),
        (dict(max_backoff_s=-1.0), "max_backoff_s"),
        (dict(backoff_multiplier=0), "backoff_multiplier"),
        (dict(retryable_status_codes=()), "retryable_status_codes"),
    ],
    ids=["zero-initial", "negative-max", "zero-multiplier", "no-codes"],
)
def test_invalid_retry_policy_refused(kwargs, named):
    with pytest.raises(oip.InvalidInputError, match=named):
        oip.RetryPolicy(**kwargs)


def test_no_retry_settings():
    options = ChannelSettings("127.0.0.1:8001", retry=None).options()
    assert ("grpc.enable_retries", 0) in options
    assert not any(key == "grpc.service_config" for key, _ in options)


@pytest.mark.parametrize(
    "retry",
    [
        oip.RetryPolicy(),
        None,
        oip.RetryPolicy(max_attempts=5, include_inference=True),
        oip.RetryPolicy(initial_backoff_s=0.25, max_backoff_s=0.5),
        oip.RetryPolicy(initial_backoff_s=1e-5, max_backoff_s=1e-4),
        oip.RetryPolicy(max_attempts=1),
    ],
    ids=[
        "default",
        "none",
        "with-inference",
        "custom-backoff",
        "tiny-backoff",
        "one-attempt",
    ],
)
@pytest.mark.parametrize("flavor", list(CALLERS))
def test_retry_settings_work(server, retry, flavor):
    assert (
        CALLERS[flavor](server.url, "is_server_live", timeout=DEADLINE, retry=retry)
        is True
    )
    assert_simple(
        CALLERS[flavor](server.url, "infer", timeout=DEADLINE, retry=retry), A, B
    )


def test_default_retry_retries_health_calls():
    with RecordingServer(fail_first=2) as flaky:
        with oip.Client(flaky.url, timeout=DEADLINE) as c:
            assert c.is_server_live() is True
        assert flaky.attempts["ServerLive"] == 3


def test_retries_give_up_after_max_attempts():
    with RecordingServer(fail_first=10) as flaky:
        with oip.Client(
            flaky.url, timeout=DEADLINE, retry=oip.RetryPolicy(max_attempts=4)
        ) as c:
            with pytest.raises(oip.ServerUnavailableError, match="try again"):
                c.is_server_ready()
        assert flaky.attempts["ServerReady"] == 4


def test_no_retry_fails_at_once():
    with RecordingServer(fail_first=1) as flaky:
        with oip.Client(flaky.url, timeout=DEADLINE, retry=None) as c:
            with pytest.raises(oip.ServerUnavailableError, match="attempt 1 refused"):
                c.is_server_live()
            assert c.is_server_live() is True
        assert flaky.attempts["ServerLive"] == 2


def test_inference_not_retried_by_default():
    with RecordingServer(fail_first=1) as flaky:
        with oip.Client(flaky.url, timeout=DEADLINE) as c:
            with pytest.raises(oip.ServerUnavailableError):
                c.infer("simple", INPUTS)
        assert flaky.attempts["ModelInfer"] == 1


def test_inference_retried_when_asked():
    with RecordingServer(fail_first=1) as flaky:
        with oip.Client(
            flaky.url, timeout=DEADLINE, retry=oip.RetryPolicy(include_inference=True)
        ) as c:
            result = c.infer("simple", INPUTS)
        assert result.id == "echo" and len(result) == 0
        assert flaky.attempts["ModelInfer"] == 2


def test_async_client_retries_too():
    with RecordingServer(fail_first=1) as flaky:

        async def go():
            async with oip.AsyncClient(flaky.url, timeout=DEADLINE) as c:
                return await c.is_server_live()

        assert run(go) is True
        assert flaky.attempts["ServerLive"] == 2


# Channel settings.


def test_keepalive_channel_args():
    keepalive = oip.KeepAliveOptions(
        time_ms=10_000,
        timeout_ms=5_000,
        permit_without_calls=True,
        max_pings_without_data=0,
    )
    options = ChannelSettings("127.0.0.1:8001", keepalive=keepalive).options()
    for pair in [
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]:
        assert pair in options
    assert not any(
        key.startswith("grpc.keepalive")
        for key, _ in ChannelSettings("127.0.0.1:8001").options()
    )


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_keepalive_client_works(server, flavor):
    keepalive = oip.KeepAliveOptions(
        time_ms=30_000, timeout_ms=10_000, permit_without_calls=True
    )
    assert_simple(
        CALLERS[flavor](server.url, "infer", timeout=DEADLINE, keepalive=keepalive),
        A,
        B,
    )


def test_channel_args_come_last():
    options = ChannelSettings(
        "127.0.0.1:8001", channel_args=(("grpc.enable_retries", 0), ("grpc.x", "y"))
    ).options()
    assert options[-2:] == [("grpc.enable_retries", 0), ("grpc.x", "y")]


@pytest.mark.parametrize(
    "url, loopback",
    [
        ("127.0.0.1:8001", True),
        ("localhost:8001", True),
        ("[::1]:8001", True),
        ("grpc://127.0.0.1:8001", True),
        ("example.com:8001", False),
        ("10.1.2.3:8001", False),
    ],
)
def test_proxy_disabled_for_loopback_only(url, loopback):
    options = ChannelSettings(url).options()
    assert (("grpc.enable_http_proxy", 0) in options) is loopback


@pytest.mark.parametrize("scheme", ["grpc://", "http://", ""])
def test_url_schemes(server, scheme):
    with oip.Client(scheme + server.url, timeout=DEADLINE) as c:
        assert c.is_server_live() is True


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_receive_limit_exceeded(server, flavor):
    with pytest.raises(oip.OipError) as caught:
        CALLERS[flavor](
            server.url, "infer", timeout=DEADLINE, max_receive_message_bytes=64
        )
    assert caught.value.status is oip.StatusCode.RESOURCE_EXHAUSTED
    assert isinstance(caught.value, oip.ServerError)


@pytest.mark.parametrize("flavor", list(CALLERS))
def test_send_limit_exceeded(server, flavor):
    with pytest.raises(oip.OipError) as caught:
        CALLERS[flavor](
            server.url, "infer", timeout=DEADLINE, max_send_message_bytes=64
        )
    assert caught.value.status is oip.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.model == "simple"


def test_closed_client_raises(server):
    c = oip.Client(server.url, timeout=DEADLINE)
    assert c.is_server_live()
    c.close()
    with pytest.raises(oip.CancelledError, match="closed"):
        c.is_server_live()
    with pytest.raises(oip.CancelledError, match="closed"):
        c.stream()


def test_closed_async_client_raises(server):
    async def go():
        c = oip.AsyncClient(server.url, timeout=DEADLINE)
        assert await c.is_server_live()
        await c.close()
        with pytest.raises(oip.CancelledError, match="closed") as caught:
            await c.is_server_live()
        return caught.value

    assert isinstance(run(go), oip.CancelledError)


def test_single_attempt_policy_turns_retries_off():
    from oip._grpc import ChannelSettings

    options = dict(
        ChannelSettings("127.0.0.1:1", retry=oip.RetryPolicy(max_attempts=1)).options()
    )

    assert options["grpc.enable_retries"] == 0
    assert "grpc.service_config" not in options


def test_zero_attempts_refused():
    with pytest.raises(oip.InvalidInputError, match="max_attempts"):
        oip.RetryPolicy(max_attempts=0)
