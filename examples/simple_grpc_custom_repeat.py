"""A decoupled model on a stream: `repeat_int32` answers one request with one
response per IN element (OUT = IN[i], IDX = i), then, because the request
asks for it, with an empty response flagged final.
"""

from __future__ import annotations

import sys

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args


def main() -> int:
    args = parse_args(__doc__)
    values = np.array([4, 8, 15, 16, 23, 42], dtype=np.int32)
    inputs = {
        "IN": values,
        "DELAY": np.full(len(values), 10, dtype=np.uint32),  # ms before each response
        "WAIT": np.zeros(1, dtype=np.uint32),  # ms before the final one
    }
    received: list[tuple[int, int]] = []
    final = None
    try:
        with (
            oip.Client(args.url, timeout=args.timeout) as client,
            client.stream(timeout=args.timeout) as stream,
        ):
            stream.send(
                "repeat_int32",
                inputs,
                request_id="repeat-1",
                enable_empty_final_response=True,
            )
            for result in stream:
                result.raise_for_error()
                expect(result.id == "repeat-1", f"response to request {result.id!r}")
                if result.is_final:
                    final = result
                    break  # the request is answered; the stream stays open for more
                received.append((int(result["IDX"][0]), int(result["OUT"][0])))
        expect(final is not None, f"no final response after {received}")
        assert final is not None
        expect(len(final) == 0, f"the final response has outputs {list(final)}")
        expect(
            received == list(enumerate(values.tolist())),
            f"received (IDX, OUT) {received}",
        )
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(
        f"{len(received)} responses in IDX order, then the empty final one: "
        f"{[v for _, v in received]}"
    )
    print("PASS: simple_grpc_custom_repeat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
