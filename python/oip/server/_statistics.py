"""Per-model inference statistics, as ModelStatistics reports them.

Every figure comes from real requests and a monotonic nanosecond clock:

- success / fail: from receiving the request's bytes to its last response
  (or its error), one count per request;
- queue: from receipt until the model takes the request (parsing, model
  lookup); the server has no scheduler queue, so this is its waiting time;
- compute_input: decoding and checking inputs, shared memory reads included;
- compute_infer: the model's computation;
- compute_output: encoding outputs, shared memory writes included.

inference_count adds the batch size of each successful request (1 for a
model that does not batch); execution_count counts model executions, one
per successful request since the server does not batch requests together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from oip.protocol import grpc_service_pb2 as pb


def now_ns() -> int:
    """The monotonic clock statistics use."""
    return time.perf_counter_ns()


@dataclass
class Duration:
    """A count of events and their total time."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        """Adds `count` events that took `ns` in all."""
        self.count += count
        self.ns += max(ns, 0)

    def to_proto(self) -> pb.StatisticDuration:
        """The StatisticDuration message."""
        return pb.StatisticDuration(count=self.count, ns=self.ns)


@dataclass
class _Stages:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass
class _ResponseStats:
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    empty_response: Duration = field(default_factory=Duration)

    def to_proto(self) -> pb.InferResponseStatistics:
        return pb.InferResponseStatistics(
            compute_infer=self.compute_infer.to_proto(),
            compute_output=self.compute_output.to_proto(),
            success=self.success.to_proto(),
            fail=self.fail.to_proto(),
            empty_response=self.empty_response.to_proto(),
        )


class RequestTimer:
    """The stages of one request, timed as it goes, then recorded once.

    Call `taken` when the model takes the request, `inputs_done`,
    `infer_done` (or `response` per response of a decoupled model) and
    finally `succeeded` or `failed`.
    """

    def __init__(self, received_ns: int) -> None:
        self.received_ns = received_ns
        self.batch_size = 1
        self.stats: Optional[ModelStats] = None
        self._mark = received_ns
        self._queue = self._input = self._infer = self._output = 0
        self._recorded = False

    def _lap(self) -> int:
        now = now_ns()
        elapsed, self._mark = now - self._mark, now
        return elapsed

    def taken(self, stats: ModelStats) -> None:
        """The model has the request; what came before is queue time."""
        self.stats = stats
        self._queue = self._lap()

    def inputs_done(self, batch_size: int) -> None:
        """Inputs are decoded; `batch_size` is the request's batch size."""
        self.batch_size = batch_size
        self._input = self._lap()

    def restart(self) -> None:
        """Starts timing anew, leaving out time spent outside the server."""
        self._mark = now_ns()

    def infer_done(self) -> int:
        """The model computed (a response); returns that time."""
        elapsed = self._lap()
        self._infer += elapsed
        return elapsed

    def output_done(self) -> int:
        """Outputs are encoded; returns that time."""
        elapsed = self._lap()
        self._output += elapsed
        return elapsed

    def succeeded(self) -> None:
        """Records the request as a success."""
        if self.stats is not None and not self._recorded:
            self._recorded = True
            self.stats.record_success(self, now_ns() - self.received_ns)

    def failed(self) -> None:
        """Records the request as a failure, if a model had taken it."""
        if self.stats is not None and not self._recorded:
            self._recorded = True
            self.stats.fail.add(now_ns() - self.received_ns)

    def stage_ns(self) -> tuple[int, int, int, int]:
        """Queue, input, infer and output time so far."""
        return self._queue, self._input, self._infer, self._output


class ModelStats:
    """The statistics of one model, kept across unloads and reloads."""

    def __init__(self) -> None:
        self.last_inference_ms = 0
        self.inference_count = 0
        self.execution_count = 0
        self.success = Duration()
        self.fail = Duration()
        self.queue = Duration()
        self.stages = _Stages()
        self.batches: dict[int, _Stages] = {}
        self.responses: dict[int, _ResponseStats] = {}

    def record_success(self, timer: RequestTimer, total_ns: int) -> None:
        """Adds one successful request."""
        queue, compute_input, compute_infer, compute_output = timer.stage_ns()
        self.last_inference_ms = time.time_ns() // 1_000_000
        self.inference_count += timer.batch_size
        self.execution_count += 1
        self.success.add(total_ns)
        self.queue.add(queue)
        batch = self.batches.setdefault(timer.batch_size, _Stages())
        for stages in (self.stages, batch):
            stages.compute_input.add(compute_input)
            stages.compute_infer.add(compute_infer)
            stages.compute_output.add(compute_output)

    def response(self, index: int) -> _ResponseStats:
        """The statistics of the `index`-th response of decoupled requests."""
        return self.responses.setdefault(index, _ResponseStats())

    def to_proto(self, name: str, version: str) -> pb.ModelStatistics:
        """The ModelStatistics message."""
        message = pb.ModelStatistics(
            name=name,
            version=version,
            last_inference=self.last_inference_ms,
            inference_count=self.inference_count,
            execution_count=self.execution_count,
        )
        infer = message.inference_stats
        infer.success.CopyFrom(self.success.to_proto())
        infer.fail.CopyFrom(self.fail.to_proto())
        infer.queue.CopyFrom(self.queue.to_proto())
        infer.compute_input.CopyFrom(self.stages.compute_input.to_proto())
        infer.compute_infer.CopyFrom(self.stages.compute_infer.to_proto())
        infer.compute_output.CopyFrom(self.stages.compute_output.to_proto())
        for size in sorted(self.batches):
            stages = self.batches[size]
            message.batch_stats.add(
                batch_size=size,
                compute_input=stages.compute_input.to_proto(),
                compute_infer=stages.compute_infer.to_proto(),
                compute_output=stages.compute_output.to_proto(),
            )
        for index in sorted(self.responses):
            response = self.responses[index].to_proto()
            message.response_stats[str(index)].CopyFrom(response)
        return message
