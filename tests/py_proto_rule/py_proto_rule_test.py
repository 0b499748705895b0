"""The generated modules import each other by the proto import path."""

import pathlib
import sys
import unittest

from rule_test import part_pb2, whole_pb2, whole_pb2_grpc


class PyProtoRuleTest(unittest.TestCase):
    def test_imported_message_round_trips(self) -> None:
        whole = whole_pb2.Whole(parts=[part_pb2.Part(size=3), part_pb2.Part(size=4)])

        decoded = whole_pb2.Whole.FromString(whole.SerializeToString())

        self.assertEqual([p.size for p in decoded.parts], [3, 4])

    def test_import_uses_package_path(self) -> None:
        source = pathlib.Path(whole_pb2.__file__).read_text()

        self.assertIn("from rule_test import part_pb2", source)

    def test_stub_files_generated(self) -> None:
        self.assertTrue(hasattr(whole_pb2_grpc, "AssemblerStub"))
        self.assertTrue(pathlib.Path(whole_pb2.__file__).with_suffix(".pyi").exists())


if __name__ == "__main__":
    sys.exit(unittest.main())
