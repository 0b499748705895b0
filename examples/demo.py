"""Runs every example against the embedded reference server (or --url).

    ./bazelw run //examples:demo
    ./bazelw run //examples:demo -- --url localhost:8001   # another server

Prints one line per example and exits non-zero if any fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from typing import Optional, Sequence

from oip.server import ServerProcess

EXAMPLES = (
    "grpc_client",
    "grpc_explicit_int_content_client",
    "grpc_explicit_byte_content_client",
    "grpc_stream_client",
    "simple_grpc_infer_client",
    "simple_grpc_string_infer_client",
    "simple_grpc_async_infer_client",
    "simple_grpc_aio_infer_client",
    "simple_grpc_sequence_stream_infer_client",
    "simple_grpc_sequence_sync_infer_client",
    "simple_grpc_shm_client",
    "simple_grpc_shm_string_client",
    "simple_grpc_model_control",
    "simple_grpc_health_metadata",
    "simple_grpc_custom_repeat",
    "simple_grpc_keepalive_client",
    "simple_grpc_custom_args_client",
)

# Each example gets this long in all before it counts as failed.
EXAMPLE_TIMEOUT_S = 120


def run_example(name: str, url: str) -> tuple[bool, str, float]:
    """Runs examples.<name> in a child process; (passed, output, seconds)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", f"examples.{name}", "--url", url],
            env=env,
            capture_output=True,
            text=True,
            timeout=EXAMPLE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return (
            False,
            f"timed out after {EXAMPLE_TIMEOUT_S} s",
            time.monotonic() - started,
        )
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0, output, time.monotonic() - started


def run_all(url: str, names: Sequence[str]) -> int:
    failures = 0
    for name in names:
        passed, output, seconds = run_example(name, url)
        lines = output.splitlines() or ["(no output)"]
        # The line before an example's closing PASS line says what it got.
        last = lines[-2] if passed and len(lines) > 1 else lines[-1]
        print(
            f"{'PASS' if passed else 'FAIL'}  {name:<40} {seconds:5.1f}s  {last}",
            flush=True,
        )
        if not passed:
            failures += 1
            print("      " + output.replace("\n", "\n      "), file=sys.stderr)
    print(f"{len(names) - failures} passed, {failures} failed")
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-u", "--url", help="use this server instead of starting the reference server"
    )
    parser.add_argument(
        "names",
        nargs="*",
        default=list(EXAMPLES),
        help="examples to run (default: all)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    unknown = sorted(set(args.names) - set(EXAMPLES))
    if unknown:
        parser.error(
            f"unknown example(s) {', '.join(unknown)}; known: {', '.join(EXAMPLES)}"
        )
    if args.url:
        return run_all(args.url, args.names)
    with ServerProcess() as server:
        print(f"reference server on {server.url}", flush=True)
        return run_all(server.url, args.names)


if __name__ == "__main__":
    sys.exit(main())
