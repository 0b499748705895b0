"""The public surface of `oip`: exported names, typing marker, error classes."""

from __future__ import annotations

import importlib
import os
import pickle

import pytest

import oip

EXPECTED_ALL = [
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

ERRORS = [
    ("InvalidInputError", "INVALID_ARGUMENT"),
    ("NotFoundError", "NOT_FOUND"),
    ("ModelNotFoundError", "NOT_FOUND"),
    ("ModelUnavailableError", "UNAVAILABLE"),
    ("ServerUnavailableError", "UNAVAILABLE"),
    ("DeadlineExceededError", "DEADLINE_EXCEEDED"),
    ("CancelledError", "CANCELLED"),
    ("NotSupportedError", "UNIMPLEMENTED"),
    ("AlreadyExistsError", "ALREADY_EXISTS"),
    ("ServerError", "INTERNAL"),
    ("OipError", "UNKNOWN"),
]


def test_all_is_exactly_the_documented_set():
    assert sorted(oip.__all__) == sorted(EXPECTED_ALL)
    assert len(oip.__all__) == len(set(oip.__all__)), "a name is exported twice"


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_exported_name_importable(name):
    module = importlib.import_module("oip")
    value = getattr(module, name)
    assert value is not None
    namespace: dict = {}
    exec(f"from oip import {name}", namespace)
    assert namespace[name] is value


def test_star_import_gives_all_and_nothing_private():
    namespace: dict = {}
    exec("from oip import *", namespace)
    exported = {key for key in namespace if key != "__builtins__"}
    assert exported == set(EXPECTED_ALL)


def test_version_string():
    parts = oip.__version__.split(".")
    assert len(parts) == 3 and all(part.isdigit() for part in parts)


def test_py_typed_next_to_package():
    marker = os.path.join(os.path.dirname(oip.__file__), "py.typed")
    assert os.path.isfile(marker), f"{marker} is not shipped"


def test_protocol_modules_importable():
    from oip.protocol import grpc_service_pb2, model_config_pb2

    assert (
        grpc_service_pb2.ModelInferRequest.DESCRIPTOR.full_name
        == "inference.ModelInferRequest"
    )
    assert model_config_pb2.ModelConfig.DESCRIPTOR.full_name == "inference.ModelConfig"


@pytest.mark.parametrize("name, status", ERRORS, ids=[name for name, _ in ERRORS])
def test_error_default_status_and_base(name, status):
    cls = getattr(oip, name)
    error = cls("went wrong")
    assert isinstance(error, oip.OipError)
    assert isinstance(error, Exception)
    assert error.status is oip.StatusCode[status]
    assert error.message == "went wrong"
    assert error.model is None and error.request_id is None
    assert str(error) == f"[{status}] went wrong"


@pytest.mark.parametrize("name", [name for name, _ in ERRORS])
def test_error_pickles_with_its_fields(name):
    cls = getattr(oip, name)
    error = cls(
        "no luck", status=oip.StatusCode.ABORTED, model="simple", request_id="req-7"
    )

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is cls
    assert copy.message == "no luck"
    assert copy.status is oip.StatusCode.ABORTED
    assert copy.model == "simple"
    assert copy.request_id == "req-7"
    assert (
        str(copy) == str(error) == "[ABORTED] no luck (model 'simple', request 'req-7')"
    )
    assert copy.args == error.args


@pytest.mark.parametrize(
    "name, builtin",
    [
        ("InvalidInputError", ValueError),
        ("ServerUnavailableError", ConnectionError),
        ("DeadlineExceededError", TimeoutError),
    ],
    ids=[
        "invalid-is-ValueError",
        "unavailable-is-ConnectionError",
        "deadline-is-TimeoutError",
    ],
)
def test_error_is_also_builtin(name, builtin):
    error = getattr(oip, name)("x")
    assert isinstance(error, builtin)
    assert isinstance(error, oip.OipError)
    with pytest.raises(builtin):
        raise error


@pytest.mark.parametrize(
    "name",
    [
        "NotFoundError",
        "ModelNotFoundError",
        "ModelUnavailableError",
        "CancelledError",
        "NotSupportedError",
        "AlreadyExistsError",
        "ServerError",
    ],
)
def test_other_errors_are_not_builtin_kinds(name):
    error = getattr(oip, name)("x")
    assert not isinstance(error, (ValueError, ConnectionError, TimeoutError))


def test_oip_cancelled_error_is_not_asyncio_cancellation():
    import asyncio

    assert not issubclass(oip.CancelledError, asyncio.CancelledError)
    assert issubclass(oip.CancelledError, Exception)


def test_status_code_covers_grpc_codes():
    import grpc

    assert {code.name for code in grpc.StatusCode} == {
        code.name for code in oip.StatusCode
    }
    assert all(code.value == code.name for code in oip.StatusCode)


def test_datatype_names():
    assert [d.value for d in oip.DataType] == [
        "BOOL",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "FP16",
        "BF16",
        "FP32",
        "FP64",
        "BYTES",
    ]
    assert oip.DataType("INT32") == "INT32"


def test_model_not_found_is_a_not_found_error():
    assert issubclass(oip.ModelNotFoundError, oip.NotFoundError)
