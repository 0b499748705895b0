"""The gRPC side of the reference server: GRPCInferenceService and Health.

Handlers take the request as bytes and parse it themselves, so a malformed
message gets INVALID_ARGUMENT with a reason instead of gRPC's generic error.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator, Awaitable, Callable, Mapping, Type, TypeVar

import grpc
from google.protobuf import message as protobuf_message

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import health_pb2
from oip.server import _tensors
from oip.server._errors import RequestError, invalid
from oip.server._models import Context, Model, find_model
from oip.server._sequences import SequenceTracker

_LOG = logging.getLogger(__name__)

SERVER_NAME = "oip-reference"
SERVER_VERSION = "0.1.0"
EXTENSIONS = ["model_configuration", "sequence", "binary_tensor_data"]

# RPCs of GRPCInferenceService this server does not answer yet.
UNIMPLEMENTED = (
    "ModelStatistics",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
    "SystemSharedMemoryStatus",
    "SystemSharedMemoryRegister",
    "SystemSharedMemoryUnregister",
    "CudaSharedMemoryStatus",
    "CudaSharedMemoryRegister",
    "CudaSharedMemoryUnregister",
    "TraceSetting",
    "LogSettings",
)

Message = TypeVar("Message", bound=protobuf_message.Message)


def _parse(message_type: Type[Message], data: bytes) -> Message:
    try:
        return message_type.FromString(data)
    except protobuf_message.DecodeError as exc:
        raise invalid(f"malformed {message_type.DESCRIPTOR.name}: {exc}") from exc


class InferenceService:
    """Answers the protocol's RPCs from a set of in-process models."""

    def __init__(self, models: Mapping[str, Model]) -> None:
        self._models = dict(models)
        self._sequences = SequenceTracker()

    # Health and metadata.

    async def server_live(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        try:
            find_model(self._models, request.name, request.version)
        except RequestError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def server_metadata(self, request: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    async def model_metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        model = find_model(self._models, request.name, request.version)
        response = pb.ModelMetadataResponse(name=model.name, versions=[model.version], platform=model.platform)
        for specs, target in ((model.inputs, response.inputs), (model.outputs, response.outputs)):
            for spec in specs:
                target.add(name=spec.name, datatype=spec.datatype.value, shape=spec.shape(model.max_batch_size))
        return response

    async def model_config(self, request: pb.ModelConfigRequest) -> pb.ModelConfigResponse:
        model = find_model(self._models, request.name, request.version)
        return pb.ModelConfigResponse(config=model.config())

    # Inference.

    def _prepare(self, request: pb.ModelInferRequest) -> tuple[Model, dict, list[str], Context]:
        model = find_model(self._models, request.model_name, request.model_version)
        for name in ("shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"):
            for tensor in (*request.inputs, *request.outputs):
                if name in tensor.parameters:
                    raise RequestError(grpc.StatusCode.UNIMPLEMENTED, f"tensor '{tensor.name}': shared memory is not supported by this server yet")
        inputs = _tensors.decode_inputs(model.name, model.input_specs, model.max_batch_size, request)
        outputs = _tensors.requested_outputs(model.name, model.output_specs, request)
        context = Context()
        if model.sequence:
            batch = next(iter(inputs.values())).shape[0]
            context.sequence_start = self._sequences.admit(model.name, request, batch)
        return model, inputs, outputs, context

    def _response(self, model: Model, request: pb.ModelInferRequest, names: list[str], arrays: Mapping) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=request.id)
        _tensors.encode_outputs(response, model.output_specs, names, arrays)
        return response

    async def model_infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        model, inputs, names, context = self._prepare(request)
        if model.decoupled:
            raise RequestError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"model '{model.name}' is decoupled (it may send several responses); use ModelStreamInfer",
            )
        return self._response(model, request, names, model.compute(inputs, context))

    async def stream_one(self, request: pb.ModelInferRequest) -> AsyncIterator[pb.ModelInferResponse]:
        """The responses to one request on a stream, final flag included."""
        model, inputs, names, context = self._prepare(request)
        if not model.decoupled:
            yield self._response(model, request, names, model.compute(inputs, context))
            return

        final_wanted = _flag(request, "triton_enable_empty_final_response")
        async for arrays in model.compute_stream(inputs, context):
            response = self._response(model, request, names, arrays)
            if final_wanted:
                response.parameters["triton_final_response"].bool_param = False
            yield response
        if final_wanted:
            final = pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=request.id)
            final.parameters["triton_final_response"].bool_param = True
            yield final


