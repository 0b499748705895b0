"""System shared memory: SystemSharedMemoryRegion, registration, inference
through regions; CUDA shared memory on a server without a GPU."""

from __future__ import annotations

import os
import uuid
from typing import Callable, Iterator

import numpy as np
import pytest

import oip
from tests.client.helpers import (  # noqa: F401
    DEADLINE,
    assert_simple,
    client,
    dead_client,
    objects,
    run,
    server,
    simple_inputs,
)

SHM_DIR = "/dev/shm"


def _key() -> str:
    return f"/oip-test-{uuid.uuid4().hex}"


def _path(key: str) -> str:
    return os.path.join(SHM_DIR, key.lstrip("/"))


@pytest.fixture
def make_region() -> Iterator[Callable[[int], oip.SystemSharedMemoryRegion]]:
    """Creates regions with unique keys; every one is destroyed afterwards."""
    created: list[oip.SystemSharedMemoryRegion] = []

    def make(byte_size: int) -> oip.SystemSharedMemoryRegion:
        region = oip.SystemSharedMemoryRegion.create(_key(), byte_size)
        created.append(region)
        return region

    yield make
    for region in created:
        path = _path(region.key)
        region.destroy()
        assert not os.path.exists(path), f"{path} was left behind"


@pytest.fixture(autouse=True)
def no_registered_regions(request) -> Iterator[None]:
    """Each test starts and ends with no region registered on the server."""
    if "client" not in request.fixturenames:
        yield
        return
    c: oip.Client = request.getfixturevalue("client")
    c.unregister_system_shared_memory()
    yield
    c.unregister_system_shared_memory()
    assert c.get_system_shared_memory_status() == []


# The region itself.


def test_create_write_read_destroy():
    key = _key()
    region = oip.SystemSharedMemoryRegion.create(key, 128)
    try:
        assert region.key == key and region.byte_size == 128
        assert os.path.getsize(_path(key)) == 128
        assert region.read("INT32", [32]).tolist() == [0] * 32  # zero-filled
        a, b = simple_inputs()
        assert region.write([a, b]) == 128
        np.testing.assert_array_equal(region.read("INT32", [1, 16]), a)
        np.testing.assert_array_equal(
            region.read(oip.DataType.INT32, [1, 16], offset=64), b
        )
        copy = region.read("INT32", [1, 16])
        copy[0, 0] = 999  # a copy: the region is unchanged
        assert region.read("INT32", [1, 16])[0, 0] == a[0, 0]
        assert region.write(np.array([7], np.int32), offset=4) == 4
        assert region.read("INT32", [2]).tolist() == [a[0, 0], 7]
        assert key in repr(region)
    finally:
        region.destroy()
    assert not os.path.exists(_path(key))
    region.destroy()  # twice is harmless


def test_key_without_slash_is_normalised():
    name = f"oip-test-{uuid.uuid4().hex}"
    with oip.SystemSharedMemoryRegion.create(name, 8) as region:
        assert region.key == "/" + name
        assert os.path.exists(_path(name))
    assert not os.path.exists(_path(name))


def test_context_manager_destroys_created_and_keeps_attached(make_region):
    original = make_region(16)
    original.write(np.arange(4, dtype=np.int32))
    with oip.SystemSharedMemoryRegion.attach(original.key) as attached:
        assert attached.byte_size == 16
        assert attached.read("INT32", [4]).tolist() == [0, 1, 2, 3]
        attached.write(np.array([42], np.int32), offset=12)
    assert os.path.exists(_path(original.key))  # attached: closed, not removed
    assert original.read("INT32", [4]).tolist() == [0, 1, 2, 42]


