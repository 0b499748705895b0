"""The synchronous gRPC client."""

from __future__ import annotations

import logging
import queue
import threading
from types import TracebackType
from typing import (
    Any,
    Callable,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    Unpack,
)

import grpc

from oip import _ops
from oip._errors import CancelledError, DeadlineExceededError, OipError
from oip._grpc import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT_S,
    CallDefaults,
    CallMetadata,
    ChannelSettings,
    Headers,
    KeepAliveOptions,
    RetryPolicy,
    TlsOptions,
    map_rpc_error,
)
from oip._infer import (
    InferArgs,
    InferOptions,
    InferResult,
    InputsArg,
    OutputsArg,
    build_request,
)
from oip._stream import STREAM_PATH, parse_stream_response
from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import model_config_pb2

_LOG = logging.getLogger(__name__)
T = TypeVar("T")
InferCallback = Callable[[Optional[InferResult], Optional[OipError]], None]
_CLOSE = object()


class Client:
    """A synchronous client for a server that speaks the protocol over gRPC.

    Example:
        with oip.Client("localhost:8001") as client:
            result = client.infer("simple", {"INPUT0": a, "INPUT1": b})
            print(result["OUTPUT0"])

    Args:
        url: "host:port" of the server's gRPC endpoint.
        timeout: default deadline of every call, in seconds.
        headers: metadata sent with every call (per-call headers add to it).
        tls: TLS settings; None for a plain connection.
        keepalive: HTTP/2 keepalive settings; None for gRPC's defaults.
        retry: retries with backoff for calls that change nothing on the
            server; None turns retries off.
        compression: "gzip" or "deflate" for every call; None for none.
        max_send_message_bytes, max_receive_message_bytes: message limits.
        channel_args: further gRPC channel arguments, applied last.
    """

    def __init__(
        self,
        url: str = "localhost:8001",
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        headers: Headers = None,
        tls: Optional[TlsOptions] = None,
        keepalive: Optional[KeepAliveOptions] = None,
        retry: Optional[RetryPolicy] = RetryPolicy(),
        compression: Optional[str] = None,
        max_send_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_receive_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        channel_args: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._settings = ChannelSettings(
            url,
            tls,
            keepalive,
            retry,
            compression,
            max_send_message_bytes,
            max_receive_message_bytes,
            tuple(channel_args),
        )
        self._compression = self._settings.grpc_compression()
        self._defaults = CallDefaults(timeout, headers)
        self._target = self._settings.target()
        if tls is not None:
            self._channel = grpc.secure_channel(
                self._target,
                tls.credentials(),
                self._settings.options(),
                self._compression,
            )
        else:
            self._channel = grpc.insecure_channel(
                self._target, self._settings.options(), self._compression
            )
        self._methods: dict[str, grpc.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._closed = False
        _LOG.debug("client for %s (tls=%s)", self._target, tls is not None)

    # Plumbing.

    def _method(self, path: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
        if self._closed:
            raise CancelledError("the client is closed; make a new one")
        method = self._methods.get(path)
        if method is None:
            method = self._channel.unary_unary(
                path, request_serializer=None, response_deserializer=None
            )
            self._methods[path] = method
        return method

    def _invoke(
        self,
        call: _ops.Call[T],
        timeout: Optional[float] = None,
        headers: Headers = None,
        compression: Optional[str] = None,
    ) -> T:
        _LOG.debug("%s model=%s", call.method, call.model)
        try:
            data = self._method(call.path)(
                call.payload, **self._defaults.kwargs(timeout, headers, compression)
            )
        except grpc.RpcError as exc:
            raise map_rpc_error(exc, self._target, call.model, call.request_id) from exc
        return call.parse(data)

    def close(self) -> None:
        """Closes the channel; calls still running are cancelled."""
        self._closed = True
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    # Server and models.

    def is_server_live(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> bool:
        """Whether the server is live."""
        return self._invoke(_ops.server_live(), timeout, headers)

    def is_server_ready(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> bool:
        """Whether the server is ready for inference."""
        return self._invoke(_ops.server_ready(), timeout, headers)

    def is_model_ready(
        self,
        model: str,
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> bool:
        """Whether `model` (at `version`, default latest) is ready."""
        return self._invoke(_ops.model_ready(model, version), timeout, headers)

    def get_server_metadata(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> _ops.ServerMetadata:
        """The server's name, version and extensions."""
        return self._invoke(_ops.server_metadata(), timeout, headers)

    def get_model_metadata(
        self,
        model: str,
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> _ops.ModelMetadata:
        """A model's inputs, outputs, versions and platform.

        Raises:
            ModelNotFoundError: no such model or version.
        """
        return self._invoke(_ops.model_metadata(model, version), timeout, headers)

    def get_model_config(
        self,
        model: str,
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> model_config_pb2.ModelConfig:
        """A model's configuration (Triton's ModelConfig message)."""
        return self._invoke(_ops.model_config(model, version), timeout, headers)

    def get_inference_statistics(
        self,
        model: str = "",
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> pb.ModelStatisticsResponse:
        """Inference statistics of one model, or of all when `model` is ""."""
        return self._invoke(_ops.model_statistics(model, version), timeout, headers)

    # Model repository.

    def get_model_repository_index(
        self,
        *,
        ready_only: bool = False,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> list[_ops.RepositoryModel]:
        """The models of the repository with their state."""
        return self._invoke(_ops.repository_index(ready_only), timeout, headers)

    def load_model(
        self,
        model: str,
        *,
        config: Union[str, Mapping[str, Any], None] = None,
        files: Optional[Mapping[str, bytes]] = None,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Loads (or reloads) `model`, optionally with a config override and files.

        Args:
            config: the model configuration as JSON text or a dict.
            files: model directory contents by relative path ("1/model.py");
                they need `config` too.
        """
        self._invoke(_ops.load_model(model, config, files), timeout, headers)

    def unload_model(
        self,
        model: str,
        *,
        unload_dependents: bool = False,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Unloads `model` (and the models that depend on it, if asked)."""
        self._invoke(_ops.unload_model(model, unload_dependents), timeout, headers)

    # Trace and log settings.

    def get_trace_settings(
        self,
        model: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> dict[str, list[str]]:
        """Trace settings of `model`, or the global ones."""
        return self._invoke(_ops.trace_settings(model, None), timeout, headers)

    def update_trace_settings(
        self,
        settings: Mapping[str, _ops.TraceValue],
        model: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> dict[str, list[str]]:
        """Changes trace settings (None clears one); returns the new settings."""
        return self._invoke(_ops.trace_settings(model, settings), timeout, headers)

    def get_log_settings(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> dict[str, _ops.LogValue]:
        """The server's log settings."""
        return self._invoke(_ops.log_settings(None), timeout, headers)

    def update_log_settings(
        self,
        settings: Mapping[str, _ops.LogValue],
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> dict[str, _ops.LogValue]:
        """Changes log settings; returns the new settings."""
        return self._invoke(_ops.log_settings(settings), timeout, headers)

    # Shared memory.

    def register_system_shared_memory(
        self,
        name: str,
        key: str,
        byte_size: int,
        offset: int = 0,
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Registers the POSIX shared memory `key` as region `name`."""
        self._invoke(
            _ops.system_shm_register(name, key, byte_size, offset), timeout, headers
        )

    def unregister_system_shared_memory(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Unregisters region `name`, or every region when `name` is ""."""
        self._invoke(_ops.system_shm_unregister(name), timeout, headers)

    def get_system_shared_memory_status(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> list[_ops.SharedMemoryStatus]:
        """Registered system shared memory regions (one, or all)."""
        return self._invoke(_ops.system_shm_status(name), timeout, headers)

    def register_cuda_shared_memory(
        self,
        name: str,
        raw_handle: bytes,
        device_id: int,
        byte_size: int,
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Registers a CUDA IPC memory handle as region `name`."""
        self._invoke(
            _ops.cuda_shm_register(name, raw_handle, device_id, byte_size),
            timeout,
            headers,
        )

    def unregister_cuda_shared_memory(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Unregisters CUDA region `name`, or all when `name` is ""."""
        self._invoke(_ops.cuda_shm_unregister(name), timeout, headers)

    def get_cuda_shared_memory_status(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> list[_ops.CudaSharedMemoryStatus]:
        """Registered CUDA shared memory regions (one, or all)."""
        return self._invoke(_ops.cuda_shm_status(name), timeout, headers)

    # Inference.

    def infer(
        self,
        model: str,
        inputs: InputsArg,
        outputs: OutputsArg = None,
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
        compression: Optional[str] = None,
        **options: Unpack[InferArgs],
    ) -> InferResult:
        """Runs one inference and waits for its result.

        Args:
            model: the model's name.
            inputs: {name: numpy array} or a list of InferInput.
            outputs: names or RequestedOutput to return (default: all).
            timeout: client deadline in seconds (default: the client's).
            headers: metadata for this call, added to the client's.
            compression: "gzip" or "deflate" for this call.
            **options: request options, see `oip.InferArgs`: version,
                request_id, sequence_id, sequence_start, sequence_end,
                priority, server_timeout_us, parameters.

        Raises:
            InvalidInputError: a tensor or option is wrong (found here or by
                the server); the message names it.
            ModelNotFoundError, ServerUnavailableError,
            DeadlineExceededError, ...: see `oip.OipError`.
        """
        request = build_request(
            model,
            inputs,
            outputs,
            InferOptions(**options),
        )
        return self._invoke(_ops.infer(request), timeout, headers, compression)

    def async_infer(
        self,
        model: str,
        inputs: InputsArg,
        outputs: OutputsArg = None,
        *,
        callback: Optional[InferCallback] = None,
        timeout: Optional[float] = None,
        headers: Headers = None,
        compression: Optional[str] = None,
        **options: Unpack[InferArgs],
    ) -> InferFuture:
        """Starts one inference without waiting; same arguments as `infer`.

        Returns an InferFuture: `result()` waits, `cancel()` cancels. When
        `callback` is given it is called once with (result, None) or
        (None, error), on a gRPC thread.
        """
        request = build_request(
            model,
            inputs,
            outputs,
            InferOptions(**options),
        )
        call = _ops.infer(request)
        grpc_future = self._method(call.path).future(
            call.payload, **self._defaults.kwargs(timeout, headers, compression)
        )
        future = InferFuture(grpc_future, call, self._target)
        if callback is not None:
            future.add_done_callback(lambda done: _deliver(done, callback))
        return future

    def stream(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> InferStream:
        """Opens a bidirectional inference stream (ModelStreamInfer).

        Send requests with `send`, read responses by iterating; each
        response is an InferResult whose `error` is set when the server
        refused that request. A client may have several streams open.

        Args:
            timeout: deadline for the whole stream, in seconds (default: no
                deadline beyond the server's).
        """
        if self._closed:
            raise CancelledError("the client is closed; make a new one")
        return InferStream(
            self._channel, self._target, timeout, self._defaults.metadata(headers)
        )


def _deliver(future: InferFuture, callback: InferCallback) -> None:
    try:
        result = future.result()
    except OipError as exc:
        callback(None, exc)
        return
    callback(result, None)


class InferFuture:
    """A running inference started by `Client.async_infer`."""

    def __init__(
        self, grpc_future: Any, call: _ops.Call[InferResult], target: str
    ) -> None:
        self._future = grpc_future
        self._call = call
        self._target = target

    def result(self, timeout: Optional[float] = None) -> InferResult:
        """Waits for the result (up to `timeout` s) and returns it.

        Raises:
            CancelledError: the call was cancelled.
            DeadlineExceededError: `timeout` passed first (the call goes on),
                or the call's own deadline did.
            OipError: the call failed.
        """
        try:
            data = self._future.result(timeout=timeout)
        except grpc.FutureCancelledError as exc:
            raise CancelledError(
                "the inference was cancelled",
                model=self._call.model,
                request_id=self._call.request_id,
            ) from exc
        except grpc.FutureTimeoutError as exc:
            raise DeadlineExceededError(
                f"no result within {timeout} s",
                model=self._call.model,
                request_id=self._call.request_id,
            ) from exc
        except grpc.RpcError as exc:
            raise map_rpc_error(
                exc, self._target, self._call.model, self._call.request_id
            ) from exc
        return self._call.parse(data)

    def cancel(self) -> bool:
        """Cancels the call; False if it had already finished."""
        return bool(self._future.cancel())

    def cancelled(self) -> bool:
        """Whether the call was cancelled."""
        return bool(self._future.cancelled())

    def done(self) -> bool:
        """Whether the call has finished (answered, failed or cancelled)."""
        return bool(self._future.done())

    def add_done_callback(self, fn: Callable[[InferFuture], None]) -> None:
        """Calls fn(self) once the call has finished."""
        self._future.add_done_callback(lambda _: fn(self))


class InferStream:
    """A bidirectional inference stream of the synchronous client.

    Example:
        with client.stream() as stream:
            stream.send("repeat_int32", inputs, enable_empty_final_response=True)
            for result in stream:
                ...
                if result.is_final:
                    break
    """

    def __init__(
        self,
        channel: grpc.Channel,
        target: str,
        timeout: Optional[float],
        call_metadata: CallMetadata,
    ) -> None:
        self._target = target
        self._requests: queue.Queue[object] = queue.Queue()
        self._closed = threading.Event()
        method: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
            STREAM_PATH, request_serializer=None, response_deserializer=None
        )
        self._call = method(
            self._request_iterator(), timeout=timeout, metadata=call_metadata
        )

    def _request_iterator(self) -> Iterator[bytes]:
        while True:
            item = self._requests.get()
            if item is _CLOSE:
                return
            assert isinstance(item, bytes)
            yield item

    def send(
        self,
        model: str,
        inputs: InputsArg,
        outputs: OutputsArg = None,
        *,
        enable_empty_final_response: bool = False,
        **options: Unpack[InferArgs],
    ) -> None:
        """Sends one request on the stream; arguments as `Client.infer`.

        Args:
            enable_empty_final_response: ask a decoupled model to end its
                responses to this request with an empty final one.

        Raises:
            InvalidInputError: the request is wrong (nothing was sent).
            CancelledError: the stream is closed.
        """
        if self._closed.is_set():
            raise CancelledError("the stream is closed; open a new one", model=model)
        request = build_request(
            model,
            inputs,
            outputs,
            InferOptions(
                **options, enable_empty_final_response=enable_empty_final_response
            ),
        )
        self._requests.put(request.to_grpc_bytes())

    def close(self) -> None:
        """Ends the sending side; responses still arrive until the server ends."""
        if not self._closed.is_set():
            self._closed.set()
            self._requests.put(_CLOSE)

    def cancel(self) -> None:
        """Cancels the stream at once; iteration then stops."""
        self.close()
        self._call.cancel()

    def __iter__(self) -> Iterator[InferResult]:
        try:
            for data in self._call:
                yield parse_stream_response(data)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._closed.is_set():
                return
            raise map_rpc_error(exc, self._target) from exc

    def __enter__(self) -> InferStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.cancel()
