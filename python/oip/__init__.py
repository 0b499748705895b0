"""oip: a client for the Open Inference Protocol (KServe v2, Triton).

Three lines to run a model:

    import oip
    with oip.Client("localhost:8001") as client:
        print(client.infer("simple", {"INPUT0": a, "INPUT1": b})["OUTPUT0"])

`Client` is synchronous, `AsyncClient` its asyncio twin with the same
methods. Errors derive from `OipError`. The generated protocol modules live
in `oip.protocol`; the reference server in `oip.server`.
"""

from oip._aio import AsyncClient, AsyncInferStream
from oip._client import Client, InferFuture, InferStream
from oip._datatype import DataType
from oip._errors import (
    AlreadyExistsError,
    CancelledError,
    DeadlineExceededError,
    InvalidInputError,
    ModelNotFoundError,
    ModelUnavailableError,
    NotFoundError,
    NotSupportedError,
    OipError,
    ServerError,
    ServerUnavailableError,
    StatusCode,
)
from oip._grpc import KeepAliveOptions, RetryPolicy, TlsOptions
from oip._infer import InferArgs, InferResult, OutputTensor
from oip._ops import (
    CudaSharedMemoryStatus,
    ModelMetadata,
    RepositoryModel,
    ServerMetadata,
    SharedMemoryStatus,
    TensorMetadata,
)
from oip._shm import SystemSharedMemoryRegion
from oip._tensor import InferInput, RequestedOutput

__all__ = [
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncInferStream",
    "CancelledError",
    "Client",
    "CudaSharedMemoryStatus",
    "DataType",
    "DeadlineExceededError",
    "InferArgs",
    "InferFuture",
    "InferInput",
    "InferResult",
    "InferStream",
    "InvalidInputError",
    "KeepAliveOptions",
    "ModelMetadata",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "NotFoundError",
    "NotSupportedError",
    "OipError",
    "OutputTensor",
    "RepositoryModel",
    "RequestedOutput",
    "RetryPolicy",
    "ServerError",
    "ServerMetadata",
    "ServerUnavailableError",
    "SharedMemoryStatus",
    "StatusCode",
    "SystemSharedMemoryRegion",
    "TensorMetadata",
    "TlsOptions",
]
__version__ = "0.1.0"
