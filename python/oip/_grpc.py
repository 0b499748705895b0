"""What the synchronous and asyncio gRPC clients share: channel settings,
call metadata, and the mapping from gRPC errors to oip's."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import grpc

from oip._errors import (
    InvalidInputError,
    OipError,
    ServerUnavailableError,
    StatusCode,
    error_for_status,
)
from oip._ops import IDEMPOTENT_METHODS, SERVICE

_LOG = logging.getLogger(__name__)

# Large tensors: gRPC's default limit of 4 MiB is far too small.
DEFAULT_MAX_MESSAGE_BYTES = 2**31 - 1
DEFAULT_TIMEOUT_S = 60.0

Headers = Optional[Mapping[str, str]]
PathOrBytes = Union[str, "os.PathLike[str]", bytes, None]
_COMPRESSION = {
    None: grpc.Compression.NoCompression,
    "none": grpc.Compression.NoCompression,
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
}


@dataclass(frozen=True)
class KeepAliveOptions:
    """HTTP/2 keepalive pings (gRPC's defaults unless set).

    Attributes:
        time_ms: ping after this long without activity.
        timeout_ms: drop the connection if a ping is not answered in time.
        permit_without_calls: ping even when no call is running.
        max_pings_without_data: pings allowed with no data sent (0: any).
    """

    time_ms: int = 2**31 - 1
    timeout_ms: int = 20_000
    permit_without_calls: bool = False
    max_pings_without_data: int = 2

    def channel_args(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.keepalive_time_ms", self.time_ms),
            ("grpc.keepalive_timeout_ms", self.timeout_ms),
            ("grpc.keepalive_permit_without_calls", int(self.permit_without_calls)),
            ("grpc.http2.max_pings_without_data", self.max_pings_without_data),
        ]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff, done by gRPC itself.

    By default only calls that change nothing on the server are retried
    (health, metadata, config, index, statistics, status); set
    `include_inference` to retry ModelInfer too. `max_attempts` counts the
    first try: 1 turns retries off; gRPC allows at most 5.
    """

    max_attempts: int = 3
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0
    retryable_status_codes: Sequence[StatusCode] = (StatusCode.UNAVAILABLE,)
    include_inference: bool = False

    def __post_init__(self) -> None:
        # gRPC rejects such a service config, and then fails every call.
        for name in ("initial_backoff_s", "max_backoff_s", "backoff_multiplier"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(
                    f"RetryPolicy {name} is {getattr(self, name)}; it must be > 0"
                )
        if self.max_attempts < 1:
            raise InvalidInputError(
                f"RetryPolicy max_attempts is {self.max_attempts}; it must be >= 1"
            )
        if not self.retryable_status_codes:
            raise InvalidInputError(
                "RetryPolicy retryable_status_codes is empty; give at least one"
            )

    def service_config(self) -> str:
        methods = list(IDEMPOTENT_METHODS) + (
            ["ModelInfer"] if self.include_inference else []
        )
        policy = {
            "maxAttempts": min(self.max_attempts, 5),
            "initialBackoff": _duration(self.initial_backoff_s),
            "maxBackoff": _duration(self.max_backoff_s),
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": [
                code.value for code in self.retryable_status_codes
            ],
        }
        config = {
            "methodConfig": [
                {
                    "name": [
                        {"service": SERVICE, "method": method} for method in methods
                    ],
                    "retryPolicy": policy,
                }
            ]
        }
        return json.dumps(config)


def _duration(seconds: float) -> str:
    """Seconds as a service config duration ("0.1s", never "1e-05s").

    gRPC counts backoff in whole milliseconds and refuses 0, so a shorter
    positive duration rounds up to 1 ms.
    """
    millis = max(1, math.ceil(round(seconds * 1000, 6)))
    return f"{millis / 1000:.3f}".rstrip("0").rstrip(".") + "s"


@dataclass(frozen=True)
class TlsOptions:
    """TLS, and mutual TLS when a key and certificate chain are given.

    Each of the three may be PEM bytes or a path to a PEM file.
    """

    root_certificates: PathOrBytes = None
    private_key: PathOrBytes = None
    certificate_chain: PathOrBytes = None
    target_name_override: Optional[str] = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.root_certificates),
            private_key=_read_pem(self.private_key),
            certificate_chain=_read_pem(self.certificate_chain),
        )


