"""mypy --strict over the oip package (client, server, generated stubs)."""

import os
import sys

from mypy import api


def main() -> int:
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mypy.ini")
    # The search path is this process's sys.path: the runfiles of the
    # library and its locked dependencies, stub packages included.
    os.environ["MYPYPATH"] = ""
    stdout, stderr, status = api.run(
        ["--config-file", config, "--python-executable", sys.executable, "-p", "oip"]
    )
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
