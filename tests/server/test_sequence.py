"""simple_sequence: correlation ids, START/END flags, idle expiry, Triton's words.

The server lives for the whole module, so every test uses its own ids.
"""

import time

import grpc
import pytest

from tests.server.helpers import DEADLINE, output, rpc_error, sequence_request
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

MODEL = "simple_sequence"
NO_ID = (
    f"inference request to model '{MODEL}' must specify a non-zero or "
    "non-empty correlation ID"
)
BATCH = (
    f"inference request to model '{MODEL}' must specify batch-size 1 due to "
    "requirements of sequence batcher"
)


def _no_start(sequence_id):
    return (
        f"inference request for sequence {sequence_id} to model '{MODEL}' must "
        "specify the START flag on the first request of the sequence"
    )


def _infer(stub, value, sequence_id, start=False, end=False):
    request = sequence_request(value, sequence_id, start=start, end=end)
    response = stub.ModelInfer(request, timeout=DEADLINE)
    return output(response, "OUTPUT").tolist()


def _refusal(stub, value, sequence_id, **flags):
    error = rpc_error(stub.ModelInfer, sequence_request(value, sequence_id, **flags))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    return error.details()


@pytest.mark.parametrize(
    "sequence_id", [101, "seq-101", ("u", 2**64 - 5)], ids=["int", "str", "uint64"]
)
def test_sequence_flow(grpc_stub, sequence_id):
    outputs = [
        _infer(grpc_stub, 5, sequence_id, start=True),
        _infer(grpc_stub, 7, sequence_id),
        _infer(grpc_stub, 9, sequence_id, end=True),
    ]

    details = _refusal(grpc_stub, 1, sequence_id)

    assert outputs == [[[6]], [[7]], [[9]]]
    assert "START flag" in details


@pytest.mark.parametrize(
    "sequence_id", [None, 0, "", ("u", 0)], ids=["none", "zero", "empty", "uint0"]
)
def test_missing_correlation_id(grpc_stub, sequence_id):
    details = _refusal(grpc_stub, 1, sequence_id, start=True)

    assert details == NO_ID


def test_first_request_without_start(grpc_stub):
    details = _refusal(grpc_stub, 1, 4242)

    assert details == _no_start(4242)


@pytest.mark.parametrize("batch", [2, 8], ids=str)
def test_batch_above_one(grpc_stub, batch):
    request = sequence_request(1, 4300 + batch, start=True, batch=batch)

    error = rpc_error(grpc_stub.ModelInfer, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == BATCH


def test_start_and_end_in_one_request(grpc_stub):
    first = _infer(grpc_stub, 10, 4400, start=True, end=True)

    details = _refusal(grpc_stub, 3, 4400)

    assert first == [[11]]
    assert details == _no_start(4400)


def test_end_then_request_without_start(grpc_stub):
    _infer(grpc_stub, 1, 4500, start=True)
    _infer(grpc_stub, 2, 4500, end=True)

    details = _refusal(grpc_stub, 3, 4500)

    assert details == _no_start(4500)


def test_new_start_restarts(grpc_stub):
    outputs = [
        _infer(grpc_stub, 1, 4600, start=True),
        _infer(grpc_stub, 10, 4600),
        _infer(grpc_stub, 100, 4600, start=True),
        _infer(grpc_stub, 5, 4600),
    ]

    assert outputs == [[[2]], [[10]], [[101]], [[5]]]


def test_string_and_int_ids_are_distinct(grpc_stub):
    _infer(grpc_stub, 1, 4245, start=True)

    refused = _refusal(grpc_stub, 1, "4245")
    started = _infer(grpc_stub, 20, "4245", start=True)
    _infer(grpc_stub, 2, 4245, end=True)
    continued = _infer(grpc_stub, 30, "4245")

    assert "4245" in refused and "START flag" in refused
    assert (started, continued) == ([[21]], [[30]])


def test_idle_sequence_expires(grpc_stub):
    _infer(grpc_stub, 1, 4700, start=True)
    time.sleep(1.2)

    details = _refusal(grpc_stub, 2, 4700)

    assert details == _no_start(4700)


def test_idle_counts_from_last_request(grpc_stub):
    _infer(grpc_stub, 1, 4800, start=True)
    time.sleep(0.6)
    _infer(grpc_stub, 2, 4800)
    time.sleep(0.6)

    assert _infer(grpc_stub, 3, 4800) == [[3]]


def test_refused_start_opens_nothing(grpc_stub):
    bad = sequence_request(1, 4900, start=True)
    bad.inputs[0].datatype = "INT8"
    rpc_error(grpc_stub.ModelInfer, bad)

    details = _refusal(grpc_stub, 1, 4900)

    assert details == _no_start(4900)


def test_interleaved_sequences(grpc_stub):
    _infer(grpc_stub, 1, 5100, start=True)
    _infer(grpc_stub, 1, 5101, start=True)

    outputs = [_infer(grpc_stub, v, 5100 + v % 2) for v in range(2, 8)]

    assert outputs == [[[v]] for v in range(2, 8)]


def test_sequence_over_stream(grpc_stub):
    requests = [
        sequence_request(1, 5000, start=True),
        sequence_request(2, 5000),
        sequence_request(9, 5001),
        sequence_request(3, 5000, end=True),
        sequence_request(4, 5000),
    ]

    responses = list(grpc_stub.ModelStreamInfer(iter(requests), timeout=DEADLINE))

    assert [r.error_message for r in responses] == [
        "",
        "",
        _no_start(5001),
        "",
        _no_start(5000),
    ]
    answered = [responses[i].infer_response for i in (0, 1, 3)]
    assert [output(r, "OUTPUT").tolist() for r in answered] == [[[2]], [[2]], [[3]]]
