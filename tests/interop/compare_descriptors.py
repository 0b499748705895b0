"""Check that our protos describe the same wire format as tritonclient's.

Usage:
  protoc -I STAGE --include_imports --descriptor_set_out=oip.pb \
      STAGE/oip/protocol/*.proto
  python compare_descriptors.py --descriptor-set oip.pb

Reference descriptors come from tritonclient's generated modules (and from
grpcio-health-checking for grpc.health.v1 when it is installed). Ours are
read from the FileDescriptorSet and loaded into a private DescriptorPool, so
the two `inference` packages never meet in one pool. Exits 1 on differences.
"""

import argparse
import importlib
import sys

from google.protobuf import descriptor_pb2, descriptor_pool

REFERENCE_MODULES = {
    "inference": [
        "tritonclient.grpc.model_config_pb2",
        "tritonclient.grpc.service_pb2",
    ],
    "grpc.health.v1": ["grpc_health.v1.health_pb2"],
}
# Present on our side only, on purpose (full names).
ALLOWED_EXTRAS: set = set()


def index(file_protos):
    """Map full name -> ('message'|'enum'|'service', proto) over all files."""
    out = {}

    def walk(scope, messages, enums):
        for enum in enums:
            out[f"{scope}.{enum.name}"] = ("enum", enum)
        for msg in messages:
            name = f"{scope}.{msg.name}"
            out[name] = ("message", msg)
            walk(name, msg.nested_type, msg.enum_type)

    for fp in file_protos:
        walk(fp.package, fp.message_type, fp.enum_type)
        for svc in fp.service:
            out[f"{fp.package}.{svc.name}"] = ("service", svc)
    return out


def field_facts(msg, field):
    oneof = (
        msg.oneof_decl[field.oneof_index].name
        if field.HasField("oneof_index")
        else None
    )
    return {
        "number": field.number,
        "type": field.type,
        "label": field.label,
        "type_name": field.type_name,
        "oneof": oneof,
        "proto3_optional": field.proto3_optional,
    }


def compare(name, kind, ref, ours, diffs):
    if kind == "message":
        if ref.options.map_entry != ours.options.map_entry:
            diffs.append(
                f"{name}: map entry {ref.options.map_entry} vs {ours.options.map_entry}"
            )
        pairs = (
            {f.name: field_facts(ref, f) for f in ref.field},
            {f.name: field_facts(ours, f) for f in ours.field},
        )
        what = "field"
    elif kind == "enum":
        pairs = (
            {v.name: v.number for v in ref.value},
            {v.name: v.number for v in ours.value},
        )
        what = "value"
    else:

        def facts(m):
            return (m.input_type, m.output_type, m.client_streaming, m.server_streaming)

        pairs = (
            {m.name: facts(m) for m in ref.method},
            {m.name: facts(m) for m in ours.method},
        )
        what = "method"
    theirs, mine = pairs
    for key in sorted(theirs.keys() | mine.keys()):
        if key not in mine:
            diffs.append(f"{name}: {what} {key} missing on our side")
        elif key not in theirs:
            if f"{name}.{key}" not in ALLOWED_EXTRAS:
                diffs.append(f"{name}: extra {what} {key} on our side")
        elif theirs[key] != mine[key]:
            diffs.append(f"{name}.{key}: triton {theirs[key]} != ours {mine[key]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--descriptor-set",
        required=True,
        help="FileDescriptorSet of our protos, built with --include_imports",
    )
    args = parser.parse_args()

    fds = descriptor_pb2.FileDescriptorSet()
    with open(args.descriptor_set, "rb") as handle:
        fds.ParseFromString(handle.read())
    pool = descriptor_pool.DescriptorPool()  # proves our set links on its own
    for fp in fds.file:
        pool.Add(fp)
    ours = index(fds.file)

    diffs, compared = [], 0
    for package, modules in REFERENCE_MODULES.items():
        ref_files = []
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                print(f"skip {module_name}: not installed")
                continue
            fp = descriptor_pb2.FileDescriptorProto()
            module.DESCRIPTOR.CopyToProto(fp)
            ref_files.append(fp)
        if not ref_files:
            continue
        ref = index(ref_files)
        for name, (kind, proto) in sorted(ref.items()):
            if name not in ours:
                diffs.append(f"{name}: {kind} missing on our side")
            elif ours[name][0] != kind:
                diffs.append(f"{name}: {kind} on triton side, {ours[name][0]} on ours")
            else:
                compare(name, kind, proto, ours[name][1], diffs)
                compared += 1
        for name in sorted(ours):
            if (
                name.startswith(package + ".")
                and name not in ref
                and name not in ALLOWED_EXTRAS
            ):
                diffs.append(f"{name}: extra {ours[name][0]} on our side")

    for line in diffs:
        print("DIFF", line)
    print(f"compared {compared} definitions, {len(diffs)} difference(s)")
    return 1 if diffs or not compared else 0


if __name__ == "__main__":
    sys.exit(main())
