"""Command line: python -m oip.server --grpc-port 8001."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Optional, Sequence

from oip.server._server import ReferenceServer, ServerTls


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="oip-server", description="The oip reference inference server (gRPC)."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=8001,
        help="gRPC port; 0 picks a free one (default 8001)",
    )
    parser.add_argument(
        "--port-file", help="write the bound gRPC port to this file once serving"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--model-control-mode",
        default="none",
        choices=["none", "explicit"],
        help="none: load every model at start (default); explicit: load only "
        "--load-model ones. Load and unload requests work in both modes.",
    )
    parser.add_argument(
        "--server-name",
        default="oip-reference",
        help="name in ServerMetadata (Triton's own examples expect 'triton')",
    )
    parser.add_argument(
        "--load-model",
        action="append",
        default=[],
        metavar="NAME",
        help="in explicit mode, a model to load at start ('*' for all); repeatable",
    )
    parser.add_argument(
        "--tls-cert-file", metavar="PEM", help="serve TLS with this certificate"
    )
    parser.add_argument(
        "--tls-key-file", metavar="PEM", help="the certificate's private key"
    )
    parser.add_argument(
        "--tls-client-ca-file",
        metavar="PEM",
        help="require client certificates signed by this CA (mutual TLS)",
    )
    args = parser.parse_args(argv)
    if bool(args.tls_cert_file) != bool(args.tls_key_file):
        parser.error("--tls-cert-file and --tls-key-file go together")
    if args.tls_client_ca_file and not args.tls_cert_file:
        parser.error("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
    if args.load_model and args.model_control_mode != "explicit":
        parser.error("--load-model needs --model-control-mode explicit")
    return args


def _write_port(path: str, port: int) -> None:
    partial = f"{path}.partial"
    with open(partial, "w", encoding="ascii") as file:
        file.write(f"{port}\n")
    os.replace(partial, path)


async def _serve(args: argparse.Namespace) -> int:
    try:
        server = ReferenceServer(
            host=args.host,
            grpc_port=args.grpc_port,
            model_control_mode=args.model_control_mode,
            load_models=args.load_model,
            server_name=args.server_name,
            tls=ServerTls(
                args.tls_cert_file, args.tls_key_file, args.tls_client_ca_file
            )
            if args.tls_cert_file
            else None,
        )
        port = await server.start()
    except (OSError, ValueError) as exc:
        logging.getLogger("oip.server").error("%s", exc)
        return 1
    if args.port_file:
        _write_port(args.port_file, port)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the server until SIGINT or SIGTERM; returns the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
