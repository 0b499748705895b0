"""Malformed and invalid ModelInfer requests: refused with a reason, no crash.

Every refusal must name the model and the tensor at fault and say what was
expected. The last tests check the same server process still answers.
"""

import struct
import time
from collections import namedtuple

import grpc
import pytest

from oip.protocol import grpc_service_pb2 as pb
from tests.server.helpers import (
    DEADLINE,
    assert_simple_answer,
    rpc_error,
    simple_request,
)
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND

T = namedtuple("T", "name datatype shape data")
I0 = T("INPUT0", "INT32", [1, 16], bytes(64))
I1 = T("INPUT1", "INT32", [1, 16], bytes(64))


def _raw(*tensors, model="simple", outputs=(), **fields):
    request = pb.ModelInferRequest(model_name=model, **fields)
    for name, datatype, shape, data in tensors:
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        if data is not None:
            request.raw_input_contents.append(data)
    for name in outputs:
        request.outputs.add(name=name)
    return request


def _typed(*tensors, model="simple"):
    """Tensors whose `data` is a dict of InferTensorContents fields."""
    request = pb.ModelInferRequest(model_name=model)
    for name, datatype, shape, contents in tensors:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
        tensor.contents.CopyFrom(pb.InferTensorContents(**contents))
    return request


def _bytes(*items):
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _identity(shape, data):
    return _raw(T("INPUT0", "BYTES", shape, data), model="simple_identity")


def _string(element, at="INPUT1"):
    column = _bytes(*[element] + [b"1"] * 15)
    ones = _bytes(*[b"1"] * 16)
    inputs = {"INPUT0": ones, "INPUT1": ones, at: column}
    tensors = [T(name, "BYTES", [1, 16], data) for name, data in inputs.items()]
    return _raw(*tensors, model="simple_string")


def _int8(value):
    contents = {"int_contents": [value] + [0] * 15}
    zeros = {"int_contents": [0] * 16}
    return _typed(
        T("INPUT0", "INT8", [1, 16], contents),
        T("INPUT1", "INT8", [1, 16], zeros),
        model="simple_int8",
    )


def _ints(count):
    return {"int_contents": list(range(count))}


def _extra_raw():
    request = _raw(I0, I1)
    request.raw_input_contents.append(bytes(64))
    return request


def _both():
    request = _raw(I0, I1)
    request.inputs[0].contents.int_contents.extend(range(16))
    return request


NINES = b"9" * 4300

