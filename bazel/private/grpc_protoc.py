"""Runs grpc_tools.protoc with its bundled well-known protos on the path."""

import sys
from importlib import resources

from grpc_tools import protoc


def main() -> int:
    well_known = resources.files("grpc_tools") / "_proto"
    argv = ["grpc_tools.protoc", *sys.argv[1:], f"--proto_path={well_known}"]
    return protoc.main(argv)


if __name__ == "__main__":
    sys.exit(main())
