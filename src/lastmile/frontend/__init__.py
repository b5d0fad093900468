"""Front ends: processing applied after the channel, before the recognizer (a mitigation).

A pack's ``frontend:`` maps names to chains of stages (``notch``, ``highpass``,
``spectral-gate``, ``rnnoise``, ``command``). Every condition runs without and with each
chain, on the same items and seeds, so the comparison is paired. Each stage is a small
class: its constructor validates and stores parameters, ``apply(audio, *, sample_rate)`` is
deterministic. ``spectral-gate`` and ``rnnoise`` need the extra ``lastmile[frontends]``.
"""

from lastmile.frontend.chain import FrontEnd, Stage, build_frontend, build_stage
from lastmile.frontend.specs import (
    CommandSpec,
    FrontEndStageSpec,
    HighpassSpec,
    NotchSpec,
    RnnoiseSpec,
    SpectralGateSpec,
)

__all__ = [
    "CommandSpec",
    "FrontEnd",
    "FrontEndStageSpec",
    "HighpassSpec",
    "NotchSpec",
    "RnnoiseSpec",
    "SpectralGateSpec",
    "Stage",
    "build_frontend",
    "build_stage",
]
