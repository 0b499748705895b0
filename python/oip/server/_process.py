"""The reference server in a child process, for examples, demos and tests."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import Optional, Sequence, Type

_LOG = logging.getLogger(__name__)


class ServerProcess:
    """Runs `python -m oip.server` on a free loopback port until closed.

    The child imports oip from the same paths as this process, so it works
    under `bazel run`, `bazel test` and from an installed wheel alike.

    Example:
        with ServerProcess() as server:
            channel = grpc.insecure_channel(server.url)
    """

    def __init__(
        self, extra_args: Sequence[str] = (), startup_timeout: float = 30.0
    ) -> None:
        self._extra_args = list(extra_args)
        self._startup_timeout = startup_timeout
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._workdir: Optional[tempfile.TemporaryDirectory[str]] = None
        self._log_path: Optional[str] = None
        self.port = 0
        self.exit_code: Optional[int] = None

    @property
    def url(self) -> str:
        """host:port of the gRPC endpoint."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Starts the child and waits until it serves.

        Raises:
            RuntimeError: it exited or did not serve within the timeout; the
                message carries its log.
        """
        self._workdir = tempfile.TemporaryDirectory(prefix="oip-server-")
        port_file = os.path.join(self._workdir.name, "port")
        log_path = os.path.join(self._workdir.name, "log")
        self._log_path = log_path
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        command = [
            sys.executable,
            "-m",
            "oip.server",
            "--grpc-port",
            "0",
            "--port-file",
            port_file,
            *self._extra_args,
        ]
        with open(log_path, "wb") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        deadline = time.monotonic() + self._startup_timeout
        while not os.path.exists(port_file):
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = self._read_log(log_path)
                self.close()
                raise RuntimeError(f"reference server did not start: {output}")
            time.sleep(0.05)
        with open(port_file, encoding="ascii") as file:
            self.port = int(file.read())
        _LOG.info("reference server pid %d serving on %s", self._process.pid, self.url)
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stops the child (SIGTERM, then SIGKILL after `timeout` s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _LOG.warning("reference server ignored SIGTERM; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None:
            self.exit_code = process.returncode
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
            self._log_path = None

    @property
    def pid(self) -> Optional[int]:
        """The child's process id while it runs, else None."""
        return None if self._process is None else self._process.pid

    def read_log(self) -> str:
        """The child's output so far; '' before it starts or after close."""
        if self._log_path is None:
            return ""
        with open(self._log_path, encoding="utf-8", errors="replace") as file:
            return file.read()

    @property
    def returncode(self) -> Optional[int]:
        """The child's exit status if it has exited by itself, else None.

        After `close`, `exit_code` holds how it ended (0: a clean shutdown).
        """
        return None if self._process is None else self._process.poll()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    @staticmethod
    def _read_log(path: str) -> str:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                return file.read()[-4000:] or "(no output)"
        except OSError:
            return "(no log)"