@pytest.mark.parametrize(
    "dtype, datatype",
    [
        (np.float32, "FP32"),
        (np.float64, "FP64"),
        (np.uint8, "UINT8"),
        (np.int64, "INT64"),
        (np.bool_, "BOOL"),
        (np.float16, "FP16"),
        (np.uint64, "UINT64"),
    ],
)
def test_fixed_size_round_trip(make_region, dtype, datatype):
    data = (
        (np.arange(6) % 2 == 0) if dtype is np.bool_ else np.arange(6).astype(dtype) * 3
    )
    region = make_region(64)
    assert region.write(data.reshape(2, 3), offset=8) == data.nbytes
    out = region.read(datatype, [2, 3], offset=8)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, data.reshape(2, 3))


def test_bytes_round_trip(make_region):
    items = [b"", b"ab", "grüß", b"\x00\xff"]
    region = make_region(64)
    written = region.write(objects(items))
    assert written == sum(
        4 + len(i.encode() if isinstance(i, str) else i) for i in items
    )
    assert (
        bytes(region.read("UINT8", [written]).tobytes()[:6])
        == b"\x00\x00\x00\x00\x02\x00"
    )
    out = region.read("BYTES", [2, 2], byte_size=written)
    assert out.tolist() == [[b"", b"ab"], ["grüß".encode(), b"\x00\xff"]]


def test_create_on_existing_key(make_region):
    region = make_region(8)
    with pytest.raises(oip.AlreadyExistsError, match=region.key) as caught:
        oip.SystemSharedMemoryRegion.create(region.key, 8)
    assert caught.value.status is oip.StatusCode.ALREADY_EXISTS
    assert os.path.getsize(_path(region.key)) == 8  # untouched


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda r: r.write(np.zeros(5, np.int32)), "do not fit"),
        (lambda r: r.write(np.zeros(1, np.int32), offset=-4), "do not fit"),
        (lambda r: r.read("INT32", [5]), "outside"),
        (lambda r: r.read("INT32", [1], offset=16), "outside"),
        (lambda r: r.read("BYTES", [1], byte_size=4), "malformed BYTES"),
        (lambda r: r.read("BYTES", [1], offset=8, byte_size=16), "outside"),
    ],
    ids=[
        "write-too-big",
        "write-negative-offset",
        "read-too-big",
        "read-past-end",
        "read-bad-bytes",
        "bytes-past-end",
    ],
)
def test_region_bounds(make_region, action, message):
    region = make_region(16)
    region.write(np.array([100, 0, 0, 0], np.int32))  # a BYTES length of 100: malformed
    with pytest.raises(oip.InvalidInputError, match=message):
        action(region)


@pytest.mark.parametrize(
    "key, size, message",
    [
        ("/a/b", 8, "one name"),
        ("/..", 8, "one name"),
        ("", 8, "one name"),
        ("/ok-name", 0, "must be > 0"),
    ],
    ids=["nested", "dotdot", "empty", "zero-size"],
)
def test_create_refused(key, size, message):
    with pytest.raises(oip.InvalidInputError, match=message):
        oip.SystemSharedMemoryRegion.create(key, size)


def test_attach_missing():
    key = _key()
    with pytest.raises(oip.InvalidInputError, match="does not exist"):
        oip.SystemSharedMemoryRegion.attach(key)


def test_use_after_close(make_region):
    region = make_region(8)
    region.close()
    with pytest.raises(oip.OipError, match="closed"):
        region.read("INT32", [1])
    with pytest.raises(oip.OipError, match="closed"):
        region.write(np.zeros(1, np.int32))


# Registration with the server.


def test_register_status_unregister(client, make_region):
    first, second = make_region(128), make_region(64)
    client.register_system_shared_memory("first", first.key, 128)
    client.register_system_shared_memory("second", second.key, 32, offset=16)

    status = sorted(client.get_system_shared_memory_status(), key=lambda s: s.name)
    assert status == [
        oip.SharedMemoryStatus("first", first.key, 0, 128),
        oip.SharedMemoryStatus("second", second.key, 16, 32),
    ]
    assert client.get_system_shared_memory_status("second") == [
        oip.SharedMemoryStatus("second", second.key, 16, 32)
    ]

    client.unregister_system_shared_memory("first")
    assert [s.name for s in client.get_system_shared_memory_status()] == ["second"]
    client.unregister_system_shared_memory()
    assert client.get_system_shared_memory_status() == []


