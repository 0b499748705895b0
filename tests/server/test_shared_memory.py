"""System shared memory: registration, status, inference through regions, CUDA.

Regions are files under /dev/shm with unique names, made and removed here.
"""

import os
import uuid

import grpc
import numpy as np
import pytest

from oip.protocol import grpc_service_pb2 as pb
from tests.server.helpers import (
    DEADLINE,
    deserialize_bytes,
    output,
    raw_of,
    rpc_error,
    serialize_bytes,
    simple_inputs,
)
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
SHM = "/dev/shm"
SENTINEL = 0x5A


@pytest.fixture
def shm(grpc_stub):
    """Makes /dev/shm files: shm(size) -> key; removes them and every region."""
    paths = []

    def make(size, fill=SENTINEL):
        key = f"oip-test-{uuid.uuid4().hex}"
        path = os.path.join(SHM, key)
        with open(path, "wb") as file:
            file.write(bytes([fill]) * size)
        paths.append(path)
        return key

    yield make
    request = pb.SystemSharedMemoryUnregisterRequest(name="")
    grpc_stub.SystemSharedMemoryUnregister(request, timeout=DEADLINE)
    for path in paths:
        if os.path.lexists(path):
            os.unlink(path)


def _register(stub, name, key, byte_size, offset=0):
    request = pb.SystemSharedMemoryRegisterRequest(
        name=name, key=key, offset=offset, byte_size=byte_size
    )
    return stub.SystemSharedMemoryRegister(request, timeout=DEADLINE)


def _register_error(stub, name, key, byte_size, offset=0):
    with pytest.raises(grpc.RpcError) as info:
        _register(stub, name, key, byte_size, offset)
    return info.value


def _status(stub, name=""):
    request = pb.SystemSharedMemoryStatusRequest(name=name)
    response = stub.SystemSharedMemoryStatus(request, timeout=DEADLINE)
    return {
        key: (r.name, r.key, r.offset, r.byte_size)
        for key, r in response.regions.items()
    }


def _write(key, offset, data):
    with open(os.path.join(SHM, key), "r+b") as file:
        file.seek(offset)
        file.write(data)


def _read(key, offset, size):
    with open(os.path.join(SHM, key), "rb") as file:
        file.seek(offset)
        return file.read(size)


def _place(tensor, region, byte_size, offset=None, uint=False):
    tensor.parameters["shared_memory_region"].string_param = region
    if uint:
        tensor.parameters["shared_memory_byte_size"].uint64_param = byte_size
    else:
        tensor.parameters["shared_memory_byte_size"].int64_param = byte_size
    if offset is not None:
        tensor.parameters["shared_memory_offset"].int64_param = offset


def _simple_shm_request(
    region, in_shm=("INPUT0", "INPUT1"), out_shm=("OUTPUT0", "OUTPUT1"), sizes=None
):
    """simple, batch 1: shm inputs at 0 and 64, shm outputs at 128 and 192."""
    a, b = simple_inputs()
    sizes = sizes or {}
    request = pb.ModelInferRequest(model_name="simple")
    for index, (name, array) in enumerate((("INPUT0", a), ("INPUT1", b))):
        tensor = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        if name in in_shm:
            _place(tensor, region, sizes.get(name, 64), offset=64 * index)
        else:
            request.raw_input_contents.append(raw_of(array, "INT32"))
    for index, name in enumerate(("OUTPUT0", "OUTPUT1")):
        tensor = request.outputs.add(name=name)
        if name in out_shm:
            _place(tensor, region, sizes.get(name, 64), offset=128 + 64 * index)
    return request


def _fill_simple_inputs(key, base=0):
    a, b = simple_inputs()
    _write(key, base, raw_of(a, "INT32") + raw_of(b, "INT32"))
    return a, b


def _ints(data):
    return np.frombuffer(data, dtype="<i4").reshape(1, 16)


# Registration and status.


def test_register_status_unregister(grpc_stub, shm):
    key = shm(4096)

    _register(grpc_stub, "region-a", f"/{key}", 1024, offset=512)

    expected = ("region-a", f"/{key}", 512, 1024)
    assert _status(grpc_stub) == {"region-a": expected}
    assert _status(grpc_stub, "region-a") == {"region-a": expected}
    grpc_stub.SystemSharedMemoryUnregister(
        pb.SystemSharedMemoryUnregisterRequest(name="region-a"), timeout=DEADLINE
    )
    assert _status(grpc_stub) == {}


