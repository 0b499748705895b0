"""Two sequences interleaved with plain `Client.infer` calls: `simple_sequence`
keeps state per sequence id (an int id and a str id are distinct sequences).

Its OUTPUT is INPUT + 1 on the request that starts a sequence, INPUT after.
"""

from __future__ import annotations

import os
import sys
import uuid

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args

VALUES = [11, 7, 5, 3, 2, 0, 1]


def expected(values: list[int]) -> list[int]:
    return [v + 1 if i == 0 else v for i, v in enumerate(values)]


def main() -> int:
    args = parse_args(__doc__)
    # Unique ids, so that other clients' sequences never mix with these.
    sequences = {
        2_000_000 + os.getpid(): VALUES,
        f"seq-{uuid.uuid4().hex[:8]}": [-v for v in VALUES],
    }
    got: dict[object, list[int]] = {seq: [] for seq in sequences}
    try:
        with oip.Client(args.url, timeout=args.timeout) as client:
            for step in range(len(VALUES)):
                for seq, values in sequences.items():
                    result = client.infer(
                        "simple_sequence",
                        {"INPUT": np.array([[values[step]]], dtype=np.int32)},
                        sequence_id=seq,
                        sequence_start=step == 0,
                        sequence_end=step == len(VALUES) - 1,
                    )
                    got[seq].append(int(result["OUTPUT"][0, 0]))
            # The sequences have ended: continuing one without START is refused.
            try:
                client.infer(
                    "simple_sequence",
                    {"INPUT": np.zeros((1, 1), dtype=np.int32)},
                    sequence_id=next(iter(sequences)),
                )
                raise ExampleFailure("a request to an ended sequence was accepted")
            except oip.InvalidInputError as exc:
                print(f"refused after END, as expected: {exc.message}")
        for seq, values in sequences.items():
            expect(
                got[seq] == expected(values),
                f"sequence {seq!r}: outputs {got[seq]}, expected {expected(values)}",
            )
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    for seq, outputs in got.items():
        print(f"sequence {seq!r} ({type(seq).__name__} id): {outputs}")
    print(f"{len(sequences)} interleaved sequences of {len(VALUES)} requests each")
    print("PASS: simple_grpc_sequence_sync_infer_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
