"""Band limiting: a zero-phase Butterworth high-pass and/or low-pass."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, sosfiltfilt

from lastmile.errors import ConfigError

__all__ = ["BAND_LIMIT_ORDER", "band_limit", "band_limit_sos"]

BAND_LIMIT_ORDER = 4
"""Order of each Butterworth section; run forward and backward, each edge falls at 48 dB/octave
(twice the order's 24 dB/octave)."""

# Forward-backward filtering squares |H|; move the design cutoff so the *squared* response is
# -3 dB at the named edge: (tan(ω/2)/tan(ωc/2))^(2N) = √2 − 1 (bilinear-transform Butterworth).
_EDGE_FACTOR = (math.sqrt(2.0) - 1.0) ** (1.0 / (2 * BAND_LIMIT_ORDER))


def _prewarped(freq_hz: float, sample_rate: int) -> float:
    return math.tan(math.pi * freq_hz / sample_rate)


def _unwarped(warped: float, sample_rate: int) -> float:
    return math.atan(warped) * sample_rate / math.pi


def band_limit_sos(low_hz: float, high_hz: float, *, sample_rate: int) -> np.ndarray | None:
    """Second-order sections for the band ``[low_hz, high_hz]``, or None when it is the full band.

    ``low_hz ≤ 0`` means no high-pass; ``high_hz ≥ sample_rate / 2`` means no low-pass. The
    sections are meant for :func:`scipy.signal.sosfiltfilt`: the result is -3 dB at each edge.
    """
    nyquist_hz = sample_rate / 2.0
    if not (math.isfinite(low_hz) and math.isfinite(high_hz)) or low_hz >= high_hz:
        raise ConfigError(
            f"band limit: band_hz must be [low_hz, high_hz] with low_hz < high_hz, "
            f"got [{low_hz:g}, {high_hz:g}]"
        )
    if low_hz >= nyquist_hz:
        raise ConfigError(
            f"band limit: low edge {low_hz:g} Hz is at or above the Nyquist frequency "
            f"({nyquist_hz:g} Hz at {sample_rate} Hz); lower it"
        )
    sections = []
    if low_hz > 0:
        cutoff_hz = _unwarped(_prewarped(low_hz, sample_rate) * _EDGE_FACTOR, sample_rate)
        sections.append(
            butter(BAND_LIMIT_ORDER, cutoff_hz, btype="highpass", output="sos", fs=sample_rate)
        )
    if high_hz < nyquist_hz:
        warped = _prewarped(high_hz, sample_rate) / _EDGE_FACTOR
        cutoff_hz = min(_unwarped(warped, sample_rate), 0.499 * sample_rate)
        sections.append(
            butter(BAND_LIMIT_ORDER, cutoff_hz, btype="lowpass", output="sos", fs=sample_rate)
        )
    if not sections:
        return None
    return np.concatenate(sections, axis=0)


def band_limit(
    samples: np.ndarray, *, low_hz: float, high_hz: float, sample_rate: int
) -> np.ndarray:
    """Band-limit ``samples`` (shape ``(n,)``) to ``[low_hz, high_hz]``, zero-phase.

    Butterworth sections of order :data:`BAND_LIMIT_ORDER` run forward and backward
    (:func:`scipy.signal.sosfiltfilt`), so there is no delay and the response is -3 dB at each
    edge. Returns float32 of the same length.
    """
    sos = band_limit_sos(low_hz, high_hz, sample_rate=sample_rate)
    if sos is None:
        return samples.astype(np.float32, copy=True)
    x = samples.astype(np.float64)
    pad = min(x.size - 1, 3 * (2 * sos.shape[0] + 1))
    return sosfiltfilt(sos, x, padlen=max(pad, 0)).astype(np.float32)