def test_key_without_slash(grpc_stub, shm):
    key = shm(256)

    _register(grpc_stub, "plain", key, 256)

    assert _status(grpc_stub, "plain")["plain"][1] == key


def test_whole_file_and_last_byte_fit(grpc_stub, shm):
    key = shm(100)

    _register(grpc_stub, "whole", key, 100)
    _register(grpc_stub, "last", key, 1, offset=99)

    assert sorted(_status(grpc_stub)) == ["last", "whole"]


BAD_KEYS = [
    "../etc/passwd",
    "/../etc/passwd",
    "/a/b",
    "a/b",
    "",
    "/",
    "..",
    "/..",
    "/oip-test/..",
    "x\x00y",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_key(grpc_stub, key):
    error = _register_error(grpc_stub, "bad", key, 16)

    assert error.code() == INVALID
    assert f"'{key}'" in error.details()
    assert _status(grpc_stub) == {}


def test_missing_object(grpc_stub):
    key = f"/oip-test-missing-{uuid.uuid4().hex}"

    error = _register_error(grpc_stub, "missing", key, 16)

    assert error.code() in (INVALID, NOT_FOUND)
    assert f"'{key}'" in error.details()


def test_symlink_out_of_dev_shm(grpc_stub, shm, tmp_path):
    target = tmp_path / "outside"
    target.write_bytes(bytes(64))
    key = f"oip-test-link-{uuid.uuid4().hex}"
    os.symlink(target, os.path.join(SHM, key))
    try:
        error = _register_error(grpc_stub, "link", key, 16)
    finally:
        os.unlink(os.path.join(SHM, key))

    assert error.code() == INVALID
    assert f"'{key}'" in error.details()
    assert "outside" in error.details()


def test_directory_refused(grpc_stub):
    key = f"oip-test-dir-{uuid.uuid4().hex}"
    os.mkdir(os.path.join(SHM, key))
    try:
        error = _register_error(grpc_stub, "dir", key, 16)
    finally:
        os.rmdir(os.path.join(SHM, key))

    assert error.code() == INVALID
    assert f"'{key}'" in error.details()


@pytest.mark.parametrize(
    "offset, byte_size, fragment",
    [
        (0, 4097, "4097"),
        (4000, 97, "4000"),
        (4096, 1, "4096"),
        (0, 0, "byte_size"),
        (2**63, 2**63, "exceeds"),
    ],
    ids=["too_big", "past_end", "offset_at_end", "empty", "huge"],
)
def test_region_outside_object(grpc_stub, shm, offset, byte_size, fragment):
    key = shm(4096)

    error = _register_error(grpc_stub, "big", key, byte_size, offset)

    assert error.code() == INVALID
    assert "'big'" in error.details()
    assert fragment in error.details()
    assert _status(grpc_stub) == {}


def test_duplicate_name(grpc_stub, shm):
    first, second = shm(64), shm(128)
    _register(grpc_stub, "twice", first, 64)

    error = _register_error(grpc_stub, "twice", second, 128)

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "'twice'" in error.details()
    assert _status(grpc_stub) == {"twice": ("twice", first, 0, 64)}


def test_empty_name_refused(grpc_stub, shm):
    error = _register_error(grpc_stub, "", shm(64), 64)

    assert error.code() == INVALID


@pytest.mark.parametrize(
    "rpc", ["SystemSharedMemoryStatus", "SystemSharedMemoryUnregister"]
)
def test_unknown_region(grpc_stub, rpc):
    request = getattr(pb, f"{rpc}Request")(name="nowhere")

    error = rpc_error(getattr(grpc_stub, rpc), request)

    assert error.code() == NOT_FOUND
    assert "'nowhere'" in error.details()


def test_unregister_all(grpc_stub, shm, server):
    key = shm(256)
    for name in ("r1", "r2", "r3"):
        _register(grpc_stub, name, key, 64)
    mapped = _maps(server.pid)

    grpc_stub.SystemSharedMemoryUnregister(
        pb.SystemSharedMemoryUnregisterRequest(name=""), timeout=DEADLINE
    )

    assert _status(grpc_stub) == {}
    assert mapped.count(os.path.join(SHM, key)) == 3
    assert os.path.join(SHM, key) not in _maps(server.pid)


def test_unregister_one_unmaps_it(grpc_stub, shm, server):
    keep, drop = shm(64), shm(64)
    _register(grpc_stub, "keep", keep, 64)
    _register(grpc_stub, "drop", drop, 64)

    grpc_stub.SystemSharedMemoryUnregister(
        pb.SystemSharedMemoryUnregisterRequest(name="drop"), timeout=DEADLINE
    )

    maps = _maps(server.pid)
    assert os.path.join(SHM, keep) in maps
    assert os.path.join(SHM, drop) not in maps
    assert list(_status(grpc_stub)) == ["keep"]


def _maps(pid):
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as file:
        return file.read()


# Inference through regions.


def test_inputs_and_outputs_in_shared_memory(grpc_stub, shm):
    key = shm(256)
    a, b = _fill_simple_inputs(key)
    _register(grpc_stub, "io", key, 256)

    response = grpc_stub.ModelInfer(_simple_shm_request("io"), timeout=DEADLINE)

    assert len(response.raw_output_contents) == 0
    assert [t.name for t in response.outputs] == ["OUTPUT0", "OUTPUT1"]
    assert [list(t.shape) for t in response.outputs] == [[1, 16], [1, 16]]
    for tensor in response.outputs:
        assert tensor.parameters["shared_memory_region"].string_param == "io"
        assert tensor.parameters["shared_memory_byte_size"].int64_param == 64
    np.testing.assert_array_equal(_ints(_read(key, 128, 64)), a + b)
    np.testing.assert_array_equal(_ints(_read(key, 192, 64)), a - b)


def test_uint64_byte_size(grpc_stub, shm):
    key = shm(256)
    a, b = _fill_simple_inputs(key)
    _register(grpc_stub, "u", key, 256)
    request = _simple_shm_request("u", out_shm=())
    for tensor in request.inputs:
        _place(
            tensor,
            "u",
            64,
            offset=tensor.parameters["shared_memory_offset"].int64_param,
            uint=True,
        )

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    np.testing.assert_array_equal(output(response, "OUTPUT0"), a + b)


def test_mixed_shared_memory_and_raw(grpc_stub, shm):
    key = shm(256)
    a, b = _fill_simple_inputs(key)
    _register(grpc_stub, "mixed", key, 256)
    request = _simple_shm_request("mixed", in_shm=("INPUT1",), out_shm=("OUTPUT0",))

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    assert len(request.raw_input_contents) == 1
    assert [t.name for t in response.outputs] == ["OUTPUT0", "OUTPUT1"]
    assert len(response.raw_output_contents) == 1
    np.testing.assert_array_equal(_ints(response.raw_output_contents[0]), a - b)
    np.testing.assert_array_equal(_ints(_read(key, 128, 64)), a + b)
    assert _read(key, 192, 64) == bytes([SENTINEL]) * 64


def test_region_offsets_add_up(grpc_stub, shm):
    key = shm(8192 + 256)
    a, b = _fill_simple_inputs(key, base=5000)
    _register(grpc_stub, "shifted", key, 3000, offset=5000)

    grpc_stub.ModelInfer(_simple_shm_request("shifted"), timeout=DEADLINE)

    np.testing.assert_array_equal(_ints(_read(key, 5128, 64)), a + b)
    np.testing.assert_array_equal(_ints(_read(key, 5192, 64)), a - b)
    assert _read(key, 128, 128) == bytes([SENTINEL]) * 128


def test_typed_input_with_shared_memory_output(grpc_stub, shm):
    key = shm(64)
    _register(grpc_stub, "out", key, 64)
    a, b = simple_inputs()
    request = pb.ModelInferRequest(model_name="simple")
    for name, array in (("INPUT0", a), ("INPUT1", b)):
        tensor = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        tensor.contents.int_contents.extend(array.reshape(-1).tolist())
    _place(request.outputs.add(name="OUTPUT1"), "out", 64)

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    assert [t.name for t in response.outputs] == ["OUTPUT1"]
    assert len(response.raw_output_contents) == 0
    np.testing.assert_array_equal(_ints(_read(key, 0, 64)), a - b)


def test_bytes_in_shared_memory(grpc_stub, shm):
    items = [str(i * 1000 - 7).encode() for i in range(16)]
    ones = [b"1"] * 16
    data0, data1 = serialize_bytes(items), serialize_bytes(ones)
    key = shm(4096)
    _write(key, 0, data0 + data1)
    _register(grpc_stub, "text", key, 4096)
    request = pb.ModelInferRequest(model_name="simple_string")
    for name, offset, data in (("INPUT0", 0, data0), ("INPUT1", len(data0), data1)):
        tensor = request.inputs.add(name=name, datatype="BYTES", shape=[1, 16])
        _place(tensor, "text", len(data), offset=offset)
    _place(request.outputs.add(name="OUTPUT0"), "text", 1024, offset=2048)

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    size = response.outputs[0].parameters["shared_memory_byte_size"].int64_param
    assert response.outputs[0].parameters["shared_memory_offset"].int64_param == 2048
    got = deserialize_bytes(_read(key, 2048, size))
    assert got == [str(i * 1000 - 6).encode() for i in range(16)]


def test_bytes_output_too_small(grpc_stub, shm):
    key = shm(256)
    _write(key, 0, serialize_bytes([b"5"] * 16))
    _register(grpc_stub, "small", key, 256)
    request = pb.ModelInferRequest(model_name="simple_identity")
    tensor = request.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 16])
    _place(tensor, "small", 80)
    _place(request.outputs.add(name="OUTPUT0"), "small", 79, offset=100)

    error = rpc_error(grpc_stub.ModelInfer, request)

    assert error.code() == INVALID
    assert "'OUTPUT0'" in error.details() and "'small'" in error.details()
    assert "80" in error.details()
    assert _read(key, 100, 156) == bytes([SENTINEL]) * 156


