"""The examples pass against the reference server and fail loudly without it."""

import socket
import subprocess
import sys

import pytest

from examples import demo
from tests.server_fixture import server  # noqa: F401


def test_demo_runs_every_example(capsys):
    status = demo.main([])

    out = capsys.readouterr().out
    assert status == 0, out
    for name in demo.EXAMPLES:
        assert f"PASS  {name}" in out
    assert f"{len(demo.EXAMPLES)} passed, 0 failed" in out


@pytest.mark.parametrize("name", demo.EXAMPLES, ids=str)
def test_example_passes_against_server(server, name):
    passed, output, _ = demo.run_example(name, server.url)

    assert passed, output
    assert f"PASS: {name}" in output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("name", demo.EXAMPLES, ids=str)
def test_example_exits_nonzero_without_server(name):
    url = f"127.0.0.1:{_closed_port()}"
    env_args = [
        sys.executable,
        "-m",
        f"examples.{name}",
        "--url",
        url,
        "--timeout",
        "2",
    ]

    result = subprocess.run(
        env_args,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": ":".join(sys.path)},
    )

    assert result.returncode != 0
    assert "FAIL" in result.stderr
