"""The gRPC side of the reference server: GRPCInferenceService and Health.

Handlers take the request as bytes and parse it themselves, so a malformed
message gets INVALID_ARGUMENT with a reason instead of gRPC's generic error.
"""

from __future__ import annotations

import logging
from typing import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
)

import grpc
import numpy as np
from google.protobuf import message as protobuf_message

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import health_pb2
from oip.server import _tensors
from oip.server._errors import RequestError, invalid, not_found
from oip.server._models import Context, Model
from oip.server._repository import Repository
from oip.server._sequences import SequenceTracker
from oip.server._settings import LogSettings, TraceSettings
from oip.server._shm import SharedMemory
from oip.server._statistics import RequestTimer, now_ns
from oip.server._tensors import OutputRequest

_LOG = logging.getLogger(__name__)

SERVER_NAME = "oip-reference"
SERVER_VERSION = "0.1.0"
EXTENSIONS = [
    "model_configuration",
    "sequence",
    "binary_tensor_data",
    "model_repository",
    "model_repository(unload_dependents)",
    "statistics",
    "system_shared_memory",
    "trace",
    "logging",
]

NO_GPU = "CUDA shared memory is not supported: the oip reference server has no GPU"

Message = TypeVar("Message", bound=protobuf_message.Message)


def _parse(message_type: Type[Message], data: bytes) -> Message:
    try:
        return message_type.FromString(data)
    except protobuf_message.DecodeError as exc:
        raise invalid(f"malformed {message_type.DESCRIPTOR.name}: {exc}") from exc


def _batch_size(model: Model, inputs: Mapping[str, np.ndarray]) -> int:
    if model.max_batch_size == 0 or not inputs:
        return 1
    return int(next(iter(inputs.values())).shape[0])