def test_output_too_small_writes_nothing(grpc_stub, shm):
    key = shm(256)
    _fill_simple_inputs(key)
    _register(grpc_stub, "tight", key, 256)
    request = _simple_shm_request("tight", sizes={"OUTPUT1": 60})

    error = rpc_error(grpc_stub.ModelInfer, request)

    assert error.code() == INVALID
    assert "'OUTPUT1'" in error.details()
    assert "'tight'" in error.details()
    assert _read(key, 128, 128) == bytes([SENTINEL]) * 128


def _refusal(grpc_stub, request, *fragments):
    error = rpc_error(grpc_stub.ModelInfer, request)
    assert error.code() == INVALID, error.details()
    for fragment in fragments:
        assert fragment in error.details()
    return error


def test_input_byte_size_must_match(grpc_stub, shm):
    key = shm(256)
    _register(grpc_stub, "r", key, 256)

    _refusal(
        grpc_stub,
        _simple_shm_request("r", sizes={"INPUT0": 60}),
        "'INPUT0'",
        "'r'",
        "60",
        "64",
    )
    _refusal(
        grpc_stub,
        _simple_shm_request("r", sizes={"INPUT1": 68}),
        "'INPUT1'",
        "'r'",
        "68",
        "64",
    )


def test_input_outside_region(grpc_stub, shm):
    key = shm(4096)
    _register(grpc_stub, "short", key, 100)

    _refusal(
        grpc_stub,
        _simple_shm_request("short", out_shm=()),
        "'INPUT1'",
        "'short'",
        "100",
    )


