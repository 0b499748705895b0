"""A client with HTTP/2 keepalive pings: `oip.KeepAliveOptions` sets how often
the channel pings an idle connection and how long it waits for the answer,
so a long-lived client notices a dead connection.
"""

from __future__ import annotations

import sys

import numpy as np

import oip
from examples.example_flags import ExampleFailure, expect, parse_args


def main() -> int:
    args = parse_args(__doc__)
    keepalive = oip.KeepAliveOptions(
        # Ping after a minute idle; servers refuse pings much more often.
        time_ms=60_000,
        timeout_ms=20_000,  # drop the connection if a ping goes unanswered this long
        permit_without_calls=True,  # ping even when no call is running
        max_pings_without_data=2,
    )
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), -1, dtype=np.int32)
    try:
        with oip.Client(args.url, timeout=args.timeout, keepalive=keepalive) as client:
            expect(client.is_server_live(), "server is not live")
            result = client.infer("simple", {"INPUT0": a, "INPUT1": b})
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
    print(
        f"keepalive {keepalive.time_ms} ms / timeout {keepalive.timeout_ms} ms; "
        f"OUTPUT0 {result['OUTPUT0'][0].tolist()}"
    )
    print("PASS: simple_grpc_keepalive_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
