"""oip embedded in another module: generated stubs against its server."""

import sys
import unittest

import grpc

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import grpc_service_pb2_grpc
from oip.server import ServerProcess


class EmbeddedProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess().start()
        cls.channel = grpc.insecure_channel(
            cls.server.url, options=[("grpc.enable_http_proxy", 0)]
        )
        cls.stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()
        cls.server.close()

    def test_server_live(self) -> None:
        self.assertTrue(self.stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live)

    def test_infer_simple(self) -> None:
        request = pb.ModelInferRequest(model_name="simple")
        for name, value in (("INPUT0", 5), ("INPUT1", 2)):
            tensor = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
            tensor.contents.int_contents.extend([value] * 16)

        response = self.stub.ModelInfer(request, timeout=10)

        names = [tensor.name for tensor in response.outputs]
        sums = response.raw_output_contents[names.index("OUTPUT0")]
        self.assertEqual(sums, (7).to_bytes(4, "little") * 16)


if __name__ == "__main__":
    sys.exit(unittest.main())