def test_output_outside_region(grpc_stub, shm):
    key = shm(4096)
    _fill_simple_inputs(key)
    _register(grpc_stub, "short", key, 200)

    _refusal(grpc_stub, _simple_shm_request("short"), "'OUTPUT1'", "'short'", "200")
    assert _read(key, 128, 72) == bytes([SENTINEL]) * 72


@pytest.mark.parametrize("tensor", ["INPUT0", "OUTPUT1"])
def test_unknown_region_in_request(grpc_stub, shm, tensor):
    key = shm(256)
    _register(grpc_stub, "known", key, 256)
    request = _simple_shm_request("known")
    target = [*request.inputs, *request.outputs]
    for item in target:
        if item.name == tensor:
            item.parameters["shared_memory_region"].string_param = "unknown-region"

    _refusal(grpc_stub, request, f"'{tensor}'", "'unknown-region'")


def test_raw_count_counts_only_inputs_outside_shared_memory(grpc_stub, shm):
    key = shm(256)
    _register(grpc_stub, "r", key, 256)
    request = _simple_shm_request("r", in_shm=("INPUT0",))
    request.raw_input_contents.append(bytes(64))

    _refusal(grpc_stub, request, "1 inputs", "2 raw_input_contents")


def test_shared_memory_and_typed_contents(grpc_stub, shm):
    key = shm(256)
    _register(grpc_stub, "r", key, 256)
    request = _simple_shm_request("r", in_shm=("INPUT0", "INPUT1"))
    request.inputs[0].contents.int_contents.extend(range(16))

    _refusal(grpc_stub, request, "'INPUT0'", "'r'", "typed")