def _read_pem(value: PathOrBytes) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as file:
        return file.read()


@dataclass(frozen=True)
class ChannelSettings:
    """Everything that shapes a client's channel; see `Client` for each."""

    url: str
    tls: Optional[TlsOptions] = None
    keepalive: Optional[KeepAliveOptions] = None
    retry: Optional[RetryPolicy] = field(default_factory=RetryPolicy)
    compression: Optional[str] = None
    max_send_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_receive_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    channel_args: Sequence[tuple[str, Any]] = ()

    def target(self) -> str:
        url = self.url
        for scheme in ("grpc://", "http://", "https://", "grpcs://"):
            if url.startswith(scheme):
                return url[len(scheme) :]
        return url

    def options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", self.max_send_message_bytes),
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
        ]
        if is_loopback(self.target()):
            # gRPC honours proxy variables even for loopback addresses.
            options.append(("grpc.enable_http_proxy", 0))
        if self.keepalive is not None:
            options.extend(self.keepalive.channel_args())
        if self.retry is not None and self.retry.max_attempts > 1:
            options.append(("grpc.enable_retries", 1))
            options.append(("grpc.service_config", self.retry.service_config()))
        else:
            options.append(("grpc.enable_retries", 0))
        if self.tls is not None and self.tls.target_name_override:
            options.append(
                ("grpc.ssl_target_name_override", self.tls.target_name_override)
            )
        options.extend(self.channel_args)
        return options

    def grpc_compression(self) -> grpc.Compression:
        return compression_of(self.compression)


class CallDefaults:
    """What every call of a client carries unless the call says otherwise:
    a deadline and metadata (the client's headers)."""

    def __init__(self, timeout: float, headers: Headers) -> None:
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._metadata = metadata(self._headers, None)

    def metadata(self, headers: Headers) -> CallMetadata:
        """The client's headers, then the call's."""
        return self._metadata if headers is None else metadata(self._headers, headers)

    def kwargs(
        self, timeout: Optional[float], headers: Headers, compression: Optional[str]
    ) -> dict[str, Any]:
        """Keyword arguments of a unary gRPC call."""
        args: dict[str, Any] = {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": self.metadata(headers),
        }
        if compression is not None:
            args["compression"] = compression_of(compression)
        return args


def compression_of(name: Optional[str]) -> grpc.Compression:
    """gRPC's compression enum for "gzip", "deflate" or None."""
    try:
        return _COMPRESSION[name.lower() if name else None]
    except KeyError:
        raise InvalidInputError(
            f"compression {name!r} is not one of gzip, deflate or None"
        ) from None


def is_loopback(target: str) -> bool:
    """True for localhost and loopback addresses (with or without a port)."""
    host = (
        target.rsplit(":", 1)[0]
        if target.count(":") == 1 or target.startswith("[")
        else target
    )
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


CallMetadata = Optional[tuple[tuple[str, str], ...]]


def metadata(client_headers: Headers, call_headers: Headers) -> CallMetadata:
    """Call metadata: the client's headers, then the call's (keys lowercased)."""
    merged: dict[str, str] = {}
    for headers in (client_headers, call_headers):
        for key, value in (headers or {}).items():
            merged[key.lower()] = value
    return tuple(merged.items()) or None


def map_rpc_error(
    exc: grpc.RpcError,
    target: str,
    model: Optional[str] = None,
    request_id: Optional[str] = None,
) -> OipError:
    """The oip error for a failed gRPC call (never includes header values)."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
    status = (
        StatusCode[code.name]
        if code is not None and code.name in StatusCode.__members__
        else StatusCode.UNKNOWN
    )
    if status is StatusCode.UNAVAILABLE and _is_connection_failure(details):
        return ServerUnavailableError(
            f"cannot reach the server at {target}: {details}",
            model=model,
            request_id=request_id,
        )
    return error_for_status(status, details, model=model, request_id=request_id)


def _is_connection_failure(details: str) -> bool:
    words = (
        "failed to connect",
        "connection refused",
        "connect failed",
        "dns resolution",
        "unavailable",
        "socket closed",
        "connection reset",
        "name resolution",
    )
    lowered = details.lower()
    return any(word in lowered for word in words)
