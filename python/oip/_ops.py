"""Every RPC of the protocol as data: what to send and how to read the answer.

A `Call` names the RPC, carries the serialized request and a function that
turns the serialized response into the value the client returns. The
synchronous and asyncio clients only move bytes; all protocol knowledge is
here, written once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Optional, Sequence, TypeVar, Union

from google.protobuf import message as protobuf_message

from oip._errors import InvalidInputError, ServerError, StatusCode
from oip._infer import EncodedRequest, InferResult, parse_response
from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import model_config_pb2

T = TypeVar("T")
M = TypeVar("M", bound=protobuf_message.Message)

SERVICE = "inference.GRPCInferenceService"

# RPCs that change nothing on the server: safe to retry.
IDEMPOTENT_METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelConfig",
    "ModelStatistics",
    "RepositoryIndex",
    "SystemSharedMemoryStatus",
    "CudaSharedMemoryStatus",
)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One unary RPC: method name, request bytes, and the response reader."""

    method: str
    payload: bytes
    parse: Callable[[bytes], T]
    model: Optional[str] = None
    request_id: Optional[str] = None

    @property
    def path(self) -> str:
        """The gRPC method path."""
        return f"/{SERVICE}/{self.method}"


def _reader(message_type: type[M], then: Callable[[M], T]) -> Callable[[bytes], T]:
    def parse(data: bytes) -> T:
        try:
            message = message_type.FromString(data)
        except protobuf_message.DecodeError as exc:
            raise ServerError(
                f"malformed {message_type.DESCRIPTOR.name} from the server: {exc}",
                status=StatusCode.DATA_LOSS,
            ) from exc
        return then(message)

    return parse


def _nothing(message: protobuf_message.Message) -> None:
    return None


# Answers.


@dataclass(frozen=True)
class ServerMetadata:
    """Name, version and protocol extensions of a server."""

    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class TensorMetadata:
    """An input or output as a model describes it (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMetadata:
    """What a model says about itself."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]


@dataclass(frozen=True)
class RepositoryModel:
    """One entry of the model repository index."""

    name: str
    version: str
    state: str
    reason: str


@dataclass(frozen=True)
class SharedMemoryStatus:
    """A registered system shared memory region."""

    name: str
    key: str
    offset: int
    byte_size: int


@dataclass(frozen=True)
class CudaSharedMemoryStatus:
    """A registered CUDA shared memory region."""

    name: str
    device_id: int
    byte_size: int


def _tensors(items: Sequence[Any]) -> tuple[TensorMetadata, ...]:
    return tuple(TensorMetadata(t.name, t.datatype, tuple(t.shape)) for t in items)


# Health and metadata.


def server_live() -> Call[bool]:
    return Call(
        "ServerLive",
        pb.ServerLiveRequest().SerializeToString(),
        _reader(pb.ServerLiveResponse, lambda m: m.live),
    )


def server_ready() -> Call[bool]:
    return Call(
        "ServerReady",
        pb.ServerReadyRequest().SerializeToString(),
        _reader(pb.ServerReadyResponse, lambda m: m.ready),
    )


def model_ready(model: str, version: str) -> Call[bool]:
    request = pb.ModelReadyRequest(name=_model_name(model), version=version)
    return Call(
        "ModelReady",
        request.SerializeToString(),
        _reader(pb.ModelReadyResponse, lambda m: m.ready),
        model=model,
    )


def server_metadata() -> Call[ServerMetadata]:
    def read(m: pb.ServerMetadataResponse) -> ServerMetadata:
        return ServerMetadata(m.name, m.version, tuple(m.extensions))

    return Call(
        "ServerMetadata",
        pb.ServerMetadataRequest().SerializeToString(),
        _reader(pb.ServerMetadataResponse, read),
    )


def model_metadata(model: str, version: str) -> Call[ModelMetadata]:
    def read(m: pb.ModelMetadataResponse) -> ModelMetadata:
        return ModelMetadata(
            m.name,
            tuple(m.versions),
            m.platform,
            _tensors(m.inputs),
            _tensors(m.outputs),
        )

    request = pb.ModelMetadataRequest(name=_model_name(model), version=version)
    return Call(
        "ModelMetadata",
        request.SerializeToString(),
        _reader(pb.ModelMetadataResponse, read),
        model=model,
    )