class InferenceService:
    """Answers the protocol's RPCs from a repository of in-process models.

    Args:
        models: the models by name.
        model_control_mode: "none" loads every model at start; "explicit"
            loads only `startup_models` ("*" for all). Load and unload
            requests work in both modes.
        startup_models: models to load at start in explicit mode.

    Raises:
        ValueError: an unknown mode or startup model.
    """

    def __init__(
        self,
        models: Mapping[str, Model],
        model_control_mode: str = "none",
        startup_models: Iterable[str] = (),
        server_name: str = SERVER_NAME,
    ) -> None:
        self._server_name = server_name
        self._repository = Repository(models, model_control_mode, startup_models)
        self._sequences = SequenceTracker()
        self._memory = SharedMemory()
        self._trace = TraceSettings()
        self._log = LogSettings()

    def close(self) -> None:
        """Unmaps every shared memory region."""
        self._memory.close()

    # Health and metadata.

    async def server_live(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(
        self, request: pb.ServerReadyRequest
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        try:
            self._repository.get(request.name, request.version)
        except RequestError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def server_metadata(
        self, request: pb.ServerMetadataRequest
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name=self._server_name, version=SERVER_VERSION, extensions=EXTENSIONS
        )

    async def model_metadata(
        self, request: pb.ModelMetadataRequest
    ) -> pb.ModelMetadataResponse:
        model = self._repository.get(request.name, request.version)
        response = pb.ModelMetadataResponse(
            name=model.name, versions=[model.version], platform=model.platform
        )
        for specs, target in (
            (model.inputs, response.inputs),
            (model.outputs, response.outputs),
        ):
            for spec in specs:
                target.add(
                    name=spec.name,
                    datatype=spec.datatype.value,
                    shape=spec.shape(model.max_batch_size),
                )
        return response

    async def model_config(
        self, request: pb.ModelConfigRequest
    ) -> pb.ModelConfigResponse:
        config = self._repository.config(request.name, request.version)
        return pb.ModelConfigResponse(config=config)

    async def model_statistics(
        self, request: pb.ModelStatisticsRequest
    ) -> pb.ModelStatisticsResponse:
        stats = self._repository.statistics(request.name, request.version)
        return pb.ModelStatisticsResponse(model_stats=stats)

    # Repository.

    @staticmethod
    def _check_repository(name: str) -> None:
        if name:
            raise invalid(
                f"unknown repository '{name}': the reference server has one "
                "unnamed repository; leave repository_name empty"
            )

    async def repository_index(
        self, request: pb.RepositoryIndexRequest
    ) -> pb.RepositoryIndexResponse:
        self._check_repository(request.repository_name)
        return self._repository.index(request.ready)

    async def repository_model_load(
        self, request: pb.RepositoryModelLoadRequest
    ) -> pb.RepositoryModelLoadResponse:
        self._check_repository(request.repository_name)
        self._repository.load(request.model_name, request.parameters)
        self._sequences.forget(request.model_name)
        return pb.RepositoryModelLoadResponse()

    async def repository_model_unload(
        self, request: pb.RepositoryModelUnloadRequest
    ) -> pb.RepositoryModelUnloadResponse:
        self._check_repository(request.repository_name)
        self._repository.unload(request.model_name, request.parameters)
        self._sequences.forget(request.model_name)
        return pb.RepositoryModelUnloadResponse()

    # Shared memory.

    async def system_shm_status(
        self, request: pb.SystemSharedMemoryStatusRequest
    ) -> pb.SystemSharedMemoryStatusResponse:
        return self._memory.status(request.name)

    async def system_shm_register(
        self, request: pb.SystemSharedMemoryRegisterRequest
    ) -> pb.SystemSharedMemoryRegisterResponse:
        self._memory.register(
            request.name, request.key, request.offset, request.byte_size
        )
        return pb.SystemSharedMemoryRegisterResponse()

    async def system_shm_unregister(
        self, request: pb.SystemSharedMemoryUnregisterRequest
    ) -> pb.SystemSharedMemoryUnregisterResponse:
        self._memory.unregister(request.name)
        return pb.SystemSharedMemoryUnregisterResponse()

    async def cuda_shm_status(
        self, request: pb.CudaSharedMemoryStatusRequest
    ) -> pb.CudaSharedMemoryStatusResponse:
        if request.name:
            raise _no_cuda_region(request.name)
        return pb.CudaSharedMemoryStatusResponse()

    async def cuda_shm_register(
        self, request: pb.CudaSharedMemoryRegisterRequest
    ) -> pb.CudaSharedMemoryRegisterResponse:
        raise RequestError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{NO_GPU}; cannot register region '{request.name}'",
        )

    async def cuda_shm_unregister(
        self, request: pb.CudaSharedMemoryUnregisterRequest
    ) -> pb.CudaSharedMemoryUnregisterResponse:
        if request.name:
            raise _no_cuda_region(request.name)
        return pb.CudaSharedMemoryUnregisterResponse()

    # Trace and log settings.

    async def trace_setting(
        self, request: pb.TraceSettingRequest
    ) -> pb.TraceSettingResponse:
        if request.model_name:
            self._repository.require(request.model_name)
        settings = {key: list(value.value) for key, value in request.settings.items()}
        self._trace.update(request.model_name, settings)
        return self._trace.effective(request.model_name)

    async def log_settings(
        self, request: pb.LogSettingsRequest
    ) -> pb.LogSettingsResponse:
        self._log.update(request.settings)
        return self._log.response()

    # Inference.

    def _prepare(
        self, request: pb.ModelInferRequest, timer: RequestTimer
    ) -> tuple[Model, dict[str, np.ndarray], list[OutputRequest], Context]:
        model = self._repository.get(request.model_name, request.model_version)
        timer.taken(self._repository.stats(model.name))
        inputs = _tensors.decode_inputs(
            model.name, model.input_specs, model.max_batch_size, request, self._memory
        )
        outputs = _tensors.requested_outputs(
            model.name, model.output_specs, request, self._memory
        )
        context = Context()
        batch_size = _batch_size(model, inputs)
        if model.sequence:
            admit = self._sequences.admit
            context.sequence_start = admit(model.name, request, batch_size)
        timer.inputs_done(batch_size)
        return model, inputs, outputs, context

    def _response(
        self,
        model: Model,
        request: pb.ModelInferRequest,
        outputs: Sequence[OutputRequest],
        arrays: Mapping[str, np.ndarray],
    ) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse(
            model_name=model.name, model_version=model.version, id=request.id
        )
        _tensors.encode_outputs(
            response,
            model.output_specs,
            outputs,
            arrays,
            self._memory,
            batched=model.max_batch_size > 0,
        )
        return response

    def _compute(
        self,
        model: Model,
        request: pb.ModelInferRequest,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[OutputRequest],
        context: Context,
        timer: RequestTimer,
    ) -> pb.ModelInferResponse:
        """The one response of a model that is not decoupled, timed."""
        arrays = model.compute(inputs, context)
        timer.infer_done()
        response = self._response(model, request, outputs, arrays)
        timer.output_done()
        return response

    def _compute_one(
        self, request: pb.ModelInferRequest, timer: RequestTimer
    ) -> pb.ModelInferResponse:
        model, inputs, outputs, context = self._prepare(request, timer)
        if model.decoupled:
            raise RequestError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"model '{model.name}' is decoupled (it may send several "
                "responses); use ModelStreamInfer",
            )
        return self._compute(model, request, inputs, outputs, context, timer)

    async def model_infer(
        self, request: pb.ModelInferRequest, received_ns: Optional[int] = None
    ) -> pb.ModelInferResponse:
        """One request and its response; `received_ns` is when it arrived."""
        timer = RequestTimer(now_ns() if received_ns is None else received_ns)
        try:
            response = self._compute_one(request, timer)
            timer.succeeded()
        finally:
            timer.failed()  # does nothing once the success is recorded
        return response

    async def stream_one(
        self, request: pb.ModelInferRequest, received_ns: Optional[int] = None
    ) -> AsyncIterator[pb.ModelInferResponse]:
        """The responses to one request on a stream, final flag included."""
        timer = RequestTimer(now_ns() if received_ns is None else received_ns)
        try:
            model, inputs, outputs, context = self._prepare(request, timer)
            arguments = (model, request, inputs, outputs, context, timer)
            if not model.decoupled:
                response = self._compute(*arguments)
                timer.succeeded()
                yield response
                return
            async for response in self._decoupled(*arguments):
                yield response
        finally:
            timer.failed()  # does nothing once the success is recorded

    async def _decoupled(
        self,
        model: Model,
        request: pb.ModelInferRequest,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[OutputRequest],
        context: Context,
        timer: RequestTimer,
    ) -> AsyncIterator[pb.ModelInferResponse]:
        stats = self._repository.stats(model.name)
        final_wanted = _flag(request, "triton_enable_empty_final_response")
        index = 0
        try:
            async for arrays in model.compute_stream(inputs, context):
                infer_ns = timer.infer_done()
                response = self._response(model, request, outputs, arrays)
                output_ns = timer.output_done()
                record = stats.response(index)
                record.compute_infer.add(infer_ns)
                record.compute_output.add(output_ns)
                record.success.add(infer_ns + output_ns)
                if final_wanted:
                    response.parameters["triton_final_response"].bool_param = False
                yield response
                timer.restart()  # the time the client took is not the model's
                index += 1
        except Exception:
            stats.response(index).fail.add(timer.infer_done())
            raise
        last_ns = timer.infer_done()
        timer.succeeded()
        if final_wanted:
            stats.response(index).empty_response.add(last_ns)
            final = pb.ModelInferResponse(
                model_name=model.name, model_version=model.version, id=request.id
            )
            final.parameters["triton_final_response"].bool_param = True
            yield final


