"""Shared helpers for the filter stages: zero-phase second-order sections."""

from __future__ import annotations

import numpy as np
from scipy import signal

from lastmile.audio import validate_audio

__all__ = ["check_band", "zero_phase"]


def check_band(freq_hz: float, *, sample_rate: int, what: str) -> None:
    """Refuse a frequency at or above Nyquist (it names the stage and the rate)."""
    from lastmile.errors import ConfigError

    if not 0 < freq_hz < sample_rate / 2:
        raise ConfigError(
            f"{what}: {freq_hz:g} Hz is not below half the sample rate ({sample_rate / 2:g} Hz "
            f"at {sample_rate} Hz); lower it or raise the pack's render_sample_rate"
        )


def zero_phase(
    sos: np.ndarray, audio: np.ndarray, *, settle_samples: int, source: str
) -> np.ndarray:
    """``audio`` filtered forward and backward by ``sos`` (float64 inside, float32 out).

    The edges are padded (odd extension, scipy's default) by ``settle_samples`` (at most the
    signal's length - 1) so a narrow filter has rung up before the first real sample.
    """
    audio = validate_audio(audio, source=source)
    x = audio.astype(np.float64)
    pad = int(min(max(settle_samples, 3 * (2 * len(sos) + 1)), x.size - 1))
    y = signal.sosfiltfilt(sos, x, padlen=pad)
    return np.ascontiguousarray(y, dtype=np.float32)