def model_config(model: str, version: str) -> Call[model_config_pb2.ModelConfig]:
    request = pb.ModelConfigRequest(name=_model_name(model), version=version)
    return Call(
        "ModelConfig",
        request.SerializeToString(),
        _reader(pb.ModelConfigResponse, lambda m: m.config),
        model=model,
    )


def model_statistics(model: str, version: str) -> Call[pb.ModelStatisticsResponse]:
    request = pb.ModelStatisticsRequest(name=model, version=version)
    return Call(
        "ModelStatistics",
        request.SerializeToString(),
        _reader(pb.ModelStatisticsResponse, lambda m: m),
        model=model or None,
    )


def _model_name(model: str) -> str:
    if not model:
        raise InvalidInputError("model name is empty")
    return model


# Model repository.


def repository_index(ready_only: bool) -> Call[list[RepositoryModel]]:
    def read(m: pb.RepositoryIndexResponse) -> list[RepositoryModel]:
        return [RepositoryModel(e.name, e.version, e.state, e.reason) for e in m.models]

    request = pb.RepositoryIndexRequest(ready=ready_only)
    return Call(
        "RepositoryIndex",
        request.SerializeToString(),
        _reader(pb.RepositoryIndexResponse, read),
    )


def load_model(
    model: str,
    config: Union[str, Mapping[str, Any], None],
    files: Optional[Mapping[str, bytes]],
) -> Call[None]:
    request = pb.RepositoryModelLoadRequest(model_name=_model_name(model))
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        request.parameters["config"].string_param = text
    for path, content in (files or {}).items():
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise InvalidInputError(
                f"file path '{path}' must be relative, inside the model directory",
                model=model,
            )
        if not isinstance(content, (bytes, bytearray)):
            raise InvalidInputError(f"file '{path}' content must be bytes", model=model)
        request.parameters[f"file:{path}"].bytes_param = bytes(content)
    if files and config is None:
        raise InvalidInputError("files need a config to go with them", model=model)
    return Call(
        "RepositoryModelLoad",
        request.SerializeToString(),
        _reader(pb.RepositoryModelLoadResponse, _nothing),
        model=model,
    )


def unload_model(model: str, unload_dependents: bool) -> Call[None]:
    request = pb.RepositoryModelUnloadRequest(model_name=_model_name(model))
    request.parameters["unload_dependents"].bool_param = unload_dependents
    return Call(
        "RepositoryModelUnload",
        request.SerializeToString(),
        _reader(pb.RepositoryModelUnloadResponse, _nothing),
        model=model,
    )


# Shared memory.


def system_shm_status(name: str) -> Call[list[SharedMemoryStatus]]:
    def read(m: pb.SystemSharedMemoryStatusResponse) -> list[SharedMemoryStatus]:
        return [
            SharedMemoryStatus(r.name, r.key, r.offset, r.byte_size)
            for r in m.regions.values()
        ]

    request = pb.SystemSharedMemoryStatusRequest(name=name)
    return Call(
        "SystemSharedMemoryStatus",
        request.SerializeToString(),
        _reader(pb.SystemSharedMemoryStatusResponse, read),
    )


def system_shm_register(name: str, key: str, byte_size: int, offset: int) -> Call[None]:
    if not name or not key:
        raise InvalidInputError(
            f"region name {name!r} and key {key!r} must not be empty"
        )
    if byte_size <= 0 or offset < 0:
        raise InvalidInputError(
            f"region '{name}': byte_size {byte_size} must be > 0 and offset "
            f"{offset} >= 0"
        )
    request = pb.SystemSharedMemoryRegisterRequest(
        name=name, key=key, offset=offset, byte_size=byte_size
    )
    return Call(
        "SystemSharedMemoryRegister",
        request.SerializeToString(),
        _reader(pb.SystemSharedMemoryRegisterResponse, _nothing),
    )


