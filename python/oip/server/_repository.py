"""The model repository: which demo models are loaded, and with what config.

The reference server has no repository on disk: its repository is the set
of demo models it was built with. Loading makes one available, unloading
makes it UNAVAILABLE; both work in either model control mode ("none" loads
every model at start, "explicit" only those asked for), which keeps the
server's behaviour the same whichever mode a test starts it in.

A load may carry a "config" parameter, JSON of ModelConfig fields merged
onto the model's own config. The server honours max_batch_size and keeps
the other fields for ModelConfig to report; it refuses overrides that would
change what the demo model's code does (name, tensors, decoupling,
scheduling). "file:<path>" parameters come with a config, as in Triton, and
are kept without being executed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

import grpc
from google.protobuf import json_format

from oip.protocol import grpc_service_pb2 as pb
from oip.protocol import model_config_pb2 as mc
from oip.server._errors import RequestError, invalid, not_found
from oip.server._models import Model, find_model
from oip.server._statistics import ModelStats

_LOG = logging.getLogger(__name__)

READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
MODES = ("none", "explicit")

Parameters = Mapping[str, pb.ModelRepositoryParameter]


@dataclass
class _Entry:
    """One demo model and its state in the repository."""

    base: Model
    model: Optional[Model] = None  # the loaded instance, None when not loaded
    config: Optional[mc.ModelConfig] = None
    reason: str = "not loaded"
    files: dict[str, bytes] = field(default_factory=dict)
    stats: Optional[ModelStats] = None  # created at the first load


def _choice(parameter: pb.ModelRepositoryParameter) -> Optional[str]:
    choice: Optional[str] = parameter.WhichOneof("parameter_choice")
    return choice


def _failed(name: str, reason: str) -> RequestError:
    return RequestError(grpc.StatusCode.INTERNAL, f"failed to load '{name}', {reason}")


def _parse_override(name: str, text: str, base: mc.ModelConfig) -> mc.ModelConfig:
    """`base` with the JSON override `text` merged onto it."""
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _failed(name, f"parameter 'config' is not valid JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise _failed(
            name, "parameter 'config' must be a JSON object of ModelConfig fields"
        )
    merged = mc.ModelConfig()
    merged.CopyFrom(base)
    try:
        json_format.ParseDict(fields, merged)
    except Exception as exc:  # the parser's errors vary with the bad input
        reason = f"parameter 'config' is not a valid ModelConfig: {exc}"
        raise _failed(name, reason) from exc
    return merged


def _check_override(model: Model, base: mc.ModelConfig, merged: mc.ModelConfig) -> None:
    """Refuses an override the demo model's code cannot honour."""
    name = model.name
    fixed = {
        "name": (merged.name, base.name),
        "input": (list(merged.input), list(base.input)),
        "output": (list(merged.output), list(base.output)),
        "model_transaction_policy": (
            merged.model_transaction_policy,
            base.model_transaction_policy,
        ),
        "scheduling": (
            merged.WhichOneof("scheduling_choice") == "sequence_batching",
            base.WhichOneof("scheduling_choice") == "sequence_batching",
        ),
    }
    for what, (got, want) in fixed.items():
        if got != want:
            raise _failed(
                name,
                f"the config override changes '{what}', which is "
                f"fixed for the reference server's model '{name}'",
            )
    if merged.WhichOneof("scheduling_choice") == "ensemble_scheduling":
        raise _failed(name, f"model '{name}' cannot become an ensemble")
    if merged.max_batch_size < 0:
        raise _failed(name, f"max_batch_size {merged.max_batch_size} is negative")
    if model.max_batch_size == 0 and merged.max_batch_size > 0:
        raise _failed(
            name,
            f"model '{name}' does not support batching; "
            f"max_batch_size must stay 0, not {merged.max_batch_size}",
        )


