"""py_test with pytest as its runner."""

load("@oip_pypi//:requirements.bzl", "requirement")
load("@rules_python//python:defs.bzl", "py_test")

def pytest_test(name, srcs, deps = [], args = [], **kwargs):
    """A py_test that runs the test functions of `srcs` under pytest.

    Args:
      name: the test's name.
      srcs: test modules (test_*.py or *_test.py) and helpers.
      deps: libraries the tests import.
      args: extra pytest arguments.
      **kwargs: passed to py_test (size, data, tags, ...).
    """
    py_test(
        name = name,
        srcs = srcs + ["//tests:pytest_main.py"],
        main = "//tests:pytest_main.py",
        args = ["$(rootpath %s)" % src for src in srcs] + args,
        deps = deps + [
            "//tests:server_fixture",
            requirement("pytest"),
        ],
        **kwargs
    )
