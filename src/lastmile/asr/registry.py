"""Backends found through the entry-point group ``lastmile.asr``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from lastmile.asr.base import Backend, BackendSpec, parse_backend_spec
from lastmile.asr.params import CACHE_SALT_PARAM
from lastmile.errors import BackendError, ConfigError

__all__ = [
    "BackendInfo",
    "SaltedBackend",
    "available_backends",
    "backend_class",
    "build_backend",
]

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


class SaltedBackend:
    """A plugin's backend built with ``cache_salt``: the same backend, with the salt in its
    fingerprint (so in every transcript cache key). Any other attribute is the backend's."""

    def __init__(self, backend: Backend, salt: str) -> None:
        self.backend = backend
        self.cache_salt = salt
        self.name = backend.name
        self.sample_rate = backend.sample_rate

    def fingerprint(self) -> str:
        inner = self.backend.fingerprint()
        try:
            backend: Any = json.loads(inner)
        except ValueError:
            backend = inner
        return json.dumps({"backend": backend, "cache_salt": self.cache_salt}, sort_keys=True)

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        return self.backend.transcribe(batch)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.backend, attr)


def _salt(name: str, value: Any) -> str:
    ok, salt = CACHE_SALT_PARAM.accepts(value)
    if not ok:
        raise ConfigError(f"{name}: cache_salt: expected {CACHE_SALT_PARAM.allowed}, got {value!r}")
    return str(salt)


def _construct(cls: Any, spec: BackendSpec) -> Any:
    """The backend from its class: ``cls.from_spec(spec)`` where the class has one; otherwise
    the constructor, given the spec's argument (if any) first and its parameters as keywords:
    ``my-asr:/models/x?beam=5`` builds ``MyAsr("/models/x", beam=5)``."""
    from_spec = getattr(cls, "from_spec", None)
    if callable(from_spec):
        return from_spec(spec)
    args = () if spec.argument is None else (spec.argument,)
    return cls(*args, **dict(spec.params))


def build_backend(spec: str | Mapping[str, Any] | BackendSpec) -> Backend:
    """Build a backend from a spec string, a mapping or a :class:`BackendSpec`.

    Everything a run would find wrong with the spec is found here: unknown backends and
    parameters, values of the wrong type, missing model folders or programs (ConfigError),
    and backends that cannot run on this machine (BackendError). Every backend takes
    ``cache_salt``, a value that goes into its fingerprint: lastmile's own backends take it
    as a parameter; for a plugin's it is handled here (the plugin never sees it).

    A class needs no ``from_spec``: without one, the spec's argument and parameters go to
    its constructor (see :func:`_construct`); a parameter it does not take is a ConfigError
    naming it (exit 2 on the command line).
    """
    parsed = spec if isinstance(spec, BackendSpec) else parse_backend_spec(spec)
    cls = backend_class(parsed.name)
    problem = cls.check() if hasattr(cls, "check") else None
    if problem is not None:
        raise BackendError(f"asr: backend '{parsed.name}' is not usable here: {problem}")
    params = dict(parsed.params)
    salt = None
    if "cache_salt" in params and not cls.__module__.startswith("lastmile."):
        salt = _salt(parsed.name, params.pop("cache_salt"))  # a plugin never sees it
    own = BackendSpec(name=parsed.name, argument=parsed.argument, params=params)
    try:
        backend: Backend = _construct(cls, own)
    except (TypeError, ValueError) as exc:  # a plugin that does not raise ConfigError itself
        raise ConfigError(
            f"asr: backend '{parsed.name}' cannot be built from {spec!r}: {exc}"
        ) from exc
    for attr in ("name", "sample_rate"):
        if not hasattr(backend, attr):
            raise BackendError(f"asr: backend '{parsed.name}' has no '{attr}' attribute")
    rate = backend.sample_rate
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ConfigError(
            f"{parsed.name}: sample_rate: expected a positive whole number of Hz, got {rate!r}"
        )
    return SaltedBackend(backend, salt) if salt is not None else backend
