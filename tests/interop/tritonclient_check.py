"""Call an oip server with NVIDIA's own client (tritonclient.grpc); check answers.

Usage: python tritonclient_check.py --url 127.0.0.1:8001

Uses tritonclient only, never oip's code, so it tests what an outside client
sees on the wire. Prints one `PASS name` or `FAIL name: reason` line per check
on stdout and exits 1 when any check fails.
"""

import argparse
import logging
import queue
import sys
import time

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

log = logging.getLogger("tritonclient_check")

TIMEOUT = 30.0  # seconds, for every call that takes a client_timeout
DEMO_MODELS = [
    "simple",
    "simple_int8",
    "simple_string",
    "simple_identity",
    "simple_sequence",
    "repeat_int32",
]


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_equal(got, want, what):
    if isinstance(want, np.ndarray):
        same = (
            isinstance(got, np.ndarray)
            and got.dtype == want.dtype
            and np.array_equal(got, want)
        )
    else:
        same = got == want
    expect(same, f"{what}: expected {want!r}, got {got!r}")


def expect_error(call, status, *needles):
    """Runs call(), which must raise InferenceServerException with this status."""
    try:
        call()
    except InferenceServerException as exc:
        log.info("expected error: status=%s message=%s", exc.status(), exc.message())
        expect_equal(exc.status(), status, "error status")
        for needle in needles:
            expect(
                needle in (exc.message() or ""),
                f"error message {exc.message()!r} does not name {needle!r}",
            )
        return
    raise CheckFailed(f"expected InferenceServerException {status}, the call succeeded")


def tensor(name, array, datatype):
    item = grpcclient.InferInput(name, list(array.shape), datatype)
    item.set_data_from_numpy(array)
    return item


def add_sub_inputs(a, b, datatype):
    return [tensor("INPUT0", a, datatype), tensor("INPUT1", b, datatype)]


class Stream:
    """A bidirectional stream whose callback queues (result, error) pairs."""

    def __init__(self, client):
        self.client, self.items = client, queue.Queue()
        client.start_stream(callback=self._callback, stream_timeout=120)

    def _callback(self, result, error):
        self.items.put((result, error))

    def take(self, count, seconds=20.0):
        deadline, out = time.monotonic() + seconds, []
        while len(out) < count:
            try:
                out.append(
                    self.items.get(timeout=max(0.0, deadline - time.monotonic()))
                )
            except queue.Empty:
                raise CheckFailed(
                    f"stream: {len(out)} of {count} responses within {seconds} s"
                ) from None
        return out

    def expect_quiet(self, seconds=0.3):
        time.sleep(seconds)
        if not self.items.empty():
            raise CheckFailed(f"stream: unexpected extra response {self.items.get()!r}")

    def close(self):
        self.client.stop_stream()


def final_flag(result):
    params = result.get_response().parameters
    return (
        params["triton_final_response"].bool_param
        if "triton_final_response" in params
        else None
    )


# --- the checks ----------------------------------------------------------------


def check_health(client):
    expect(client.is_server_live(client_timeout=TIMEOUT), "is_server_live is False")
    expect(client.is_server_ready(client_timeout=TIMEOUT), "is_server_ready is False")
    for name in DEMO_MODELS:
        expect(
            client.is_model_ready(name, client_timeout=TIMEOUT),
            f"is_model_ready({name!r}) is False",
        )
    expect(
        not client.is_model_ready("absent", client_timeout=TIMEOUT),
        "is_model_ready('absent') is True",
    )


def check_server_metadata(client):
    metadata = client.get_server_metadata(client_timeout=TIMEOUT)
    log.info("server metadata: name=%r version=%r", metadata.name, metadata.version)
    expect(metadata.name, "server metadata has an empty name")


def check_model_metadata(client):
    metadata = client.get_model_metadata("simple", client_timeout=TIMEOUT)
    expect_equal(metadata.name, "simple", "model name")
    got = [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs]
    expect_equal(
        got,
        [("INPUT0", "INT32", [-1, 16]), ("INPUT1", "INT32", [-1, 16])],
        "simple inputs",
    )
    got = [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs]
    expect_equal(
        got,
        [("OUTPUT0", "INT32", [-1, 16]), ("OUTPUT1", "INT32", [-1, 16])],
        "simple outputs",
    )


def check_unknown_model(client):
    expect_error(
        lambda: client.get_model_metadata("absent", client_timeout=TIMEOUT),
        "StatusCode.NOT_FOUND",
        "absent",
    )
    expect_error(
        lambda: client.get_model_config("absent", client_timeout=TIMEOUT),
        "StatusCode.NOT_FOUND",
        "absent",
    )
    a = np.zeros((1, 16), np.int32)
    expect_error(
        lambda: client.infer(
            "absent", add_sub_inputs(a, a, "INT32"), client_timeout=TIMEOUT
        ),
        "StatusCode.NOT_FOUND",
        "absent",
    )


