"""ModelStreamInfer: ordered responses, decoupled repeat_int32, errors, cancels."""

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from oip.protocol import grpc_service_pb2 as pb
from tests.server.helpers import (
    DEADLINE,
    assert_simple_answer,
    output,
    repeat_request,
    simple_request,
)
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

FINAL = "triton_final_response"


def _stream(stub, requests):
    return list(stub.ModelStreamInfer(iter(requests), timeout=DEADLINE))


def _repeated(response):
    """(OUT, IDX) of one repeat_int32 response, after checking its tensors."""
    tensors = [(t.name, t.datatype, list(t.shape)) for t in response.outputs]
    assert tensors == [("OUT", "INT32", [1]), ("IDX", "UINT32", [1])]
    return int(output(response, "OUT")[0]), int(output(response, "IDX")[0])


def _final_flag(response):
    assert FINAL in response.parameters, "no triton_final_response parameter"
    return response.parameters[FINAL].bool_param


def test_simple_requests_answered_in_order(grpc_stub):
    requests = [simple_request(batch=b, id=f"r{b}") for b in range(1, 6)]

    responses = _stream(grpc_stub, requests)

    assert [r.infer_response.id for r in responses] == [f"r{b}" for b in range(1, 6)]
    for batch, response in enumerate(responses, start=1):
        assert not response.error_message
        assert_simple_answer(response.infer_response, batch=batch)


@pytest.mark.parametrize("final", [None, False], ids=["unset", "false"])
def test_repeat_one_response_per_element(grpc_stub, final):
    values = [5, -3, 2**31 - 1, 0, -(2**31)]

    responses = _stream(grpc_stub, [repeat_request(values, final=final, id="rep")])

    assert [_repeated(r.infer_response) for r in responses] == [
        (value, index) for index, value in enumerate(values)
    ]
    assert all(r.infer_response.id == "rep" for r in responses)
    assert all(FINAL not in r.infer_response.parameters for r in responses)


def test_repeat_empty_final_response(grpc_stub):
    values = [7, 8, 9]

    responses = [
        r.infer_response
        for r in _stream(grpc_stub, [repeat_request(values, final=True, id="fin")])
    ]

    assert len(responses) == len(values) + 1
    assert [_repeated(r) for r in responses[:-1]] == [(7, 0), (8, 1), (9, 2)]
    assert [_final_flag(r) for r in responses] == [False, False, False, True]
    last = responses[-1]
    assert (list(last.outputs), list(last.raw_output_contents)) == ([], [])
    assert last.id == "fin"


@pytest.mark.parametrize("final, count", [(True, 1), (None, 0)], ids=["asked", "not"])
def test_repeat_zero_length_input(grpc_stub, final, count):
    responses = _stream(grpc_stub, [repeat_request([], final=final)])

    assert len(responses) == count
    assert all(_final_flag(r.infer_response) for r in responses)
    assert all(not r.infer_response.outputs for r in responses)


def test_repeat_delays_keep_order(grpc_stub):
    request = repeat_request([10, 20, 30], delays=[150, 0, 50])
    started = time.monotonic()

    responses = _stream(grpc_stub, [request])

    assert [_repeated(r.infer_response) for r in responses] == [
        (10, 0),
        (20, 1),
        (30, 2),
    ]
    assert time.monotonic() - started >= 0.2


def test_mixed_models_in_order(grpc_stub):
    requests = [
        simple_request(id="a"),
        repeat_request([4, 5], delays=[20, 20], id="b"),
        simple_request(id="c"),
    ]

    responses = [r.infer_response for r in _stream(grpc_stub, requests)]

    assert [r.id for r in responses] == ["a", "b", "b", "c"]
    assert [_repeated(r) for r in responses[1:3]] == [(4, 0), (5, 1)]
    assert_simple_answer(responses[3])


def _missing_input1():
    request = simple_request(id="bad")
    del request.inputs[1]
    del request.raw_input_contents[1]
    return request


