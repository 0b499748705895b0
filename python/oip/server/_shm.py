"""System shared memory regions, registered by name, read and written by tensors.

A region is a window [offset, offset + byte_size) of a POSIX shared memory
object, the file /dev/shm/<name>. The server maps it once at registration
and copies tensor data in and out of it; every access is bounds-checked
against the registered window and against the file's current size, so a
client that shrinks the file gets an error rather than a crashed server.
"""

from __future__ import annotations

import logging
import mmap
import os
import stat
from dataclasses import dataclass
from typing import Mapping, Optional

import grpc

from oip.protocol import grpc_service_pb2 as pb
from oip.server._errors import RequestError, invalid, not_found

_LOG = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"

# Tensor parameters that place a tensor in a registered region.
REGION = "shared_memory_region"
BYTE_SIZE = "shared_memory_byte_size"
OFFSET = "shared_memory_offset"
PARAMETERS = (REGION, BYTE_SIZE, OFFSET)


@dataclass(frozen=True)
class ShmRef:
    """Where a tensor lives: `byte_size` bytes at `offset` of region `region`."""

    region: str
    offset: int
    byte_size: int


def _integer(where: str, parameters: Mapping[str, pb.InferParameter], key: str) -> int:
    parameter = parameters[key]
    choice = parameter.WhichOneof("parameter_choice")
    if choice not in ("int64_param", "uint64_param"):
        raise invalid(f"{where}: parameter '{key}' must be int64_param or uint64_param")
    value = getattr(parameter, choice)
    if value < 0:
        raise invalid(f"{where}: parameter '{key}' is {value}; it cannot be negative")
    return int(value)


def shm_ref(
    where: str, parameters: Mapping[str, pb.InferParameter]
) -> Optional[ShmRef]:
    """The tensor's shared memory placement, or None when it has none.

    Raises:
        RequestError: the parameters are incomplete or of the wrong type.
    """
    present = [key for key in PARAMETERS if key in parameters]
    if not present:
        return None
    if REGION not in parameters:
        raise invalid(f"{where}: parameter '{present[0]}' needs '{REGION}'")
    region = parameters[REGION]
    if region.WhichOneof("parameter_choice") != "string_param":
        raise invalid(f"{where}: parameter '{REGION}' must be string_param")
    if BYTE_SIZE not in parameters:
        raise invalid(
            f"{where}: shared memory region '{region.string_param}' needs "
            f"parameter '{BYTE_SIZE}'"
        )
    offset = _integer(where, parameters, OFFSET) if OFFSET in parameters else 0
    byte_size = _integer(where, parameters, BYTE_SIZE)
    return ShmRef(region.string_param, offset, byte_size)


def key_path(key: str) -> str:
    """The file under /dev/shm that POSIX shm name `key` ("/abc" or "abc") names.

    Raises:
        RequestError: INVALID_ARGUMENT for a key that is not a plain name or
            that resolves outside /dev/shm; NOT_FOUND when no such object.
    """
    name = key[1:] if key.startswith("/") else key
    if not name or "/" in name or ".." in name or "\0" in name:
        raise invalid(
            f"shared memory key '{key}' is not a POSIX shared memory name: "
            "expected '/name' with no other '/' and no '..'"
        )
    path = os.path.join(SHM_DIR, name)
    if not os.path.lexists(path):
        raise not_found(f"shared memory key '{key}': no such object in {SHM_DIR}")
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(SHM_DIR):
        raise invalid(f"shared memory key '{key}' resolves outside {SHM_DIR}")
    return real


