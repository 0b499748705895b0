"""Fixtures and helpers shared by the client tests.

Import the fixtures into a test module to use them:

    from tests.client.helpers import client, server  # noqa: F401
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import numpy as np
import pytest

import oip
from oip.server import ServerProcess
from tests.server_fixture import server  # noqa: F401  (re-exported fixture)

# Deadline of every call that should succeed quickly.
DEADLINE = 20.0

T = TypeVar("T")


def simple_inputs(batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """INPUT0 and INPUT1 for `simple`: distinct values, shape [batch, 16]."""
    a = np.arange(batch * 16, dtype=np.int32).reshape(batch, 16) * 3 - 7
    b = (np.arange(batch * 16, dtype=np.int32).reshape(batch, 16) % 5) - 2
    return a, b


def assert_simple(result: oip.InferResult, a: np.ndarray, b: np.ndarray) -> None:
    """`result` is simple's answer to a and b."""
    assert sorted(result) == ["OUTPUT0", "OUTPUT1"]
    np.testing.assert_array_equal(result["OUTPUT0"], a + b)
    np.testing.assert_array_equal(result["OUTPUT1"], a - b)
    assert result["OUTPUT0"].dtype == np.int32
    assert result["OUTPUT0"].shape == a.shape


def objects(items: list[Any], shape: tuple[int, ...] = ()) -> np.ndarray:
    """A numpy object array of `items` (bytes or str), reshaped."""
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    return array.reshape(shape or (len(items),))


def repeat_inputs(
    values: list[int], delay_ms: int = 0, wait_ms: int = 0
) -> dict[str, np.ndarray]:
    """Inputs of repeat_int32: one response per value, each after delay_ms."""
    return {
        "IN": np.array(values, dtype=np.int32),
        "DELAY": np.full(len(values), delay_ms, dtype=np.uint32),
        "WAIT": np.array([wait_ms], dtype=np.uint32),
    }


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Runs an async test body to completion on a fresh event loop."""
    return asyncio.run(factory())  # type: ignore[arg-type]


def closed_port_url() -> str:
    """host:port of a loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[oip.Client]:  # noqa: F811
    """A synchronous client of the module's server."""
    with oip.Client(server.url, timeout=DEADLINE) as c:
        yield c


@pytest.fixture
def dead_client() -> Iterator[oip.Client]:
    """A client of an address nothing listens on: anything sent fails."""
    with oip.Client(closed_port_url(), timeout=DEADLINE) as c:
        yield c


@contextlib.contextmanager
def stopped(process: ServerProcess) -> Iterator[None]:
    """Freezes the server (SIGSTOP) so calls in flight hang; resumes after."""
    pid = process.pid
    assert pid is not None, "the server is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def frozen_server() -> Iterator[ServerProcess]:
    """A server of its own, for tests that freeze it with `stopped`."""
    with ServerProcess() as process:
        yield process


class BlockingAsyncClient:
    """AsyncClient's methods called synchronously, each on a fresh loop and client.

    Lets one parametrised test body check `Client` and `AsyncClient` alike.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._url = url
        self._kwargs = kwargs

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            async def go() -> Any:
                async with oip.AsyncClient(self._url, **self._kwargs) as c:
                    return await getattr(c, name)(*args, **kwargs)

            return asyncio.run(go())

        return call


FLAVORS = ["Client", "AsyncClient"]


@pytest.fixture(params=FLAVORS)
def api(
    request: pytest.FixtureRequest, server: ServerProcess, client: oip.Client
) -> Any:  # noqa: F811
    """The module's server through `Client`, then through `AsyncClient`."""
    if request.param == "Client":
        return client
    return BlockingAsyncClient(server.url, timeout=DEADLINE)