@pytest.mark.parametrize(
    "key, parameter, fragment",
    [
        (
            "shared_memory_byte_size",
            pb.InferParameter(string_param="64"),
            "shared_memory_byte_size",
        ),
        ("shared_memory_offset", pb.InferParameter(int64_param=-4), "-4"),
        (
            "shared_memory_region",
            pb.InferParameter(int64_param=1),
            "shared_memory_region",
        ),
    ],
    ids=["byte_size_string", "negative_offset", "region_not_string"],
)
def test_bad_shared_memory_parameter(grpc_stub, shm, key, parameter, fragment):
    _register(grpc_stub, "r", shm(256), 256)
    request = _simple_shm_request("r")
    request.inputs[0].parameters[key].CopyFrom(parameter)

    _refusal(grpc_stub, request, "'INPUT0'", fragment)


def test_missing_byte_size(grpc_stub, shm):
    _register(grpc_stub, "r", shm(256), 256)
    request = _simple_shm_request("r")
    del request.outputs[0].parameters["shared_memory_byte_size"]

    _refusal(grpc_stub, request, "'OUTPUT0'", "shared_memory_byte_size")


def test_offset_without_region(grpc_stub, shm):
    request = _simple_shm_request("r", in_shm=(), out_shm=())
    request.inputs[1].parameters["shared_memory_offset"].int64_param = 0

    _refusal(grpc_stub, request, "'INPUT1'", "shared_memory_region")


def test_unregistered_region_refused_afterwards(grpc_stub, shm):
    key = shm(256)
    _fill_simple_inputs(key)
    _register(grpc_stub, "gone", key, 256)
    grpc_stub.ModelInfer(_simple_shm_request("gone"), timeout=DEADLINE)
    grpc_stub.SystemSharedMemoryUnregister(
        pb.SystemSharedMemoryUnregisterRequest(name="gone"), timeout=DEADLINE
    )

    _refusal(grpc_stub, _simple_shm_request("gone"), "'INPUT0'", "'gone'")


def test_shrunk_object_refused_not_crashed(grpc_stub, shm, server):
    key = shm(256)
    _register(grpc_stub, "shrink", key, 256)
    os.truncate(os.path.join(SHM, key), 16)

    _refusal(grpc_stub, _simple_shm_request("shrink"), "'shrink'")
    assert server.returncode is None


def test_stream_with_shared_memory(grpc_stub, shm):
    key = shm(256)
    a, b = _fill_simple_inputs(key)
    _register(grpc_stub, "stream", key, 256)

    responses = list(
        grpc_stub.ModelStreamInfer(
            iter([_simple_shm_request("stream")]), timeout=DEADLINE
        )
    )

    assert [r.error_message for r in responses] == [""]
    assert len(responses[0].infer_response.raw_output_contents) == 0
    np.testing.assert_array_equal(_ints(_read(key, 128, 64)), a + b)


# CUDA shared memory: this server has no GPU.


def test_cuda_register_refused(grpc_stub):
    request = pb.CudaSharedMemoryRegisterRequest(
        name="gpu-region", raw_handle=b"\0" * 64, device_id=0, byte_size=64
    )

    error = rpc_error(grpc_stub.CudaSharedMemoryRegister, request)

    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "CUDA shared memory is not supported" in error.details()
    assert "no GPU" in error.details()
    assert "'gpu-region'" in error.details()


def test_cuda_status_empty(grpc_stub):
    request = pb.CudaSharedMemoryStatusRequest(name="")

    response = grpc_stub.CudaSharedMemoryStatus(request, timeout=DEADLINE)

    assert len(response.regions) == 0


@pytest.mark.parametrize(
    "rpc", ["CudaSharedMemoryStatus", "CudaSharedMemoryUnregister"]
)
def test_cuda_named_region_not_found(grpc_stub, rpc):
    request = getattr(pb, f"{rpc}Request")(name="gpu-region")

    error = rpc_error(getattr(grpc_stub, rpc), request)

    assert error.code() == NOT_FOUND
    assert "'gpu-region'" in error.details()


def test_cuda_unregister_all(grpc_stub):
    request = pb.CudaSharedMemoryUnregisterRequest(name="")

    response = grpc_stub.CudaSharedMemoryUnregister(request, timeout=DEADLINE)

    assert response == pb.CudaSharedMemoryUnregisterResponse()


def test_cuda_region_in_request_unknown(grpc_stub):
    rpc_error(
        grpc_stub.CudaSharedMemoryRegister,
        pb.CudaSharedMemoryRegisterRequest(name="gpu-region", byte_size=64),
    )

    _refusal(grpc_stub, _simple_shm_request("gpu-region"), "'INPUT0'", "'gpu-region'")
