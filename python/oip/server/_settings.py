"""Trace and log settings, as TraceSetting and LogSettings read and update them.

The reference server does not trace requests: trace settings are checked,
stored and returned, so clients that configure tracing work unchanged. Log
settings set the level of the "oip.server" logger; log_file and log_format
are stored and returned but not applied (the server's log goes where its
command line sent it).
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Iterable, Mapping, Sequence

from oip.protocol import grpc_service_pb2 as pb
from oip.server._errors import invalid

_LOG = logging.getLogger(__name__)

TRACE_DEFAULTS: dict[str, list[str]] = {
    "trace_file": [""],
    "trace_level": ["OFF"],
    "trace_rate": ["1000"],
    "trace_count": ["-1"],
    "log_frequency": ["0"],
    "trace_mode": ["triton"],
}
TRACE_LEVELS = ("OFF", "TIMESTAMPS", "TENSORS")
TRACE_MODES = ("triton", "opentelemetry")

# The smallest value each integer trace setting takes.
_TRACE_MINIMUM = {"trace_rate": 0, "trace_count": -1, "log_frequency": 0}


def _single(key: str, values: Sequence[str]) -> str:
    if len(values) != 1:
        raise invalid(f"trace setting '{key}' takes one value, not {len(values)}")
    return values[0]


def _check_trace(key: str, values: Sequence[str]) -> None:
    """Refuses an unknown trace setting or a value it cannot take."""
    if key not in TRACE_DEFAULTS:
        raise invalid(
            f"unknown trace setting '{key}'; expected one of "
            f"{', '.join(TRACE_DEFAULTS)}"
        )
    if not values:
        return
    if key == "trace_level":
        for level in values:
            if level not in TRACE_LEVELS:
                raise invalid(
                    f"trace setting 'trace_level': '{level}' is not one of "
                    f"{', '.join(TRACE_LEVELS)}"
                )
        if "OFF" in values and len(values) > 1:
            raise invalid(
                "trace setting 'trace_level': 'OFF' cannot be combined "
                "with other levels"
            )
        return
    value = _single(key, values)
    if key == "trace_mode" and value not in TRACE_MODES:
        raise invalid(
            f"trace setting 'trace_mode': '{value}' is not one of "
            f"{', '.join(TRACE_MODES)}"
        )
    if key in _TRACE_MINIMUM:
        if not re.fullmatch(r"-?[0-9]{1,18}", value):
            raise invalid(f"trace setting '{key}': '{value}' is not an integer")
        if int(value) < _TRACE_MINIMUM[key]:
            raise invalid(
                f"trace setting '{key}': {value} is out of range "
                f"(at least {_TRACE_MINIMUM[key]})"
            )


class TraceSettings:
    """Global trace settings and per-model overrides."""

    def __init__(self) -> None:
        self._global = {key: list(value) for key, value in TRACE_DEFAULTS.items()}
        self._models: dict[str, dict[str, list[str]]] = {}

    def update(self, model: str, settings: Mapping[str, Iterable[str]]) -> None:
        """Merges `settings` into the model's (or, for '', the global) ones.

        An empty value list clears a model's override back to the global
        value, or a global setting back to its default. Nothing changes
        unless every setting is valid.
        """
        changes = {key: list(values) for key, values in settings.items()}
        for key, values in changes.items():
            _check_trace(key, values)
        target = self._models.setdefault(model, {}) if model else self._global
        for key, values in changes.items():
            if values:
                target[key] = values
            elif model:
                target.pop(key, None)
            else:
                target[key] = list(TRACE_DEFAULTS[key])
        if changes:
            _LOG.info(
                "trace settings of %s: %s",
                f"model '{model}'" if model else "the server",
                ", ".join(sorted(changes)),
            )

    def effective(self, model: str) -> pb.TraceSettingResponse:
        """The settings that apply to `model`, or the global ones for ''."""
        merged = dict(self._global)
        merged.update(self._models.get(model, {}) if model else {})
        response = pb.TraceSettingResponse()
        for key, values in merged.items():
            response.settings[key].value.extend(values)
        return response


# name -> (oneof member, check of the value or None)
_LOG_FORMATS = ("default", "ISO8601")
_LOG_KEYS: dict[str, tuple[str, Callable[[object], bool] | None]] = {
    "log_file": ("string_param", None),
    "log_info": ("bool_param", None),
    "log_warning": ("bool_param", None),
    "log_error": ("bool_param", None),
    "log_verbose_level": ("uint32_param", None),
    "log_format": ("string_param", lambda value: value in _LOG_FORMATS),
}

LogValue = pb.LogSettingsResponse.SettingValue


class LogSettings:
    """The log settings, applied to the level of the "oip.server" logger."""

    def __init__(self, logger_name: str = "oip.server") -> None:
        self._logger = logging.getLogger(logger_name)
        level = self._logger.getEffectiveLevel()
        self._values: dict[str, object] = {
            "log_file": "",
            "log_info": level <= logging.INFO,
            "log_warning": level <= logging.WARNING,
            "log_error": level <= logging.ERROR,
            "log_verbose_level": 1 if level <= logging.DEBUG else 0,
            "log_format": "default",
        }

    def update(
        self, settings: Mapping[str, pb.LogSettingsRequest.SettingValue]
    ) -> None:
        """Checks every setting, then stores them and applies the level."""
        changes: dict[str, object] = {}
        for key, setting in settings.items():
            if key not in _LOG_KEYS:
                raise invalid(
                    f"unknown log setting '{key}'; expected one of "
                    f"{', '.join(_LOG_KEYS)}"
                )
            member, check = _LOG_KEYS[key]
            if setting.WhichOneof("parameter_choice") != member:
                raise invalid(f"log setting '{key}' must be {member}")
            value = getattr(setting, member)
            if check is not None and not check(value):
                raise invalid(
                    f"log setting '{key}': '{value}' is not one of "
                    f"{', '.join(_LOG_FORMATS)}"
                )
            changes[key] = value
        self._values.update(changes)
        if changes:
            self._apply()

    def _apply(self) -> None:
        values = self._values
        if values["log_verbose_level"]:
            level = logging.DEBUG
        elif values["log_info"]:
            level = logging.INFO
        elif values["log_warning"]:
            level = logging.WARNING
        elif values["log_error"]:
            level = logging.ERROR
        else:
            level = logging.CRITICAL + 1  # nothing
        self._logger.setLevel(level)
        _LOG.info(
            "log level of '%s' is now %s",
            self._logger.name,
            logging.getLevelName(level),
        )

    def response(self) -> pb.LogSettingsResponse:
        """Every setting with its current value."""
        response = pb.LogSettingsResponse()
        for key, value in self._values.items():
            member = _LOG_KEYS[key][0]
            setattr(response.settings[key], member, value)
        return response
