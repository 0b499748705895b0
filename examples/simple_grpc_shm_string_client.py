"""BYTES tensors in system shared memory: `simple_string`'s inputs are
written to a region in the protocol's length-prefixed form; OUTPUT0 comes
back in the response, OUTPUT1 is written by the server into another region.
"""

from __future__ import annotations

import os
import sys
import uuid

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args

OUTPUT_BYTES = 256  # room for OUTPUT1; BYTES outputs vary in size


def run(
    client: oip.Client,
    inputs: oip.SystemSharedMemoryRegion,
    outputs: oip.SystemSharedMemoryRegion,
    names: tuple[str, str],
    registered: list[str],
) -> tuple[list[int], list[int]]:
    a = np.array([str(n).encode() for n in range(16)], dtype=np.object_).reshape(1, 16)
    b = np.array([b"1"] * 16, dtype=np.object_).reshape(1, 16)
    size0 = inputs.write(a)  # BYTES sizes depend on the text: remember them
    size1 = inputs.write(b, offset=size0)
    for name, region in zip(names, (inputs, outputs)):
        client.register_system_shared_memory(name, region.key, region.byte_size)
        registered.append(name)

    tensors = [
        oip.InferInput("INPUT0", datatype="BYTES", shape=[1, 16]).set_shared_memory(
            names[0], size0
        ),
        oip.InferInput("INPUT1", datatype="BYTES", shape=[1, 16]).set_shared_memory(
            names[0], size1, size0
        ),
    ]
    requested = [
        "OUTPUT0",
        oip.RequestedOutput("OUTPUT1").set_shared_memory(names[1], OUTPUT_BYTES),
    ]
    result = client.infer("simple_string", tensors, requested)

    sums = [int(item) for item in result["OUTPUT0"].reshape(-1)]  # in the response
    written = result.outputs["OUTPUT1"]
    expect(written.in_shared_memory, f"OUTPUT1 is not in shared memory: {written}")
    used = int(written.parameters["shared_memory_byte_size"])
    diffs = [
        int(item) for item in outputs.read("BYTES", [1, 16], byte_size=used).reshape(-1)
    ]
    expect(sums == [n + 1 for n in range(16)], f"OUTPUT0 is {sums}")
    expect(diffs == [n - 1 for n in range(16)], f"OUTPUT1 is {diffs}")
    return sums, diffs


def main() -> int:
    args = parse_args(__doc__)
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    names = (f"string_in_{tag}", f"string_out_{tag}")
    try:
        with (
            oip.Client(args.url, timeout=args.timeout) as client,
            oip.SystemSharedMemoryRegion.create(f"/oip_str_in_{tag}", 256) as inputs,
            oip.SystemSharedMemoryRegion.create(
                f"/oip_str_out_{tag}", OUTPUT_BYTES
            ) as outputs,
        ):
            registered: list[str] = []
            try:
                sums, diffs = run(client, inputs, outputs, names, registered)
            finally:
                for name in registered:  # leave the server as it was, whatever happened
                    try:
                        client.unregister_system_shared_memory(name)
                    except oip.OipError as exc:
                        print(f"cleanup: {exc}", file=sys.stderr)
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"OUTPUT0 (response): {sums}")
    print(f"OUTPUT1 (shared memory): {diffs}")
    print("PASS: simple_grpc_shm_string_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
