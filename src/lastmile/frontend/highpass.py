"""High-pass: a Butterworth filter run forward and backward (zero phase)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import signal

from lastmile.frontend._filters import check_band, zero_phase
from lastmile.frontend.specs import HighpassSpec

__all__ = ["Highpass"]


class Highpass:
    """``order``/2 Butterworth sections run forward and backward: the overall response is a
    Butterworth magnitude squared, -3 dB at ``cutoff_hz`` (the design cutoff is moved so it
    is), 6·order dB per octave below, no phase shift and no delay of the speech.

    Why zero phase: lastmile filters whole utterances offline, so causality buys nothing, and
    a causal high-pass would shift low speech harmonics in time against the rest.
    """

    name = "highpass"

    def __init__(self, spec: HighpassSpec):
        self.spec = spec

    def describe(self) -> dict[str, Any]:
        return {"type": "highpass", "cutoff_hz": self.spec.cutoff_hz, "order": self.spec.order}

    def sos(self, *, sample_rate: int) -> np.ndarray:
        fc = self.spec.cutoff_hz
        check_band(fc, sample_rate=sample_rate, what=f"highpass cutoff_hz {fc:g}")
        half = self.spec.order // 2
        # per pass |H|^2 = 1/sqrt(2) at fc (so the squared response is 1/2), in the bilinear
        # transform's warped frequency: Ω' = Ω_c · (√2 − 1)^(1/(2·half)) for a high-pass
        omega = math.tan(math.pi * fc / sample_rate)
        omega_design = omega * (math.sqrt(2.0) - 1.0) ** (1.0 / (2 * half))
        f_design = math.atan(omega_design) * sample_rate / math.pi
        return np.asarray(
            signal.butter(half, f_design, btype="highpass", output="sos", fs=sample_rate)
        )

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """``audio`` (shape ``(n,)``, float32) high-passed; same shape."""
        settle = int(4.0 * sample_rate / self.spec.cutoff_hz)
        return zero_phase(
            self.sos(sample_rate=sample_rate), audio, settle_samples=settle, source="highpass"
        )
