"""asyncio: `oip.AsyncClient` has the methods of `oip.Client` as coroutines;
`asyncio.gather` runs several inferences at once on one channel.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args

COUNT = 8


async def one(client: oip.AsyncClient, i: int) -> tuple[int, oip.InferResult]:
    a = np.full((1, 16), i, dtype=np.int32)
    b = np.arange(16, dtype=np.int32).reshape(1, 16)
    result = await client.infer(
        "simple", {"INPUT0": a, "INPUT1": b}, request_id=f"aio-{i}"
    )
    expect(
        np.array_equal(result["OUTPUT0"], a + b),
        f"request {i}: OUTPUT0 is {result['OUTPUT0']}",
    )
    expect(
        np.array_equal(result["OUTPUT1"], a - b),
        f"request {i}: OUTPUT1 is {result['OUTPUT1']}",
    )
    return i, result


async def run(url: str, timeout: float) -> list[tuple[int, oip.InferResult]]:
    async with oip.AsyncClient(url, timeout=timeout) as client:
        expect(await client.is_model_ready("simple"), "model 'simple' is not ready")
        return await asyncio.gather(*(one(client, i) for i in range(COUNT)))


def main() -> int:
    args = parse_args(__doc__)
    try:
        answers = asyncio.run(run(args.url, args.timeout))
        ids = [result.id for _, result in answers]
        expect(ids == [f"aio-{i}" for i in range(COUNT)], f"request ids {ids}")
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    for _, result in answers:
        print(f"{result.id}: OUTPUT0[:4] = {result['OUTPUT0'][0, :4].tolist()}")
    print(f"{len(answers)} concurrent inferences gathered and checked")
    print("PASS: simple_grpc_aio_infer_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
