"""Backends found through the entry-point group ``lastmile.asr``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from lastmile.asr.base import Backend, BackendSpec, parse_backend_spec
from lastmile.errors import BackendError, ConfigError

__all__ = ["BackendInfo", "available_backends", "backend_class", "build_backend"]

GROUP = "lastmile.asr"


@dataclass(frozen=True)
class BackendInfo:
    """One registered backend: its name, where it lives, whether it can run here."""

    name: str
    target: str
    usable: bool
    detail: str


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def backend_class(name: str) -> type:
    """The class registered under ``name``; ConfigError listing the names otherwise."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "(none installed)"
        raise ConfigError(
            f"asr: unknown backend '{name}'; installed backends: {known}. "
            "Run `lastmile asr list` to see them, or install a plugin that registers "
            f"'{name}' in the '{GROUP}' entry-point group"
        )
    try:
        return eps[name].load()
    except ImportError as exc:
        raise BackendError(f"asr: backend '{name}' cannot be imported ({exc})") from exc


def available_backends() -> list[BackendInfo]:
    """Every registered backend and whether it is usable (its ``check()``)."""
    out = []
    for name, ep in sorted(_entry_points().items()):
        try:
            cls = ep.load()
            problem = cls.check() if hasattr(cls, "check") else None
        except ImportError as exc:
            problem = str(exc)
        out.append(
            BackendInfo(
                name=name,
                target=ep.value,
                usable=problem is None,
                detail=problem or (getattr(cls, "describe", lambda: "")() or "ready"),
            )
        )
    return out


def build_backend(spec: str | Mapping[str, Any] | BackendSpec) -> Backend:
    """Build a backend from a spec string, a mapping or a :class:`BackendSpec`."""
    parsed = spec if isinstance(spec, BackendSpec) else parse_backend_spec(spec)
    cls = backend_class(parsed.name)
    problem = cls.check() if hasattr(cls, "check") else None
    if problem is not None:
        raise BackendError(f"asr: backend '{parsed.name}' is not usable here: {problem}")
    backend: Backend = cls.from_spec(parsed)  # type: ignore[attr-defined]
    return backend
