"""Inference requests and results, free of any transport.

`build_request` turns inputs, outputs and options into an `EncodedRequest`:
a small header message plus the raw input buffers, kept apart so that each
transport can write them without copying the tensors again. `InferResult`
reads a response whose raw outputs are views into the received buffer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import (
    Any,
    Iterator,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    TypedDict,
    Union,
)

import numpy as np
from google.protobuf import message as protobuf_message

from oip._bytes import Buffer
from oip._errors import InvalidInputError, OipError, ServerError, StatusCode
from oip._tensor import (
    DATATYPE_BY_DTYPE,
    InferInput,
    ParameterValue,
    RequestedOutput,
    decode_tensor,
    decode_typed_contents,
)
from oip._wire import (
    RESPONSE_RAW_OUTPUT_FIELD,
    WireFormatError,
    frame_request,
    split_field,
)
from oip.protocol import grpc_service_pb2 as pb

_LOG = logging.getLogger(__name__)

# Parameters oip sets from its own arguments; custom parameters may not use them.
RESERVED_PARAMETERS = frozenset(
    {
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
        "binary_data",
        "binary_data_size",
        "binary_data_output",
        "classification",
        "shared_memory_region",
        "shared_memory_offset",
        "shared_memory_byte_size",
        "triton_enable_empty_final_response",
    }
)

# Responses from this size on are split so that outputs are views of the
# received buffer; smaller ones are cheaper to parse whole.
SPLIT_THRESHOLD_BYTES = 64 * 1024

_NO_PARAMETERS: Mapping[str, ParameterValue] = MappingProxyType({})

InputsArg = Union[Mapping[str, Any], Sequence[InferInput]]
OutputsArg = Optional[Sequence[Union[str, RequestedOutput]]]


class InferArgs(TypedDict, total=False):
    """Request options taken by `infer`, `async_infer` and `stream().send`.

    Attributes:
        version: the model version ("" for the server's choice).
        request_id: an id the server echoes back.
        sequence_id: for stateful models; an int and a str are distinct ids.
        sequence_start: the first request of the sequence.
        sequence_end: the last request of the sequence.
        priority: scheduling priority (0: the model's default).
        server_timeout_us: how long the server may hold the request, in
            microseconds (Triton's `timeout` parameter).
        parameters: custom request parameters (bool, int, float or str);
            names the protocol reserves are refused.
    """

    version: str
    request_id: str
    sequence_id: Union[int, str]
    sequence_start: bool
    sequence_end: bool
    priority: int
    server_timeout_us: int
    parameters: Mapping[str, ParameterValue]


class InferOptions(NamedTuple):
    """Per-request options of `infer` and `stream.send`, as the protocol names them.

    A NamedTuple: one is built for every request, and it is cheap.
    """

    version: str = ""
    request_id: str = ""
    sequence_id: Union[int, str] = 0
    sequence_start: bool = False
    sequence_end: bool = False
    priority: int = 0
    server_timeout_us: int = 0
    parameters: Mapping[str, ParameterValue] = _NO_PARAMETERS
    enable_empty_final_response: bool = False


@dataclass
class EncodedRequest:
    """A request ready for a transport: header message and raw input buffers."""

    model_name: str
    request_id: str
    header: pb.ModelInferRequest
    raw_inputs: list[memoryview]

    def to_grpc_bytes(self) -> bytes:
        """The whole ModelInferRequest, tensors copied once."""
        return frame_request(self.header.SerializeToString(), self.raw_inputs)


def set_parameter(target: Any, key: str, value: ParameterValue) -> None:
    """Stores `value` in a protobuf map of InferParameter by its Python type."""
    parameter = target[key]
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        if not -(1 << 63) <= value < 1 << 64:
            raise InvalidInputError(
                f"parameter '{key}' = {value} does not fit in int64 or uint64"
            )
        if value >= 1 << 63:
            parameter.uint64_param = value
        else:
            parameter.int64_param = value
    elif isinstance(value, float):
        parameter.double_param = value
    elif isinstance(value, str):
        parameter.string_param = value
    else:
        raise InvalidInputError(
            f"parameter '{key}' is {type(value).__name__}; give bool, int, float or str"
        )


def parameter_value(parameter: pb.InferParameter) -> ParameterValue:
    """The Python value of an InferParameter."""
    choice = parameter.WhichOneof("parameter_choice")
    if choice is None:
        return ""
    value: ParameterValue = getattr(parameter, choice)
    return value


def _add_plain_arrays(
    header: pb.ModelInferRequest,
    inputs: Mapping[str, Any],
    raw_inputs: list[memoryview],
    seen: set[str],
) -> dict[str, Any]:
    """Adds the numeric numpy arrays of `inputs`; returns the rest."""
    rest: dict[str, Any] = {}
    for name, value in inputs.items():
        # The numeric dtypes, as they are: no InferInput for the common case.
        datatype = (
            DATATYPE_BY_DTYPE.get(value.dtype) if type(value) is np.ndarray else None
        )
        if datatype is None or not name or value.size == 0:
            rest[name] = value
            continue
        array = value if value.flags.c_contiguous else np.ascontiguousarray(value)
        header.inputs.add(name=name, datatype=datatype.value, shape=array.shape)
        raw_inputs.append(array.data.cast("B"))
        seen.add(name)
    return rest


def _inputs_list(inputs: InputsArg) -> list[InferInput]:
    if isinstance(inputs, Mapping):
        return [
            value
            if isinstance(value, InferInput) and value.name == name
            else InferInput(name, value)
            for name, value in inputs.items()
        ]
    result = list(inputs)
    for item in result:
        if not isinstance(item, InferInput):
            raise InvalidInputError(
                "inputs must be InferInput objects or a name -> array mapping, "
                f"got {type(item).__name__}"
            )
    return result


def _check_parameters(parameters: Mapping[str, ParameterValue]) -> None:
    for key in parameters:
        if key in RESERVED_PARAMETERS or key.startswith("triton_"):
            raise InvalidInputError(
                f"parameter '{key}' is reserved; use the matching argument of "
                "infer() instead"
            )


def build_request(
    model_name: str, inputs: InputsArg, outputs: OutputsArg, options: InferOptions
) -> EncodedRequest:
    """Encodes one inference request.

    Raises:
        InvalidInputError: a tensor, output or option is wrong; the message
            names it.
    """
    if not model_name:
        raise InvalidInputError("model name is empty")
    _check_parameters(options.parameters)
    header = pb.ModelInferRequest(
        model_name=model_name,
        model_version=options.version,
        id=options.request_id,
    )
    _set_request_parameters(header, options)

    raw_inputs: list[memoryview] = []
    seen: set[str] = set()
    if isinstance(inputs, Mapping):
        inputs = _add_plain_arrays(header, inputs, raw_inputs, seen)
    for tensor in _inputs_list(inputs):
        if tensor.name in seen:
            raise InvalidInputError(
                f"input '{tensor.name}' is given twice", model=model_name
            )
        seen.add(tensor.name)
        tensor.check_ready()
        assert tensor.datatype is not None and tensor.shape is not None
        message = header.inputs.add(
            name=tensor.name, datatype=tensor.datatype.value, shape=tensor.shape
        )
        _check_parameters(tensor.parameters)
        params = dict(tensor.parameters)
        if tensor.shared_memory is not None:
            params.update(tensor.shared_memory.parameters())
        elif tensor.raw is not None:
            raw_inputs.append(tensor.raw)
        for key, value in params.items():
            set_parameter(message.parameters, key, value)

    for requested in outputs or ():
        _add_output(
            header,
            requested
            if isinstance(requested, RequestedOutput)
            else RequestedOutput(requested),
        )
    return EncodedRequest(model_name, options.request_id, header, raw_inputs)


def _set_request_parameters(
    header: pb.ModelInferRequest, options: InferOptions
) -> None:
    params = header.parameters
    if options.sequence_id:
        if isinstance(options.sequence_id, bool):
            raise InvalidInputError("sequence_id must be an int or a str, not bool")
        set_parameter(params, "sequence_id", options.sequence_id)
        params["sequence_start"].bool_param = options.sequence_start
        params["sequence_end"].bool_param = options.sequence_end
    elif options.sequence_start or options.sequence_end:
        raise InvalidInputError("sequence_start and sequence_end need a sequence_id")
    if options.priority:
        if options.priority < 0:
            raise InvalidInputError(f"priority {options.priority} is negative")
        params["priority"].uint64_param = options.priority
    if options.server_timeout_us:
        if options.server_timeout_us < 0:
            raise InvalidInputError(
                f"server timeout {options.server_timeout_us} us is negative"
            )
        params["timeout"].int64_param = options.server_timeout_us
    if options.enable_empty_final_response:
        params["triton_enable_empty_final_response"].bool_param = True
    for key, value in options.parameters.items():
        set_parameter(params, key, value)


def _add_output(header: pb.ModelInferRequest, requested: RequestedOutput) -> None:
    if any(output.name == requested.name for output in header.outputs):
        raise InvalidInputError(
            f"output '{requested.name}' is requested twice", model=header.model_name
        )
    _check_parameters(requested.parameters)
    message = header.outputs.add(name=requested.name)
    params: dict[str, ParameterValue] = dict(requested.parameters)
    if requested.class_count:
        params["classification"] = requested.class_count
    if requested.shared_memory is not None:
        params.update(requested.shared_memory.parameters())
    for key, value in params.items():
        set_parameter(message.parameters, key, value)


@dataclass(frozen=True)
class OutputTensor:
    """What the response says about one output (its data: `InferResult[name]`)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: Mapping[str, ParameterValue]

    @property
    def in_shared_memory(self) -> bool:
        """True when the server wrote this output into a shared memory region."""
        return "shared_memory_region" in self.parameters


class InferResult(Mapping[str, np.ndarray]):
    """The answer to one request: a mapping from output name to numpy array.

    Numeric outputs are read-only views into the received message (no
    copy); copy one (`np.array(x)`) to modify it. BYTES outputs (object
    arrays of bytes) and BF16 outputs (widened to float32) are new arrays.
    In a stream, a response may carry an error instead: `error` is then set
    and reading an output raises it.
    """

    def __init__(
        self,
        response: Optional[pb.ModelInferResponse],
        raw_outputs: Sequence[memoryview] = (),
        *,
        error: Optional[OipError] = None,
    ) -> None:
        self._response = response if response is not None else pb.ModelInferResponse()
        self.error = error
        self._arrays: dict[str, np.ndarray] = {}
        self._raw: dict[str, memoryview] = {}
        # Output messages by name; those the server wrote to shared memory
        # have no raw contents (and no array here).
        self._messages: dict[str, pb.ModelInferResponse.InferOutputTensor] = {}
        self._in_shm: set[str] = set()
        raw_iter = iter(raw_outputs)
        for message in self._response.outputs:
            name = message.name
            self._messages[name] = message
            if message.parameters and "shared_memory_region" in message.parameters:
                self._in_shm.add(name)
                continue
            if raw_outputs:
                raw = next(raw_iter, None)
                if raw is None:
                    raise ServerError(
                        f"response has no raw contents for output '{name}'",
                        status=StatusCode.DATA_LOSS,
                        model=self.model_name,
                    )
                self._raw[name] = raw

    @property
    def model_name(self) -> str:
        """The model that answered."""
        return self._response.model_name

    @property
    def model_version(self) -> str:
        """The version that answered."""
        return self._response.model_version

    @property
    def id(self) -> str:
        """The request id echoed back."""
        return self._response.id

    @property
    def parameters(self) -> dict[str, ParameterValue]:
        """Response parameters (for example `triton_final_response`)."""
        return {
            key: parameter_value(value)
            for key, value in self._response.parameters.items()
        }

    @property
    def is_final(self) -> bool:
        """False only on a stream response the server marks as not final."""
        flag = self._response.parameters.get("triton_final_response")
        return True if flag is None else bool(flag.bool_param)

    @property
    def outputs(self) -> dict[str, OutputTensor]:
        """Name, datatype, shape and parameters of every output returned."""
        self.raise_for_error()
        return {
            name: _output_tensor(message) for name, message in self._messages.items()
        }

    def raise_for_error(self) -> None:
        """Raises the response's error, if it carries one."""
        if self.error is not None:
            raise self.error

    def as_numpy(self, name: str) -> np.ndarray:
        """The output called `name` as a numpy array.

        Raises:
            KeyError: the response has no such output (or it is in shared
                memory: read it from the region).
            OipError: the response is an error.
        """
        self.raise_for_error()
        cached = self._arrays.get(name)
        if cached is not None:
            return cached
        message = self._messages.get(name)
        if message is None or name in self._in_shm:
            where = "is in shared memory" if message else "is not in the response"
            raise KeyError(
                f"output '{name}' {where}; outputs: {', '.join(self._messages)}"
            )
        raw = self._raw.get(name)
        if raw is not None:
            array = decode_tensor(name, message.datatype, message.shape, raw)
        else:
            array = decode_typed_contents(
                name, message.datatype, message.shape, message.contents
            )
        self._arrays[name] = array
        return array

    def get_response(self) -> pb.ModelInferResponse:
        """The response message without its raw output bytes."""
        return self._response

    def __getitem__(self, name: str) -> np.ndarray:
        return self.as_numpy(name)

    def __iter__(self) -> Iterator[str]:
        self.raise_for_error()
        return (name for name in self._messages if name not in self._in_shm)

    def __len__(self) -> int:
        self.raise_for_error()
        return len(self._messages) - len(self._in_shm)

    def __repr__(self) -> str:
        if self.error is not None:
            return f"InferResult(error={self.error!r})"
        return f"InferResult(model={self.model_name!r}, outputs={list(self._messages)})"


def _output_tensor(message: pb.ModelInferResponse.InferOutputTensor) -> OutputTensor:
    params = {key: parameter_value(value) for key, value in message.parameters.items()}
    return OutputTensor(message.name, message.datatype, tuple(message.shape), params)


def parse_response(
    data: Buffer, model_name: str = "", request_id: str = ""
) -> InferResult:
    """A serialized ModelInferResponse as an InferResult (raw outputs uncopied).

    Raises:
        ServerError: the bytes are not a ModelInferResponse.
    """
    try:
        if len(data) < SPLIT_THRESHOLD_BYTES:
            # Small: protobuf parses it all faster than splitting in Python.
            response = pb.ModelInferResponse.FromString(bytes(data))
            raw_outputs = [memoryview(raw) for raw in response.raw_output_contents]
            response.ClearField("raw_output_contents")
        else:
            header, raw_outputs = split_field(data, RESPONSE_RAW_OUTPUT_FIELD)
            response = pb.ModelInferResponse.FromString(header)
    except (WireFormatError, protobuf_message.DecodeError) as exc:
        raise ServerError(
            f"malformed ModelInferResponse: {exc}",
            status=StatusCode.DATA_LOSS,
            model=model_name or None,
            request_id=request_id or None,
        ) from exc
    return InferResult(response, raw_outputs)