CASES = [
    # (id, request, code, fragments of the message besides the model's name)
    (
        "unknown_model",
        _raw(I0, I1, model="absent"),
        NOT_FOUND,
        ["Request for unknown model: 'absent' is not found"],
    ),
    ("version_word", _raw(I0, I1, model_version="latest"), INVALID, ["latest"]),
    ("version_superscript", _raw(I0, I1, model_version="\u00b2"), INVALID, ["\u00b2"]),
    ("version_unknown", _raw(I0, I1, model_version="3"), NOT_FOUND, ["3"]),
    ("version_huge", _raw(I0, I1, model_version="9" * 5000), NOT_FOUND, ["999"]),
    ("missing_input", _raw(I0), INVALID, ["INPUT1", "missing"]),
    ("no_inputs", _raw(), INVALID, ["INPUT0", "INPUT1"]),
    (
        "extra_input",
        _raw(I0, I1, I0._replace(name="INPUT2")),
        INVALID,
        ["'INPUT2'", "INPUT0", "INPUT1"],
    ),
    ("duplicated_input", _raw(I0, I0, I1), INVALID, ["'INPUT0'", "more than once"]),
    (
        "wrong_datatype",
        _raw(I0._replace(datatype="FP32"), I1),
        INVALID,
        ["'INPUT0'", "FP32", "INT32"],
    ),
    (
        "lowercase_datatype",
        _raw(I0, I1._replace(datatype="int32")),
        INVALID,
        ["'INPUT1'", "int32", "INT32"],
    ),
    (
        "empty_datatype",
        _raw(I0._replace(datatype=""), I1),
        INVALID,
        ["'INPUT0'", "INT32"],
    ),
    (
        "fp16_datatype",
        _raw(I0._replace(datatype="FP16", data=bytes(32)), I1),
        INVALID,
        ["'INPUT0'", "FP16", "INT32"],
    ),
    (
        "rank_1",
        _raw(I0._replace(shape=[16]), I1),
        INVALID,
        ["'INPUT0'", "rank 1", "[-1,16]"],
    ),
    (
        "rank_3",
        _raw(I0, I1._replace(shape=[1, 16, 1])),
        INVALID,
        ["'INPUT1'", "rank 3", "[-1,16]"],
    ),
    (
        "rank_0",
        _raw(I0._replace(shape=[], data=bytes(4)), I1),
        INVALID,
        ["'INPUT0'", "rank 0"],
    ),
    (
        "wrong_dim",
        _raw(I0._replace(shape=[1, 15], data=bytes(60)), I1),
        INVALID,
        ["'INPUT0'", "[1,15]", "[-1,16]"],
    ),
    (
        "batch_0",
        _raw(I0._replace(shape=[0, 16], data=b""), I1),
        INVALID,
        ["'INPUT0'", "batch size 0", "1 to 8"],
    ),
    (
        "batch_9",
        _raw(I0._replace(shape=[9, 16], data=bytes(576)), I1),
        INVALID,
        ["'INPUT0'", "batch size 9", "1 to 8"],
    ),
    (
        "batch_mismatch",
        _raw(I0._replace(shape=[2, 16], data=bytes(128)), I1),
        INVALID,
        ["'INPUT1'", "batch size 1", "2"],
    ),
    (
        "batch_mismatch_3_2",
        _raw(
            I0._replace(shape=[3, 16], data=bytes(192)),
            I1._replace(shape=[2, 16], data=bytes(128)),
        ),
        INVALID,
        ["'INPUT1'", "batch size 2", "3"],
    ),
    (
        "negative_dim",
        _raw(I0._replace(shape=[1, -16]), I1),
        INVALID,
        ["'INPUT0'", "negative", "-16"],
    ),
    (
        "negative_batch",
        _raw(I0, I1._replace(shape=[-1, 16])),
        INVALID,
        ["'INPUT1'", "negative", "-1"],
    ),
    (
        "absurd_dim",
        _raw(I0._replace(shape=[1, 2**40]), I1),
        INVALID,
        ["'INPUT0'", "[-1,16]"],
    ),
    (
        "absurd_elements",
        _identity([1, 2**40], b""),
        INVALID,
        ["'INPUT0'", str(2**40), "elements"],
    ),
    ("absurd_product", _identity([8, 2**62], b""), INVALID, ["'INPUT0'", "elements"]),
    (
        "bytes_at_element_limit",
        _identity([1, 2**30], _bytes(b"")),
        INVALID,
        ["'INPUT0'", "BYTES"],
    ),
    (
        "raw_too_small",
        _raw(I0._replace(data=bytes(60)), I1),
        INVALID,
        ["'INPUT0'", "60 bytes", "64"],
    ),
    (
        "raw_too_large",
        _raw(I0, I1._replace(data=bytes(68))),
        INVALID,
        ["'INPUT1'", "68 bytes", "64"],
    ),
    (
        "raw_empty",
        _raw(I0._replace(data=b""), I1),
        INVALID,
        ["'INPUT0'", "0 bytes", "64"],
    ),
    (
        "raw_count_short",
        _raw(I0, I1._replace(data=None)),
        INVALID,
        ["2 inputs", "1 raw_input_contents"],
    ),
    ("raw_count_long", _extra_raw(), INVALID, ["2 inputs", "3 raw_input_contents"]),
    ("raw_and_typed", _both(), INVALID, ["'INPUT0'", "both"]),
    (
        "neither",
        _typed(I0._replace(data={}), I1._replace(data=_ints(16))),
        INVALID,
        ["'INPUT0'", "no data"],
    ),
    (
        "typed_wrong_field",
        _typed(
            I0._replace(data={"fp32_contents": [1.0] * 16}), I1._replace(data=_ints(16))
        ),
        INVALID,
        ["'INPUT0'", "int_contents", "fp32_contents"],
    ),
    (
        "typed_two_fields",
        _typed(
            I0._replace(data=dict(_ints(16), int64_contents=[1] * 16)),
            I1._replace(data=_ints(16)),
        ),
        INVALID,
        ["'INPUT0'", "int64_contents"],
    ),
    (
        "typed_count_short",
        _typed(I0._replace(data=_ints(16)), I1._replace(data=_ints(15))),
        INVALID,
        ["'INPUT1'", "15", "16"],
    ),
    (
        "typed_count_long",
        _typed(I0._replace(data=_ints(17)), I1._replace(data=_ints(16))),
        INVALID,
        ["'INPUT0'", "17", "16"],
    ),
    ("int8_above_range", _int8(128), INVALID, ["'INPUT0'", "INT8", "127"]),
    ("int8_below_range", _int8(-129), INVALID, ["'INPUT0'", "INT8", "-128"]),
    (
        "bytes_past_end",
        _identity([1, 1], struct.pack("<I", 10) + b"abc"),
        INVALID,
        ["'INPUT0'", "BYTES", "10"],
    ),
    (
        "bytes_huge_length",
        _identity([1, 1], b"\xff\xff\xff\xff"),
        INVALID,
        ["'INPUT0'", "BYTES", str(2**32 - 1)],
    ),
    (
        "bytes_left_over",
        _identity([1, 1], _bytes(b"a") + b"zz"),
        INVALID,
        ["'INPUT0'", "BYTES", "2 bytes"],
    ),
    (
        "bytes_truncated_length",
        _identity([1, 2], _bytes(b"abcde") + b"\x01\x00"),
        INVALID,
        ["'INPUT0'", "BYTES", "element 1"],
    ),
    (
        "bytes_missing_element",
        _identity([1, 3], _bytes(b"aaaa", b"b")),
        INVALID,
        ["'INPUT0'", "BYTES", "element 2"],
    ),
    (
        "bytes_too_short_for_lengths",
        _identity([1, 3], _bytes(b"a")),
        INVALID,
        ["'INPUT0'", "BYTES", "3 elements"],
    ),
    ("string_word", _string(b"abc"), INVALID, ["'INPUT1'", "abc", "decimal"]),
    ("string_fraction", _string(b"1.5"), INVALID, ["'INPUT1'", "1.5", "decimal"]),
    (
        "string_hex",
        _string(b"0x10", at="INPUT0"),
        INVALID,
        ["'INPUT0'", "0x10", "decimal"],
    ),
    ("string_empty", _string(b""), INVALID, ["'INPUT1'", "decimal"]),
    ("string_binary", _string(b"\xff\xfe"), INVALID, ["'INPUT1'", "decimal"]),
    ("string_too_long", _string(NINES, at="INPUT0"), INVALID, ["'INPUT0'"]),
    (
        "unknown_output",
        _raw(I0, I1, outputs=["OUTPUT9"]),
        INVALID,
        ["'OUTPUT9'", "OUTPUT0", "OUTPUT1"],
    ),
    ("empty_output_name", _raw(I0, I1, outputs=[""]), INVALID, ["''"]),
    (
        "duplicated_output",
        _raw(I0, I1, outputs=["OUTPUT1", "OUTPUT1"]),
        INVALID,
        ["'OUTPUT1'", "more than once"],
    ),
]