def test_duplicate_region_name(client, make_region):
    region = make_region(64)
    client.register_system_shared_memory("dup", region.key, 64)
    with pytest.raises(oip.AlreadyExistsError) as caught:
        client.register_system_shared_memory("dup", region.key, 64)
    assert "'dup'" in caught.value.message
    assert caught.value.status is oip.StatusCode.ALREADY_EXISTS


def test_register_missing_key(client):
    key = _key()
    with pytest.raises(oip.OipError) as caught:
        client.register_system_shared_memory("ghost", key, 64)
    assert caught.value.status is oip.StatusCode.NOT_FOUND
    assert key in caught.value.message


def test_register_window_past_end(client, make_region):
    region = make_region(64)
    with pytest.raises(oip.InvalidInputError, match="exceeds"):
        client.register_system_shared_memory("big", region.key, 64, offset=8)


@pytest.mark.parametrize(
    "name, key, size, offset",
    [("", "/k", 8, 0), ("r", "", 8, 0), ("r", "/k", 0, 0), ("r", "/k", 8, -1)],
    ids=["empty-name", "empty-key", "zero-size", "negative-offset"],
)
def test_register_refused_before_sending(dead_client, name, key, size, offset):
    with pytest.raises(oip.InvalidInputError):
        dead_client.register_system_shared_memory(name, key, size, offset)


@pytest.mark.parametrize(
    "method", ["unregister_system_shared_memory", "get_system_shared_memory_status"]
)
def test_unknown_region_by_name(client, method):
    with pytest.raises(oip.OipError) as caught:
        getattr(client, method)("never-registered")
    assert caught.value.status is oip.StatusCode.NOT_FOUND
    assert "'never-registered'" in caught.value.message


# Inference through shared memory.


def _simple_in_shm(client, make_region, *, outputs_in_shm: bool):
    a, b = simple_inputs()
    inputs = make_region(128)
    inputs.write([a, b])
    client.register_system_shared_memory("in", inputs.key, 128)
    tensors = [
        oip.InferInput("INPUT0", shape=[1, 16], datatype="INT32").set_shared_memory(
            "in", 64
        ),
        oip.InferInput("INPUT1", shape=[1, 16], datatype="INT32").set_shared_memory(
            "in", 64, offset=64
        ),
    ]
    requested = None
    out_region = None
    if outputs_in_shm:
        out_region = make_region(128)
        client.register_system_shared_memory("out", out_region.key, 128)
        requested = [
            oip.RequestedOutput("OUTPUT0").set_shared_memory("out", 64),
            oip.RequestedOutput("OUTPUT1").set_shared_memory("out", 64, offset=64),
        ]
    return a, b, tensors, requested, out_region


def test_infer_inputs_and_outputs_in_shm(client, make_region):
    a, b, tensors, requested, out_region = _simple_in_shm(
        client, make_region, outputs_in_shm=True
    )

    result = client.infer("simple", tensors, requested, request_id="shm")

    assert result.id == "shm"
    assert len(result) == 0 and list(result) == []
    out0 = result.outputs["OUTPUT0"]
    assert out0.in_shared_memory
    assert (out0.datatype, out0.shape) == ("INT32", (1, 16))
    assert out0.parameters["shared_memory_region"] == "out"
    assert out0.parameters["shared_memory_byte_size"] == 64
    assert result.outputs["OUTPUT1"].parameters["shared_memory_offset"] == 64
    with pytest.raises(KeyError, match="in shared memory"):
        result["OUTPUT0"]
    np.testing.assert_array_equal(out_region.read("INT32", [1, 16]), a + b)
    np.testing.assert_array_equal(out_region.read("INT32", [1, 16], offset=64), a - b)


def test_infer_inputs_in_shm_outputs_in_response(client, make_region):
    a, b, tensors, _, _ = _simple_in_shm(client, make_region, outputs_in_shm=False)
    assert_simple(client.infer("simple", tensors), a, b)