def check_model_config(client):
    config = client.get_model_config("simple", client_timeout=TIMEOUT).config
    expect_equal(config.name, "simple", "config name")
    expect_equal(config.max_batch_size, 8, "simple max_batch_size")
    expect_equal(
        [i.name for i in config.input], ["INPUT0", "INPUT1"], "simple config inputs"
    )
    expect_equal(
        [list(i.dims) for i in config.input], [[16], [16]], "simple config input dims"
    )
    config = client.get_model_config("repeat_int32", client_timeout=TIMEOUT).config
    expect_equal(config.max_batch_size, 0, "repeat_int32 max_batch_size")
    expect(
        config.model_transaction_policy.decoupled,
        "repeat_int32 is not decoupled in its config",
    )


def check_infer_simple(client):
    for batch in (1, 4):
        a = np.arange(batch * 16, dtype=np.int32).reshape(batch, 16)
        b = np.full((batch, 16), 3, dtype=np.int32)
        result = client.infer(
            "simple", add_sub_inputs(a, b, "INT32"), client_timeout=TIMEOUT
        )
        expect_equal(result.as_numpy("OUTPUT0"), a + b, f"simple OUTPUT0 batch {batch}")
        expect_equal(result.as_numpy("OUTPUT1"), a - b, f"simple OUTPUT1 batch {batch}")
    # Only the requested output comes back.
    outputs = [grpcclient.InferRequestedOutput("OUTPUT1")]
    result = client.infer(
        "simple",
        add_sub_inputs(a, b, "INT32"),
        outputs=outputs,
        request_id="only-1",
        client_timeout=TIMEOUT,
    )
    expect_equal(result.as_numpy("OUTPUT1"), a - b, "simple requested OUTPUT1")
    expect(
        result.as_numpy("OUTPUT0") is None,
        "simple sent OUTPUT0, which was not requested",
    )
    expect_equal(result.get_response().id, "only-1", "response id")


def check_infer_int8(client):
    a = np.full((1, 16), 127, dtype=np.int8)
    b = np.full((1, 16), -128, dtype=np.int8)
    for outputs in (
        None,
        [
            grpcclient.InferRequestedOutput("OUTPUT0"),
            grpcclient.InferRequestedOutput("OUTPUT1"),
        ],
    ):
        result = client.infer(
            "simple_int8",
            add_sub_inputs(a, b, "INT8"),
            outputs=outputs,
            client_timeout=TIMEOUT,
        )
        expect_equal(
            result.as_numpy("OUTPUT0"),
            np.full((1, 16), -1, np.int8),
            "simple_int8 127 + -128",
        )
        expect_equal(
            result.as_numpy("OUTPUT1"),
            np.full((1, 16), -1, np.int8),
            "simple_int8 127 - -128 (wraps)",
        )


def check_infer_string(client):
    numbers = np.arange(16, dtype=np.int64).reshape(1, 16)
    a = np.array([[str(n).encode() for n in numbers[0]]], dtype=np.object_)
    b = np.full((1, 16), b"1", dtype=np.object_)
    want_sum = np.array([[str(n + 1).encode() for n in numbers[0]]], dtype=np.object_)
    want_diff = np.array([[str(n - 1).encode() for n in numbers[0]]], dtype=np.object_)
    for outputs in (None, [grpcclient.InferRequestedOutput("OUTPUT1")]):
        result = client.infer(
            "simple_string",
            add_sub_inputs(a, b, "BYTES"),
            outputs=outputs,
            client_timeout=TIMEOUT,
        )
        diff = result.as_numpy("OUTPUT1")
        expect_equal(diff, want_diff, "simple_string OUTPUT1")
        expect_equal(diff[0][0], b"-1", "simple_string 0 - 1")
        if outputs is None:
            expect_equal(result.as_numpy("OUTPUT0"), want_sum, "simple_string OUTPUT0")
        else:
            expect(
                result.as_numpy("OUTPUT0") is None,
                "simple_string sent OUTPUT0, which was not requested",
            )


def check_infer_identity(client):
    data = np.array(
        [[b"", b"\x00\xff\x01", "h\u00e9llo".encode(), bytes(range(256)), b"x" * 1000]],
        dtype=np.object_,
    )
    for outputs in (None, [grpcclient.InferRequestedOutput("OUTPUT0")]):
        result = client.infer(
            "simple_identity",
            [tensor("INPUT0", data, "BYTES")],
            outputs=outputs,
            client_timeout=TIMEOUT,
        )
        got = result.as_numpy("OUTPUT0")
        expect_equal(
            got.shape if got is not None else None, data.shape, "simple_identity shape"
        )
        expect_equal(got.tolist(), data.tolist(), "simple_identity bytes")


def check_infer_sequence(client):
    def step(value, **flags):
        result = client.infer(
            "simple_sequence",
            [tensor("INPUT", np.array([[value]], np.int32), "INT32")],
            sequence_id=4242,
            client_timeout=TIMEOUT,
            **flags,
        )
        return int(result.as_numpy("OUTPUT").ravel()[0])

    expect_equal(step(10, sequence_start=True), 11, "simple_sequence START 10")
    expect_equal(step(20), 20, "simple_sequence 20")
    expect_equal(step(-7, sequence_end=True), -7, "simple_sequence END -7")


