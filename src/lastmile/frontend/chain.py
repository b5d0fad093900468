"""A named front-end chain: its stages built from the pack's specs, applied in order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lastmile.audio import validate_audio
from lastmile.frontend.specs import (
    CommandSpec,
    FrontEndStageSpec,
    HighpassSpec,
    NotchSpec,
    RnnoiseSpec,
    SpectralGateSpec,
)

__all__ = ["FrontEnd", "Stage", "build_frontend", "build_stage"]


class Stage(Protocol):
    """One processing stage: validated parameters in, ``apply`` deterministic."""

    name: str

    def describe(self) -> dict[str, Any]: ...

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray: ...


def build_stage(
    spec: FrontEndStageSpec,
    *,
    base_dir: Path | None = None,
    search_dirs: Sequence[str | Path] = (),
) -> Stage:
    """The stage a spec describes; profile names are looked up in ``search_dirs``."""
    if isinstance(spec, NotchSpec):
        from lastmile.frontend.notch import Notch

        return Notch(spec, search_dirs=search_dirs)
    if isinstance(spec, HighpassSpec):
        from lastmile.frontend.highpass import Highpass

        return Highpass(spec)
    if isinstance(spec, SpectralGateSpec):
        from lastmile.frontend.spectral_gate import SpectralGate

        return SpectralGate(spec)
    if isinstance(spec, RnnoiseSpec):
        from lastmile.frontend.rnnoise import Rnnoise

        return Rnnoise(spec)
    if isinstance(spec, CommandSpec):
        from lastmile.frontend.command import Command

        return Command(spec, base_dir=base_dir)
    raise TypeError(f"unknown front-end spec {type(spec).__name__}")


@dataclass(frozen=True)
class FrontEnd:
    """A named chain of stages."""

    name: str
    stages: tuple[Stage, ...]

    def describe(self) -> dict[str, Any]:
        """What the chain does, resolved (a profile's notch frequencies, a program's digest):
        recorded in every item's params and part of its cache key."""
        return {"name": self.name, "stages": [s.describe() for s in self.stages]}

    def key(self) -> str:
        return json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))

    def check(self, *, sample_rate: int) -> None:
        """Refuse now what :meth:`apply` would refuse at ``sample_rate`` (a notch or cutoff
        above Nyquist), so a run fails before its first item, not on every item."""
        from lastmile.errors import LastmileError

        for i, stage in enumerate(self.stages):
            check = getattr(stage, "sos", None)  # the filter stages design their filter
            if check is None:
                continue
            try:
                check(sample_rate=sample_rate)
            except LastmileError as exc:
                raise type(exc)(
                    f"frontend.{self.name}[{i}] at {sample_rate} Hz (the rate after the "
                    f"channel): {exc}"
                ) from exc

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """``audio`` (shape ``(n,)``, float32) through every stage in order."""
        out = validate_audio(audio, source=f"frontend {self.name} input")
        for i, stage in enumerate(self.stages):
            out = validate_audio(
                stage.apply(out, sample_rate=sample_rate),
                source=f"frontend {self.name} stage {i + 1} ({stage.name}) output",
            )
        return out


def build_frontend(
    name: str,
    specs: Sequence[FrontEndStageSpec],
    *,
    base_dir: Path | None = None,
    search_dirs: Sequence[str | Path] = (),
) -> FrontEnd:
    """Build the chain ``name`` from its stage specs (errors name the chain)."""
    from lastmile.errors import LastmileError

    stages = []
    for i, spec in enumerate(specs):
        try:
            stages.append(build_stage(spec, base_dir=base_dir, search_dirs=search_dirs))
        except LastmileError as exc:
            raise type(exc)(f"frontend.{name}[{i}]: {exc}") from exc
    return FrontEnd(name=name, stages=tuple(stages))