class Region:
    """One registered region, mapped read-write."""

    def __init__(self, name: str, key: str, offset: int, byte_size: int) -> None:
        self.name = name
        self.key = key
        self.offset = offset
        self.byte_size = byte_size
        where = f"shared memory region '{name}' (key '{key}')"
        if byte_size <= 0:
            raise invalid(f"{where}: byte_size must be positive")
        path = key_path(key)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise invalid(f"{where}: cannot open: {exc.strerror}") from exc
        try:
            self._map, self._start = self._map_window(where)
        except BaseException:
            os.close(self._fd)
            raise

    def _map_window(self, where: str) -> tuple[mmap.mmap, int]:
        info = os.fstat(self._fd)
        if not stat.S_ISREG(info.st_mode):
            raise invalid(f"{where}: not a regular shared memory object")
        if self.offset + self.byte_size > info.st_size:
            raise invalid(
                f"{where}: offset {self.offset} + byte_size {self.byte_size} "
                f"exceeds the object's {info.st_size} bytes"
            )
        aligned = self.offset - self.offset % mmap.ALLOCATIONGRANULARITY
        start = self.offset - aligned
        try:
            window = mmap.mmap(self._fd, start + self.byte_size, offset=aligned)
        except (OSError, ValueError) as exc:
            raise invalid(f"{where}: cannot map: {exc}") from exc
        return window, start

    def status(self) -> pb.SystemSharedMemoryStatusResponse.RegionStatus:
        """The region as SystemSharedMemoryStatus reports it."""
        return pb.SystemSharedMemoryStatusResponse.RegionStatus(
            name=self.name, key=self.key, offset=self.offset, byte_size=self.byte_size
        )

    def _check(self, where: str, offset: int, size: int) -> int:
        if self._map.closed:
            raise invalid(
                f"{where}: shared memory region '{self.name}' was unregistered"
            )
        if offset + size > self.byte_size:
            raise invalid(
                f"{where}: offset {offset} + byte_size {size} exceeds shared "
                f"memory region '{self.name}' of {self.byte_size} bytes"
            )
        if os.fstat(self._fd).st_size < self.offset + self.byte_size:
            raise invalid(
                f"{where}: shared memory region '{self.name}' no longer fits "
                f"its object '{self.key}', which shrank"
            )
        return self._start + offset

    def read(self, where: str, offset: int, size: int) -> bytes:
        """A copy of `size` bytes at `offset` within the region."""
        start = self._check(where, offset, size)
        return self._map[start : start + size]

    def check_room(self, where: str, offset: int, size: int) -> None:
        """Refuses unless `size` bytes fit at `offset` within the region."""
        self._check(where, offset, size)

    def write(self, where: str, offset: int, data: bytes) -> None:
        """Copies `data` to `offset` within the region."""
        start = self._check(where, offset, len(data))
        self._map[start : start + len(data)] = data

    def close(self) -> None:
        """Unmaps the region and closes its object."""
        if not self._map.closed:
            self._map.close()
            os.close(self._fd)


class SharedMemory:
    """The registered system shared memory regions by name."""

    def __init__(self) -> None:
        self._regions: dict[str, Region] = {}

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        """Maps a region; ALREADY_EXISTS when the name is taken."""
        if not name:
            raise invalid("shared memory region name must not be empty")
        if name in self._regions:
            raise RequestError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"shared memory region '{name}' is already registered",
            )
        self._regions[name] = Region(name, key, offset, byte_size)
        _LOG.info("registered shared memory region '%s' (key '%s')", name, key)

    def unregister(self, name: str) -> None:
        """Unmaps region `name`, or every region when `name` is empty."""
        if not name:
            self.close()
            return
        region = self._regions.pop(name, None)
        if region is None:
            raise not_found(f"shared memory region '{name}' is not registered")
        region.close()
        _LOG.info("unregistered shared memory region '%s'", name)

    def status(self, name: str) -> pb.SystemSharedMemoryStatusResponse:
        """Region `name`, or every region when `name` is empty."""
        if name and name not in self._regions:
            raise not_found(f"shared memory region '{name}' is not registered")
        chosen = [self._regions[name]] if name else self._regions.values()
        response = pb.SystemSharedMemoryStatusResponse()
        for region in chosen:
            response.regions[region.name].CopyFrom(region.status())
        return response

    def find(self, where: str, ref: ShmRef) -> Region:
        """The region `ref` names; INVALID_ARGUMENT naming it if unknown."""
        region = self._regions.get(ref.region)
        if region is None:
            raise invalid(f"{where}: unknown shared memory region '{ref.region}'")
        return region

    def close(self) -> None:
        """Unmaps every region."""
        regions, self._regions = self._regions, {}
        for region in regions.values():
            region.close()
        if regions:
            _LOG.info("unregistered %d shared memory regions", len(regions))
