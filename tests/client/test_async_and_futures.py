"""Client.async_infer and InferFuture; AsyncClient concurrency and cancellation.

Slow calls come from a frozen server (SIGSTOP): the request is sent, the
answer never comes, so cancelling and timing out are not races.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import oip
from tests.client.helpers import (  # noqa: F401
    DEADLINE,
    assert_simple,
    client,
    dead_client,
    frozen_server,
    run,
    server,
    simple_inputs,
    stopped,
)


class Recorder:
    """A callback that records its calls and signals the first."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, object, str]] = []
        self.called = threading.Event()

    def __call__(self, result, error) -> None:
        self.calls.append((result, error, threading.current_thread().name))
        self.called.set()

    def wait(self) -> tuple[object, object]:
        assert self.called.wait(DEADLINE), "the callback was not called"
        time.sleep(0.05)  # a second call, if any, would show up now
        assert len(self.calls) == 1, f"callback called {len(self.calls)} times"
        return self.calls[0][0], self.calls[0][1]


@pytest.fixture(scope="module")
def frozen_client(frozen_server):  # noqa: F811
    """A connected client of the frozen-able server."""
    with oip.Client(frozen_server.url, timeout=DEADLINE) as c:
        assert c.is_server_live()
        yield c


def _distinct(i: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.full((1, 16), i, dtype=np.int32) + np.arange(16, dtype=np.int32)
    b = np.full((1, 16), 2 * i + 1, dtype=np.int32)
    return a, b


# InferFuture.


def test_async_infer_result(client):
    a, b = simple_inputs(2)
    future = client.async_infer("simple", {"INPUT0": a, "INPUT1": b}, request_id="f1")
    assert isinstance(future, oip.InferFuture)
    result = future.result(timeout=DEADLINE)
    assert_simple(result, a, b)
    assert result.id == "f1"
    assert future.done() is True
    assert future.cancelled() is False


def test_callback_gets_result(client):
    a, b = simple_inputs()
    recorder = Recorder()
    future = client.async_infer(
        "simple", {"INPUT0": a, "INPUT1": b}, callback=recorder, request_id="cb"
    )
    result, error = recorder.wait()
    assert error is None
    assert isinstance(result, oip.InferResult)
    assert_simple(result, a, b)
    assert result.id == "cb"
    assert future.result(timeout=DEADLINE).id == "cb"


@pytest.mark.parametrize(
    "model, inputs, error_type, named",
    [
        ("nope", {"X": np.zeros((1, 16), np.int32)}, oip.ModelNotFoundError, "nope"),
        ("simple", {"INPUT0": simple_inputs()[0]}, oip.InvalidInputError, "'INPUT1'"),
    ],
    ids=["unknown-model", "missing-input"],
)
def test_callback_gets_error(client, model, inputs, error_type, named):
    recorder = Recorder()
    future = client.async_infer(model, inputs, callback=recorder, request_id="bad")
    result, error = recorder.wait()
    assert result is None
    assert isinstance(error, error_type)
    assert error.model == model
    assert error.request_id == "bad"
    assert named in error.message
    with pytest.raises(error_type):
        future.result(timeout=DEADLINE)


def test_done_callback_gets_the_future(client):
    a, b = simple_inputs()
    future = client.async_infer("simple", {"INPUT0": a, "INPUT1": b})
    seen: list[object] = []
    done = threading.Event()
    future.add_done_callback(lambda f: (seen.append(f), done.set()))
    assert done.wait(DEADLINE)
    assert seen == [future]
    # Added after completion: called at once.
    late: list[object] = []
    future.add_done_callback(late.append)
    assert late == [future]


def test_cancel_after_done_returns_false(client):
    a, b = simple_inputs()
    future = client.async_infer("simple", {"INPUT0": a, "INPUT1": b})
    result = future.result(timeout=DEADLINE)
    assert future.cancel() is False
    assert future.cancelled() is False
    assert future.result(timeout=DEADLINE) is not None
    assert_simple(result, a, b)


def test_cancel_slow_call(frozen_server, frozen_client):
    a, b = simple_inputs()
    recorder = Recorder()
    with stopped(frozen_server):
        future = frozen_client.async_infer(
            "simple", {"INPUT0": a, "INPUT1": b}, callback=recorder, request_id="slow"
        )
        time.sleep(0.2)
        assert future.done() is False
        assert future.cancel() is True
        assert future.cancelled() is True
        assert future.done() is True
        with pytest.raises(oip.CancelledError) as caught:
            future.result(timeout=DEADLINE)
        assert caught.value.model == "simple"
        assert caught.value.request_id == "slow"
        assert caught.value.status is oip.StatusCode.CANCELLED
        result, error = recorder.wait()
        assert result is None and isinstance(error, oip.CancelledError)
        assert future.cancel() is False  # already cancelled
        assert future.cancelled() is True
    # The client still works once the server runs again.
    assert_simple(frozen_client.infer("simple", {"INPUT0": a, "INPUT1": b}), a, b)


def test_result_wait_timeout_leaves_call_running(frozen_server, frozen_client):
    a, b = simple_inputs()
    with stopped(frozen_server):
        future = frozen_client.async_infer("simple", {"INPUT0": a, "INPUT1": b})
        started = time.monotonic()
        with pytest.raises(
            oip.DeadlineExceededError, match="no result within 0.3 s"
        ) as caught:
            future.result(timeout=0.3)
        assert time.monotonic() - started < 5
        assert isinstance(caught.value, TimeoutError)
        assert future.done() is False
    # Once the server resumes, the same call completes.
    assert_simple(future.result(timeout=DEADLINE), a, b)


def test_call_deadline_on_future(frozen_server, frozen_client):
    a, b = simple_inputs()
    with stopped(frozen_server):
        started = time.monotonic()
        future = frozen_client.async_infer(
            "simple", {"INPUT0": a, "INPUT1": b}, timeout=0.5
        )
        with pytest.raises(oip.DeadlineExceededError) as caught:
            future.result(timeout=DEADLINE)
        assert 0.4 < time.monotonic() - started < 5
        assert caught.value.status is oip.StatusCode.DEADLINE_EXCEEDED
        assert caught.value.model == "simple"


def test_many_concurrent_futures(client):
    count = 64
    futures = []
    for i in range(count):
        a, b = _distinct(i)
        futures.append(
            (
                i,
                client.async_infer(
                    "simple", {"INPUT0": a, "INPUT1": b}, request_id=f"r{i}"
                ),
            )
        )
    for i, future in futures:
        a, b = _distinct(i)
        result = future.result(timeout=DEADLINE)
        assert result.id == f"r{i}"
        assert_simple(result, a, b)


def test_many_concurrent_callbacks(client):
    count = 48
    lock = threading.Lock()
    results: dict[str, oip.InferResult] = {}
    errors: list[object] = []
    all_done = threading.Event()

    def callback(result, error):
        with lock:
            if error is not None:
                errors.append(error)
            else:
                results[result.id] = result
            if len(results) + len(errors) == count:
                all_done.set()

    for i in range(count):
        a, b = _distinct(i)
        client.async_infer(
            "simple", {"INPUT0": a, "INPUT1": b}, callback=callback, request_id=str(i)
        )
    assert all_done.wait(DEADLINE)
    assert errors == []
    assert sorted(results, key=int) == [str(i) for i in range(count)]
    for key, result in results.items():
        assert_simple(result, *_distinct(int(key)))


def test_async_infer_validation_is_synchronous(dead_client):
    a, _ = simple_inputs()
    recorder = Recorder()
    with pytest.raises(oip.InvalidInputError, match="'INPUT0' is given twice"):
        dead_client.async_infer(
            "simple",
            [oip.InferInput("INPUT0", a), oip.InferInput("INPUT0", a)],
            callback=recorder,
        )
    assert recorder.calls == []


def test_async_infer_to_dead_server_fails_in_future(dead_client):
    a, b = simple_inputs()
    recorder = Recorder()
    future = dead_client.async_infer(
        "simple", {"INPUT0": a, "INPUT1": b}, callback=recorder
    )
    with pytest.raises(oip.ServerUnavailableError):
        future.result(timeout=DEADLINE)
    result, error = recorder.wait()
    assert result is None and isinstance(error, oip.ServerUnavailableError)


# AsyncClient.


def test_async_client_gather(server):
    count = 50

    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            calls = []
            for i in range(count):
                a, b = _distinct(i)
                calls.append(
                    aio.infer("simple", {"INPUT0": a, "INPUT1": b}, request_id=f"g{i}")
                )
            return await asyncio.gather(*calls)

    results = run(go)
    assert len(results) == count
    for i, result in enumerate(results):
        assert result.id == f"g{i}"
        assert_simple(result, *_distinct(i))


def test_async_client_gather_mixed_outcomes(server):
    a, b = simple_inputs()

    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            return await asyncio.gather(
                aio.infer("simple", {"INPUT0": a, "INPUT1": b}),
                aio.infer("nope", {"INPUT0": a}),
                aio.infer("simple", {"INPUT0": a}),
                aio.is_server_live(),
                return_exceptions=True,
            )

    good, missing, invalid, live = run(go)
    assert_simple(good, a, b)
    assert isinstance(missing, oip.ModelNotFoundError) and missing.model == "nope"
    assert isinstance(invalid, oip.InvalidInputError) and "'INPUT1'" in invalid.message
    assert live is True


def test_async_client_cancel_task_in_flight(frozen_server):
    a, b = simple_inputs()

    async def go():
        async with oip.AsyncClient(frozen_server.url, timeout=DEADLINE) as aio:
            assert await aio.is_server_live()
            with stopped(frozen_server):
                task = asyncio.create_task(
                    aio.infer("simple", {"INPUT0": a, "INPUT1": b})
                )
                await asyncio.sleep(0.3)
                assert not task.done()
                started = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                elapsed = time.monotonic() - started
                assert task.cancelled()
            # The client goes on working once the server runs again.
            after = await aio.infer("simple", {"INPUT0": a, "INPUT1": b})
            return elapsed, after

    elapsed, after = run(go)
    assert elapsed < 2.0
    assert_simple(after, a, b)


def test_async_client_cancel_task_before_it_runs(server):
    a, b = simple_inputs()

    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            task = asyncio.create_task(aio.infer("simple", {"INPUT0": a, "INPUT1": b}))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await aio.infer("simple", {"INPUT0": a, "INPUT1": b})

    assert_simple(run(go), a, b)


def test_async_client_wait_for_times_out(frozen_server):
    a, b = simple_inputs()

    async def go():
        async with oip.AsyncClient(frozen_server.url, timeout=DEADLINE) as aio:
            assert await aio.is_server_live()
            with stopped(frozen_server):
                started = time.monotonic()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        aio.infer("simple", {"INPUT0": a, "INPUT1": b}), 0.3
                    )
                return time.monotonic() - started

    assert run(go) < 3.0


def test_async_client_call_deadline(frozen_server):
    a, b = simple_inputs()

    async def go():
        async with oip.AsyncClient(frozen_server.url, timeout=DEADLINE) as aio:
            assert await aio.is_server_live()
            with stopped(frozen_server):
                with pytest.raises(oip.DeadlineExceededError) as caught:
                    await aio.infer(
                        "simple",
                        {"INPUT0": a, "INPUT1": b},
                        timeout=0.4,
                        request_id="late",
                    )
                return caught.value

    error = run(go)
    assert error.model == "simple" and error.request_id == "late"
    assert error.status is oip.StatusCode.DEADLINE_EXCEEDED
