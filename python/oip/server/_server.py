"""Starting and stopping the reference server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import grpc

from oip.server._models import Model, demo_models
from oip.server._service import InferenceService, health_handler, inference_handler

_LOG = logging.getLogger(__name__)

# Large enough for big tensors; gRPC's default is 4 MiB.
MAX_MESSAGE_BYTES = 2**31 - 1


@dataclass(frozen=True)
class ServerTls:
    """PEM files for TLS; with `client_ca_file`, clients must present a
    certificate signed by it (mutual TLS)."""

    cert_file: str
    key_file: str
    client_ca_file: Optional[str] = None

    def credentials(self) -> grpc.ServerCredentials:
        def read(path: str) -> bytes:
            with open(path, "rb") as file:
                return file.read()

        client_ca = read(self.client_ca_file) if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(read(self.key_file), read(self.cert_file))],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )


class ReferenceServer:
    """An asyncio gRPC server that speaks the protocol with demo models.

    Example:
        server = ReferenceServer(grpc_port=0)
        port = await server.start()
        ...
        await server.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        grpc_port: int = 8001,
        models: Optional[Mapping[str, Model]] = None,
        model_control_mode: str = "none",
        load_models: Sequence[str] = (),
        tls: Optional[ServerTls] = None,
        server_name: str = "oip-reference",
    ) -> None:
        """Builds the service; `load_models` apply in explicit mode ("*": all).

        Raises:
            ValueError: an unknown mode, or a model to load that does not exist.
        """
        self.host = host
        self.grpc_port = grpc_port
        self._models = dict(models) if models is not None else demo_models()
        self._service = InferenceService(
            self._models, model_control_mode, load_models, server_name=server_name
        )
        self._server: Optional[grpc.aio.Server] = None
        self._tls = tls

    async def start(self) -> int:
        """Binds and starts serving; returns the bound gRPC port.

        Raises:
            OSError: the address cannot be bound.
        """
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        handlers = (inference_handler(self._service), health_handler())
        server.add_generic_rpc_handlers(handlers)
        address = f"{self.host}:{self.grpc_port}"
        try:
            if self._tls is not None:
                port = server.add_secure_port(address, self._tls.credentials())
            else:
                port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind gRPC to {address}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot bind gRPC to {address}")
        await server.start()
        self._server = server
        self.grpc_port = port
        _LOG.info(
            "serving gRPC on %s:%d with models %s",
            self.host,
            port,
            ", ".join(sorted(self._models)),
        )
        return port

    async def stop(self, grace: float = 1.0) -> None:
        """Stops accepting calls and ends those still running after `grace` s."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
            _LOG.info("stopped")
        self._service.close()

    async def wait(self) -> None:
        """Returns when the server has stopped."""
        if self._server is not None:
            await self._server.wait_for_termination()
