"""oip: a client for the Open Inference Protocol (KServe v2, Triton).

The generated protocol modules live in `oip.protocol`; the reference server
in `oip.server`. The client library arrives with issue #3.
"""

from oip._datatype import DataType

__all__ = ["DataType"]
__version__ = "0.1.0"
