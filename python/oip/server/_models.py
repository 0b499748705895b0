"""Demo models that mirror Triton's classic example models.

Names, tensors, datatypes, shapes and behaviour follow Triton's `simple`,
`simple_int8`, `simple_string`, `simple_identity`, `simple_sequence` and
`repeat_int32`, so Triton's own example clients run against them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator, Mapping, Optional

import numpy as np

from oip._datatype import DataType
from oip.protocol import model_config_pb2 as mc
from oip.server._errors import invalid
from oip.server._tensors import TensorSpec

Arrays = Mapping[str, np.ndarray]

# repeat_int32 refuses a DELAY or WAIT above this, so a stream never stalls.
MAX_DELAY_MS = 10_000

# simple_string's operands, so sums stay within Python's 4300-digit int/str limit.
MAX_DECIMAL_DIGITS = 4000

_CONFIG_TYPES = {
    datatype: getattr(
        mc, "TYPE_STRING" if datatype is DataType.BYTES else f"TYPE_{datatype.value}"
    )
    for datatype in DataType
}


@dataclass
class Context:
    """What a model sees of a request besides its inputs."""

    sequence_start: bool = False


@dataclass
class Model:
    """A model: its interface, its config, and how it computes."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int = 8
    decoupled: bool = False
    sequence: bool = False
    version: str = "1"
    platform: str = "oip_reference"
    input_specs: dict[str, TensorSpec] = field(init=False)
    output_specs: dict[str, TensorSpec] = field(init=False)

    def __post_init__(self) -> None:
        self.input_specs = {spec.name: spec for spec in self.inputs}
        self.output_specs = {spec.name: spec for spec in self.outputs}

    def compute(self, inputs: Arrays, context: Context) -> dict[str, np.ndarray]:
        """One response's outputs (models that are not decoupled)."""
        raise NotImplementedError

    async def compute_stream(
        self, inputs: Arrays, context: Context
    ) -> AsyncIterator[dict[str, np.ndarray]]:
        """Each response's outputs in turn (decoupled models)."""
        yield self.compute(inputs, context)

    def config(self) -> mc.ModelConfig:
        """The ModelConfig this model reports."""
        config = mc.ModelConfig(
            name=self.name,
            platform=self.platform,
            backend="python",
            max_batch_size=self.max_batch_size,
        )
        for spec in self.inputs:
            config.input.add(
                name=spec.name, data_type=_CONFIG_TYPES[spec.datatype], dims=spec.dims
            )
        for spec in self.outputs:
            config.output.add(
                name=spec.name, data_type=_CONFIG_TYPES[spec.datatype], dims=spec.dims
            )
        config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
        if self.decoupled:
            config.model_transaction_policy.decoupled = True
        return config


def _spec(name: str, datatype: DataType, *dims: int) -> TensorSpec:
    return TensorSpec(name, datatype, tuple(dims))


@dataclass
class AddSub(Model):
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, wrapping."""

    def compute(self, inputs: Arrays, context: Context) -> dict[str, np.ndarray]:
        a, b = inputs["INPUT0"], inputs["INPUT1"]
        return {"OUTPUT0": a + b, "OUTPUT1": a - b}


@dataclass
class StringAddSub(Model):
    """Like `simple`, on decimal text; answers are exact decimal text."""

    def compute(self, inputs: Arrays, context: Context) -> dict[str, np.ndarray]:
        a = self._parse("INPUT0", inputs["INPUT0"])
        b = self._parse("INPUT1", inputs["INPUT1"])
        text = np.vectorize(lambda n: str(n).encode(), otypes=[np.object_])
        return {"OUTPUT0": text(a + b), "OUTPUT1": text(a - b)}

    def _parse(self, name: str, array: np.ndarray) -> np.ndarray:
        out = np.empty(array.shape, dtype=np.object_)
        for index, element in np.ndenumerate(array):
            if len(element) > MAX_DECIMAL_DIGITS:
                raise invalid(
                    f"input '{name}' of model '{self.name}': element {list(index)} has "
                    f"{len(element)} characters; the limit is {MAX_DECIMAL_DIGITS}"
                )
            try:
                out[index] = int(bytes(element).decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                raise invalid(
                    f"input '{name}' of model '{self.name}': element {list(index)} is "
                    f"{bytes(element)[:32]!r}, not a decimal integer"
                ) from None
        return out


@dataclass
class Identity(Model):
    """OUTPUT0 = INPUT0."""

    def compute(self, inputs: Arrays, context: Context) -> dict[str, np.ndarray]:
        return {"OUTPUT0": inputs["INPUT0"]}


@dataclass
class Sequence(Model):
    """OUTPUT = (INPUT + START) x READY, as Triton's simple_sequence does."""

    def compute(self, inputs: Arrays, context: Context) -> dict[str, np.ndarray]:
        start = np.int32(1 if context.sequence_start else 0)
        return {"OUTPUT": (inputs["INPUT"] + start) * np.int32(1)}

    def config(self) -> mc.ModelConfig:
        config = super().config()
        batching = config.sequence_batching
        batching.max_sequence_idle_microseconds = 1_000_000
        for kind, name in (
            (mc.ModelSequenceBatching.Control.CONTROL_SEQUENCE_START, "START"),
            (mc.ModelSequenceBatching.Control.CONTROL_SEQUENCE_READY, "READY"),
        ):
            control = batching.control_input.add(name=name).control.add(kind=kind)
            control.int32_false_true.extend([0, 1])
            control.data_type = mc.TYPE_INT32
        return config


