"""Sequence bookkeeping for stateful models, with Triton's rules and words."""

from __future__ import annotations

import time
from typing import Callable, Mapping, Union

from oip.protocol import grpc_service_pb2 as pb
from oip.server._errors import invalid

SequenceKey = tuple[str, str, Union[int, str]]


def _parameter(parameters: Mapping[str, pb.InferParameter], name: str) -> object:
    if name not in parameters:
        return None
    parameter = parameters[name]
    choice = parameter.WhichOneof("parameter_choice")
    return None if choice is None else getattr(parameter, choice)


class SequenceTracker:
    """Which sequences are live, per model, keyed by correlation id.

    Integer and string ids are distinct sequences ("4245" is not 4245). A
    sequence ends with its END flag or after `idle_seconds` without requests.
    """

    def __init__(
        self, idle_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._last_seen: dict[SequenceKey, float] = {}

    def admit(self, model: str, request: pb.ModelInferRequest, batch_size: int) -> bool:
        """Checks a request against its sequence; returns its START flag."""
        correlation_id = _parameter(request.parameters, "sequence_id")
        if correlation_id in (None, 0, "") or isinstance(correlation_id, (bool, float)):
            raise invalid(
                f"inference request to model '{model}' must specify a non-zero or "
                "non-empty correlation ID"
            )
        if batch_size != 1:
            raise invalid(
                f"inference request to model '{model}' must specify batch-size 1 "
                "due to requirements of sequence batcher"
            )
        assert isinstance(correlation_id, (int, str))

        start = bool(_parameter(request.parameters, "sequence_start"))
        end = bool(_parameter(request.parameters, "sequence_end"))
        now = self._clock()
        self._forget_idle(now)
        key: SequenceKey = (model, type(correlation_id).__name__, correlation_id)
        if not start and key not in self._last_seen:
            shown = (
                correlation_id
                if isinstance(correlation_id, int)
                else f"'{correlation_id}'"
            )
            raise invalid(
                f"inference request for sequence {shown} to model '{model}' must "
                "specify the START flag on the first request of the sequence"
            )

        if end:
            self._last_seen.pop(key, None)
        else:
            self._last_seen[key] = now
        return start

    def forget(self, model: str) -> None:
        """Ends every sequence of `model` (it was loaded again or unloaded)."""
        for key in [key for key in self._last_seen if key[0] == model]:
            del self._last_seen[key]

    def _forget_idle(self, now: float) -> None:
        expired = [
            key for key, seen in self._last_seen.items() if now - seen > self._idle
        ]
        for key in expired:
            del self._last_seen[key]