def _no_cuda_region(name: str) -> RequestError:
    return not_found(f"CUDA shared memory region '{name}' is not registered (no GPU)")


def _flag(request: pb.ModelInferRequest, name: str) -> bool:
    parameter = request.parameters.get(name)
    return (
        parameter is not None
        and parameter.WhichOneof("parameter_choice") == "bool_param"
        and parameter.bool_param
    )


Handler = Callable[..., Awaitable[protobuf_message.Message]]


def _unary(
    service_name: str,
    method: str,
    request_type: Type[Message],
    handler: Handler,
    timed: bool = False,
) -> grpc.RpcMethodHandler[bytes, bytes]:
    """A unary method; `timed` handlers also get the time the bytes arrived."""

    async def call(
        data: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        received = now_ns()
        try:
            request = _parse(request_type, data)
            response = await (handler(request, received) if timed else handler(request))
        except RequestError as exc:
            _LOG.debug("%s/%s refused: %s", service_name, method, exc.message)
            await context.abort(exc.code, exc.message)
        return response.SerializeToString()

    return grpc.unary_unary_rpc_method_handler(call)


def _stream(service: InferenceService) -> grpc.RpcMethodHandler[bytes, bytes]:
    async def call(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        async for data in requests:
            received = now_ns()
            try:
                request = _parse(pb.ModelInferRequest, data)
                async for response in service.stream_one(request, received):
                    yield pb.ModelStreamInferResponse(
                        infer_response=response
                    ).SerializeToString()
            except RequestError as exc:
                # Errors travel in the stream; the stream itself goes on.
                _LOG.debug("ModelStreamInfer request refused: %s", exc.message)
                yield pb.ModelStreamInferResponse(
                    error_message=exc.message
                ).SerializeToString()

    return grpc.stream_stream_rpc_method_handler(call)


def inference_handler(service: InferenceService) -> grpc.GenericRpcHandler:
    """The generic handler for inference.GRPCInferenceService."""
    name = "inference.GRPCInferenceService"
    methods = {
        "ServerLive": _unary(
            name, "ServerLive", pb.ServerLiveRequest, service.server_live
        ),
        "ServerReady": _unary(
            name, "ServerReady", pb.ServerReadyRequest, service.server_ready
        ),
        "ModelReady": _unary(
            name, "ModelReady", pb.ModelReadyRequest, service.model_ready
        ),
        "ServerMetadata": _unary(
            name, "ServerMetadata", pb.ServerMetadataRequest, service.server_metadata
        ),
        "ModelMetadata": _unary(
            name, "ModelMetadata", pb.ModelMetadataRequest, service.model_metadata
        ),
        "ModelConfig": _unary(
            name, "ModelConfig", pb.ModelConfigRequest, service.model_config
        ),
        "ModelInfer": _unary(
            name, "ModelInfer", pb.ModelInferRequest, service.model_infer, timed=True
        ),
        "ModelStreamInfer": _stream(service),
    }
    for method, request_type, handler in (
        ("ModelStatistics", pb.ModelStatisticsRequest, service.model_statistics),
        ("RepositoryIndex", pb.RepositoryIndexRequest, service.repository_index),
        (
            "RepositoryModelLoad",
            pb.RepositoryModelLoadRequest,
            service.repository_model_load,
        ),
        (
            "RepositoryModelUnload",
            pb.RepositoryModelUnloadRequest,
            service.repository_model_unload,
        ),
        (
            "SystemSharedMemoryStatus",
            pb.SystemSharedMemoryStatusRequest,
            service.system_shm_status,
        ),
        (
            "SystemSharedMemoryRegister",
            pb.SystemSharedMemoryRegisterRequest,
            service.system_shm_register,
        ),
        (
            "SystemSharedMemoryUnregister",
            pb.SystemSharedMemoryUnregisterRequest,
            service.system_shm_unregister,
        ),
        (
            "CudaSharedMemoryStatus",
            pb.CudaSharedMemoryStatusRequest,
            service.cuda_shm_status,
        ),
        (
            "CudaSharedMemoryRegister",
            pb.CudaSharedMemoryRegisterRequest,
            service.cuda_shm_register,
        ),
        (
            "CudaSharedMemoryUnregister",
            pb.CudaSharedMemoryUnregisterRequest,
            service.cuda_shm_unregister,
        ),
        ("TraceSetting", pb.TraceSettingRequest, service.trace_setting),
        ("LogSettings", pb.LogSettingsRequest, service.log_settings),
    ):
        methods[method] = _unary(name, method, request_type, handler)
    return grpc.method_handlers_generic_handler(name, methods)


def health_handler() -> grpc.GenericRpcHandler:
    """grpc.health.v1.Health: SERVING for the server and the inference service."""
    serving = {"", "inference.GRPCInferenceService"}

    async def check(
        request: health_pb2.HealthCheckRequest,
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in serving:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND, f"unknown service '{request.service}'"
            )
        return health_pb2.HealthCheckResponse(
            status=health_pb2.HealthCheckResponse.SERVING
        )

    name = "grpc.health.v1.Health"
    methods = {
        "Check": _unary(name, "Check", health_pb2.HealthCheckRequest, check),
        "Watch": _unimplemented_stream("Watch"),
    }
    return grpc.method_handlers_generic_handler(name, methods)


def _unimplemented_stream(method: str) -> grpc.RpcMethodHandler[bytes, bytes]:
    async def call(
        data: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{method} is not implemented by the oip reference server",
        )
        yield b""  # type: ignore[unreachable]  # abort raises; this makes a generator

    return grpc.unary_stream_rpc_method_handler(call)