def _flag(request: pb.ModelInferRequest, name: str) -> bool:
    parameter = request.parameters.get(name)
    return parameter is not None and parameter.WhichOneof("parameter_choice") == "bool_param" and parameter.bool_param


Handler = Callable[[Message], Awaitable[protobuf_message.Message]]


def _unary(service_name: str, method: str, request_type: Type[Message], handler: Handler) -> grpc.RpcMethodHandler:
    async def call(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            request = _parse(request_type, data)
            response = await handler(request)
        except RequestError as exc:
            _LOG.debug("%s/%s refused: %s", service_name, method, exc.message)
            await context.abort(exc.code, exc.message)
        return response.SerializeToString()

    return grpc.unary_unary_rpc_method_handler(call)


def _unimplemented(method: str) -> grpc.RpcMethodHandler:
    async def call(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented by the oip reference server yet")
        return b""

    return grpc.unary_unary_rpc_method_handler(call)


def _stream(service: InferenceService) -> grpc.RpcMethodHandler:
    async def call(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async for data in requests:
            try:
                request = _parse(pb.ModelInferRequest, data)
                async for response in service.stream_one(request):
                    yield pb.ModelStreamInferResponse(infer_response=response).SerializeToString()
            except RequestError as exc:
                # Errors travel in the stream; the stream itself goes on.
                _LOG.debug("ModelStreamInfer request refused: %s", exc.message)
                yield pb.ModelStreamInferResponse(error_message=exc.message).SerializeToString()

    return grpc.stream_stream_rpc_method_handler(call)


def inference_handler(service: InferenceService) -> grpc.GenericRpcHandler:
    """The generic handler for inference.GRPCInferenceService."""
    name = "inference.GRPCInferenceService"
    methods = {
        "ServerLive": _unary(name, "ServerLive", pb.ServerLiveRequest, service.server_live),
        "ServerReady": _unary(name, "ServerReady", pb.ServerReadyRequest, service.server_ready),
        "ModelReady": _unary(name, "ModelReady", pb.ModelReadyRequest, service.model_ready),
        "ServerMetadata": _unary(name, "ServerMetadata", pb.ServerMetadataRequest, service.server_metadata),
        "ModelMetadata": _unary(name, "ModelMetadata", pb.ModelMetadataRequest, service.model_metadata),
        "ModelConfig": _unary(name, "ModelConfig", pb.ModelConfigRequest, service.model_config),
        "ModelInfer": _unary(name, "ModelInfer", pb.ModelInferRequest, service.model_infer),
        "ModelStreamInfer": _stream(service),
    }
    methods.update({method: _unimplemented(method) for method in UNIMPLEMENTED})
    return grpc.method_handlers_generic_handler(name, methods)


def health_handler() -> grpc.GenericRpcHandler:
    """grpc.health.v1.Health: SERVING for the server and the inference service."""
    serving = {"", "inference.GRPCInferenceService"}

    async def check(request: health_pb2.HealthCheckRequest) -> health_pb2.HealthCheckResponse:
        if request.service not in serving:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"unknown service '{request.service}'")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    name = "grpc.health.v1.Health"
    methods = {"Check": _unary(name, "Check", health_pb2.HealthCheckRequest, check), "Watch": _unimplemented_stream("Watch")}
    return grpc.method_handlers_generic_handler(name, methods)


def _unimplemented_stream(method: str) -> grpc.RpcMethodHandler:
    async def call(data: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented by the oip reference server")
        yield b""

    return grpc.unary_stream_rpc_method_handler(call)