def test_infer_one_output_in_shm(client, make_region):
    a, b = simple_inputs()
    out_region = make_region(64)
    client.register_system_shared_memory("out0", out_region.key, 64)
    result = client.infer(
        "simple",
        {"INPUT0": a, "INPUT1": b},
        [oip.RequestedOutput("OUTPUT0").set_shared_memory("out0", 64), "OUTPUT1"],
    )
    assert list(result) == ["OUTPUT1"]
    np.testing.assert_array_equal(result["OUTPUT1"], a - b)
    np.testing.assert_array_equal(out_region.read("INT32", [1, 16]), a + b)


def test_infer_mixed_shm_and_raw_inputs(client, make_region):
    a, b = simple_inputs()
    region = make_region(64)
    region.write(b)
    client.register_system_shared_memory("b-only", region.key, 64)
    tensors = [
        oip.InferInput("INPUT0", a),
        oip.InferInput("INPUT1", shape=[1, 16], datatype="INT32").set_shared_memory(
            "b-only", 64
        ),
    ]
    assert_simple(client.infer("simple", tensors), a, b)


def test_infer_with_registered_offset(client, make_region):
    a, b = simple_inputs()
    region = make_region(256)
    region.write([a, b], offset=128)
    client.register_system_shared_memory(
        "window", region.key, 128, offset=128
    )  # region byte 0 = file byte 128
    tensors = [
        oip.InferInput("INPUT0", shape=[1, 16], datatype="INT32").set_shared_memory(
            "window", 64
        ),
        oip.InferInput("INPUT1", shape=[1, 16], datatype="INT32").set_shared_memory(
            "window", 64, offset=64
        ),
    ]
    assert_simple(client.infer("simple", tensors), a, b)


def test_infer_bytes_in_shm(client, make_region):
    left = [str(i * 1001) for i in range(16)]
    right = [str(-i) for i in range(16)]
    inputs = make_region(512)
    size0 = inputs.write(objects(left, (1, 16)))
    size1 = inputs.write(objects(right, (1, 16)), offset=size0)
    outputs = make_region(1024)
    client.register_system_shared_memory("text-in", inputs.key, 512)
    client.register_system_shared_memory("text-out", outputs.key, 1024)
    tensors = [
        oip.InferInput("INPUT0", shape=[1, 16], datatype="BYTES").set_shared_memory(
            "text-in", size0
        ),
        oip.InferInput("INPUT1", shape=[1, 16], datatype="BYTES").set_shared_memory(
            "text-in", size1, offset=size0
        ),
    ]
    requested = [
        oip.RequestedOutput("OUTPUT0").set_shared_memory("text-out", 512),
        oip.RequestedOutput("OUTPUT1").set_shared_memory("text-out", 512, offset=512),
    ]

    result = client.infer("simple_string", tensors, requested)

    written0 = result.outputs["OUTPUT0"].parameters["shared_memory_byte_size"]
    written1 = result.outputs["OUTPUT1"].parameters["shared_memory_byte_size"]
    sums = [str(int(x) + int(y)).encode() for x, y in zip(left, right)]
    diffs = [str(int(x) - int(y)).encode() for x, y in zip(left, right)]
    assert written0 == sum(4 + len(s) for s in sums)
    assert outputs.read("BYTES", [1, 16], byte_size=written0).tolist() == [sums]
    assert outputs.read("BYTES", [1, 16], offset=512, byte_size=written1).tolist() == [
        diffs
    ]


def test_infer_unknown_region(client):
    a, _ = simple_inputs()
    tensors = [
        oip.InferInput("INPUT0", a),
        oip.InferInput("INPUT1", shape=[1, 16], datatype="INT32").set_shared_memory(
            "no-such-region", 64
        ),
    ]
    with pytest.raises(oip.InvalidInputError) as caught:
        client.infer("simple", tensors)
    assert "'no-such-region'" in caught.value.message
    assert "'INPUT1'" in caught.value.message


