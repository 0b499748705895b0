"""One inference on `simple` with the oip client: numpy arrays in, numpy out.

`simple` adds and subtracts two INT32 [1, 16] tensors: OUTPUT0 = INPUT0 +
INPUT1, OUTPUT1 = INPUT0 - INPUT1.
"""

from __future__ import annotations

import sys

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args


def main() -> int:
    args = parse_args(__doc__)
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), 2, dtype=np.int32)
    try:
        with oip.Client(args.url, timeout=args.timeout) as client:
            # A name -> array mapping is enough: the dtype gives the datatype.
            result = client.infer(
                "simple",
                {"INPUT0": a, "INPUT1": b},
                outputs=["OUTPUT0", "OUTPUT1"],
                request_id="infer-1",
            )
        expect(result.model_name == "simple", f"answered by {result.model_name!r}")
        expect(result.id == "infer-1", f"request id echoed as {result.id!r}")
        sums, diffs = result["OUTPUT0"], result["OUTPUT1"]
        expect(
            sums.dtype == np.int32 and sums.shape == (1, 16),
            f"OUTPUT0 is {sums.dtype} {sums.shape}",
        )
        expect(np.array_equal(sums, a + b), f"OUTPUT0 is {sums}")
        expect(np.array_equal(diffs, a - b), f"OUTPUT1 is {diffs}")
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    for x, y, s, d in zip(a[0], b[0], sums[0], diffs[0]):
        print(f"{x} + {y} = {s}    {x} - {y} = {d}")
    print(f"OUTPUT0 {sums[0].tolist()}")
    print("PASS: simple_grpc_infer_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
