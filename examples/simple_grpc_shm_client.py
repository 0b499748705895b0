"""System shared memory: `simple`'s inputs and outputs live in POSIX shared
memory regions, so no tensor travels in the gRPC messages.

The regions get unique keys, and are unregistered and removed even when
something fails.
"""

from __future__ import annotations

import os
import sys
import uuid

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args

TENSOR_BYTES = 16 * 4  # one INT32 [1, 16] tensor


def run(
    client: oip.Client,
    inputs: oip.SystemSharedMemoryRegion,
    outputs: oip.SystemSharedMemoryRegion,
    names: tuple[str, str],
    registered: list[str],
) -> np.ndarray:
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), 3, dtype=np.int32)
    inputs.write([a, b])  # INPUT0 at offset 0, INPUT1 right after
    for name, region in zip(names, (inputs, outputs)):
        client.register_system_shared_memory(name, region.key, region.byte_size)
        registered.append(name)
    status = {
        region.name: region for region in client.get_system_shared_memory_status()
    }
    expect(set(names) <= set(status), f"registered regions {sorted(status)}")

    tensors = [
        oip.InferInput(name, datatype="INT32", shape=[1, 16])
        for name in ("INPUT0", "INPUT1")
    ]
    tensors[0].set_shared_memory(names[0], TENSOR_BYTES, offset=0)
    tensors[1].set_shared_memory(names[0], TENSOR_BYTES, offset=TENSOR_BYTES)
    requested = [
        oip.RequestedOutput("OUTPUT0").set_shared_memory(
            names[1], TENSOR_BYTES, offset=0
        ),
        oip.RequestedOutput("OUTPUT1").set_shared_memory(
            names[1], TENSOR_BYTES, offset=TENSOR_BYTES
        ),
    ]
    result = client.infer("simple", tensors, requested)

    expect(
        all(result.outputs[name].in_shared_memory for name in ("OUTPUT0", "OUTPUT1")),
        f"outputs not in shared memory: {result.outputs}",
    )
    sums = outputs.read("INT32", [1, 16], offset=0)
    diffs = outputs.read("INT32", [1, 16], offset=TENSOR_BYTES)
    expect(np.array_equal(sums, a + b), f"OUTPUT0 is {sums}")
    expect(np.array_equal(diffs, a - b), f"OUTPUT1 is {diffs}")
    return sums


def main() -> int:
    args = parse_args(__doc__)
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    names = (f"input_data_{tag}", f"output_data_{tag}")
    try:
        with (
            oip.Client(args.url, timeout=args.timeout) as client,
            oip.SystemSharedMemoryRegion.create(
                f"/oip_in_{tag}", 2 * TENSOR_BYTES
            ) as inputs,
            oip.SystemSharedMemoryRegion.create(
                f"/oip_out_{tag}", 2 * TENSOR_BYTES
            ) as outputs,
        ):
            registered: list[str] = []
            try:
                sums = run(client, inputs, outputs, names, registered)
            finally:
                for name in registered:  # leave the server as it was, whatever happened
                    try:
                        client.unregister_system_shared_memory(name)
                    except oip.OipError as exc:
                        print(f"cleanup: {exc}", file=sys.stderr)
            left = {region.name for region in client.get_system_shared_memory_status()}
            expect(not left & set(names), f"regions still registered: {left}")
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"OUTPUT0 read from shared memory: {sums[0].tolist()}")
    print("PASS: simple_grpc_shm_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
