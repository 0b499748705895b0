"""Inference on `simple` with typed contents (int_contents), no raw bytes.

Uses only the generated modules (oip.protocol), not the oip client library.
"""

from __future__ import annotations

import sys

import grpc
import numpy as np

from examples.example_flags import CHANNEL_OPTIONS, ExampleFailure, expect, parse_args
from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc


def build_request(a: np.ndarray, b: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="simple")
    for name, values in (("INPUT0", a), ("INPUT1", b)):
        tensor = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        tensor.contents.int_contents.extend(values.tolist())
    return request


def main() -> int:
    args = parse_args(__doc__)
    a = np.arange(16, dtype=np.int32)
    b = np.full(16, -3, dtype=np.int32)

    with grpc.insecure_channel(args.url, options=CHANNEL_OPTIONS) as channel:
        stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            response = stub.ModelInfer(build_request(a, b), timeout=args.timeout)
            # The server may answer in raw contents even for typed requests.
            got = {
                tensor.name: np.frombuffer(raw, dtype="<i4")
                for tensor, raw in zip(response.outputs, response.raw_output_contents)
            }
            expect(
                np.array_equal(got.get("OUTPUT0"), a + b),
                f"OUTPUT0 is {got.get('OUTPUT0')}",
            )
            expect(
                np.array_equal(got.get("OUTPUT1"), a - b),
                f"OUTPUT1 is {got.get('OUTPUT1')}",
            )
        except (grpc.RpcError, ExampleFailure) as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1

    print(f"{a} - {b} = {got['OUTPUT1']}")
    print("PASS: grpc_explicit_int_content_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
