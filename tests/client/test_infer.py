"""Client.infer against the reference server, and tensor encoding by hand."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

import oip
from oip.protocol import grpc_service_pb2 as pb
from tests.client.helpers import (  # noqa: F401
    DEADLINE,
    BlockingAsyncClient,
    assert_simple,
    client,
    dead_client,
    objects,
    server,
    simple_inputs,
)


def _wrap8(value: int) -> int:
    return (value + 128) % 256 - 128


# Round trips.


@pytest.mark.parametrize("batch", [1, 3, 8], ids=["batch1", "batch3", "batch8"])
def test_int32_simple(client, batch):
    a, b = simple_inputs(batch)
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b})
    assert_simple(result, a, b)
    assert result.model_name == "simple"
    assert result.model_version == "1"


def test_int32_extremes_wrap(client):
    a = np.array([[2**31 - 1, -(2**31), 0, 1] * 4], dtype=np.int32)
    b = np.array([[1, 1, -1, -(2**31)] * 4], dtype=np.int32)
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b})
    expected_sum = [-(2**31), -(2**31) + 1, -1, -(2**31) + 1] * 4
    expected_diff = [2**31 - 2, 2**31 - 1, 1, -(2**31) + 1] * 4
    assert result["OUTPUT0"].tolist() == [expected_sum]
    assert result["OUTPUT1"].tolist() == [expected_diff]


def test_int8_wraps(client):
    a_values = [127, -128, 100, -100, 0, 1, -1, 64] * 2
    b_values = [1, 1, 100, 100, -128, 127, -128, 64] * 2
    a = np.array([a_values], dtype=np.int8)
    b = np.array([b_values], dtype=np.int8)

    result = client.infer("simple_int8", {"INPUT0": a, "INPUT1": b})

    assert result["OUTPUT0"].dtype == np.int8
    assert result["OUTPUT0"].tolist() == [
        [_wrap8(x + y) for x, y in zip(a_values, b_values)]
    ]
    assert result["OUTPUT1"].tolist() == [
        [_wrap8(x - y) for x, y in zip(a_values, b_values)]
    ]
    assert result["OUTPUT0"][0, 0] == -128  # 127 + 1 wrapped


STRING_A = [str((i - 8) * 7919) for i in range(16)]
STRING_B = [str(i * 10**12 - 3) for i in range(16)]


@pytest.mark.parametrize(
    "make",
    [
        lambda items: np.array([items]),  # numpy str_ ("U") array
        lambda items: objects(
            [s.encode() for s in items], (1, 16)
        ),  # object array of bytes
        lambda items: objects(list(items), (1, 16)),  # object array of str
        lambda items: np.array(
            [[s.encode() for s in items]], dtype=np.bytes_
        ),  # "S" array
    ],
    ids=["numpy-str", "object-bytes", "object-str", "numpy-bytes"],
)
def test_bytes_simple_string(client, make):
    result = client.infer(
        "simple_string", {"INPUT0": make(STRING_A), "INPUT1": make(STRING_B)}
    )
    sums = [str(int(x) + int(y)).encode() for x, y in zip(STRING_A, STRING_B)]
    diffs = [str(int(x) - int(y)).encode() for x, y in zip(STRING_A, STRING_B)]
    assert result["OUTPUT0"].shape == (1, 16)
    assert result["OUTPUT0"].dtype == np.object_
    assert result["OUTPUT0"].tolist() == [sums]
    assert result["OUTPUT1"].tolist() == [diffs]


IDENTITY_CASES = {
    "ascii-bytes": [b"a", b"bc", b"def"],
    "ascii-str": ["a", "bc", "def"],
    "empty-strings": [b"", b"", b""],
    "empty-and-not": ["", b"x", ""],
    "binary-with-nuls": [b"\x00", b"\x00\xff\x00", b"a\x00b\x00\x00"],
    "non-ascii-utf8": ["grüß", "日本語", "🙂"],
    "long-element": [b"x" * 70_000, b"y", b"z" * 256],
    "all-byte-values": [bytes(range(256)), bytes(range(255, -1, -1)), b"\x80"],
}


def _as_bytes(item):
    return item.encode("utf-8") if isinstance(item, str) else item


@pytest.mark.parametrize(
    "items", list(IDENTITY_CASES.values()), ids=list(IDENTITY_CASES)
)
def test_bytes_identity(client, items):
    array = objects(items, (1, 3))
    result = client.infer("simple_identity", {"INPUT0": array})
    out = result["OUTPUT0"]
    assert out.shape == (1, 3)
    assert out.tolist() == [[_as_bytes(item) for item in items]]
    assert all(type(item) is bytes for item in out.reshape(-1))


@pytest.mark.parametrize(
    "items", list(IDENTITY_CASES.values()), ids=list(IDENTITY_CASES)
)
def test_bytes_identity_from_list_with_datatype(client, items):
    tensor = oip.InferInput("INPUT0", [items], datatype="BYTES")
    assert tensor.shape == (1, 3)
    result = client.infer("simple_identity", [tensor])
    assert result["OUTPUT0"].tolist() == [[_as_bytes(item) for item in items]]


def test_bytes_identity_batched_2d(client):
    items = [f"r{row}c{col}".encode() for row in range(4) for col in range(5)]
    array = objects(items, (4, 5))
    result = client.infer("simple_identity", {"INPUT0": array})
    assert result["OUTPUT0"].shape == (4, 5)
    assert result["OUTPUT0"].tolist() == array.tolist()


def test_bytes_identity_zero_elements(client):
    array = np.empty((1, 0), dtype=np.object_)
    result = client.infer("simple_identity", {"INPUT0": array})
    assert result["OUTPUT0"].shape == (1, 0)
    assert result.outputs["OUTPUT0"].shape == (1, 0)


def test_large_message_over_grpc_default_limit(client):
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB: over gRPC's 4 MiB default
    result = client.infer("simple_identity", {"INPUT0": objects([big], (1, 1))})
    assert result["OUTPUT0"][0, 0] == big


def test_mapping_and_list_inputs_agree(client):
    a, b = simple_inputs(2)
    by_mapping = client.infer("simple", {"INPUT0": a, "INPUT1": b})
    by_list = client.infer(
        "simple", [oip.InferInput("INPUT1", b), oip.InferInput("INPUT0", a)]
    )
    by_mapping_of_inputs = client.infer(
        "simple",
        {"INPUT0": oip.InferInput("INPUT0", a), "INPUT1": oip.InferInput("INPUT1", b)},
    )
    for result in (by_mapping, by_list, by_mapping_of_inputs):
        assert_simple(result, a, b)


def test_input_from_python_list_with_datatype(client):
    a = [list(range(16))]
    b = [[2] * 16]
    result = client.infer(
        "simple",
        [
            oip.InferInput("INPUT0", a, datatype="INT32"),
            oip.InferInput("INPUT1", b, datatype=oip.DataType.INT32),
        ],
    )
    assert result["OUTPUT0"].tolist() == [[i + 2 for i in range(16)]]


def test_big_endian_and_strided_inputs(client):
    a, b = simple_inputs(2)
    big_endian = a.astype(">i4")
    wide = np.zeros((2, 32), dtype=np.int32)
    wide[:, ::2] = b
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    result = client.infer("simple", {"INPUT0": big_endian, "INPUT1": strided})
    assert_simple(result, a, b)


@pytest.mark.parametrize(
    "outputs, expected",
    [
        (["OUTPUT1"], ["OUTPUT1"]),
        ([oip.RequestedOutput("OUTPUT0")], ["OUTPUT0"]),
        (["OUTPUT1", oip.RequestedOutput("OUTPUT0")], ["OUTPUT1", "OUTPUT0"]),
        (None, ["OUTPUT0", "OUTPUT1"]),
        ([], ["OUTPUT0", "OUTPUT1"]),
    ],
    ids=["name", "requested-output", "both-kinds", "none-means-all", "empty-means-all"],
)
def test_requested_outputs(client, outputs, expected):
    a, b = simple_inputs()
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b}, outputs)
    assert list(result) == expected
    assert list(result.outputs) == expected
    if "OUTPUT0" in expected:
        np.testing.assert_array_equal(result["OUTPUT0"], a + b)
    if "OUTPUT1" in expected:
        np.testing.assert_array_equal(result["OUTPUT1"], a - b)
    if "OUTPUT0" not in expected:
        with pytest.raises(KeyError, match="OUTPUT0"):
            result["OUTPUT0"]


@pytest.mark.parametrize(
    "request_id", ["abc", "req-ü-1", "x" * 200], ids=["plain", "unicode", "long"]
)
def test_request_id_echoed(client, request_id):
    a, b = simple_inputs()
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b}, request_id=request_id)
    assert result.id == request_id
    assert result.get_response().id == request_id


def test_no_request_id_is_empty(client):
    a, b = simple_inputs()
    assert client.infer("simple", {"INPUT0": a, "INPUT1": b}).id == ""


def test_result_arrays_are_read_only(client):
    a, b = simple_inputs()
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b})
    out = result["OUTPUT0"]
    assert not out.flags.writeable
    with pytest.raises(ValueError):
        out[0, 0] = 1
    copy = np.array(out)
    copy[0, 0] = 12345
    assert result["OUTPUT0"][0, 0] == a[0, 0] + b[0, 0]
    assert result["OUTPUT0"] is out  # decoded once, then cached


def test_result_is_a_mapping(client):
    from collections.abc import Mapping

    a, b = simple_inputs()
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b})
    assert isinstance(result, Mapping)
    assert len(result) == 2
    assert list(result.keys()) == ["OUTPUT0", "OUTPUT1"]
    assert "OUTPUT0" in result and "nope" not in result
    assert result.get("nope") is None
    assert dict(result.items())["OUTPUT1"].tolist() == (a - b).tolist()
    assert result.as_numpy("OUTPUT0").tolist() == (a + b).tolist()
    with pytest.raises(KeyError, match="nope"):
        result["nope"]
    tensor = result.outputs["OUTPUT1"]
    assert isinstance(tensor, oip.OutputTensor)
    assert (tensor.name, tensor.datatype, tensor.shape, tensor.in_shared_memory) == (
        "OUTPUT1",
        "INT32",
        (1, 16),
        False,
    )
    assert result.error is None
    assert result.is_final is True
    result.raise_for_error()
    assert "simple" in repr(result) and "OUTPUT0" in repr(result)


@pytest.mark.parametrize(
    "version", ["1", "", "01"], ids=["one", "latest", "leading-zero"]
)
def test_version_ok(client, version):
    a, b = simple_inputs()
    result = client.infer("simple", {"INPUT0": a, "INPUT1": b}, version=version)
    assert_simple(result, a, b)
    assert result.model_version == "1"


def test_version_two_not_found(client):
    a, b = simple_inputs()
    with pytest.raises(oip.ModelNotFoundError) as caught:
        client.infer("simple", {"INPUT0": a, "INPUT1": b}, version="2", request_id="v2")
    assert caught.value.model == "simple"
    assert caught.value.request_id == "v2"
    assert caught.value.status is oip.StatusCode.NOT_FOUND


def test_unknown_model_not_found(client):
    with pytest.raises(oip.ModelNotFoundError) as caught:
        client.infer("no_such_model", {"X": np.zeros(1, np.int32)})
    assert caught.value.model == "no_such_model"
    assert "no_such_model" in str(caught.value)


def test_custom_parameters_accepted(client):
    a, b = simple_inputs()
    result = client.infer(
        "simple",
        {"INPUT0": a, "INPUT1": b},
        parameters={
            "flag": True,
            "count": 3,
            "ratio": 0.5,
            "name": "x",
            "huge": 2**63 + 1,
        },
        priority=1,
        server_timeout_us=5_000_000,
    )
    assert_simple(result, a, b)


def test_async_client_infer(server):
    a, b = simple_inputs(2)
    result = BlockingAsyncClient(server.url, timeout=DEADLINE).infer(
        "simple", {"INPUT0": a, "INPUT1": b}, request_id="aio"
    )
    assert_simple(result, a, b)
    assert result.id == "aio"


# Client-side validation: refused before sending (dead_client has no server,
# so a request that got sent would fail with ServerUnavailableError instead).

A, B = simple_inputs()


def _dup_inputs():
    return [oip.InferInput("INPUT0", A), oip.InferInput("INPUT0", B)]


CLIENT_ERRORS = {
    "duplicate-input": (dict(inputs=_dup_inputs), "'INPUT0'"),
    "duplicate-output-names": (dict(outputs=["OUTPUT0", "OUTPUT0"]), "'OUTPUT0'"),
    "duplicate-output-mixed": (
        dict(outputs=["OUTPUT1", oip.RequestedOutput("OUTPUT1")]),
        "'OUTPUT1'",
    ),
    "reserved-sequence_id": (dict(parameters={"sequence_id": 5}), "'sequence_id'"),
    "reserved-priority": (dict(parameters={"priority": 1}), "'priority'"),
    "reserved-triton-prefix": (dict(parameters={"triton_x": 1}), "'triton_x'"),
    "reserved-shm-region": (
        dict(parameters={"shared_memory_region": "r"}),
        "'shared_memory_region'",
    ),
    "reserved-in-input": (
        dict(
            inputs=lambda: [
                oip.InferInput("INPUT0", A, parameters={"binary_data_size": 1}),
                oip.InferInput("INPUT1", B),
            ]
        ),
        "'binary_data_size'",
    ),
    "reserved-in-output": (
        dict(
            outputs=[oip.RequestedOutput("OUTPUT0", parameters={"classification": 2})]
        ),
        "'classification'",
    ),
    "bad-parameter-type": (dict(parameters={"custom": [1, 2]}), "'custom'"),
    "parameter-above-uint64": (dict(parameters={"big": 2**64}), "'big'"),
    "parameter-below-int64": (dict(parameters={"small": -(2**63) - 1}), "'small'"),
    "input-parameter-above-uint64": (
        dict(
            inputs=lambda: [
                oip.InferInput("INPUT0", A, parameters={"huge": 2**70}),
                oip.InferInput("INPUT1", B),
            ]
        ),
        "'huge'",
    ),
    "bytes-element-int": (
        dict(inputs=lambda: {"INPUT0": objects([b"a", 3]), "INPUT1": B}),
        "'INPUT0'",
    ),
    "bytes-element-none": (
        dict(inputs=lambda: {"INPUT0": objects(["a", None]), "INPUT1": B}),
        "'INPUT0'",
    ),
    "no-data": (
        dict(
            inputs=lambda: [
                oip.InferInput("INPUT0", shape=[1, 16], datatype="INT32"),
                oip.InferInput("INPUT1", B),
            ]
        ),
        "'INPUT0'",
    ),
    "not-an-input": (
        dict(inputs=lambda: [oip.InferInput("INPUT0", A), B]),
        "InferInput",
    ),
    "numpy-dtype-without-datatype": (
        dict(inputs=lambda: {"INPUT0": A.astype(np.complex64), "INPUT1": B}),
        "input 'INPUT0': numpy dtype complex64",
    ),
    "empty-model-name": (dict(model=""), "model name"),
    "sequence-start-without-id": (dict(sequence_start=True), "sequence_id"),
    "sequence-end-without-id": (dict(sequence_end=True), "sequence_id"),
    "sequence-id-bool": (dict(sequence_id=True), "bool"),
    "negative-priority": (dict(priority=-1), "negative"),
    "negative-server-timeout": (dict(server_timeout_us=-5), "negative"),
}


@pytest.mark.parametrize("case", list(CLIENT_ERRORS.values()), ids=list(CLIENT_ERRORS))
def test_refused_before_sending(dead_client, case):
    overrides, named = case
    args = {"model": "simple", "inputs": {"INPUT0": A, "INPUT1": B}, "outputs": None}
    for key, value in overrides.items():
        args[key] = value() if callable(value) else value
    model, inputs, outputs = args.pop("model"), args.pop("inputs"), args.pop("outputs")

    with pytest.raises(oip.InvalidInputError) as caught:
        dead_client.infer(model, inputs, outputs, **args)

    assert named in caught.value.message
    assert caught.value.status is oip.StatusCode.INVALID_ARGUMENT


def test_refused_before_sending_async():
    from tests.client.helpers import closed_port_url

    aio = BlockingAsyncClient(closed_port_url(), timeout=DEADLINE)
    with pytest.raises(oip.InvalidInputError, match="'INPUT0' is given twice"):
        aio.infer("simple", _dup_inputs())


INPUT_ERRORS = {
    "declared-shape-mismatch": (
        lambda: oip.InferInput("INPUT0", A, shape=[1, 8]),
        ["'INPUT0'", "[1, 16]", "[1, 8]"],
    ),
    "float64-as-int32": (
        lambda: oip.InferInput("INPUT0", A.astype(np.float64), datatype="INT32"),
        ["'INPUT0'", "float64", "INT32"],
    ),
    "int64-as-int32": (
        lambda: oip.InferInput("INPUT0", A.astype(np.int64), datatype="INT32"),
        ["'INPUT0'", "int64"],
    ),
    "float32-as-fp16": (
        lambda: oip.InferInput("INPUT0", np.ones(3, np.float32), datatype="FP16"),
        ["'INPUT0'", "FP16"],
    ),
    "int-as-bf16": (
        lambda: oip.InferInput("INPUT0", np.ones(3, np.int32), datatype="BF16"),
        ["'INPUT0'", "BF16"],
    ),
    "shm-byte-size-mismatch": (
        lambda: oip.InferInput(
            "INPUT0", shape=[1, 16], datatype="INT32"
        ).set_shared_memory("region0", 60),
        ["'INPUT0'", "64", "60", "'region0'"],
    ),
    "shm-without-shape": (
        lambda: oip.InferInput("INPUT0", datatype="INT32").set_shared_memory(
            "region0", 64
        ),
        ["'INPUT0'", "shape"],
    ),
    "shm-empty-region": (
        lambda: oip.InferInput("INPUT0", shape=[1], datatype="INT32").set_shared_memory(
            "", 4
        ),
        ["region"],
    ),
    "bytes-element-float": (
        lambda: oip.InferInput("INPUT0", [1.5, 2.5], datatype="BYTES"),
        ["'INPUT0'", "float"],
    ),
    "unknown-datatype": (
        lambda: oip.InferInput("INPUT0", A, datatype="INT33"),
        ["'INPUT0'", "INT33"],
    ),
    "negative-dimension": (
        lambda: oip.InferInput("INPUT0", shape=[1, -1], datatype="INT32"),
        ["'INPUT0'", "-1"],
    ),
    "empty-name": (lambda: oip.InferInput("", A), ["name"]),
    "ragged-list": (
        lambda: oip.InferInput("INPUT0", [[1, 2], [3]], datatype="INT32"),
        ["'INPUT0'"],
    ),
    "int8-overflow": (
        lambda: oip.InferInput("INPUT0", [[300]], datatype="INT8"),
        ["'INPUT0'", "300"],
    ),
    "uint64-negative": (
        lambda: oip.InferInput("INPUT0", [-1], datatype="UINT64"),
        ["'INPUT0'", "-1"],
    ),
    "output-empty-name": (lambda: oip.RequestedOutput(""), ["name"]),
    "output-negative-class-count": (
        lambda: oip.RequestedOutput("OUTPUT0", class_count=-1),
        ["'OUTPUT0'"],
    ),
}


@pytest.mark.parametrize("case", list(INPUT_ERRORS.values()), ids=list(INPUT_ERRORS))
def test_tensor_refused_when_built(case):
    build, named = case
    with pytest.raises(oip.InvalidInputError) as caught:
        build()
    for text in named:
        assert text in caught.value.message
    assert isinstance(caught.value, ValueError)


# Server-side errors.


def test_missing_input_names_it(client):
    with pytest.raises(oip.InvalidInputError) as caught:
        client.infer("simple", {"INPUT0": A}, request_id="missing")
    error = caught.value
    assert "'INPUT1'" in error.message
    assert "missing" in error.message
    assert error.model == "simple"
    assert error.request_id == "missing"
    assert error.status is oip.StatusCode.INVALID_ARGUMENT


SERVER_ERRORS = {
    "wrong-shape": (
        lambda: {"INPUT0": A[:, :8], "INPUT1": B[:, :8]},
        None,
        ["'INPUT0'", "[1,8]"],
    ),
    "wrong-rank": (
        lambda: {"INPUT0": A.reshape(16), "INPUT1": B.reshape(16)},
        None,
        ["'INPUT0'", "rank"],
    ),
    "batch-too-big": (
        lambda: dict(zip(("INPUT0", "INPUT1"), simple_inputs(9))),
        None,
        ["batch size 9"],
    ),
    "wrong-datatype": (
        lambda: {"INPUT0": A.astype(np.float32), "INPUT1": B},
        None,
        ["'INPUT0'", "FP32", "INT32"],
    ),
    "unexpected-input": (
        lambda: {"INPUT0": A, "INPUT1": B, "INPUT2": A},
        None,
        ["'INPUT2'"],
    ),
    "unknown-output": (lambda: {"INPUT0": A, "INPUT1": B}, ["OUTPUT9"], ["'OUTPUT9'"]),
}


@pytest.mark.parametrize("case", list(SERVER_ERRORS.values()), ids=list(SERVER_ERRORS))
def test_server_refuses(client, case):
    inputs, outputs, named = case
    with pytest.raises(oip.InvalidInputError) as caught:
        client.infer("simple", inputs(), outputs)
    for text in named:
        assert text in caught.value.message
    assert caught.value.model == "simple"
    assert caught.value.status is oip.StatusCode.INVALID_ARGUMENT


def _top_classes(row, count):
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:count]
    return [f"{row[i]}:{i}".encode() for i in order]


@pytest.mark.parametrize("count", [1, 3, 16], ids=["top1", "top3", "all"])
def test_classification_output(client, count):
    a, b = simple_inputs(2)
    result = client.infer(
        "simple",
        {"INPUT0": a, "INPUT1": b},
        [oip.RequestedOutput("OUTPUT0", class_count=count), "OUTPUT1"],
    )
    assert result.outputs["OUTPUT0"].datatype == "BYTES"
    sums = (a + b).tolist()
    assert result["OUTPUT0"].tolist() == [_top_classes(row, count) for row in sums]
    np.testing.assert_array_equal(result["OUTPUT1"], a - b)


def test_simple_string_non_decimal(client):
    bad = np.array([["x"] * 16])
    with pytest.raises(oip.InvalidInputError, match="not a decimal integer"):
        client.infer("simple_string", {"INPUT0": bad, "INPUT1": bad})


def test_decoupled_model_refuses_unary_infer(client):
    from tests.client.helpers import repeat_inputs

    with pytest.raises(oip.NotSupportedError) as caught:
        client.infer("repeat_int32", repeat_inputs([1, 2]))
    assert caught.value.status is oip.StatusCode.UNIMPLEMENTED
    assert "ModelStreamInfer" in caught.value.message


# Encoding by hand: raw contents as the protocol lays them out.


def _raw(tensor: oip.InferInput) -> bytes:
    assert tensor.raw is not None
    return bytes(tensor.raw)


@pytest.mark.parametrize(
    "items, expected",
    [
        ([b"ab"], b"\x02\x00\x00\x00ab"),
        ([b""], b"\x00\x00\x00\x00"),
        ([b"a", b"", b"bc"], b"\x01\x00\x00\x00a\x00\x00\x00\x00\x02\x00\x00\x00bc"),
        (["é"], b"\x02\x00\x00\x00\xc3\xa9"),
        ([b"\x00\x00"], b"\x02\x00\x00\x00\x00\x00"),
        ([b"x" * 300], b"\x2c\x01\x00\x00" + b"x" * 300),
        ([b"y" * 65536], b"\x00\x00\x01\x00" + b"y" * 65536),
    ],
    ids=["one", "empty", "three", "utf8", "nuls", "len-300-le", "len-65536-le"],
)
def test_bytes_encoding(items, expected):
    tensor = oip.InferInput("X", objects(items))
    assert tensor.datatype is oip.DataType.BYTES
    assert tensor.shape == (len(items),)
    assert _raw(tensor) == expected


def test_bytes_encoding_mixed_str_bytes_matches_manual():
    items = ["ab", b"\x00c", "ü", b""]
    expected = b"".join(
        struct.pack("<I", len(_as_bytes(i))) + _as_bytes(i) for i in items
    )
    assert _raw(oip.InferInput("X", objects(items, (2, 2)))) == expected
    assert _raw(oip.InferInput("X", items, datatype="BYTES")) == expected


def _bf16_bits(values_u32):
    floats = np.array(values_u32, dtype=np.uint32).view(np.float32)
    tensor = oip.InferInput("X", floats, datatype="BF16")
    assert tensor.datatype is oip.DataType.BF16
    assert tensor.shape == (len(values_u32),)
    raw = _raw(tensor)
    return list(struct.unpack(f"<{len(values_u32)}H", raw))


@pytest.mark.parametrize(
    "f32_bits, bf16",
    [
        (0x3F800000, 0x3F80),  # 1.0
        (0xBF800000, 0xBF80),  # -1.0
        (0x40490FDB, 0x4049),  # pi, rounds down
        (0x3F808000, 0x3F80),  # tie, even stays
        (0x3F818000, 0x3F82),  # tie, odd rounds up to even
        (0x3F808001, 0x3F81),  # above the tie
        (0x3F807FFF, 0x3F80),  # below the tie
        (0x00000000, 0x0000),  # +0
        (0x80000000, 0x8000),  # -0
        (0x7F800000, 0x7F80),  # +inf
        (0xFF800000, 0xFF80),  # -inf
        (0x7F7FFFFF, 0x7F80),  # max float rounds to inf
        (0x7FC00000, 0x7FC0),  # quiet NaN
        (0x7F800001, 0x7FC0),  # signalling NaN stays NaN
        (0x00000001, 0x0000),  # smallest subnormal rounds to 0
    ],
    ids=[
        "one",
        "minus-one",
        "pi",
        "tie-even",
        "tie-odd",
        "above-tie",
        "below-tie",
        "zero",
        "minus-zero",
        "inf",
        "minus-inf",
        "max-to-inf",
        "nan",
        "snan",
        "subnormal",
    ],
)
def test_bf16_from_float32_rounds_to_nearest_even(f32_bits, bf16):
    assert _bf16_bits([f32_bits]) == [bf16]


def test_bf16_from_float64_and_raw_bits():
    assert (
        _raw(oip.InferInput("X", np.array([1.0, -2.0], np.float64), datatype="BF16"))
        == b"\x80\x3f\x00\xc0"
    )
    bits = np.array([0x3F80, 0x1234], dtype=np.uint16)
    assert _raw(oip.InferInput("X", bits, datatype="BF16")) == b"\x80\x3f\x34\x12"


def test_bf16_keeps_shape():
    data = np.ones((2, 3), dtype=np.float32)
    tensor = oip.InferInput("X", data, datatype="BF16")
    assert tensor.shape == (2, 3)
    assert _raw(tensor) == b"\x80\x3f" * 6


@pytest.mark.parametrize(
    "data, datatype, expected",
    [
        (
            np.array([1.0, -2.0, 65504.0, 0.5], np.float16),
            oip.DataType.FP16,
            struct.pack("<4H", 0x3C00, 0xC000, 0x7BFF, 0x3800),
        ),
        (np.array([True, False, True]), oip.DataType.BOOL, b"\x01\x00\x01"),
        (
            np.array([2**64 - 1, 2**63, 0, 1], np.uint64),
            oip.DataType.UINT64,
            struct.pack("<4Q", 2**64 - 1, 2**63, 0, 1),
        ),
        (
            np.array([-(2**63), 2**63 - 1], np.int64),
            oip.DataType.INT64,
            struct.pack("<2q", -(2**63), 2**63 - 1),
        ),
        (np.array([1, 2], ">i4"), oip.DataType.INT32, struct.pack("<2i", 1, 2)),
        (
            np.array([65535, 1], np.uint16),
            oip.DataType.UINT16,
            struct.pack("<2H", 65535, 1),
        ),
        (
            np.array([1.5, -0.25], np.float32),
            oip.DataType.FP32,
            struct.pack("<2f", 1.5, -0.25),
        ),
        (np.array([1e300], np.float64), oip.DataType.FP64, struct.pack("<d", 1e300)),
        (np.array([-128, 127], np.int8), oip.DataType.INT8, b"\x80\x7f"),
        (np.array([255, 0], np.uint8), oip.DataType.UINT8, b"\xff\x00"),
        (np.array([-1], np.int16), oip.DataType.INT16, b"\xff\xff"),
        (
            np.array([4000000000], np.uint32),
            oip.DataType.UINT32,
            struct.pack("<I", 4000000000),
        ),
    ],
    ids=[
        "fp16",
        "bool",
        "uint64-large",
        "int64-extremes",
        "int32-big-endian",
        "uint16",
        "fp32",
        "fp64",
        "int8",
        "uint8",
        "int16",
        "uint32",
    ],
)
def test_fixed_size_encoding(data, datatype, expected):
    tensor = oip.InferInput("X", data)
    assert tensor.datatype is datatype
    assert tensor.shape == data.shape
    assert _raw(tensor) == expected
    assert len(expected) == data.size * datatype.item_size


def test_uint64_large_from_python_list():
    tensor = oip.InferInput("X", [2**64 - 1, 2**63 + 5], datatype="UINT64")
    assert _raw(tensor) == struct.pack("<2Q", 2**64 - 1, 2**63 + 5)


def _response(datatype, shape, name="Y"):
    response = pb.ModelInferResponse(model_name="m", model_version="1", id="r")
    response.outputs.add(name=name, datatype=datatype, shape=shape)
    return response


@pytest.mark.parametrize(
    "datatype, shape, raw, expected",
    [
        (
            "BF16",
            [3],
            struct.pack("<3H", 0x3F80, 0xC040, 0x7F80),
            [1.0, -3.0, math.inf],
        ),
        ("FP16", [2], struct.pack("<2H", 0x3C00, 0xC000), [1.0, -2.0]),
        ("BOOL", [3], b"\x00\x01\x01", [False, True, True]),
        ("UINT64", [1], struct.pack("<Q", 2**64 - 1), [2**64 - 1]),
        ("BYTES", [2], b"\x01\x00\x00\x00a\x00\x00\x00\x00", [b"a", b""]),
    ],
    ids=["bf16", "fp16", "bool", "uint64", "bytes"],
)
def test_decoding_raw_outputs(datatype, shape, raw, expected):
    result = oip.InferResult(_response(datatype, shape), [memoryview(raw)])
    assert result["Y"].tolist() == expected
    if datatype == "BF16":
        assert result["Y"].dtype == np.float32


def test_decoding_typed_contents():
    response = _response("INT32", [2, 2])
    response.outputs[0].contents.int_contents.extend([1, -2, 3, -4])
    result = oip.InferResult(response)
    assert result["Y"].tolist() == [[1, -2], [3, -4]]
    assert result["Y"].dtype == np.int32


@pytest.mark.parametrize(
    "datatype, shape, raw, message",
    [
        ("INT32", [2], b"\x00" * 7, "7 bytes"),
        ("BYTES", [2], b"\x01\x00\x00\x00a", "malformed BYTES"),
        ("BYTES", [1], b"\x05\x00\x00\x00ab", "malformed BYTES"),
        ("INT33", [1], b"\x00" * 4, "INT33"),
    ],
    ids=["short-int32", "missing-bytes-element", "bytes-overrun", "unknown-datatype"],
)
def test_decoding_malformed_outputs(datatype, shape, raw, message):
    result = oip.InferResult(_response(datatype, shape), [memoryview(raw)])
    with pytest.raises(oip.InvalidInputError, match=message) as caught:
        result["Y"]
    assert "'Y'" in caught.value.message


@pytest.mark.parametrize(
    "data, datatype, expected",
    [
        ([1, 2, 3], "INT32", np.array([1, 2, 3], np.int32)),
        ([1, 2], "FP32", np.array([1.0, 2.0], np.float32)),
        ([True, False], "BOOL", np.array([True, False])),
        ([0.5, float("nan")], "FP16", np.array([0.5, np.nan], np.float16)),
    ],
    ids=["int-to-INT32", "int-to-FP32", "bool", "nan-kept"],
)
def test_python_lists_convert_when_exact(data, datatype, expected):
    tensor = oip.InferInput("X", data, datatype=datatype)

    decoded = np.frombuffer(tensor.raw, dtype=expected.dtype)
    assert np.array_equal(decoded, expected, equal_nan=expected.dtype.kind == "f")


@pytest.mark.parametrize(
    "data, datatype, fragment",
    [
        ([1.5, 2.0], "INT32", "element 0 (1.5)"),
        ([1, 70000], "INT16", "element 1 (70000)"),
        ([1e10], "FP16", "element 0"),
        (["a"], "INT32", "'X'"),
    ],
    ids=["float-to-int", "int16-overflow", "fp16-overflow", "text-to-int"],
)
def test_python_lists_refused_when_values_change(data, datatype, fragment):
    with pytest.raises(oip.InvalidInputError) as caught:
        oip.InferInput("X", data, datatype=datatype)

    assert fragment in str(caught.value)


def test_large_fp32_round_trip_is_exact(client):
    tensor = (
        np.random.default_rng(7).standard_normal(4 * 1024 * 1024).astype(np.float32)
    )

    result = client.infer("identity_fp32", {"INPUT0": tensor})

    assert result["OUTPUT0"].dtype == np.float32
    assert np.array_equal(result["OUTPUT0"], tensor)
    assert not result["OUTPUT0"].flags.writeable


@pytest.mark.parametrize(
    "datatype, field, values, dtype",
    [
        ("BOOL", "bool_contents", [True, False], np.bool_),
        ("INT8", "int_contents", [-128, 127], np.int8),
        ("INT16", "int_contents", [-300, 300], np.int16),
        ("INT64", "int64_contents", [-(2**40), 2**40], np.int64),
        ("UINT8", "uint_contents", [0, 255], np.uint8),
        ("UINT16", "uint_contents", [0, 65535], np.uint16),
        ("UINT32", "uint_contents", [0, 2**32 - 1], np.uint32),
        ("UINT64", "uint64_contents", [0, 2**64 - 1], np.uint64),
        ("FP32", "fp32_contents", [0.5, -1.25], np.float32),
        ("FP64", "fp64_contents", [1e300, -2.5], np.float64),
        ("BYTES", "bytes_contents", [b"a", b"\x00b"], np.object_),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_decoding_typed_contents_of_every_datatype(datatype, field, values, dtype):
    response = _response(datatype, [2])
    getattr(response.outputs[0].contents, field).extend(values)

    array = oip.InferResult(response)["Y"]

    assert array.dtype == dtype
    assert array.tolist() == values


@pytest.mark.parametrize("datatype", ["FP16", "BF16"], ids=str)
def test_typed_contents_cannot_carry_half_floats(datatype):
    result = oip.InferResult(_response(datatype, [1]))

    with pytest.raises(oip.InvalidInputError, match=datatype):
        result["Y"]
