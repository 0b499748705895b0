#!/bin/sh
# Runs once on a freshly provisioned private root (argument: its path).
# Builds two directories shaped like rules_python 0.22.1's internal wheel
# repositories, pointing at the root's Debian pip and setuptools, which run on
# its Python 3.14 (the wheels rules_python pins do not).
set -eu
root="$1"
site=/usr/lib/python3/dist-packages

make_repo() {
  dir="$root/opt/oip/$1"; shift
  mkdir -p "$dir"
  : > "$dir/WORKSPACE"
  cat > "$dir/BUILD.bazel" <<'BUILD'
package(default_visibility = ["//visibility:public"])

load("@rules_python//python:defs.bzl", "py_library")

py_library(
    name = "lib",
    srcs = glob(["**/*.py"]),
    imports = ["."],
)
BUILD
  for entry in "$@"; do
    ln -sfn "$site/$entry" "$dir/$(basename "$entry")"
  done
}

make_repo pypi__pip pip
# Debian's setuptools no longer ships pkg_resources; pip's vendored copy serves
# rules_python's wheel installer.
make_repo pypi__setuptools setuptools _distutils_hack pip/_vendor/pkg_resources
