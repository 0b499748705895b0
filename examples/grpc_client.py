"""Health, metadata, config and one inference on `simple`, with raw stubs.

Uses only the generated modules (oip.protocol), not the oip client library.
"""

from __future__ import annotations

import sys

import grpc
import numpy as np

from examples.example_flags import CHANNEL_OPTIONS, ExampleFailure, expect, parse_args
from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc


def check_health(
    stub: grpc_service_pb2_grpc.GRPCInferenceServiceStub, timeout: float
) -> None:
    expect(
        stub.ServerLive(pb.ServerLiveRequest(), timeout=timeout).live,
        "server is not live",
    )
    expect(
        stub.ServerReady(pb.ServerReadyRequest(), timeout=timeout).ready,
        "server is not ready",
    )
    ready = stub.ModelReady(pb.ModelReadyRequest(name="simple"), timeout=timeout)
    expect(ready.ready, "model 'simple' is not ready")


def show_metadata(
    stub: grpc_service_pb2_grpc.GRPCInferenceServiceStub, timeout: float
) -> None:
    server = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=timeout)
    print(f"server: {server.name} {server.version}")

    model = stub.ModelMetadata(pb.ModelMetadataRequest(name="simple"), timeout=timeout)
    inputs = {t.name: (t.datatype, list(t.shape)) for t in model.inputs}
    print(f"model: {model.name} versions {list(model.versions)} inputs {inputs}")
    expect(
        inputs.get("INPUT0") == ("INT32", [-1, 16]),
        f"unexpected INPUT0 metadata {inputs}",
    )

    config = stub.ModelConfig(
        pb.ModelConfigRequest(name="simple"), timeout=timeout
    ).config
    print(f"config: max_batch_size {config.max_batch_size}, {len(config.input)} inputs")
    expect(config.name == "simple", f"config names model {config.name!r}")


def infer(stub: grpc_service_pb2_grpc.GRPCInferenceServiceStub, timeout: float) -> None:
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.ones((1, 16), dtype=np.int32)
    request = pb.ModelInferRequest(model_name="simple", id="grpc_client")
    for name in ("INPUT0", "INPUT1"):
        request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
    request.raw_input_contents.extend([a.tobytes(), b.tobytes()])

    response = stub.ModelInfer(request, timeout=timeout)

    outputs = {
        tensor.name: np.frombuffer(raw, dtype="<i4").reshape(tensor.shape)
        for tensor, raw in zip(response.outputs, response.raw_output_contents)
    }
    expect(
        np.array_equal(outputs["OUTPUT0"], a + b), f"OUTPUT0 is {outputs['OUTPUT0']}"
    )
    expect(
        np.array_equal(outputs["OUTPUT1"], a - b), f"OUTPUT1 is {outputs['OUTPUT1']}"
    )
    print(f"{a[0]} + {b[0]} = {outputs['OUTPUT0'][0]}")


def main() -> int:
    args = parse_args(__doc__)
    with grpc.insecure_channel(args.url, options=CHANNEL_OPTIONS) as channel:
        stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            check_health(stub, args.timeout)
            show_metadata(stub, args.timeout)
            infer(stub, args.timeout)
        except (grpc.RpcError, ExampleFailure) as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1
    print("PASS: grpc_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
