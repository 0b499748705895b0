"""Flags and small helpers shared by the examples."""

from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

# gRPC honours proxy variables even for loopback addresses; examples talk to
# a server they name directly.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


def parse_args(
    description: str, argv: Optional[Sequence[str]] = None
) -> argparse.Namespace:
    """--url, --timeout and --verbose, common to every example."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "-u",
        "--url",
        default="localhost:8001",
        help="server host:port (default localhost:8001)",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=10.0,
        help="deadline of each call in seconds",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return args


class ExampleFailure(Exception):
    """The server answered, but not what the example expected."""


def expect(condition: bool, message: str) -> None:
    """Raises ExampleFailure(message) unless `condition` holds."""
    if not condition:
        raise ExampleFailure(message)
