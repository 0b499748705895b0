"""Health, liveness and readiness of the reference server."""

import os
import signal
import time

import grpc
import pytest

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import health_pb2, health_pb2_grpc
from oip.server import ServerProcess
from tests.server_fixture import channel, grpc_stub, server  # noqa: F401

DEADLINE = 10


def test_server_live_and_ready(grpc_stub):
    assert grpc_stub.ServerLive(pb.ServerLiveRequest(), timeout=DEADLINE).live
    assert grpc_stub.ServerReady(pb.ServerReadyRequest(), timeout=DEADLINE).ready


@pytest.mark.parametrize("name", ["simple", "repeat_int32"], ids=str)
def test_demo_model_ready(grpc_stub, name):
    response = grpc_stub.ModelReady(pb.ModelReadyRequest(name=name), timeout=DEADLINE)

    assert response.ready


def test_unknown_model_not_ready(grpc_stub):
    response = grpc_stub.ModelReady(
        pb.ModelReadyRequest(name="absent"), timeout=DEADLINE
    )

    assert not response.ready


def test_grpc_health_check_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)

    response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE)

    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_health_check_unknown_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)

    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=DEADLINE)

    assert info.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"]
)
def test_server_shuts_down_cleanly_on_signal(signum):
    process = ServerProcess().start()

    os.kill(process.pid, signum)
    deadline = time.monotonic() + 10
    while process.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)

    code = process.returncode
    process.close()
    assert code == 0
