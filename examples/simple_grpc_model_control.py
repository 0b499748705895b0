"""The model repository API: list the models, unload `simple_int8`, load it
back with a config override, then load it once more as it was.

The example leaves the server as it found it: the model ends loaded with
its own config, even when a step fails.
"""

from __future__ import annotations

import sys

import oip
from examples.example_flags import ExampleFailure, expect, parse_args

MODEL = "simple_int8"


def state_of(client: oip.Client, model: str) -> str:
    return next(
        (
            entry.state
            for entry in client.get_model_repository_index()
            if entry.name == model
        ),
        "absent",
    )


def cycle(client: oip.Client) -> int:
    """Unloads, checks, reloads with an override; returns the old max_batch_size."""
    original = client.get_model_config(MODEL).max_batch_size
    client.unload_model(MODEL)
    expect(not client.is_model_ready(MODEL), f"{MODEL} is still ready after unloading")
    print(f"unloaded {MODEL}: state {state_of(client, MODEL)}")

    client.load_model(MODEL, config={"max_batch_size": 4})
    expect(client.is_model_ready(MODEL), f"{MODEL} is not ready after loading")
    config = client.get_model_config(MODEL)
    expect(
        config.max_batch_size == 4,
        f"max_batch_size {config.max_batch_size} after the override",
    )
    print(f"loaded {MODEL} with an override: max_batch_size {config.max_batch_size}")
    return original


def main() -> int:
    args = parse_args(__doc__)
    try:
        with oip.Client(args.url, timeout=args.timeout) as client:
            index = client.get_model_repository_index()
            print(
                "repository: "
                + ", ".join(f"{m.name} v{m.version} {m.state}" for m in index)
            )
            expect(
                state_of(client, MODEL) == "READY",
                f"{MODEL} is not READY to begin with",
            )
            try:
                original = cycle(client)
            finally:
                # Restore: a load without override brings back the model's own config.
                client.load_model(MODEL)
            config = client.get_model_config(MODEL)
            expect(
                client.is_model_ready(MODEL), f"{MODEL} is not ready after restoring it"
            )
            expect(
                config.max_batch_size == original,
                f"max_batch_size {config.max_batch_size} after restoring; it was "
                f"{original}",
            )
    except (oip.OipError, ExampleFailure) as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(f"restored {MODEL}: READY, max_batch_size {config.max_batch_size}")
    print("PASS: simple_grpc_model_control")
    return 0


if __name__ == "__main__":
    sys.exit(main())