ERRORS = [
    ("missing_input", _missing_input1(), ["INPUT1", "missing", "'simple'"]),
    (
        "unknown_model",
        repeat_request([1], model="absent"),
        ["Request for unknown model: 'absent' is not found"],
    ),
    (
        "delay_shape",
        repeat_request([1, 2, 3], delays=[0]),
        ["'DELAY'", "'repeat_int32'"],
    ),
    ("delay_limit", repeat_request([1], delays=[20_000]), ["'DELAY'", "20000"]),
    ("wait_limit", repeat_request([1], wait=60_000), ["'WAIT'", "60000"]),
    (
        "delay_max_uint32",
        repeat_request([1], delays=[2**32 - 1]),
        ["'DELAY'", str(2**32 - 1)],
    ),
]


@pytest.mark.parametrize(
    "bad, fragments", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_error_mid_stream(grpc_stub, bad, fragments):
    requests = [simple_request(id="before"), bad, simple_request(id="after")]
    started = time.monotonic()

    responses = _stream(grpc_stub, requests)

    assert len(responses) == 3
    assert responses[0].infer_response.id == "before"
    assert not responses[1].HasField("infer_response")
    for fragment in fragments:
        assert fragment in responses[1].error_message
    assert responses[2].infer_response.id == "after"
    assert_simple_answer(responses[2].infer_response)
    assert time.monotonic() - started < 5.0


def test_garbage_on_stream(channel):
    call = channel.stream_stream(
        "/inference.GRPCInferenceService/ModelStreamInfer",
        request_serializer=None,
        response_deserializer=pb.ModelStreamInferResponse.FromString,
    )
    payloads = [b"\x0f\x00garbage", simple_request(id="ok").SerializeToString()]

    responses = list(call(iter(payloads), timeout=DEADLINE))

    assert len(responses) == 2
    assert "ModelInferRequest" in responses[0].error_message
    assert responses[1].infer_response.id == "ok"


def test_cancel_mid_stream(grpc_stub, server):
    request = repeat_request(list(range(50)), delays=[100] * 50)
    call = grpc_stub.ModelStreamInfer(iter([request]), timeout=DEADLINE)
    first = [_repeated(next(call).infer_response) for _ in range(2)]

    call.cancel()

    assert first == [(0, 0), (1, 1)]
    with pytest.raises(grpc.RpcError) as info:
        next(call)
    assert info.value.code() == grpc.StatusCode.CANCELLED
    after = _stream(grpc_stub, [repeat_request([3, 4])])
    assert [_repeated(r.infer_response) for r in after] == [(3, 0), (4, 1)]
    assert_simple_answer(grpc_stub.ModelInfer(simple_request(), timeout=DEADLINE))
    assert server.returncode is None


def test_concurrent_streams(grpc_stub):
    streams = 4
    values = [list(range(10 * s, 10 * s + 4)) for s in range(streams)]

    def run(vals):
        return _stream(grpc_stub, [repeat_request(vals, delays=[100] * 4)])

    started = time.monotonic()
    with ThreadPoolExecutor(streams) as pool:
        results = list(pool.map(run, values))
    elapsed = time.monotonic() - started

    for vals, responses in zip(values, results):
        got = [_repeated(r.infer_response) for r in responses]
        assert got == [(v, i) for i, v in enumerate(vals)]
    assert elapsed < 1.2, "streams were served one after another"


def test_stream_output_subset(grpc_stub):
    request = repeat_request([6, 7], outputs=["IDX"])

    responses = [r.infer_response for r in _stream(grpc_stub, [request])]

    assert [[t.name for t in r.outputs] for r in responses] == [["IDX"], ["IDX"]]
    assert [output(r, "IDX").tolist() for r in responses] == [[0], [1]]
    assert all(output(r, "IDX").dtype == np.uint32 for r in responses)
