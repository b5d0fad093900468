"""Typed backend parameters: each built-in backend declares what it takes, and a spec is
checked against that at construction, so a bad value fails where the backend is built
(``lastmile validate --asr`` and the start of ``lastmile run``), before any item runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lastmile.errors import ConfigError

__all__ = [
    "CACHE_SALT_PARAM",
    "FLAG",
    "TEXT",
    "Param",
    "check_params",
    "int_in",
    "number_in",
    "one_of",
    "with_defaults",
]

Kind = Literal["int", "number", "str", "salt", "flag"]


@dataclass(frozen=True)
class Param:
    """One parameter: its kind, a description of what is allowed, and an optional check."""

    kind: Kind
    allowed: str  # e.g. "an integer >= 1"; said in every error about this parameter
    check: Callable[[Any], bool] | None = None

    def accepts(self, value: Any) -> tuple[bool, Any]:
        """Whether ``value`` is allowed, and the value as the backend gets it."""
        ok, typed = _typed(self.kind, value)
        return ok and (self.check is None or self.check(typed)), typed


def _typed(kind: Kind, value: Any) -> tuple[bool, Any]:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value), float(value) if ok else value
    if kind == "flag":
        return isinstance(value, bool), value
    if kind == "salt":  # any text or number, as text
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        return ok and str(value) != "", str(value) if ok else value
    return isinstance(value, str), value


CACHE_SALT_PARAM = Param(
    "salt", "a non-empty text or number (any value you change to make lastmile decode again)"
)
TEXT = Param("str", "a text")
FLAG = Param("flag", "true or false")


def int_in(low: int, high: int) -> Param:
    """A whole number in ``[low, high]``."""
    return Param("int", f"a whole number in [{low}, {high}]", lambda v: low <= v <= high)


def number_in(low: float, high: float) -> Param:
    """A finite number in ``[low, high]``."""
    return Param("number", f"a number in [{low:g}, {high:g}]", lambda v: low <= v <= high)


def one_of(*values: str) -> Param:
    """One of the texts ``values``."""
    return Param("str", "one of " + ", ".join(values), lambda v: v in values)


def with_defaults(
    backend: str,
    params: Mapping[str, Any],
    schema: Mapping[str, Param],
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """Every parameter of ``schema``: ``defaults`` overridden by ``params`` as
    :func:`check_params` checks them."""
    return {**{k: defaults.get(k) for k in schema}, **check_params(backend, params, schema)}


def check_params(
    backend: str,
    params: Mapping[str, Any],
    schema: Mapping[str, Param],
    *,
    fixed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``params`` checked against ``schema``: unknown names and values of the wrong type or
    range raise :class:`ConfigError` naming the parameter, what was found and what is allowed.
    ``fixed`` names settings a backend keeps fixed on purpose, with the reason said instead."""
    out: dict[str, Any] = {}
    allowed_names = ", ".join(sorted(schema)) or "(none)"
    for name, value in params.items():
        if name not in schema:
            why = (fixed or {}).get(name)
            reason = f" ({why})" if why else ""
            raise ConfigError(
                f"{backend}: unknown parameter '{name}'{reason}; allowed: {allowed_names}"
            )
        ok, typed = schema[name].accepts(value)
        if not ok:
            param = schema[name]
            raise ConfigError(f"{backend}: {name}: expected {param.allowed}, got {value!r}")
        out[name] = typed
    return out
