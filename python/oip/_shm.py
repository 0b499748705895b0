"""System (POSIX) shared memory regions for zero-copy tensors on one host.

A region is a file under /dev/shm, mapped into this process. Write inputs
into it, register it with the server (`Client.register_system_shared_memory`)
and point inputs and outputs at it; read outputs back from it.

Example:
    with SystemSharedMemoryRegion.create("/oip_inputs", 128) as region:
        region.write([a, b])
        client.register_system_shared_memory("inputs", region.key, region.byte_size)
        ...
        region.destroy()
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import re
from types import TracebackType
from typing import Optional, Sequence, Union

import numpy as np

from oip._bytes import BytesFormatError, decode_bytes
from oip._datatype import DataType
from oip._errors import AlreadyExistsError, InvalidInputError, OipError
from oip._tensor import datatype_of, encode_tensor

_LOG = logging.getLogger(__name__)
SHM_DIR = "/dev/shm"
_KEY = re.compile(r"^/?[A-Za-z0-9_.\-]+$")


def _path_of(key: str) -> str:
    if not _KEY.match(key) or key.strip("/") in (".", ".."):
        raise InvalidInputError(
            f"shared memory key '{key}' must be one name such as '/oip_input0'"
        )
    return os.path.join(SHM_DIR, key.lstrip("/"))


class SystemSharedMemoryRegion:
    """A mapped POSIX shared memory region (a file under /dev/shm).

    Use `create` for a new region or `attach` for an existing one.
    """

    def __init__(
        self, key: str, byte_size: int, file_descriptor: int, created: bool
    ) -> None:
        self.key = key if key.startswith("/") else f"/{key}"
        self.byte_size = byte_size
        self._path = _path_of(key)
        self._created = created
        try:
            self._map: Optional[mmap.mmap] = mmap.mmap(file_descriptor, byte_size)
        finally:
            os.close(file_descriptor)

    @classmethod
    def create(cls, key: str, byte_size: int) -> SystemSharedMemoryRegion:
        """Creates a new region of `byte_size` bytes, zero-filled.

        Raises:
            AlreadyExistsError: a region with that key exists.
            InvalidInputError: bad key or size.
        """
        if byte_size <= 0:
            raise InvalidInputError(
                f"shared memory '{key}': byte_size {byte_size} must be > 0"
            )
        path = _path_of(key)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise AlreadyExistsError(
                f"shared memory '{key}' already exists at {path}"
            ) from None
        try:
            os.ftruncate(descriptor, byte_size)
        except OSError:
            os.close(descriptor)
            os.unlink(path)
            raise
        _LOG.debug("created shared memory %s (%d bytes)", path, byte_size)
        return cls(key, byte_size, descriptor, created=True)

    @classmethod
    def attach(cls, key: str) -> SystemSharedMemoryRegion:
        """Maps an existing region whole.

        Raises:
            InvalidInputError: no such region, or a bad key.
        """
        path = _path_of(key)
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise InvalidInputError(
                f"shared memory '{key}' does not exist ({path})"
            ) from None
        size = os.fstat(descriptor).st_size
        return cls(key, size, descriptor, created=False)

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            raise OipError(f"shared memory '{self.key}' is closed")
        return self._map

    def write(
        self, arrays: Union[np.ndarray, Sequence[np.ndarray]], offset: int = 0
    ) -> int:
        """Writes arrays one after another from `offset`; returns bytes written.

        BYTES arrays are written in the protocol's length-prefixed form.

        Raises:
            InvalidInputError: they do not fit in the region.
        """
        buffers = [
            encode_tensor(f"array {i}", array, datatype_of(array))
            for i, array in enumerate(
                [arrays] if isinstance(arrays, np.ndarray) else arrays
            )
        ]
        total = sum(buffer.nbytes for buffer in buffers)
        if offset < 0 or offset + total > self.byte_size:
            raise InvalidInputError(
                f"shared memory '{self.key}': {total} bytes at offset {offset} do "
                "not fit in "
                f"{self.byte_size} bytes"
            )
        target = self._mapped()
        position = offset
        for buffer in buffers:
            target[position : position + buffer.nbytes] = buffer
            position += buffer.nbytes
        return total

    def read(
        self,
        datatype: Union[DataType, str],
        shape: Sequence[int],
        offset: int = 0,
        byte_size: Optional[int] = None,
    ) -> np.ndarray:
        """Reads a tensor at `offset` as a numpy array (a copy).

        Args:
            byte_size: for BYTES, how many bytes the tensor takes (default:
                to the end of the region).

        Raises:
            InvalidInputError: it would run past the region, or BYTES data
                is malformed.
        """
        kind = datatype if isinstance(datatype, DataType) else DataType.parse(datatype)
        count = math.prod(shape)
        view = memoryview(self._mapped())
        try:
            if kind is DataType.BYTES:
                end = self.byte_size if byte_size is None else offset + byte_size
                self._check_range(offset, end)
                try:
                    return decode_bytes(bytes(view[offset:end]), count).reshape(shape)
                except BytesFormatError as exc:
                    raise InvalidInputError(
                        f"shared memory '{self.key}': malformed BYTES: {exc}"
                    ) from exc
            end = offset + count * kind.item_size
            self._check_range(offset, end)
            return (
                np.frombuffer(view[offset:end], dtype=kind.numpy_dtype)
                .reshape(shape)
                .copy()
            )
        finally:
            view.release()

    def _check_range(self, start: int, end: int) -> None:
        if start < 0 or end > self.byte_size or end < start:
            raise InvalidInputError(
                f"shared memory '{self.key}': bytes {start}..{end} are outside "
                f"its {self.byte_size} bytes"
            )

    def close(self) -> None:
        """Unmaps the region (the region itself stays)."""
        if self._map is not None:
            self._map.close()
            self._map = None

    def destroy(self) -> None:
        """Unmaps and removes the region."""
        self.close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> SystemSharedMemoryRegion:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._created:
            self.destroy()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"SystemSharedMemoryRegion({self.key!r}, byte_size={self.byte_size})"
