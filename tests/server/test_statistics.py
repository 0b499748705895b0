"""ModelStatistics: counts and times of real requests, unary and streamed.

Statistics add up over the module's server, so each test compares the
figures before and after its own requests.
"""

import time

import grpc
import numpy as np
import pytest

from oip.protocol import grpc_service_pb2 as pb
from tests.server.helpers import (
    DEADLINE,
    infer_request,
    repeat_request,
    rpc_error,
    simple_request,
)
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

MODELS = [
    "identity_fp32",
    "repeat_int32",
    "simple",
    "simple_identity",
    "simple_int8",
    "simple_sequence",
    "simple_string",
]
STAGES = ["queue", "compute_input", "compute_infer", "compute_output"]


def _stats(stub, name="simple", version=""):
    request = pb.ModelStatisticsRequest(name=name, version=version)
    response = stub.ModelStatistics(request, timeout=DEADLINE)
    assert len(response.model_stats) == 1
    return response.model_stats[0]


def _duration(stats, field):
    value = getattr(stats.inference_stats, field)
    return value.count, value.ns


def _batch(stats, size, stage):
    for batch in stats.batch_stats:
        if batch.batch_size == size:
            value = getattr(batch, stage)
            return value.count, value.ns
    return 0, 0


def _delta(after, before):
    return tuple(a - b for a, b in zip(after, before))


def _bad_shape():
    request = simple_request()
    request.inputs[0].shape[:] = [1, 15]
    return request


def test_every_model_listed(grpc_stub):
    response = grpc_stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=DEADLINE)

    assert [s.name for s in response.model_stats] == MODELS
    assert {s.version for s in response.model_stats} == {"1"}


def test_successful_requests_counted(grpc_stub):
    before = _stats(grpc_stub)
    started_ms = time.time_ns() // 1_000_000

    for _ in range(5):
        grpc_stub.ModelInfer(simple_request(batch=1), timeout=DEADLINE)
    for _ in range(3):
        grpc_stub.ModelInfer(simple_request(batch=2), timeout=DEADLINE)

    after = _stats(grpc_stub)
    ended_ms = time.time_ns() // 1_000_000
    assert after.inference_count - before.inference_count == 5 + 3 * 2
    assert after.execution_count - before.execution_count == 8
    count, ns = _delta(_duration(after, "success"), _duration(before, "success"))
    assert count == 8 and ns > 0
    assert _delta(_duration(after, "fail"), _duration(before, "fail")) == (0, 0)
    stage_ns = 0
    for stage in STAGES:
        count, ns = _delta(_duration(after, stage), _duration(before, stage))
        assert count == 8, stage
        assert ns > 0, stage
        stage_ns += ns
    success_ns = after.inference_stats.success.ns - before.inference_stats.success.ns
    assert success_ns >= stage_ns
    for stage in STAGES[1:]:
        assert _delta(_batch(after, 1, stage), _batch(before, 1, stage))[0] == 5
        assert _delta(_batch(after, 2, stage), _batch(before, 2, stage))[0] == 3
        assert _batch(after, 2, stage)[1] > _batch(before, 2, stage)[1]
    assert started_ms <= after.last_inference <= ended_ms
    assert _duration(after, "cache_hit") == (0, 0)
    assert _duration(after, "cache_miss") == (0, 0)


def test_batch_stats_sorted_by_size(grpc_stub):
    grpc_stub.ModelInfer(simple_request(batch=4), timeout=DEADLINE)
    grpc_stub.ModelInfer(simple_request(batch=3), timeout=DEADLINE)

    sizes = [b.batch_size for b in _stats(grpc_stub).batch_stats]

    assert sizes == sorted(sizes)
    assert {3, 4} <= set(sizes)


def test_failed_requests_counted(grpc_stub):
    before = _stats(grpc_stub)

    for _ in range(3):
        rpc_error(grpc_stub.ModelInfer, _bad_shape())

    after = _stats(grpc_stub)
    count, ns = _delta(_duration(after, "fail"), _duration(before, "fail"))
    assert count == 3 and ns > 0
    assert _duration(after, "success") == _duration(before, "success")
    assert after.inference_count == before.inference_count
    assert after.execution_count == before.execution_count
    assert after.last_inference == before.last_inference


def test_unknown_model_requests_not_counted(grpc_stub):
    before = grpc_stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=DEADLINE)

    request = simple_request()
    request.model_name = "absent"
    rpc_error(grpc_stub.ModelInfer, request)

    after = grpc_stub.ModelStatistics(pb.ModelStatisticsRequest(), timeout=DEADLINE)
    assert after == before


