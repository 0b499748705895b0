"""The asyncio gRPC client: the same methods as `Client`, awaited."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    Unpack,
)

import grpc
import grpc.aio

from oip import _ops
from oip._errors import CancelledError
from oip._grpc import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT_S,
    CallDefaults,
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


class AsyncClient:
    """An asyncio client for a server that speaks the protocol over gRPC.

    It has the methods of `oip.Client`, as coroutines, and no thread of its
    own: calls and streams run on the event loop.

    Example:
        async with oip.AsyncClient("localhost:8001") as client:
            result = await client.infer("simple", {"INPUT0": a, "INPUT1": b})

    Arguments are those of `oip.Client`.
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
        settings = ChannelSettings(
            url,
            tls,
            keepalive,
            retry,
            compression,
            max_send_message_bytes,
            max_receive_message_bytes,
            tuple(channel_args),
        )
        compression_value = settings.grpc_compression()
        self._defaults = CallDefaults(timeout, headers)
        self._target = settings.target()
        if tls is not None:
            self._channel = grpc.aio.secure_channel(
                self._target, tls.credentials(), settings.options(), compression_value
            )
        else:
            self._channel = grpc.aio.insecure_channel(
                self._target, settings.options(), compression_value
            )
        self._methods: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._closed = False

    # Plumbing.

    def _method(self, path: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        if self._closed:
            raise CancelledError("the client is closed; make a new one")
        method = self._methods.get(path)
        if method is None:
            method = self._channel.unary_unary(
                path, request_serializer=None, response_deserializer=None
            )
            self._methods[path] = method
        return method

    async def _invoke(
        self,
        call: _ops.Call[T],
        timeout: Optional[float] = None,
        headers: Headers = None,
        compression: Optional[str] = None,
    ) -> T:
        _LOG.debug("%s model=%s", call.method, call.model)
        args = self._defaults.kwargs(timeout, headers, compression)
        try:
            data = await self._method(call.path)(call.payload, **args)
        except grpc.RpcError as exc:
            raise map_rpc_error(exc, self._target, call.model, call.request_id) from exc
        except asyncio.CancelledError:
            _LOG.debug("%s cancelled", call.method)
            raise
        return call.parse(data)

    async def close(self) -> None:
        """Closes the channel; calls still running are cancelled."""
        self._closed = True
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()

    # Server and models.

    async def is_server_live(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> bool:
        """Whether the server is live."""
        return await self._invoke(_ops.server_live(), timeout, headers)

    async def is_server_ready(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> bool:
        """Whether the server is ready for inference."""
        return await self._invoke(_ops.server_ready(), timeout, headers)

    async def is_model_ready(
        self,
        model: str,
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> bool:
        """Whether `model` (at `version`, default latest) is ready."""
        return await self._invoke(_ops.model_ready(model, version), timeout, headers)

    async def get_server_metadata(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> _ops.ServerMetadata:
        """The server's name, version and extensions."""
        return await self._invoke(_ops.server_metadata(), timeout, headers)

    async def get_model_metadata(
        self,
        model: str,
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> _ops.ModelMetadata:
        """A model's inputs, outputs, versions and platform."""
        return await self._invoke(_ops.model_metadata(model, version), timeout, headers)

    async def get_model_config(
        self,
        model: str,
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> model_config_pb2.ModelConfig:
        """A model's configuration (Triton's ModelConfig message)."""
        return await self._invoke(_ops.model_config(model, version), timeout, headers)

    async def get_inference_statistics(
        self,
        model: str = "",
        version: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> pb.ModelStatisticsResponse:
        """Inference statistics of one model, or of all when `model` is ""."""
        return await self._invoke(
            _ops.model_statistics(model, version), timeout, headers
        )

    # Model repository.

    async def get_model_repository_index(
        self,
        *,
        ready_only: bool = False,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> list[_ops.RepositoryModel]:
        """The models of the repository with their state."""
        return await self._invoke(_ops.repository_index(ready_only), timeout, headers)

    async def load_model(
        self,
        model: str,
        *,
        config: Union[str, Mapping[str, Any], None] = None,
        files: Optional[Mapping[str, bytes]] = None,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Loads (or reloads) `model`, optionally with a config override and files."""
        await self._invoke(_ops.load_model(model, config, files), timeout, headers)

    async def unload_model(
        self,
        model: str,
        *,
        unload_dependents: bool = False,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Unloads `model` (and the models that depend on it, if asked)."""
        await self._invoke(
            _ops.unload_model(model, unload_dependents), timeout, headers
        )

    # Trace and log settings.

    async def get_trace_settings(
        self,
        model: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> dict[str, list[str]]:
        """Trace settings of `model`, or the global ones."""
        return await self._invoke(_ops.trace_settings(model, None), timeout, headers)

    async def update_trace_settings(
        self,
        settings: Mapping[str, _ops.TraceValue],
        model: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> dict[str, list[str]]:
        """Changes trace settings (None clears one); returns the new settings."""
        return await self._invoke(
            _ops.trace_settings(model, settings), timeout, headers
        )

    async def get_log_settings(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> dict[str, _ops.LogValue]:
        """The server's log settings."""
        return await self._invoke(_ops.log_settings(None), timeout, headers)

    async def update_log_settings(
        self,
        settings: Mapping[str, _ops.LogValue],
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> dict[str, _ops.LogValue]:
        """Changes log settings; returns the new settings."""
        return await self._invoke(_ops.log_settings(settings), timeout, headers)

    # Shared memory.

    async def register_system_shared_memory(
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
        await self._invoke(
            _ops.system_shm_register(name, key, byte_size, offset), timeout, headers
        )

    async def unregister_system_shared_memory(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Unregisters region `name`, or every region when `name` is ""."""
        await self._invoke(_ops.system_shm_unregister(name), timeout, headers)

    async def get_system_shared_memory_status(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> list[_ops.SharedMemoryStatus]:
        """Registered system shared memory regions (one, or all)."""
        return await self._invoke(_ops.system_shm_status(name), timeout, headers)

    async def register_cuda_shared_memory(
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
        await self._invoke(
            _ops.cuda_shm_register(name, raw_handle, device_id, byte_size),
            timeout,
            headers,
        )

    async def unregister_cuda_shared_memory(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> None:
        """Unregisters CUDA region `name`, or all when `name` is ""."""
        await self._invoke(_ops.cuda_shm_unregister(name), timeout, headers)

    async def get_cuda_shared_memory_status(
        self,
        name: str = "",
        *,
        timeout: Optional[float] = None,
        headers: Headers = None,
    ) -> list[_ops.CudaSharedMemoryStatus]:
        """Registered CUDA shared memory regions (one, or all)."""
        return await self._invoke(_ops.cuda_shm_status(name), timeout, headers)

    # Inference.

    async def infer(
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
        """Runs one inference; arguments and errors as `oip.Client.infer`.

        Cancelling the awaiting task cancels the call.
        """
        request = build_request(
            model,
            inputs,
            outputs,
            InferOptions(**options),
        )
        return await self._invoke(_ops.infer(request), timeout, headers, compression)

    def stream(
        self, *, timeout: Optional[float] = None, headers: Headers = None
    ) -> AsyncInferStream:
        """Opens a bidirectional inference stream; see `oip.Client.stream`."""
        if self._closed:
            raise CancelledError("the client is closed; make a new one")
        method: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = (
            self._channel.stream_stream(
                STREAM_PATH, request_serializer=None, response_deserializer=None
            )
        )
        call = method(timeout=timeout, metadata=self._defaults.metadata(headers))
        return AsyncInferStream(call, self._target)


class AsyncInferStream:
    """A bidirectional inference stream of the asyncio client.

    Example:
        async with client.stream() as stream:
            await stream.send("simple", {"INPUT0": a, "INPUT1": b})
            async for result in stream:
                ...
    """

    def __init__(self, call: Any, target: str) -> None:
        self._call = call
        self._target = target
        self._closed = False
        self._cancelled = False

    async def send(
        self,
        model: str,
        inputs: InputsArg,
        outputs: OutputsArg = None,
        *,
        enable_empty_final_response: bool = False,
        **options: Unpack[InferArgs],
    ) -> None:
        """Sends one request; arguments as `oip.InferStream.send`."""
        if self._closed:
            raise CancelledError("the stream is closed; open a new one", model=model)
        request = build_request(
            model,
            inputs,
            outputs,
            InferOptions(
                **options, enable_empty_final_response=enable_empty_final_response
            ),
        )
        try:
            await self._call.write(request.to_grpc_bytes())
        except grpc.RpcError as exc:
            raise map_rpc_error(
                exc, self._target, model, request.request_id or None
            ) from exc
        except asyncio.InvalidStateError as exc:
            raise CancelledError("the stream has ended", model=model) from exc

    async def close(self) -> None:
        """Ends the sending side; responses still arrive until the server ends."""
        if not self._closed:
            self._closed = True
            try:
                await self._call.done_writing()
            except (grpc.RpcError, asyncio.InvalidStateError):
                _LOG.debug("stream already finished when closing")

    def cancel(self) -> None:
        """Cancels the stream at once; iteration then stops."""
        self._closed = True
        self._cancelled = True
        self._call.cancel()

    async def __aiter__(self) -> AsyncIterator[InferResult]:
        try:
            async for data in self._call:
                yield parse_stream_response(data)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._closed:
                return
            raise map_rpc_error(exc, self._target) from exc
        except asyncio.CancelledError:
            # Only the stream's own cancel() ends iteration quietly; a
            # cancelled task must see its CancelledError.
            if not self._cancelled:
                raise

    async def __aenter__(self) -> AsyncInferStream:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.cancel()
