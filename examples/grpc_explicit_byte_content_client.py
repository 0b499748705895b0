"""Inference on `simple_string` with typed BYTES contents (bytes_contents).

Uses only the generated modules (oip.protocol), not the oip client library.
"""

from __future__ import annotations

import struct
import sys

import grpc

from examples.example_flags import CHANNEL_OPTIONS, ExampleFailure, expect, parse_args
from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc


def decode_bytes_tensor(raw: bytes) -> list[bytes]:
    """Raw BYTES contents: a 4-byte little-endian length before each element."""
    elements, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        elements.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return elements


def main() -> int:
    args = parse_args(__doc__)
    a = [str(i).encode() for i in range(16)]
    b = [b"1"] * 16
    request = pb.ModelInferRequest(model_name="simple_string")
    for name, values in (("INPUT0", a), ("INPUT1", b)):
        tensor = request.inputs.add(name=name, datatype="BYTES", shape=[1, 16])
        tensor.contents.bytes_contents.extend(values)

    with grpc.insecure_channel(args.url, options=CHANNEL_OPTIONS) as channel:
        stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            response = stub.ModelInfer(request, timeout=args.timeout)
            got = {
                tensor.name: decode_bytes_tensor(raw)
                for tensor, raw in zip(response.outputs, response.raw_output_contents)
            }
            expect(
                got.get("OUTPUT0") == [str(i + 1).encode() for i in range(16)],
                f"OUTPUT0 is {got.get('OUTPUT0')}",
            )
            expect(
                got.get("OUTPUT1") == [str(i - 1).encode() for i in range(16)],
                f"OUTPUT1 is {got.get('OUTPUT1')}",
            )
        except (grpc.RpcError, ExampleFailure) as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1

    print(f"OUTPUT1 = {got['OUTPUT1']}")
    print("PASS: grpc_explicit_byte_content_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
