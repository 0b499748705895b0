"""Implementation of py_proto_library: protos to Python with grpc_tools."""

load("@rules_proto//proto:defs.bzl", "ProtoInfo")

def _import_path(src, proto_source_root):
    """The path protoc knows `src` by: its path below the proto source root."""
    if proto_source_root in ("", "."):
        return src.short_path
    if not src.path.startswith(proto_source_root + "/"):
        fail("%s is not below its proto source root %s" % (src.path, proto_source_root))
    return src.path[len(proto_source_root) + 1:]

def _runfiles_root(ctx):
    """The runfiles directory of this repository ('_main' for the root)."""
    return ctx.label.workspace_name or ctx.workspace_name

def _py_proto_gen_impl(ctx):
    proto_info = ctx.attr.proto[ProtoInfo]
    package = ctx.label.package
    suffixes = ["_pb2.py", "_pb2.pyi"] + (["_pb2_grpc.py"] if ctx.attr.grpc else [])

    outputs = []
    import_paths = []
    out_root = None
    for src in proto_info.direct_sources:
        import_path = _import_path(src, proto_info.proto_source_root)
        import_paths.append(import_path)
        import_dir, _, file_name = import_path.rpartition("/")
        stem = file_name[:-len(".proto")]

        # Files land where Python finds them by their import path: in this
        # package when it already ends with the import directory (so that
        # generated and hand-written modules share one package directory),
        # else below this package.
        if import_dir and (package == import_dir or package.endswith("/" + import_dir)):
            root = package[:len(package) - len(import_dir)].rstrip("/")
            prefix = ""
        else:
            root = package
            prefix = import_dir + "/" if import_dir else ""
        if out_root != None and out_root != root:
            fail("all sources of %s must share one import directory" % ctx.attr.proto.label)
        out_root = root
        for suffix in suffixes:
            outputs.append(ctx.actions.declare_file(prefix + stem + suffix))

    out_dir = ctx.bin_dir.path
    if ctx.label.workspace_root:
        out_dir += "/" + ctx.label.workspace_root
    if out_root:
        out_dir += "/" + out_root

    args = ctx.actions.args()
    args.add_all(proto_info.transitive_proto_path, format_each = "--proto_path=%s")
    args.add("--python_out=" + out_dir)
    args.add("--pyi_out=" + out_dir)
    if ctx.attr.grpc:
        args.add("--grpc_python_out=" + out_dir)
    args.add_all(import_paths)

    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = proto_info.transitive_sources,
        outputs = outputs,
        mnemonic = "PyProtoGen",
        progress_message = "Generating Python code for %{label}",
    )

    import_root = _runfiles_root(ctx) + ("/" + out_root if out_root else "")
    py_files = [f for f in outputs if f.path.endswith(".py")]
    return [
        DefaultInfo(
            files = depset(outputs),
            runfiles = ctx.runfiles(files = outputs),
        ),
        PyInfo(
            transitive_sources = depset(py_files),
            imports = depset([import_root]),
            has_py2_only_sources = False,
            has_py3_only_sources = True,
        ),
    ]

py_proto_gen = rule(
    implementation = _py_proto_gen_impl,
    doc = "Generates `_pb2.py`, `_pb2.pyi` and optionally `_pb2_grpc.py` " +
          "for the direct sources of one proto_library, with the locked " +
          "grpcio-tools. Provides PyInfo with the import root.",
    attrs = {
        "proto": attr.label(
            doc = "The proto_library whose direct sources are compiled.",
            providers = [ProtoInfo],
            mandatory = True,
        ),
        "grpc": attr.bool(
            doc = "Also generate gRPC stubs (`_pb2_grpc.py`).",
            default = False,
        ),
        "_protoc": attr.label(
            default = Label("//bazel/private:grpc_protoc"),
            executable = True,
            cfg = "exec",
        ),
    },
)
