"""Notch: narrow band-stop filters at given frequencies or at a noise profile's tones."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from lastmile.errors import ConfigError
from lastmile.frontend._filters import check_band, zero_phase
from lastmile.frontend.specs import NotchSpec

__all__ = ["DEFAULT_WIDTH_HZ", "DRIFT_WIDTH_FACTOR", "Notch", "notch_targets"]

DEFAULT_WIDTH_HZ = 4.0
"""-3 dB width of a notch when none is given."""
DRIFT_WIDTH_FACTOR = 32.0
"""A profile tone's notch is at least this many times its RMS drift wide: a second-order
notch attenuates an offset δ by about (δ/b)² in power per pass (b its half width), so the
drifting tone's mean power is lowered by ≥ 20 dB per pass, ≥ 40 dB forward and backward."""
_PER_PASS = math.sqrt(math.sqrt(2.0) - 1.0)
"""Forward and backward squares the response: a per-pass -3 dB width w·0.6436 gives an
overall -3 dB width w."""


@dataclass(frozen=True)
class NotchTarget:
    freq_hz: float
    width_hz: float
    from_profile: bool = False
    """A profile's tone: skipped at rates where it lies above 0.98 × Nyquist (it cannot be
    in the signal; the profile synthesis leaves such harmonics out the same way)."""


def notch_targets(
    spec: NotchSpec, *, search_dirs: Sequence[str | Path] = ()
) -> tuple[NotchTarget, ...]:
    """The (frequency, width) pairs ``spec`` asks for; a profile's are read from its tones."""
    if spec.freqs_hz is not None:
        freqs = list(spec.freqs_hz)
        drift = [0.0] * len(freqs)
    else:
        from lastmile.profiles.noise_model import load_noise_profile

        profile = load_noise_profile(str(spec.profile), search_dirs=search_dirs)
        if not profile.tones:
            raise ConfigError(
                f"notch: profile {spec.profile!r} has no tones to notch; give freqs_hz: [...] "
                "or use another front end (highpass, spectral-gate)"
            )
        freqs, drift = [], []
        for series in profile.tones:
            for h in series.harmonics:
                freqs.append(h.freq_hz)
                drift.append(series.drift_rms_hz * h.freq_hz / series.fundamental_hz)
    out = []
    for i, (f, d) in enumerate(zip(freqs, drift, strict=True)):
        if spec.q is not None:
            width = f / spec.q
        elif isinstance(spec.width_hz, list):
            width = spec.width_hz[i]
        elif spec.width_hz is not None:
            width = spec.width_hz
        else:
            width = max(DEFAULT_WIDTH_HZ, DRIFT_WIDTH_FACTOR * d)
        out.append(
            NotchTarget(
                freq_hz=float(f), width_hz=float(width), from_profile=spec.profile is not None
            )
        )
    return tuple(out)


class Notch:
    """Second-order IIR notches (``scipy.signal.iirnotch``) in cascade, zero phase.

    Zero phase (forward and backward): lastmile holds the whole utterance, so acausality costs
    nothing; speech is not delayed or phase-smeared near the notches; and the squared response
    doubles the depth a drifting tone needs. ``width_hz`` is the overall -3 dB width.
    Targets at or above Nyquist are refused at :meth:`apply` (the rate is known there).
    """

    name = "notch"

    def __init__(self, spec: NotchSpec, *, search_dirs: Sequence[str | Path] = ()):
        self.spec = spec
        self.targets = notch_targets(spec, search_dirs=search_dirs)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "notch",
            "freqs_hz": [round(t.freq_hz, 4) for t in self.targets],
            "widths_hz": [round(t.width_hz, 4) for t in self.targets],
        }

    def active(self, *, sample_rate: int) -> tuple[NotchTarget, ...]:
        """The targets notched at ``sample_rate`` (a profile's tones above it left out)."""
        return tuple(
            t for t in self.targets if not (t.from_profile and t.freq_hz >= 0.49 * sample_rate)
        )

    def sos(self, *, sample_rate: int) -> np.ndarray:
        rows = []
        for t in self.active(sample_rate=sample_rate):
            check_band(t.freq_hz, sample_rate=sample_rate, what=f"notch at {t.freq_hz:g} Hz")
            q = t.freq_hz / (t.width_hz * _PER_PASS)
            b, a = signal.iirnotch(t.freq_hz, q, fs=sample_rate)
            rows.append(np.concatenate([b, a]))
        return np.asarray(rows, dtype=np.float64)

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """``audio`` (shape ``(n,)``, float32) with every target notched; same shape."""
        targets = self.active(sample_rate=sample_rate)
        if not targets:
            return audio
        narrowest = min(t.width_hz for t in targets) * _PER_PASS
        settle = int(3.0 * sample_rate / (math.pi * narrowest))  # ~3 time constants
        return zero_phase(
            self.sos(sample_rate=sample_rate), audio, settle_samples=settle, source="notch"
        )
