"""ModelInfer on every model that is not decoupled, raw and typed."""

import itertools

import grpc
import numpy as np
import pytest

from tests.server.helpers import (
    DEADLINE,
    assert_simple_answer,
    infer_request,
    output,
    repeat_request,
    rpc_error,
    set_sequence,
    simple_inputs,
    simple_request,
)
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401


def _wrap8(value):
    return (value + 128) % 256 - 128


def _objects(items, shape):
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    return array.reshape(shape)


def _simple(batch):
    a, b = simple_inputs(batch)
    inputs = {"INPUT0": ("INT32", a), "INPUT1": ("INT32", b)}
    return inputs, {"OUTPUT0": ("INT32", a + b), "OUTPUT1": ("INT32", a - b)}


def _simple_int8(batch):
    count = batch * 16
    a = [_wrap8(i * 37) for i in range(count)]
    b = [_wrap8(i * 11 + 100) for i in range(count)]
    shape = (batch, 16)

    def array(values):
        return np.array(values, dtype=np.int8).reshape(shape)

    inputs = {"INPUT0": ("INT8", array(a)), "INPUT1": ("INT8", array(b))}
    sums = [_wrap8(x + y) for x, y in zip(a, b)]
    diffs = [_wrap8(x - y) for x, y in zip(a, b)]
    return inputs, {"OUTPUT0": ("INT8", array(sums)), "OUTPUT1": ("INT8", array(diffs))}


def _simple_string(batch):
    a = [(i - 40) * 7919 for i in range(batch * 16)]
    b = [(i % 9) * 10**12 - 3 for i in range(batch * 16)]
    shape = (batch, 16)

    def text(values):
        return _objects([str(v).encode() for v in values], shape)

    inputs = {"INPUT0": ("BYTES", text(a)), "INPUT1": ("BYTES", text(b))}
    sums = text(x + y for x, y in zip(a, b))
    diffs = text(x - y for x, y in zip(a, b))
    return inputs, {"OUTPUT0": ("BYTES", sums), "OUTPUT1": ("BYTES", diffs)}


def _simple_identity(batch):
    pool = [b"", b"a", b"\x00\xff\x00", "gr\u00fc\u00df".encode(), b"x" * 300]
    items = [pool[i % len(pool)] + bytes([i]) * (i % 2) for i in range(batch * 3)]
    array = _objects(items, (batch, 3))
    return {"INPUT0": ("BYTES", array)}, {"OUTPUT0": ("BYTES", array)}


def _simple_sequence(batch):
    array = np.array([[41]] * batch, dtype=np.int32)
    return {"INPUT": ("INT32", array)}, {"OUTPUT": ("INT32", array + 1)}


CASES = {
    "simple": _simple,
    "simple_int8": _simple_int8,
    "simple_string": _simple_string,
    "simple_identity": _simple_identity,
    "simple_sequence": _simple_sequence,
}
MATRIX = [
    (model, batch, typed)
    for model, batch, typed in itertools.product(CASES, [1, 8], [False, True])
    if not (model == "simple_sequence" and batch > 1)  # sequences take batch 1
]


def _matrix_id(case):
    model, batch, typed = case
    return f"{model}-b{batch}-{'typed' if typed else 'raw'}"


def _assert_outputs(response, expected):
    assert [t.name for t in response.outputs] == list(expected)
    for tensor in response.outputs:
        datatype, array = expected[tensor.name]
        assert (tensor.datatype, list(tensor.shape)) == (datatype, list(array.shape))
        np.testing.assert_array_equal(output(response, tensor.name), array)


@pytest.mark.parametrize("case", MATRIX, ids=[_matrix_id(c) for c in MATRIX])
def test_infer(grpc_stub, case):
    model, batch, typed = case
    inputs, expected = CASES[model](batch)
    request = infer_request(model, inputs, typed=typed)
    if model == "simple_sequence":
        set_sequence(request, 7000 + typed, start=True, end=True)

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    assert (response.model_name, response.model_version) == (model, "1")
    _assert_outputs(response, expected)