@dataclass
class Repeat(Model):
    """One response per IN element, each after DELAY[i] ms: OUT = IN[i], IDX = i."""

    async def compute_stream(
        self, inputs: Arrays, context: Context
    ) -> AsyncIterator[dict[str, np.ndarray]]:
        values, delays, wait = inputs["IN"], inputs["DELAY"], inputs["WAIT"]
        if delays.shape != values.shape:
            raise invalid(
                f"input 'DELAY' of model '{self.name}' has shape {list(delays.shape)}; "
                f"it needs one delay per IN element, shape {list(values.shape)}"
            )
        for name, array in (("DELAY", delays), ("WAIT", wait)):
            if array.size and int(array.max()) > MAX_DELAY_MS:
                raise invalid(
                    f"input '{name}' of model '{self.name}' asks for "
                    f"{int(array.max())} ms; the limit is {MAX_DELAY_MS} ms"
                )

        for index in range(values.shape[0]):
            await asyncio.sleep(int(delays[index]) / 1000)
            yield {
                "OUT": np.array([values[index]], dtype=np.int32),
                "IDX": np.array([index], dtype=np.uint32),
            }
        await asyncio.sleep(int(wait[0]) / 1000)


def demo_models() -> dict[str, Model]:
    """The demo models by name."""
    i32, i8, u32, text = DataType.INT32, DataType.INT8, DataType.UINT32, DataType.BYTES
    models: list[Model] = [
        AddSub(
            "simple",
            (_spec("INPUT0", i32, 16), _spec("INPUT1", i32, 16)),
            (_spec("OUTPUT0", i32, 16), _spec("OUTPUT1", i32, 16)),
        ),
        AddSub(
            "simple_int8",
            (_spec("INPUT0", i8, 16), _spec("INPUT1", i8, 16)),
            (_spec("OUTPUT0", i8, 16), _spec("OUTPUT1", i8, 16)),
        ),
        StringAddSub(
            "simple_string",
            (_spec("INPUT0", text, 16), _spec("INPUT1", text, 16)),
            (_spec("OUTPUT0", text, 16), _spec("OUTPUT1", text, 16)),
        ),
        Identity(
            "simple_identity",
            (_spec("INPUT0", text, -1),),
            (_spec("OUTPUT0", text, -1),),
        ),
        # Not one of Triton's simple_* models: large FP32 tensors for benchmarks.
        Identity(
            "identity_fp32",
            (_spec("INPUT0", DataType.FP32, -1),),
            (_spec("OUTPUT0", DataType.FP32, -1),),
            max_batch_size=0,
        ),
        Sequence(
            "simple_sequence",
            (_spec("INPUT", i32, 1),),
            (_spec("OUTPUT", i32, 1),),
            sequence=True,
        ),
        Repeat(
            "repeat_int32",
            (_spec("IN", i32, -1), _spec("DELAY", u32, -1), _spec("WAIT", u32, 1)),
            (_spec("OUT", i32, 1), _spec("IDX", u32, 1)),
            max_batch_size=0,
            decoupled=True,
        ),
    ]
    return {model.name: model for model in models}


def find_model(models: Mapping[str, Model], name: str, version: str) -> Model:
    """The model called `name` at `version` ('' means the latest)."""
    from oip.server._errors import not_found

    model: Optional[Model] = models.get(name)
    if model is None:
        raise not_found(f"Request for unknown model: '{name}' is not found")
    # ASCII digits only, compared as text: int() refuses "²" and 5000 digits.
    if version and not (version.isascii() and version.isdigit()):
        raise invalid(f"model '{name}': version '{version}' is not a positive integer")
    if version and version.lstrip("0") != model.version:
        raise not_found(
            f"Request for unknown model: '{name}' version {version} is not found"
        )
    return model
