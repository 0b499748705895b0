"""The oip reference server: the protocol over gRPC with Triton's demo models.

Run it with `bazel run //python/oip/server -- --grpc-port 8001` or
`python -m oip.server`; embed it with `ReferenceServer`.
"""

from oip.server._models import Model, demo_models
from oip.server._process import ServerProcess
from oip.server._server import ReferenceServer

__all__ = ["Model", "ReferenceServer", "ServerProcess", "demo_models"]
