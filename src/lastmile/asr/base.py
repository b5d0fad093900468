"""The backend protocol and backend specs (``name:argument?key=value``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl

import numpy as np

from lastmile.errors import ConfigError

__all__ = ["Backend", "BackendSpec", "parse_backend_spec"]


@runtime_checkable
class Backend(Protocol):
    """What lastmile needs of a recognizer. Loaded once per worker."""

    name: str
    sample_rate: int

    def fingerprint(self) -> str:
        """Model + version + decoding parameters; part of the transcript cache key."""
        ...

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        """One transcript per float32 mono array at ``sample_rate``."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    """A parsed backend spec: registry name, optional argument, keyword parameters."""

    name: str
    argument: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        text = self.name
        if self.argument:
            text += f":{self.argument}"
        if self.params:
            text += "?" + "&".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return text


def _coerce(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def parse_backend_spec(spec: str | Mapping[str, Any]) -> BackendSpec:
    """Parse ``faster-whisper``, ``faster-whisper:/models/x?beam_size=5``,
    ``command:./my_asr --wav {wav}`` or a mapping ``{name: ..., argument: ..., k: v}``.
    ``command-server:PROGRAM`` is the command backend in server mode (``mode: server``); the
    arguments of ``command:`` and ``command-server:`` may hold ``?``, so they take no query."""
    if isinstance(spec, Mapping):
        data = dict(spec)
        name = data.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"asr: a backend mapping needs 'name' (e.g. name: faster-whisper), got {spec!r}"
            )
        mapped = data.pop("argument", None) or data.pop("model", None)
        if name == "command-server":  # the command backend in server mode
            name, data = "command", {**data, "mode": "server"}
        return BackendSpec(name=name, argument=mapped, params=data)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"asr: expected a backend spec such as 'faster-whisper', got {spec!r}")
    text = spec.strip()
    name, _, rest = text.partition(":")
    params: dict[str, Any] = {}
    argument: str | None = rest or None
    if name == "command-server":  # the command backend in server mode; no query either
        return BackendSpec(name="command", argument=argument, params={"mode": "server"})
    if name != "command" and rest and "?" in rest:
        argument, _, query = rest.partition("?")
        argument = argument or None
        params = {k: _coerce(v) for k, v in parse_qsl(query, keep_blank_values=True)}
    elif not rest and "?" in name:
        name, _, query = name.partition("?")
        params = {k: _coerce(v) for k, v in parse_qsl(query, keep_blank_values=True)}
    return BackendSpec(name=name.strip(), argument=argument, params=params)
