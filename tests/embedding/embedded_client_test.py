"""oip embedded in another module: the client library against its server."""

import sys
import unittest

import numpy as np

import oip
from oip.server import ServerProcess


class EmbeddedClientTest(unittest.TestCase):
    def test_infer_with_the_client(self) -> None:
        a = np.arange(16, dtype=np.int32).reshape(1, 16)

        with ServerProcess() as server, oip.Client(server.url, timeout=10) as client:
            result = client.infer("simple", {"INPUT0": a, "INPUT1": a})

        self.assertEqual(result["OUTPUT0"].tolist(), (a * 2).tolist())

    def test_typed_errors_cross_the_module_boundary(self) -> None:
        with ServerProcess() as server, oip.Client(server.url, timeout=10) as client:
            with self.assertRaises(oip.ModelNotFoundError):
                client.get_model_metadata("absent")


if __name__ == "__main__":
    sys.exit(unittest.main())
