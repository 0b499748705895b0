"""oip against tritonclient on the same server, in the same run: ratios.

oip and tritonclient.grpc cannot share a process: both register Triton's
`inference` protobuf package in protobuf's default pool. So this script
runs each client in its own child process, alternating rounds of the two so
that drift on a busy machine hits both alike, and reports medians and the
ratio tritonclient / oip (above 1: oip is faster). Every answer is checked;
no speed is asserted. tests/interop/tritonclient_check.sh runs it.

    python grpc_bench.py --url 127.0.0.1:8001 --oip-path STAGE
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

CASES = ("small", "large", "bytes")
TITLES = {
    "small": "simple INT32 [1,16] infer",
    "large": "identity_fp32 {mib} MiB round trip",
    "bytes": "BYTES encode+decode, 100000 elements of 16-1000 B",
}
CALLS = {"small": 40, "large": 3, "bytes": 2}


def _time(case: Callable[[], None], calls: int) -> list[tuple[float, float]]:
    case()  # warm up: connection, caches
    samples = []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        case()
        samples.append((time.perf_counter() - wall, time.process_time() - cpu))
    return samples


def _oip_cases(url: str, mib: int) -> dict[str, Callable[[], None]]:
    import numpy as np

    import oip
    from oip._bytes import decode_bytes, encode_bytes

    client = oip.Client(url, timeout=120)
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    tensor = np.random.default_rng(1).standard_normal(mib * 262144).astype(np.float32)
    items = _bytes_items(np)

    def small() -> None:
        assert client.infer("simple", {"INPUT0": a, "INPUT1": a})["OUTPUT0"][0, 3] == 6

    def large() -> None:
        assert (
            client.infer("identity_fp32", {"INPUT0": tensor})["OUTPUT0"][-1]
            == tensor[-1]
        )

    def codec() -> None:
        assert len(decode_bytes(encode_bytes(items.tolist()), len(items))) == len(items)

    return {"small": small, "large": large, "bytes": codec}


def _tritonclient_cases(url: str, mib: int) -> dict[str, Callable[[], None]]:
    import numpy as np
    import tritonclient.grpc as tc
    from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

    client = tc.InferenceServerClient(url)
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    tensor = np.random.default_rng(1).standard_normal(mib * 262144).astype(np.float32)
    items = _bytes_items(np)
    pair = [
        tc.InferInput("INPUT0", [1, 16], "INT32"),
        tc.InferInput("INPUT1", [1, 16], "INT32"),
    ]
    big = tc.InferInput("INPUT0", [tensor.size], "FP32")

    def small() -> None:
        for given in pair:
            given.set_data_from_numpy(a)
        assert client.infer("simple", pair).as_numpy("OUTPUT0")[0, 3] == 6

    def large() -> None:
        big.set_data_from_numpy(tensor)
        assert (
            client.infer("identity_fp32", [big]).as_numpy("OUTPUT0")[-1] == tensor[-1]
        )

    def codec() -> None:
        wire = serialize_byte_tensor(items).item()
        assert len(deserialize_bytes_tensor(wire)) == len(items)

    return {"small": small, "large": large, "bytes": codec}


def _bytes_items(np):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    items = np.empty(100_000, dtype=np.object_)
    items[:] = [rng.bytes(int(n)) for n in rng.integers(16, 1000, len(items))]
    return items


def _child(client: str, url: str, mib: int) -> int:
    cases = (_oip_cases if client == "oip" else _tritonclient_cases)(url, mib)
    print(json.dumps({name: _time(cases[name], CALLS[name]) for name in CASES}))
    return 0


def _run_child(client: str, args: argparse.Namespace) -> dict[str, list[list[float]]]:
    env = dict(os.environ)
    if client == "oip":
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [args.oip_path, env.get("PYTHONPATH")])
        )
    command = [
        sys.executable,
        __file__,
        "--url",
        args.url,
        "--mebibytes",
        str(args.mebibytes),
        "--child",
        client,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{client} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, list[list[float]]] = json.loads(
        done.stdout.strip().splitlines()[-1]
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="host:port of the server")
    parser.add_argument(
        "--oip-path", default="", help="directory that holds the oip package"
    )
    parser.add_argument(
        "--mebibytes", type=int, default=16, help="size of the large tensor"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds per client"
    )
    parser.add_argument(
        "--child", choices=["oip", "tritonclient"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.url, args.mebibytes)

    samples: dict[str, dict[str, list[list[float]]]] = {"oip": {}, "tritonclient": {}}
    for _ in range(args.rounds):
        for client in ("oip", "tritonclient"):
            for name, values in _run_child(client, args).items():
                samples[client].setdefault(name, []).extend(values)

    for name in CASES:
        (ow, oc), (tw, tcpu) = (
            tuple(statistics.median(s[i] for s in samples[c][name]) for i in (0, 1))
            for c in ("oip", "tritonclient")
        )
        print(
            f"{TITLES[name].format(mib=args.mebibytes)}: wall oip {ow * 1e3:.2f} "
            "ms, tritonclient "
            f"{tw * 1e3:.2f} ms (x{tw / ow:.2f}); client CPU oip {oc * 1e3:.2f} ms, "
            f"tritonclient {tcpu * 1e3:.2f} ms (x{tcpu / max(oc, 1e-9):.2f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
