"""Bidirectional streams: InferStream and AsyncInferStream."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import oip
from tests.client.helpers import (  # noqa: F401
    DEADLINE,
    assert_simple,
    client,
    closed_port_url,
    repeat_inputs,
    run,
    server,
    simple_inputs,
)

FINAL = "triton_final_response"


def _repeated(result: oip.InferResult) -> tuple[int, int]:
    """(OUT, IDX) of one repeat_int32 response."""
    assert sorted(result) == ["IDX", "OUT"]
    assert result["OUT"].dtype == np.int32 and result["OUT"].shape == (1,)
    assert result["IDX"].dtype == np.uint32 and result["IDX"].shape == (1,)
    return int(result["OUT"][0]), int(result["IDX"][0])


def _until_final(results) -> list[oip.InferResult]:
    collected = []
    for result in results:
        collected.append(result)
        if result.is_final:
            break
    return collected


def _mixed_delays(first_ms: int, rest_ms: int, count: int) -> dict[str, np.ndarray]:
    inputs = repeat_inputs(list(range(10, 10 + count)))
    inputs["DELAY"] = np.array([first_ms] + [rest_ms] * (count - 1), dtype=np.uint32)
    return inputs


VALUES = {
    "one": [42],
    "three": [5, -3, 7],
    "extremes": [2**31 - 1, -(2**31), 0],
    "ten": list(range(-5, 5)),
}


# Synchronous streams.


@pytest.mark.parametrize("values", list(VALUES.values()), ids=list(VALUES))
def test_decoupled_with_empty_final(client, values):
    with client.stream(timeout=DEADLINE) as stream:
        stream.send(
            "repeat_int32",
            repeat_inputs(values),
            request_id="rep",
            enable_empty_final_response=True,
        )
        results = _until_final(stream)

    assert len(results) == len(values) + 1
    assert [_repeated(r) for r in results[:-1]] == [
        (v, i) for i, v in enumerate(values)
    ]
    assert [r.is_final for r in results] == [False] * len(values) + [True]
    assert all(r.parameters[FINAL] is False for r in results[:-1])
    final = results[-1]
    assert final.parameters[FINAL] is True
    assert len(final) == 0 and list(final) == []
    assert all(r.id == "rep" for r in results)
    assert all(r.model_name == "repeat_int32" for r in results)


def test_decoupled_without_final_flag(client):
    values = [1, 2, 3]
    with client.stream(timeout=DEADLINE) as stream:
        stream.send("repeat_int32", repeat_inputs(values))
        stream.close()
        results = list(stream)
    assert [_repeated(r) for r in results] == [(1, 0), (2, 1), (3, 2)]
    assert all(
        r.is_final for r in results
    )  # no flag sent: every response counts as final
    assert all(FINAL not in r.parameters for r in results)


def test_decoupled_zero_elements_gives_only_final(client):
    with client.stream(timeout=DEADLINE) as stream:
        stream.send("repeat_int32", repeat_inputs([]), enable_empty_final_response=True)
        results = _until_final(stream)
    assert len(results) == 1
    assert results[0].is_final and len(results[0]) == 0


def test_simple_over_stream_in_order(client):
    batches = [1, 2, 3, 4, 5]
    with client.stream(timeout=DEADLINE) as stream:
        for batch in batches:
            a, b = simple_inputs(batch)
            stream.send("simple", {"INPUT0": a, "INPUT1": b}, request_id=f"s{batch}")
        stream.close()
        results = list(stream)
    assert [r.id for r in results] == [f"s{batch}" for batch in batches]
    for batch, result in zip(batches, results):
        assert result.error is None and result.is_final
        assert_simple(result, *simple_inputs(batch))


def test_outputs_subset_on_stream(client):
    a, b = simple_inputs()
    with client.stream(timeout=DEADLINE) as stream:
        stream.send("simple", {"INPUT0": a, "INPUT1": b}, ["OUTPUT1"])
        stream.close()
        (result,) = list(stream)
    assert list(result) == ["OUTPUT1"]
    np.testing.assert_array_equal(result["OUTPUT1"], a - b)


def test_error_mid_stream_then_continues(client):
    a, b = simple_inputs()
    with client.stream(timeout=DEADLINE) as stream:
        stream.send("simple", {"INPUT0": a, "INPUT1": b}, request_id="before")
        stream.send("no_such_model", {"X": a}, request_id="bad")
        stream.send("simple", {"INPUT0": b, "INPUT1": a}, request_id="after")
        stream.close()
        results = list(stream)

    assert len(results) == 3
    before, bad, after = results
    assert_simple(before, a, b)
    assert before.id == "before"
    assert isinstance(bad.error, oip.ModelNotFoundError)
    assert bad.error.status is oip.StatusCode.NOT_FOUND
    assert "no_such_model" in bad.error.message
    with pytest.raises(oip.ModelNotFoundError) as caught:
        bad["X"]
    assert caught.value is bad.error
    with pytest.raises(oip.ModelNotFoundError):
        bad.raise_for_error()
    with pytest.raises(oip.ModelNotFoundError):
        len(bad)
    with pytest.raises(oip.ModelNotFoundError):
        _ = bad.outputs
    assert bad.is_final is True
    assert "error=" in repr(bad)
    assert_simple(after, b, a)
    assert after.id == "after"


def test_invalid_request_mid_stream(client):
    a, b = simple_inputs()
    with client.stream(timeout=DEADLINE) as stream:
        stream.send("simple", {"INPUT0": a})  # INPUT1 missing: refused by the server
        stream.send("simple", {"INPUT0": a, "INPUT1": b})
        stream.close()
        bad, good = list(stream)
    assert isinstance(bad.error, oip.OipError)
    assert "'INPUT1'" in bad.error.message
    with pytest.raises(oip.OipError):
        bad["OUTPUT0"]
    assert_simple(good, a, b)


def test_decoupled_error_mid_stream(client):
    inputs = repeat_inputs([1, 2])
    inputs["DELAY"] = np.array(
        [0], dtype=np.uint32
    )  # one delay for two values: refused
    with client.stream(timeout=DEADLINE) as stream:
        stream.send("repeat_int32", inputs, enable_empty_final_response=True)
        stream.send(
            "repeat_int32", repeat_inputs([9]), enable_empty_final_response=True
        )
        first = next(iter(stream))
        rest = _until_final(stream)
    assert isinstance(first.error, oip.OipError)
    assert "'DELAY'" in first.error.message
    assert [_repeated(r) for r in rest[:-1]] == [(9, 0)]
    assert rest[-1].is_final


def test_client_side_error_on_send_sends_nothing(client):
    a, b = simple_inputs()
    with client.stream(timeout=DEADLINE) as stream:
        with pytest.raises(oip.InvalidInputError, match="'INPUT0' is given twice"):
            stream.send(
                "simple", [oip.InferInput("INPUT0", a), oip.InferInput("INPUT0", b)]
            )
        with pytest.raises(oip.InvalidInputError, match="reserved"):
            stream.send(
                "simple",
                {"INPUT0": a, "INPUT1": b},
                parameters={"triton_enable_empty_final_response": True},
            )
        stream.send("simple", {"INPUT0": a, "INPUT1": b}, request_id="only")
        stream.close()
        results = list(stream)
    assert [r.id for r in results] == ["only"]


def test_concurrent_streams_on_one_client(client):
    def one(index: int) -> list[tuple[int, int]]:
        values = [index * 100 + k for k in range(5)]
        with client.stream(timeout=DEADLINE) as stream:
            stream.send(
                "repeat_int32",
                repeat_inputs(values, delay_ms=5),
                enable_empty_final_response=True,
            )
            results = _until_final(stream)
        assert results[-1].is_final and not any(r.is_final for r in results[:-1])
        return [_repeated(r) for r in results[:-1]]

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(one, range(6)))
    for index, answer in enumerate(answers):
        assert answer == [(index * 100 + k, k) for k in range(5)]


def test_two_streams_interleaved_in_one_thread(client):
    with (
        client.stream(timeout=DEADLINE) as first,
        client.stream(timeout=DEADLINE) as second,
    ):
        first.send(
            "repeat_int32", repeat_inputs([1, 2]), enable_empty_final_response=True
        )
        second.send(
            "repeat_int32", repeat_inputs([3, 4]), enable_empty_final_response=True
        )
        from_second = _until_final(second)
        from_first = _until_final(first)
    assert [_repeated(r) for r in from_first[:-1]] == [(1, 0), (2, 1)]
    assert [_repeated(r) for r in from_second[:-1]] == [(3, 0), (4, 1)]


def test_cancel_mid_way_ends_promptly(client):
    stream = client.stream(timeout=DEADLINE)
    stream.send(
        "repeat_int32", _mixed_delays(0, 2000, 4), enable_empty_final_response=True
    )
    received = []
    started = time.monotonic()
    for result in stream:
        received.append(result)
        if len(received) == 1:
            stream.cancel()
    elapsed = time.monotonic() - started
    assert len(received) == 1
    assert _repeated(received[0]) == (10, 0)
    assert elapsed < 1.5, f"iteration went on {elapsed:.1f} s after cancel"
    with pytest.raises(oip.CancelledError):
        stream.send("simple", dict(zip(("INPUT0", "INPUT1"), simple_inputs())))


def test_cancel_from_another_thread(client):
    stream = client.stream(timeout=DEADLINE)
    stream.send(
        "repeat_int32", _mixed_delays(0, 3000, 3), enable_empty_final_response=True
    )
    iterator = iter(stream)
    first = next(iterator)
    assert _repeated(first) == (10, 0)
    timer = threading.Timer(0.2, stream.cancel)
    started = time.monotonic()
    timer.start()
    try:
        rest = list(iterator)
    finally:
        timer.cancel()
    assert rest == []
    assert time.monotonic() - started < 2.0


def test_exit_of_with_block_cancels(client):
    started = time.monotonic()
    with client.stream(timeout=DEADLINE) as stream:
        stream.send(
            "repeat_int32", _mixed_delays(0, 5000, 3), enable_empty_final_response=True
        )
        first = next(iter(stream))
    assert _repeated(first) == (10, 0)
    assert time.monotonic() - started < 2.0
    with pytest.raises(oip.CancelledError):
        stream.send("repeat_int32", repeat_inputs([1]))


@pytest.mark.parametrize("how", ["close", "cancel"])
def test_send_after_close_raises_cancelled(client, how):
    stream = client.stream(timeout=DEADLINE)
    getattr(stream, how)()
    a, b = simple_inputs()
    with pytest.raises(oip.CancelledError) as caught:
        stream.send("simple", {"INPUT0": a, "INPUT1": b})
    assert caught.value.model == "simple"
    assert caught.value.status is oip.StatusCode.CANCELLED
    stream.cancel()


def test_close_lets_pending_responses_arrive(client):
    stream = client.stream(timeout=DEADLINE)
    stream.send(
        "repeat_int32",
        repeat_inputs([1, 2, 3], delay_ms=50),
        enable_empty_final_response=True,
    )
    stream.close()
    results = list(stream)
    assert [_repeated(r) for r in results[:-1]] == [(1, 0), (2, 1), (3, 2)]
    assert results[-1].is_final


def test_stream_deadline(client):
    started = time.monotonic()
    with client.stream(timeout=0.5) as stream:
        stream.send("repeat_int32", repeat_inputs([1], delay_ms=3000))
        with pytest.raises(oip.DeadlineExceededError) as caught:
            list(stream)
    assert time.monotonic() - started < 2.5
    assert caught.value.status is oip.StatusCode.DEADLINE_EXCEEDED


def test_stream_to_dead_server(client):
    with oip.Client(closed_port_url(), timeout=DEADLINE) as dead:
        with dead.stream(timeout=DEADLINE) as stream:
            a, b = simple_inputs()
            stream.send("simple", {"INPUT0": a, "INPUT1": b})
            with pytest.raises(oip.ServerUnavailableError):
                list(stream)


# Asyncio streams.


def _async(server_url, body):
    async def go():
        async with oip.AsyncClient(server_url, timeout=DEADLINE) as aio:
            return await body(aio)

    return run(go)


async def _collect_until_final(stream) -> list[oip.InferResult]:
    collected = []
    async for result in stream:
        collected.append(result)
        if result.is_final:
            break
    return collected


@pytest.mark.parametrize("values", list(VALUES.values()), ids=list(VALUES))
def test_async_decoupled_with_empty_final(server, values):
    async def body(aio):
        async with aio.stream(timeout=DEADLINE) as stream:
            assert isinstance(stream, oip.AsyncInferStream)
            await stream.send(
                "repeat_int32",
                repeat_inputs(values),
                request_id="arep",
                enable_empty_final_response=True,
            )
            return await _collect_until_final(stream)

    results = _async(server.url, body)
    assert [_repeated(r) for r in results[:-1]] == [
        (v, i) for i, v in enumerate(values)
    ]
    assert [r.is_final for r in results] == [False] * len(values) + [True]
    assert all(r.id == "arep" for r in results)


def test_async_simple_and_error_mid_stream(server):
    a, b = simple_inputs(2)

    async def body(aio):
        async with aio.stream(timeout=DEADLINE) as stream:
            await stream.send("simple", {"INPUT0": a, "INPUT1": b}, request_id="1")
            await stream.send("nope", {"INPUT0": a}, request_id="2")
            await stream.send("simple", {"INPUT0": b, "INPUT1": a}, request_id="3")
            await stream.close()
            return [result async for result in stream]

    first, bad, third = _async(server.url, body)
    assert_simple(first, a, b)
    assert isinstance(bad.error, oip.ModelNotFoundError)
    with pytest.raises(oip.ModelNotFoundError):
        bad["X"]
    assert_simple(third, b, a)
    assert third.id == "3"


def test_async_concurrent_streams(server):
    async def one(aio, index):
        values = [index * 10 + k for k in range(4)]
        async with aio.stream(timeout=DEADLINE) as stream:
            await stream.send(
                "repeat_int32",
                repeat_inputs(values, delay_ms=5),
                enable_empty_final_response=True,
            )
            results = await _collect_until_final(stream)
        return [_repeated(r) for r in results[:-1]]

    async def body(aio):
        return await asyncio.gather(*(one(aio, i) for i in range(8)))

    answers = _async(server.url, body)
    for index, answer in enumerate(answers):
        assert answer == [(index * 10 + k, k) for k in range(4)]


def test_async_cancel_mid_way_ends_promptly(server):
    async def body(aio):
        stream = aio.stream(timeout=DEADLINE)
        await stream.send(
            "repeat_int32", _mixed_delays(0, 2000, 4), enable_empty_final_response=True
        )
        received = []
        started = time.monotonic()
        async for result in stream:
            received.append(result)
            if len(received) == 1:
                stream.cancel()
        elapsed = time.monotonic() - started
        with pytest.raises(oip.CancelledError):
            await stream.send("repeat_int32", repeat_inputs([1]))
        return received, elapsed

    received, elapsed = _async(server.url, body)
    assert len(received) == 1
    assert _repeated(received[0]) == (10, 0)
    assert elapsed < 1.5


def test_async_task_cancellation_propagates_after_close(server):
    """Cancelling the task that iterates a half-closed stream cancels that task."""

    async def body(aio):
        stream = aio.stream(timeout=DEADLINE)
        await stream.send("repeat_int32", repeat_inputs([1], delay_ms=5000))
        await stream.close()

        async def consume():
            async for _ in stream:
                pass
            return "iteration ended"

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            outcome = await task
        except asyncio.CancelledError:
            outcome = "cancelled"
        stream.cancel()
        return outcome

    assert _async(server.url, body) == "cancelled"


def test_async_wait_for_times_out_on_half_closed_stream(server):
    async def body(aio):
        stream = aio.stream(timeout=DEADLINE)
        await stream.send("repeat_int32", repeat_inputs([1], delay_ms=5000))
        await stream.close()

        async def consume():
            return [r async for r in stream]

        started = time.monotonic()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(consume(), 0.3)
        finally:
            stream.cancel()
        return time.monotonic() - started

    assert _async(server.url, body) < 2.0


@pytest.mark.parametrize("how", ["close", "cancel"])
def test_async_send_after_close(server, how):
    async def body(aio):
        stream = aio.stream(timeout=DEADLINE)
        result = getattr(stream, how)()
        if asyncio.iscoroutine(result):
            await result
        with pytest.raises(oip.CancelledError) as caught:
            await stream.send(
                "simple", dict(zip(("INPUT0", "INPUT1"), simple_inputs()))
            )
        stream.cancel()
        return caught.value

    error = _async(server.url, body)
    assert error.model == "simple"


def test_async_stream_deadline(server):
    async def body(aio):
        started = time.monotonic()
        async with aio.stream(timeout=0.5) as stream:
            await stream.send("repeat_int32", repeat_inputs([1], delay_ms=3000))
            with pytest.raises(oip.DeadlineExceededError):
                async for _ in stream:
                    pass
        return time.monotonic() - started

    assert _async(server.url, body) < 2.5


def test_async_close_lets_pending_responses_arrive(server):
    async def body(aio):
        stream = aio.stream(timeout=DEADLINE)
        await stream.send(
            "repeat_int32",
            repeat_inputs([4, 5], delay_ms=50),
            enable_empty_final_response=True,
        )
        await stream.close()
        return [r async for r in stream]

    results = _async(server.url, body)
    assert [_repeated(r) for r in results[:-1]] == [(4, 0), (5, 1)]
    assert results[-1].is_final


def test_async_validation_on_send(server):
    a, b = simple_inputs()

    async def body(aio):
        async with aio.stream(timeout=DEADLINE) as stream:
            with pytest.raises(
                oip.InvalidInputError, match="'OUTPUT0' is requested twice"
            ):
                await stream.send(
                    "simple", {"INPUT0": a, "INPUT1": b}, ["OUTPUT0", "OUTPUT0"]
                )
            await stream.send("simple", {"INPUT0": a, "INPUT1": b}, request_id="ok")
            await stream.close()
            return [r async for r in stream]

    results = _async(server.url, body)
    assert [r.id for r in results] == ["ok"]