def test_other_models_untouched(grpc_stub):
    before = _stats(grpc_stub, "simple_int8")

    grpc_stub.ModelInfer(simple_request(), timeout=DEADLINE)

    assert _stats(grpc_stub, "simple_int8") == before


def test_stream_requests_counted(grpc_stub):
    before = _stats(grpc_stub)
    requests = [simple_request(batch=2), simple_request(), _bad_shape()]

    responses = list(grpc_stub.ModelStreamInfer(iter(requests), timeout=DEADLINE))

    after = _stats(grpc_stub)
    assert [bool(r.error_message) for r in responses] == [False, False, True]
    assert after.inference_count - before.inference_count == 3
    assert _delta(_duration(after, "success"), _duration(before, "success"))[0] == 2
    assert _delta(_duration(after, "fail"), _duration(before, "fail"))[0] == 1
    assert (
        _delta(_duration(after, "compute_infer"), _duration(before, "compute_infer"))[0]
        == 2
    )


def test_decoupled_responses_counted(grpc_stub):
    before = _stats(grpc_stub, "repeat_int32")
    request = repeat_request([4, 5, 6], delays=[1, 1, 1], final=True)

    responses = list(grpc_stub.ModelStreamInfer(iter([request]), timeout=DEADLINE))

    after = _stats(grpc_stub, "repeat_int32")
    assert len(responses) == 4
    assert after.inference_count - before.inference_count == 1
    assert after.execution_count - before.execution_count == 1
    count, ns = _delta(
        _duration(after, "compute_infer"), _duration(before, "compute_infer")
    )
    assert count == 1 and ns >= 3_000_000  # three 1 ms delays
    for index in ("0", "1", "2"):
        now, old = after.response_stats[index], before.response_stats[index]
        assert now.success.count - old.success.count == 1
        assert now.compute_infer.ns > old.compute_infer.ns
    final_now = after.response_stats["3"].empty_response.count
    final_old = before.response_stats["3"].empty_response.count
    assert final_now - final_old == 1


def test_decoupled_refused_on_unary_counts_failure(grpc_stub):
    before = _stats(grpc_stub, "repeat_int32")

    rpc_error(grpc_stub.ModelInfer, repeat_request([1]))

    after = _stats(grpc_stub, "repeat_int32")
    assert after.inference_stats.fail.count - before.inference_stats.fail.count == 1
    assert after.inference_count == before.inference_count


def test_typed_requests_counted_for_their_model(grpc_stub):
    before = _stats(grpc_stub, "simple_sequence")
    request = infer_request(
        "simple_sequence",
        {"INPUT": ("INT32", np.array([[3]], dtype=np.int32))},
        typed=True,
    )
    request.parameters["sequence_id"].int64_param = 99
    request.parameters["sequence_start"].bool_param = True
    request.parameters["sequence_end"].bool_param = True

    grpc_stub.ModelInfer(request, timeout=DEADLINE)

    after = _stats(grpc_stub, "simple_sequence")
    assert after.inference_count - before.inference_count == 1


@pytest.mark.parametrize("version", ["", "1"], ids=["latest", "one"])
def test_version_selects_model(grpc_stub, version):
    assert _stats(grpc_stub, version=version).version == "1"


@pytest.mark.parametrize(
    "name, version, code",
    [
        ("absent", "", grpc.StatusCode.NOT_FOUND),
        ("simple", "2", grpc.StatusCode.NOT_FOUND),
        ("simple", "one", grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["unknown_model", "unknown_version", "bad_version"],
)
def test_statistics_refused(grpc_stub, name, version, code):
    request = pb.ModelStatisticsRequest(name=name, version=version)

    error = rpc_error(grpc_stub.ModelStatistics, request)

    assert error.code() == code
    assert f"'{name}'" in error.details()


def test_statistics_kept_after_unload(grpc_stub):
    grpc_stub.ModelInfer(simple_request(), timeout=DEADLINE)
    before = _stats(grpc_stub)
    unload = pb.RepositoryModelUnloadRequest(model_name="simple")
    grpc_stub.RepositoryModelUnload(unload, timeout=DEADLINE)
    try:
        during = _stats(grpc_stub)
    finally:
        load = pb.RepositoryModelLoadRequest(model_name="simple")
        grpc_stub.RepositoryModelLoad(load, timeout=DEADLINE)

    assert during == before
