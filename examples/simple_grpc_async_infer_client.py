"""Inferences that run in the background: `Client.async_infer` returns an
InferFuture at once; wait with `result()`, or be called back when done.
"""

from __future__ import annotations

import queue
import sys
from typing import Optional

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args

COUNT = 4


def inputs(i: int) -> dict[str, np.ndarray]:
    return {
        "INPUT0": np.full((1, 16), i, dtype=np.int32),
        "INPUT1": np.arange(16, dtype=np.int32).reshape(1, 16),
    }


def check(i: int, result: oip.InferResult) -> None:
    a, b = inputs(i).values()
    expect(
        np.array_equal(result["OUTPUT0"], a + b),
        f"request {i}: OUTPUT0 is {result['OUTPUT0']}",
    )
    expect(
        np.array_equal(result["OUTPUT1"], a - b),
        f"request {i}: OUTPUT1 is {result['OUTPUT1']}",
    )


def main() -> int:
    args = parse_args(__doc__)
    done: queue.Queue[tuple[Optional[oip.InferResult], Optional[oip.OipError]]] = (
        queue.Queue()
    )
    try:
        with oip.Client(args.url, timeout=args.timeout) as client:
            # 1. Futures: start several, then collect them in order.
            futures = [
                client.async_infer("simple", inputs(i), request_id=f"future-{i}")
                for i in range(COUNT)
            ]
            for i, future in enumerate(futures):
                result = future.result(timeout=args.timeout)
                expect(
                    result.id == f"future-{i}", f"future {i} answered as {result.id!r}"
                )
                check(i, result)
            print(f"{COUNT} futures answered")

            # 2. Callbacks: called once per request, on a gRPC thread, with
            # (result, None) or (None, error).
            for i in range(COUNT):
                client.async_infer(
                    "simple",
                    inputs(i),
                    request_id=str(i),
                    callback=lambda result, error: done.put((result, error)),
                )
            seen = set()
            for _ in range(COUNT):
                result, error = done.get(timeout=args.timeout)
                if error is not None:
                    raise error
                assert result is not None
                check(int(result.id), result)
                seen.add(int(result.id))
            expect(seen == set(range(COUNT)), f"callbacks for requests {sorted(seen)}")
    except queue.Empty:
        print(f"FAIL: no callback within {args.timeout} s", file=sys.stderr)
        return 1
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"{COUNT} futures and {COUNT} callbacks, every answer checked")
    print("PASS: simple_grpc_async_infer_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