def system_shm_unregister(name: str) -> Call[None]:
    request = pb.SystemSharedMemoryUnregisterRequest(name=name)
    return Call(
        "SystemSharedMemoryUnregister",
        request.SerializeToString(),
        _reader(pb.SystemSharedMemoryUnregisterResponse, _nothing),
    )


def cuda_shm_status(name: str) -> Call[list[CudaSharedMemoryStatus]]:
    def read(m: pb.CudaSharedMemoryStatusResponse) -> list[CudaSharedMemoryStatus]:
        return [
            CudaSharedMemoryStatus(r.name, r.device_id, r.byte_size)
            for r in m.regions.values()
        ]

    request = pb.CudaSharedMemoryStatusRequest(name=name)
    return Call(
        "CudaSharedMemoryStatus",
        request.SerializeToString(),
        _reader(pb.CudaSharedMemoryStatusResponse, read),
    )


def cuda_shm_register(
    name: str, raw_handle: bytes, device_id: int, byte_size: int
) -> Call[None]:
    if not name or not raw_handle:
        raise InvalidInputError(
            f"region name {name!r} and raw_handle must not be empty"
        )
    request = pb.CudaSharedMemoryRegisterRequest(
        name=name, raw_handle=raw_handle, device_id=device_id, byte_size=byte_size
    )
    return Call(
        "CudaSharedMemoryRegister",
        request.SerializeToString(),
        _reader(pb.CudaSharedMemoryRegisterResponse, _nothing),
    )


def cuda_shm_unregister(name: str) -> Call[None]:
    request = pb.CudaSharedMemoryUnregisterRequest(name=name)
    return Call(
        "CudaSharedMemoryUnregister",
        request.SerializeToString(),
        _reader(pb.CudaSharedMemoryUnregisterResponse, _nothing),
    )


# Trace and log settings.

TraceValue = Union[str, Sequence[str], None]
LogValue = Union[bool, int, str]


def trace_settings(
    model: str, updates: Optional[Mapping[str, TraceValue]]
) -> Call[dict[str, list[str]]]:
    def read(m: pb.TraceSettingResponse) -> dict[str, list[str]]:
        return {key: list(value.value) for key, value in m.settings.items()}

    request = pb.TraceSettingRequest(model_name=model)
    for key, value in (updates or {}).items():
        entry = request.settings[key]
        if value is None:
            continue  # an empty value list clears the setting
        entry.value.extend(
            [value] if isinstance(value, str) else [str(v) for v in value]
        )
    return Call(
        "TraceSetting",
        request.SerializeToString(),
        _reader(pb.TraceSettingResponse, read),
        model=model or None,
    )


def log_settings(
    updates: Optional[Mapping[str, LogValue]],
) -> Call[dict[str, LogValue]]:
    def read(m: pb.LogSettingsResponse) -> dict[str, LogValue]:
        result: dict[str, LogValue] = {}
        for key, value in m.settings.items():
            choice = value.WhichOneof("parameter_choice")
            if choice is not None:
                result[key] = getattr(value, choice)
        return result

    request = pb.LogSettingsRequest()
    for key, value in (updates or {}).items():
        entry = request.settings[key]
        if isinstance(value, bool):
            entry.bool_param = value
        elif isinstance(value, int):
            if not 0 <= value < 1 << 32:
                raise InvalidInputError(
                    f"log setting '{key}' = {value} is outside uint32"
                )
            entry.uint32_param = value
        elif isinstance(value, str):
            entry.string_param = value
        else:
            raise InvalidInputError(
                f"log setting '{key}' is {type(value).__name__}; give bool, int or str"
            )
    return Call(
        "LogSettings",
        request.SerializeToString(),
        _reader(pb.LogSettingsResponse, read),
    )


# Inference.


def infer(request: EncodedRequest) -> Call[InferResult]:
    def read(data: bytes) -> InferResult:
        return parse_response(data, request.model_name, request.request_id)

    return Call(
        "ModelInfer",
        request.to_grpc_bytes(),
        read,
        model=request.model_name,
        request_id=request.request_id or None,
    )