class Repository:
    """The demo models, their load state, configs and statistics."""

    def __init__(
        self,
        models: Mapping[str, Model],
        mode: str = "none",
        startup: Iterable[str] = (),
    ) -> None:
        """Loads every model (mode "none") or those in `startup` ("explicit").

        Raises:
            ValueError: unknown mode, or a startup model that does not exist.
        """
        if mode not in MODES:
            known = ", ".join(MODES)
            raise ValueError(f"model control mode '{mode}' is not one of {known}")
        self._entries = {name: _Entry(model) for name, model in models.items()}
        names = list(startup)
        if mode == "none" or "*" in names:
            names = list(self._entries)
        for name in names:
            if name not in self._entries:
                known = ", ".join(sorted(self._entries))
                raise ValueError(
                    f"failed to load '{name}': not a model of the "
                    f"reference server ({known})"
                )
            self.load(name, {})

    @property
    def names(self) -> list[str]:
        """Every model's name, sorted."""
        return sorted(self._entries)

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise not_found(f"Request for unknown model: '{name}' is not found")
        return entry

    def require(self, name: str) -> None:
        """Refuses, NOT_FOUND, a name that is none of the models'."""
        self._entry(name)

    def get(self, name: str, version: str) -> Model:
        """The loaded model `name` at `version` ('' means the latest).

        Raises:
            RequestError: NOT_FOUND when unknown, UNAVAILABLE when not loaded,
                INVALID_ARGUMENT or NOT_FOUND for a bad version.
        """
        entry = self._entry(name)
        if entry.model is None:
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE,
                f"Request for unknown model: '{name}' has no available versions",
            )
        return find_model({name: entry.model}, name, version)

    def config(self, name: str, version: str) -> mc.ModelConfig:
        """The config the loaded model `name` reports."""
        self.get(name, version)
        config = self._entries[name].config
        assert config is not None
        return config

    def stats(self, name: str) -> ModelStats:
        """The statistics of a model that has been loaded."""
        stats = self._entry(name).stats
        assert stats is not None, f"model '{name}' was never loaded"
        return stats

    def statistics(self, name: str, version: str) -> list[pb.ModelStatistics]:
        """Statistics of model `name`, or of every model ever loaded if ''."""
        if not name:
            return [
                entry.stats.to_proto(entry.base.name, entry.base.version)
                for _, entry in sorted(self._entries.items())
                if entry.stats is not None
            ]
        entry = self._entry(name)
        model = find_model({name: entry.base}, name, version)
        if entry.stats is None:
            raise not_found(
                f"model '{name}' has never been loaded; it has no statistics"
            )
        return [entry.stats.to_proto(name, model.version)]

    def index(self, ready_only: bool) -> pb.RepositoryIndexResponse:
        """Every model with its version, state and reason."""
        response = pb.RepositoryIndexResponse()
        for name, entry in sorted(self._entries.items()):
            if entry.model is not None:
                response.models.add(name=name, version=entry.base.version, state=READY)
            elif not ready_only:
                response.models.add(
                    name=name,
                    version=entry.base.version,
                    state=UNAVAILABLE,
                    reason=entry.reason,
                )
        return response

    def load(self, name: str, parameters: Parameters) -> Model:
        """(Re)loads model `name`; a failed load leaves its state as it was."""
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries))
            raise _failed(name, f"the reference server has no such model ({known})")
        override, files = self._load_parameters(name, parameters)
        base = entry.base.config()
        config = base if override is None else _parse_override(name, override, base)
        _check_override(entry.base, base, config)
        model = dataclasses.replace(entry.base, max_batch_size=config.max_batch_size)
        entry.model, entry.config, entry.files, entry.reason = model, config, files, ""
        if entry.stats is None:
            entry.stats = ModelStats()
        how = " with a config override" if override is not None else ""
        _LOG.info("loaded model '%s'%s", name, how)
        return model

    @staticmethod
    def _load_parameters(
        name: str, parameters: Parameters
    ) -> tuple[Optional[str], dict[str, bytes]]:
        """The config override and files of a load request, checked."""
        where = f"load of model '{name}'"
        override: Optional[str] = None
        files: dict[str, bytes] = {}
        for key, parameter in parameters.items():
            if key == "config":
                if _choice(parameter) != "string_param":
                    raise invalid(f"{where}: parameter 'config' must be string_param")
                override = parameter.string_param
            elif key.startswith("file:"):
                files[key[len("file:") :]] = _file_content(where, key, parameter)
            else:
                raise invalid(
                    f"{where}: unknown parameter '{key}'; expected 'config' or "
                    "'file:<path>'"
                )
        if files and override is None:
            first = sorted(files)[0]
            raise invalid(f"{where}: file 'file:{first}' needs parameter 'config' too")
        return override, files

    def unload(self, name: str, parameters: Parameters) -> None:
        """Makes model `name` UNAVAILABLE; it has no dependents to unload."""
        entry = self._entry(name)
        where = f"unload of model '{name}'"
        for key, parameter in parameters.items():
            if key != "unload_dependents":
                raise invalid(
                    f"{where}: unknown parameter '{key}'; expected 'unload_dependents'"
                )
            if _choice(parameter) != "bool_param":
                raise invalid(
                    f"{where}: parameter 'unload_dependents' must be bool_param"
                )
        entry.model, entry.config, entry.files = None, None, {}
        entry.reason = "unloaded"
        _LOG.info("unloaded model '%s'", name)


def _file_content(
    where: str, key: str, parameter: pb.ModelRepositoryParameter
) -> bytes:
    """A "file:<path>" parameter's bytes; the path stays inside the model."""
    path = key[len("file:") :]
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise invalid(f"{where}: '{key}' is not a relative path inside the model")
    if _choice(parameter) != "bytes_param":
        raise invalid(f"{where}: parameter '{key}' must be bytes_param")
    return parameter.bytes_param
