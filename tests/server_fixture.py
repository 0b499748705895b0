"""Pytest fixtures that run the reference server in a child process.

Import the fixtures into a test module to use them:

    from tests.server_fixture import grpc_stub, server  # noqa: F401
"""

from __future__ import annotations

from typing import Iterator

import grpc
import pytest

from oip.protocol import grpc_service_pb2_grpc
from oip.server import ServerProcess

LOOPBACK_OPTIONS = [("grpc.enable_http_proxy", 0)]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One reference server per test module, on a free loopback port."""
    with ServerProcess() as process:
        yield process
    assert process.exit_code == 0, (
        f"reference server ended with {process.exit_code}, not a clean shutdown"
    )


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    """A plain gRPC channel to the server."""
    with grpc.insecure_channel(server.url, options=LOOPBACK_OPTIONS) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture(scope="module")
def grpc_stub(channel: grpc.Channel) -> grpc_service_pb2_grpc.GRPCInferenceServiceStub:
    """A generated GRPCInferenceService stub on `channel`."""
    return grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
