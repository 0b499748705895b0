"""Stateful inference on simple_sequence: ids, START/END flags, the server's rules."""

from __future__ import annotations

import itertools
import uuid

import numpy as np
import pytest

import oip
from tests.client.helpers import DEADLINE, client, run, server  # noqa: F401

_NEXT_ID = itertools.count(1000)


def _value(v: int) -> dict[str, np.ndarray]:
    return {"INPUT": np.array([[v]], dtype=np.int32)}


def _out(result: oip.InferResult) -> int:
    array = result["OUTPUT"]
    assert array.shape == (1, 1) and array.dtype == np.int32
    return int(array[0, 0])


def _int_id() -> int:
    return next(_NEXT_ID)


def _str_id() -> str:
    return f"seq-{uuid.uuid4().hex}"


def _big_id() -> int:
    return 2**63 + next(_NEXT_ID)  # travels as uint64


ID_KINDS = {"int": _int_id, "str": _str_id, "uint64": _big_id}


@pytest.mark.parametrize("make_id", list(ID_KINDS.values()), ids=list(ID_KINDS))
def test_sequence_start_then_continue_then_end(client, make_id):
    sid = make_id()
    outputs = [
        _out(
            client.infer(
                "simple_sequence", _value(10), sequence_id=sid, sequence_start=True
            )
        ),
        _out(client.infer("simple_sequence", _value(20), sequence_id=sid)),
        _out(client.infer("simple_sequence", _value(-5), sequence_id=sid)),
        _out(
            client.infer(
                "simple_sequence", _value(30), sequence_id=sid, sequence_end=True
            )
        ),
    ]
    assert outputs == [11, 20, -5, 30]


@pytest.mark.parametrize("make_id", list(ID_KINDS.values()), ids=list(ID_KINDS))
def test_after_end_needs_start_again(client, make_id):
    sid = make_id()
    client.infer(
        "simple_sequence",
        _value(1),
        sequence_id=sid,
        sequence_start=True,
        sequence_end=True,
    )
    with pytest.raises(oip.InvalidInputError, match="START"):
        client.infer("simple_sequence", _value(2), sequence_id=sid)
    # A new START opens it again.
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(2), sequence_id=sid, sequence_start=True
            )
        )
        == 3
    )


@pytest.mark.parametrize("make_id", list(ID_KINDS.values()), ids=list(ID_KINDS))
def test_first_request_without_start_refused(client, make_id):
    sid = make_id()
    with pytest.raises(oip.InvalidInputError) as caught:
        client.infer(
            "simple_sequence", _value(5), sequence_id=sid, request_id="no-start"
        )
    error = caught.value
    assert "must specify the START flag" in error.message
    assert str(sid) in error.message
    assert error.status is oip.StatusCode.INVALID_ARGUMENT
    assert error.model == "simple_sequence"
    assert error.request_id == "no-start"


def test_int_and_str_ids_are_distinct_sequences(client):
    number = _int_id()
    client.infer("simple_sequence", _value(1), sequence_id=number, sequence_start=True)
    with pytest.raises(oip.InvalidInputError, match=f"'{number}'"):
        client.infer("simple_sequence", _value(1), sequence_id=str(number))
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(4), sequence_id=number, sequence_end=True
            )
        )
        == 4
    )


def test_interleaved_sequences_keep_their_own_state(client):
    first, second = _int_id(), _str_id()
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(100), sequence_id=first, sequence_start=True
            )
        )
        == 101
    )
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(200), sequence_id=second, sequence_start=True
            )
        )
        == 201
    )
    assert _out(client.infer("simple_sequence", _value(100), sequence_id=first)) == 100
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(200), sequence_id=second, sequence_end=True
            )
        )
        == 200
    )
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(7), sequence_id=first, sequence_end=True
            )
        )
        == 7
    )


def test_restart_with_start_adds_one_again(client):
    sid = _int_id()
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(0), sequence_id=sid, sequence_start=True
            )
        )
        == 1
    )
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(0), sequence_id=sid, sequence_start=True
            )
        )
        == 1
    )
    assert (
        _out(
            client.infer(
                "simple_sequence", _value(0), sequence_id=sid, sequence_end=True
            )
        )
        == 0
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"sequence_id": ""}, {"sequence_id": 0}],
    ids=["no-id", "empty-str-id", "zero-id"],
)
def test_server_requires_an_id(client, kwargs):
    with pytest.raises(oip.InvalidInputError, match="correlation ID"):
        client.infer("simple_sequence", _value(1), **kwargs)


def test_batch_of_two_refused(client):
    with pytest.raises(oip.InvalidInputError, match="batch-size 1"):
        client.infer(
            "simple_sequence",
            {"INPUT": np.array([[1], [2]], dtype=np.int32)},
            sequence_id=_int_id(),
            sequence_start=True,
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sequence_start": True},
        {"sequence_end": True},
        {"sequence_id": False, "sequence_start": True},
    ],
    ids=["start-without-id", "end-without-id", "false-id"],
)
def test_flags_without_id_refused_by_client(client, kwargs):
    with pytest.raises(oip.InvalidInputError, match="sequence_id"):
        client.infer("simple_sequence", _value(1), **kwargs)


def test_sequence_over_a_stream(client):
    sid = _str_id()
    with client.stream(timeout=DEADLINE) as stream:
        stream.send(
            "simple_sequence",
            _value(1),
            sequence_id=sid,
            sequence_start=True,
            request_id="a",
        )
        stream.send("simple_sequence", _value(2), sequence_id=sid, request_id="b")
        stream.send(
            "simple_sequence",
            _value(3),
            sequence_id=sid,
            sequence_end=True,
            request_id="c",
        )
        stream.send(
            "simple_sequence", _value(4), sequence_id=sid, request_id="d"
        )  # after END: refused
        stream.close()
        results = list(stream)
    assert [r.id for r in results[:3]] == ["a", "b", "c"]
    assert [_out(r) for r in results[:3]] == [2, 2, 3]
    assert len(results) == 4
    assert isinstance(results[3].error, oip.OipError)
    assert "START" in results[3].error.message


def test_sequence_with_async_client(server):
    sid = _int_id()

    async def go():
        async with oip.AsyncClient(server.url, timeout=DEADLINE) as aio:
            first = await aio.infer(
                "simple_sequence", _value(41), sequence_id=sid, sequence_start=True
            )
            second = await aio.infer(
                "simple_sequence", _value(41), sequence_id=sid, sequence_end=True
            )
            with pytest.raises(oip.InvalidInputError, match="START"):
                await aio.infer("simple_sequence", _value(41), sequence_id=sid)
            return _out(first), _out(second)

    assert run(go) == (42, 41)