def test_simple_int8_wraps(grpc_stub):
    a = np.array([127, -128, 127, 100] + [0] * 12, dtype=np.int8).reshape(1, 16)
    b = np.array([1, 1, -128, 100] + [0] * 12, dtype=np.int8).reshape(1, 16)
    inputs = {"INPUT0": ("INT8", a), "INPUT1": ("INT8", b)}

    response = grpc_stub.ModelInfer(
        infer_request("simple_int8", inputs), timeout=DEADLINE
    )

    assert output(response, "OUTPUT0")[0, :4].tolist() == [-128, -127, -1, -56]
    assert output(response, "OUTPUT1")[0, :4].tolist() == [126, 127, -1, 0]


STRING_CASES = [
    ("negative", 3, 10),
    ("minus_one", 127, 128),
    ("negatives", -(10**6), -5),
    ("int64_overflow", 2**63 - 1, -(2**63)),
    ("thirty_digits", 10**30, 10**30 - 1),
    ("thousand_digits", int("9" * 1000), -int("9" * 999)),
    ("four_thousand_digits", int("9" * 4000), int("9" * 4000)),
]


@pytest.mark.parametrize(
    "a, b", [case[1:] for case in STRING_CASES], ids=[c[0] for c in STRING_CASES]
)
def test_simple_string_exact(grpc_stub, a, b):
    column = [str(a).encode()] + [b"0"] * 15
    other = [str(b).encode()] + [b"0"] * 15
    inputs = {
        "INPUT0": ("BYTES", _objects(column, (1, 16))),
        "INPUT1": ("BYTES", _objects(other, (1, 16))),
    }

    response = grpc_stub.ModelInfer(
        infer_request("simple_string", inputs), timeout=DEADLINE
    )

    assert output(response, "OUTPUT0")[0, 0] == str(a + b).encode()
    assert output(response, "OUTPUT1")[0, 0] == str(a - b).encode()
    assert output(response, "OUTPUT1")[0, 1:].tolist() == [b"0"] * 15


IDENTITY_CASES = [
    ("zero_elements", []),
    ("empty_strings", [b"", b"", b""]),
    ("all_byte_values", [bytes(range(256)), bytes(range(255, -1, -1))]),
    ("nul_and_length_like", [b"\x00\x00\x00\x00", b"\x05\x00\x00\x00abc"]),
    ("one_long", [b"z" * 100_000]),
]


@pytest.mark.parametrize("typed", [False, True], ids=["raw", "typed"])
@pytest.mark.parametrize(
    "items", [c[1] for c in IDENTITY_CASES], ids=[c[0] for c in IDENTITY_CASES]
)
def test_identity_round_trip(grpc_stub, items, typed):
    array = _objects(items, (1, len(items)))
    inputs = {"INPUT0": ("BYTES", array)}

    response = grpc_stub.ModelInfer(
        infer_request("simple_identity", inputs, typed=typed), timeout=DEADLINE
    )

    assert list(response.outputs[0].shape) == [1, len(items)]
    assert output(response, "OUTPUT0").reshape(-1).tolist() == items


SUBSETS = [[], ["OUTPUT0"], ["OUTPUT1"], ["OUTPUT0", "OUTPUT1"], ["OUTPUT1", "OUTPUT0"]]


@pytest.mark.parametrize("names", SUBSETS, ids=lambda n: "+".join(n) or "all")
def test_requested_outputs(grpc_stub, names):
    a, b = simple_inputs(2)
    want = {"OUTPUT0": a + b, "OUTPUT1": a - b}

    response = grpc_stub.ModelInfer(
        simple_request(batch=2, outputs=names), timeout=DEADLINE
    )

    returned = sorted(t.name for t in response.outputs)
    assert returned == sorted(names or want)
    assert len(response.raw_output_contents) == len(returned)
    for name in returned:
        np.testing.assert_array_equal(output(response, name), want[name])


@pytest.mark.parametrize("request_id", ["", "req-42", "\u00e9t\u00e9 #7"], ids=repr)
def test_request_id_echoed(grpc_stub, request_id):
    request = simple_request(id=request_id)

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    assert response.id == request_id
    assert_simple_answer(response)


def test_explicit_version(grpc_stub):
    request = simple_request(batch=3, model_version="1")

    response = grpc_stub.ModelInfer(request, timeout=DEADLINE)

    assert response.model_version == "1"
    assert_simple_answer(response, batch=3)


def test_decoupled_model_refused(grpc_stub):
    request = repeat_request([1, 2])

    error = rpc_error(grpc_stub.ModelInfer, request)

    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "repeat_int32" in error.details()
    assert "ModelStreamInfer" in error.details()
