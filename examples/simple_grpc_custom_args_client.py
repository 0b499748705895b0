"""A client configured beyond the defaults: extra gRPC channel arguments,
headers sent with every call (and one call's own), gzip compression, a
retry policy, a per-call deadline and custom request parameters.
"""

from __future__ import annotations

import sys

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args


def main() -> int:
    args = parse_args(__doc__)
    client = oip.Client(
        args.url,
        timeout=60.0,  # the default deadline; the calls below set their own
        channel_args=[
            ("grpc.primary_user_agent", "oip-example/1.0"),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ],
        headers={"x-example": "custom_args_client"},
        compression="gzip",
        retry=oip.RetryPolicy(
            max_attempts=4,
            initial_backoff_s=0.05,
            max_backoff_s=0.5,
            retryable_status_codes=(oip.StatusCode.UNAVAILABLE,),
            include_inference=True,
        ),  # `simple` is stateless: safe to retry
        max_receive_message_bytes=16 * 1024 * 1024,
    )
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.arange(16, dtype=np.int32)[::-1].reshape(1, 16)
    try:
        with client:
            expect(client.is_server_ready(timeout=args.timeout), "server is not ready")
            result = client.infer(
                "simple",
                {"INPUT0": a, "INPUT1": b},
                request_id="custom-args-1",
                parameters={"example_tag": "custom_args", "attempt": 1, "strict": True},
                headers={"x-request-note": "one call's own header"},
                compression="deflate",  # this call only; the others use gzip
                timeout=args.timeout,
            )
            expect(result.id == "custom-args-1", f"request id echoed as {result.id!r}")
            expect(
                np.array_equal(result["OUTPUT0"], a + b),
                f"OUTPUT0 is {result['OUTPUT0']}",
            )
            expect(
                np.array_equal(result["OUTPUT1"], a - b),
                f"OUTPUT1 is {result['OUTPUT1']}",
            )
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"OUTPUT0 {result['OUTPUT0'][0].tolist()} (all 15: a + reversed a)")
    print("PASS: simple_grpc_custom_args_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
