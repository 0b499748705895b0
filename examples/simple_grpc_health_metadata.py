"""Health, metadata and configuration with the oip client: is the server live
and ready, is `simple` ready, what do the server and the model say of
themselves, and how is the model configured.
"""

from __future__ import annotations

import sys

import oip
from examples.example_flags import ExampleFailure, expect, parse_args


def main() -> int:
    args = parse_args(__doc__)
    try:
        with oip.Client(args.url, timeout=args.timeout) as client:
            expect(client.is_server_live(), "server is not live")
            expect(client.is_server_ready(), "server is not ready")
            expect(client.is_model_ready("simple"), "model 'simple' is not ready")
            try:
                ready = client.is_model_ready("no_such_model")
                expect(not ready, "an unknown model is ready")
            except oip.ModelNotFoundError:
                pass  # servers may answer either way

            server = client.get_server_metadata()
            print(
                f"server: {server.name} {server.version}, extensions "
                f"{', '.join(server.extensions)}"
            )
            expect(bool(server.name), "the server has no name")

            model = client.get_model_metadata("simple")
            inputs = {t.name: (t.datatype, list(t.shape)) for t in model.inputs}
            outputs = {t.name: (t.datatype, list(t.shape)) for t in model.outputs}
            print(
                f"model: {model.name} versions {list(model.versions)} platform "
                f"{model.platform}"
            )
            print(f"  inputs {inputs}\n  outputs {outputs}")
            expect(
                inputs
                == {"INPUT0": ("INT32", [-1, 16]), "INPUT1": ("INT32", [-1, 16])},
                f"unexpected inputs {inputs}",
            )
            expect(
                set(outputs) == {"OUTPUT0", "OUTPUT1"}, f"unexpected outputs {outputs}"
            )

            config = client.get_model_config("simple")
            expect(config.name == "simple", f"config names model {config.name!r}")
            expect(config.max_batch_size > 0, f"max_batch_size {config.max_batch_size}")
            expect(
                [i.name for i in config.input] == ["INPUT0", "INPUT1"],
                f"config inputs {config.input}",
            )

            try:
                client.get_model_metadata("no_such_model")
                raise ExampleFailure("metadata of an unknown model was returned")
            except oip.ModelNotFoundError as exc:
                print(f"unknown model refused: {exc.status.value}")
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(
        f"config: max_batch_size {config.max_batch_size}, {len(config.input)} inputs, "
        f"{len(config.output)} outputs, backend {config.backend!r}"
    )
    print("PASS: simple_grpc_health_metadata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
