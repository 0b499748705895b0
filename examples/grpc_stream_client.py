"""Decoupled inference over ModelStreamInfer: `repeat_int32` answers once per
input element, then with an empty final response.

Uses only the generated modules (oip.protocol), not the oip client library.
"""

from __future__ import annotations

import sys

import grpc
import numpy as np

from examples.example_flags import CHANNEL_OPTIONS, ExampleFailure, expect, parse_args
from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc


def build_request(values: np.ndarray, delay_ms: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="repeat_int32", id="stream-1")
    request.parameters["triton_enable_empty_final_response"].bool_param = True
    n = len(values)
    request.inputs.add(name="IN", datatype="INT32", shape=[n])
    request.inputs.add(name="DELAY", datatype="UINT32", shape=[n])
    request.inputs.add(name="WAIT", datatype="UINT32", shape=[1])
    delays = np.full(n, delay_ms, dtype=np.uint32)
    request.raw_input_contents.extend(
        [values.tobytes(), delays.tobytes(), np.zeros(1, np.uint32).tobytes()]
    )
    return request


def main() -> int:
    args = parse_args(__doc__)
    values = np.array([4, 8, 15, 16, 23, 42], dtype=np.int32)
    received = []
    final_seen = False

    with grpc.insecure_channel(args.url, options=CHANNEL_OPTIONS) as channel:
        stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            # One request; the stream ends once the server has answered it.
            stream = stub.ModelStreamInfer(
                iter([build_request(values, 20)]), timeout=args.timeout
            )
            for message in stream:
                expect(
                    not message.error_message, f"stream error: {message.error_message}"
                )
                expect(not final_seen, "a response arrived after the final one")
                response = message.infer_response
                if response.parameters["triton_final_response"].bool_param:
                    final_seen = True
                    continue
                out = {
                    t.name: raw
                    for t, raw in zip(response.outputs, response.raw_output_contents)
                }
                idx = int(np.frombuffer(out["IDX"], "<u4")[0])
                received.append((idx, int(np.frombuffer(out["OUT"], "<i4")[0])))
            expect(
                received == list(enumerate(values.tolist())),
                f"received (IDX, OUT) {received}",
            )
            expect(final_seen, "no final response")
        except (grpc.RpcError, ExampleFailure) as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1

    print(f"{len(received)} responses then the final one: {[v for _, v in received]}")
    print("PASS: grpc_stream_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
