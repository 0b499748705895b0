"""BYTES tensors: `simple_string` adds and subtracts integers written as text.

Each input is a [1, 16] BYTES tensor of decimal numbers; the outputs are
decimal text too, returned as a numpy object array of bytes.
"""

from __future__ import annotations

import sys

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args


def main() -> int:
    args = parse_args(__doc__)
    numbers0 = np.arange(16, dtype=np.int64)
    numbers1 = np.full(16, 1, dtype=np.int64)
    # str or bytes elements both work; an object array of str is encoded as UTF-8.
    text0 = np.array([str(n) for n in numbers0], dtype=np.object_).reshape(1, 16)
    text1 = np.array([str(n).encode() for n in numbers1], dtype=np.object_).reshape(
        1, 16
    )
    try:
        with oip.Client(args.url, timeout=args.timeout) as client:
            inputs = [
                oip.InferInput("INPUT0", text0, datatype="BYTES"),
                oip.InferInput("INPUT1", text1, datatype="BYTES"),
            ]
            result = client.infer("simple_string", inputs)
        expect(
            result.outputs["OUTPUT0"].datatype == "BYTES",
            f"OUTPUT0 datatype {result.outputs['OUTPUT0'].datatype}",
        )
        sums = [int(item) for item in result["OUTPUT0"].reshape(-1)]
        diffs = [int(item) for item in result["OUTPUT1"].reshape(-1)]
        expect(sums == (numbers0 + numbers1).tolist(), f"OUTPUT0 is {sums}")
        expect(diffs == (numbers0 - numbers1).tolist(), f"OUTPUT1 is {diffs}")
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    for x, y, s, d in zip(text0[0], text1[0], sums, diffs):
        print(f"{x} + {y.decode()} = {s}    {x} - {y.decode()} = {d}")
    print(
        f"OUTPUT0 {result['OUTPUT0'][0].tolist()[:4]}... as bytes, {len(sums)} "
        "sums checked"
    )
    print("PASS: simple_grpc_string_infer_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