def test_infer_unknown_output_region(client):
    a, b = simple_inputs()
    with pytest.raises(oip.InvalidInputError, match="'nowhere'"):
        client.infer(
            "simple",
            {"INPUT0": a, "INPUT1": b},
            [oip.RequestedOutput("OUTPUT0").set_shared_memory("nowhere", 64)],
        )


def test_infer_after_unregister(client, make_region):
    a, b, tensors, _, _ = _simple_in_shm(client, make_region, outputs_in_shm=False)
    assert_simple(client.infer("simple", tensors), a, b)
    client.unregister_system_shared_memory("in")
    with pytest.raises(oip.InvalidInputError, match="'in'"):
        client.infer("simple", tensors)


def test_output_region_too_small(client, make_region):
    a, b = simple_inputs()
    region = make_region(32)
    client.register_system_shared_memory("small", region.key, 32)
    with pytest.raises(oip.InvalidInputError, match="'small'"):
        client.infer(
            "simple",
            {"INPUT0": a, "INPUT1": b},
            [oip.RequestedOutput("OUTPUT0").set_shared_memory("small", 32)],
        )
    assert region.read("INT32", [8]).tolist() == [0] * 8  # nothing written


def test_shm_with_async_client(server, make_region):
    a, b = simple_inputs()
    region = make_region(256)
    region.write([a, b])

    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            await aio.register_system_shared_memory("aio", region.key, 256)
            try:
                status = await aio.get_system_shared_memory_status("aio")
                tensors = [
                    oip.InferInput(
                        "INPUT0", shape=[1, 16], datatype="INT32"
                    ).set_shared_memory("aio", 64),
                    oip.InferInput(
                        "INPUT1", shape=[1, 16], datatype="INT32"
                    ).set_shared_memory("aio", 64, 64),
                ]
                outputs = [
                    oip.RequestedOutput("OUTPUT0").set_shared_memory("aio", 64, 128)
                ]
                result = await aio.infer("simple", tensors, outputs)
            finally:
                await aio.unregister_system_shared_memory("aio")
            return status, result, await aio.get_system_shared_memory_status()

    status, result, after = run(go)
    assert status == [oip.SharedMemoryStatus("aio", region.key, 0, 256)]
    assert result.outputs["OUTPUT0"].in_shared_memory
    np.testing.assert_array_equal(region.read("INT32", [1, 16], offset=128), a + b)
    assert after == []


# CUDA shared memory: the reference server has no GPU.


def test_cuda_register_refused(client):
    with pytest.raises(oip.NotSupportedError) as caught:
        client.register_cuda_shared_memory("gpu0", b"\x01" * 64, 0, 1024)
    error = caught.value
    assert "GPU" in error.message
    assert "'gpu0'" in error.message
    assert error.status is oip.StatusCode.UNIMPLEMENTED


def test_cuda_status_empty_and_unregister_all(client):
    assert client.get_cuda_shared_memory_status() == []
    client.unregister_cuda_shared_memory()
    assert client.get_cuda_shared_memory_status() == []


@pytest.mark.parametrize(
    "method", ["get_cuda_shared_memory_status", "unregister_cuda_shared_memory"]
)
def test_cuda_unknown_region(client, method):
    with pytest.raises(oip.NotFoundError) as caught:
        getattr(client, method)("gpu0")
    assert caught.value.status is oip.StatusCode.NOT_FOUND
    assert "'gpu0'" in caught.value.message


def test_cuda_register_refused_before_sending(dead_client):
    with pytest.raises(oip.InvalidInputError, match="raw_handle"):
        dead_client.register_cuda_shared_memory("gpu0", b"", 0, 64)


def test_cuda_with_async_client(server):
    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            with pytest.raises(oip.OipError, match="GPU"):
                await aio.register_cuda_shared_memory("gpu0", b"\x01" * 64, 0, 64)
            await aio.unregister_cuda_shared_memory()
            return await aio.get_cuda_shared_memory_status()

    assert run(go) == []
