"""Reading and writing profile YAML files: atomic writes, readable dumps, clear errors."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from lastmile.errors import ConfigError

__all__ = [
    "SCHEMA_VERSION",
    "atomic_write_audio",
    "atomic_write_bytes",
    "atomic_write_text",
    "dump_profile_yaml",
    "format_validation_error",
    "read_profile_mapping",
]

SCHEMA_VERSION = 1
"""The profile file schema version this lastmile reads and writes."""


class _Dumper(yaml.SafeDumper):
    """Block style for mappings, flow style for lists of plain numbers (one line each)."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, int | float | bool) or v is None for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)  # type: ignore[arg-type]
_Dumper.add_representer(tuple, _represent_list)  # type: ignore[arg-type]


def dump_profile_yaml(model: BaseModel, *, header: str) -> str:
    """The model as YAML (keys in model order), preceded by ``header`` as comment lines."""
    data = model.model_dump(mode="json")
    body = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=None,
    )
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + body


def _default_mode() -> int:
    """Permissions a plain ``open(..., "w")`` would give (0666 less the umask); temporary
    files are created 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so a reader never sees half a file and a failure leaves the old file (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_audio(path: Path, samples: np.ndarray, *, sample_rate: int) -> Path:
    """:func:`lastmile.audio.io.write_audio` through a temporary file and a rename."""
    from lastmile.audio.io import write_audio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write_audio(tmp, samples, sample_rate=sample_rate)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_profile_mapping(path: Path, *, kind: str) -> dict[str, Any]:
    """Read a profile file as a mapping and check its ``schema_version`` and ``kind``.

    Raises :class:`ConfigError` naming the file and the fix.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}); fix the syntax") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping of profile fields, got {type(data).__name__}; "
            f"regenerate it with `lastmile capture`"
        )
    version = data.get("schema_version")
    if version is None:
        raise ConfigError(
            f"{path}: schema_version: missing; a {kind} profile starts with "
            f"`schema_version: {SCHEMA_VERSION}`"
        )
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: schema_version: unsupported version {version!r}; this lastmile reads "
            f"version {SCHEMA_VERSION}: upgrade lastmile, or recapture the profile with this one"
        )
    found_kind = data.get("kind")
    if found_kind != kind:
        raise ConfigError(
            f"{path}: kind: expected {kind!r}, got {found_kind!r}; "
            f"this is not a {kind} profile (check the name, or the `kind:` line)"
        )
    return dict(data)


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: ``file: field.path: message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it (check the spelling against the schema)"
        elif "input" in err and not isinstance(err["input"], Mapping | list):
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)