@pytest.mark.parametrize(
    "request_, code, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused(grpc_stub, request_, code, fragments):
    error = rpc_error(grpc_stub.ModelInfer, request_)

    assert error.code() == code, error.details()
    assert f"'{request_.model_name}'" in error.details()
    for fragment in fragments:
        assert fragment in error.details()


@pytest.mark.parametrize(
    "shape", [[1, 2**30], [8, 2**27], [1, 2**40], [8, 2**60]], ids=str
)
def test_absurd_shape_refused_fast(grpc_stub, shape):
    request = _identity(shape, _bytes(b"x"))
    started = time.monotonic()

    error = rpc_error(grpc_stub.ModelInfer, request)

    assert error.code() == INVALID
    assert time.monotonic() - started < 2.0


GARBAGE = [
    ("text", b"this is not a protobuf at all"),
    ("truncated_field", b"\x0a\xff\xff\xff\xff\x0f"),
    ("bad_wire_type", b"\x0f\x00\x01"),
    ("bad_utf8_name", b"\x0a\x02\xff\xfe"),
]


@pytest.mark.parametrize(
    "method, message",
    [("ModelInfer", "ModelInferRequest"), ("ModelMetadata", "ModelMetadataRequest")],
    ids=["ModelInfer", "ModelMetadata"],
)
@pytest.mark.parametrize(
    "payload", [g[1] for g in GARBAGE], ids=[g[0] for g in GARBAGE]
)
def test_not_a_protobuf(channel, method, message, payload):
    call = channel.unary_unary(
        f"/inference.GRPCInferenceService/{method}",
        request_serializer=None,
        response_deserializer=None,
    )

    error = rpc_error(call, payload)

    assert error.code() == INVALID
    assert message in error.details()


def test_many_bad_requests_then_good(grpc_stub):
    bad = [case[1] for case in CASES] * 4
    futures = [grpc_stub.ModelInfer.future(r, timeout=DEADLINE) for r in bad[:200]]

    errors = [future.exception() for future in futures]
    response = grpc_stub.ModelInfer(simple_request(batch=8), timeout=DEADLINE)

    assert None not in errors, "a bad request was answered"
    assert {error.code() for error in errors} == {INVALID, NOT_FOUND}
    assert_simple_answer(response, batch=8)


def test_server_survived_every_case(grpc_stub, server):
    response = grpc_stub.ModelInfer(simple_request(batch=2), timeout=DEADLINE)

    assert_simple_answer(response, batch=2)
    assert server.returncode is None