def check_stream_repeat(client):
    values = np.array([4, -2, 99, 0, 7], dtype=np.int32)
    delays = np.array([30, 0, 20, 10, 0], dtype=np.uint32)
    inputs = [
        tensor("IN", values, "INT32"),
        tensor("DELAY", delays, "UINT32"),
        tensor("WAIT", np.array([10], np.uint32), "UINT32"),
    ]
    stream = Stream(client)
    try:
        client.async_stream_infer(
            "repeat_int32", inputs, request_id="rep", enable_empty_final_response=True
        )
        got = stream.take(len(values) + 1)
        stream.expect_quiet()
    finally:
        stream.close()
    for index, (result, error) in enumerate(got[:-1]):
        expect(error is None, f"repeat_int32 response {index}: error {error}")
        expect_equal(
            result.as_numpy("OUT"),
            values[index : index + 1],
            f"repeat_int32 response {index} OUT",
        )
        expect_equal(
            result.as_numpy("IDX"),
            np.array([index], np.uint32),
            f"repeat_int32 response {index} IDX",
        )
        expect_equal(
            result.get_response().id, "rep", f"repeat_int32 response {index} id"
        )
        expect(
            final_flag(result) is not True,
            f"repeat_int32 response {index} is marked final",
        )
    result, error = got[-1]
    expect(error is None, f"repeat_int32 final response: error {error}")
    expect_equal(
        len(result.get_response().outputs),
        0,
        "repeat_int32 final response output count",
    )
    expect_equal(
        final_flag(result), True, "repeat_int32 final response triton_final_response"
    )


def check_stream_simple_and_error(client):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    stream = Stream(client)
    try:
        client.async_stream_infer(
            "simple", add_sub_inputs(a, a * 2, "INT32"), request_id="s1"
        )
        client.async_stream_infer(
            "absent", add_sub_inputs(a, a, "INT32"), request_id="bad"
        )
        client.async_stream_infer(
            "simple", add_sub_inputs(a, a * 3, "INT32"), request_id="s2"
        )
        got = stream.take(3)
        # The stream is still open after the error: one more request on it.
        client.async_stream_infer(
            "simple", add_sub_inputs(a, a * 4, "INT32"), request_id="s3"
        )
        got += stream.take(1)
        stream.expect_quiet()
    finally:
        stream.close()
    errors = [error for _, error in got if error is not None]
    expect_equal(len(errors), 1, "stream error count")
    expect(
        "absent" in (errors[0].message() or ""),
        f"stream error {errors[0].message()!r} does not name 'absent'",
    )
    results = {
        result.get_response().id: result for result, error in got if error is None
    }
    expect_equal(sorted(results), ["s1", "s2", "s3"], "stream response ids")
    for request_id, factor in (("s1", 2), ("s2", 3), ("s3", 4)):
        expect_equal(
            results[request_id].as_numpy("OUTPUT0"),
            a + a * factor,
            f"stream {request_id} OUTPUT0",
        )
        expect_equal(
            results[request_id].as_numpy("OUTPUT1"),
            a - a * factor,
            f"stream {request_id} OUTPUT1",
        )


def check_bad_shape(client):
    a = np.zeros((1, 8), np.int32)
    b = np.zeros((1, 16), np.int32)
    expect_error(
        lambda: client.infer(
            "simple",
            [tensor("INPUT0", a, "INT32"), tensor("INPUT1", b, "INT32")],
            client_timeout=TIMEOUT,
        ),
        "StatusCode.INVALID_ARGUMENT",
        "INPUT0",
    )


CHECKS = [
    check_health,
    check_server_metadata,
    check_model_metadata,
    check_unknown_model,
    check_model_config,
    check_infer_simple,
    check_infer_int8,
    check_infer_string,
    check_infer_identity,
    check_infer_sequence,
    check_stream_repeat,
    check_stream_simple_and_error,
    check_bad_shape,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", required=True, help="host:port of the server's gRPC endpoint"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log each call's details"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    failed = 0
    with grpcclient.InferenceServerClient(url=args.url) as client:
        for check in CHECKS:
            name = check.__name__.removeprefix("check_")
            started = time.monotonic()
            try:
                check(client)
            except Exception as exc:  # report every failure, then go on
                failed += 1
                log.debug("check %s failed", name, exc_info=True)
                reason = (
                    str(exc)
                    if isinstance(exc, CheckFailed)
                    else f"{type(exc).__name__}: {exc}"
                )
                print(f"FAIL {name}: {reason}", flush=True)
            else:
                print(f"PASS {name} ({time.monotonic() - started:.2f} s)", flush=True)
    log.info("%d of %d checks failed", failed, len(CHECKS))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
