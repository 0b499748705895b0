"""Two sequences interleaved on one stream: `simple_sequence` keeps state per
sequence id (an int id and a str id are distinct sequences).

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
        1_000_000 + os.getpid(): VALUES,
        f"seq-{uuid.uuid4().hex[:8]}": [-v for v in VALUES],
    }
    got: dict[object, list[int]] = {seq: [] for seq in sequences}
    try:
        with (
            oip.Client(args.url, timeout=args.timeout) as client,
            client.stream(timeout=args.timeout) as stream,
        ):
            for step in range(len(VALUES)):
                for seq, values in sequences.items():
                    stream.send(
                        "simple_sequence",
                        {"INPUT": np.array([[values[step]]], dtype=np.int32)},
                        request_id=f"{seq}/{step}",
                        sequence_id=seq,
                        sequence_start=step == 0,
                        sequence_end=step == len(VALUES) - 1,
                    )
            stream.close()  # nothing more to send; responses still arrive
            count = 0
            for result in stream:
                result.raise_for_error()
                name, _, step = result.id.rpartition("/")
                seq = next(s for s in sequences if str(s) == name)
                expect(
                    int(step) == len(got[seq]),
                    f"sequence {seq!r}: response {step} out of order",
                )
                got[seq].append(int(result["OUTPUT"][0, 0]))
                count += 1
                if count == len(VALUES) * len(sequences):
                    break
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
    print(
        f"{len(sequences)} interleaved sequences of {len(VALUES)} requests on one "
        "stream"
    )
    print("PASS: simple_grpc_sequence_stream_infer_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
