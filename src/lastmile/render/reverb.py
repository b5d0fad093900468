"""Synthetic room reverberation: an exponentially decaying noise impulse response.

The impulse response is a unit direct-path impulse at lag 0 followed by a Gaussian noise tail
whose amplitude envelope is ``exp(−3·ln(10)·t / rt60_s)``, i.e. its energy falls 60 dB in
``rt60_s``. The tail is scaled so that direct energy / tail energy equals
``direct_to_reverberant_db``. The tail runs to 1.5·RT60 (90 dB down). Decide, then do: the
tail's noise seed is drawn into the record, and :func:`render_reverb` reads only that record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from lastmile.audio.io import validate_audio
from lastmile.errors import ConfigError
from lastmile.scenario.specs import ReverbSpec

__all__ = [
    "REVERB_TAIL_RT60S",
    "apply_reverb",
    "draw_reverb",
    "render_reverb",
    "reverb_impulse_response",
]

REVERB_TAIL_RT60S = 1.5
"""Length of the impulse response in RT60s (1.5 → the tail ends 90 dB down)."""


def _n_taps(spec: ReverbSpec, sample_rate: int) -> int:
    return max(2, round(REVERB_TAIL_RT60S * spec.rt60_s * sample_rate))


def draw_reverb(rng: np.random.Generator) -> dict[str, Any]:
    """Draw the random part of a reverb (the tail's noise seed) as a JSON-able record."""
    return {"reverb_seed": int(rng.integers(0, 2**63 - 1, dtype=np.int64))}


def reverb_impulse_response(
    spec: ReverbSpec, params: Mapping[str, Any], *, sample_rate: int
) -> np.ndarray:
    """The impulse response (float64, direct path at index 0) for ``spec`` and ``params``."""
    if sample_rate <= 0:
        raise ConfigError(f"reverb: sample_rate must be positive, got {sample_rate}")
    try:
        seed = int(params["reverb_seed"])
    except KeyError:
        raise ConfigError(
            "reverb: the parameter record has no 'reverb_seed'; pass the record from draw_reverb()"
        ) from None
    n_taps = _n_taps(spec, sample_rate)
    t_s = np.arange(1, n_taps, dtype=np.float64) / sample_rate
    decay_per_s = 3.0 * math.log(10.0) / spec.rt60_s  # amplitude: 20·log10(e^(−a·rt60)) = −60
    tail = np.random.default_rng(seed).standard_normal(n_taps - 1) * np.exp(-decay_per_s * t_s)
    tail_energy = float(np.dot(tail, tail))
    target_energy = 10.0 ** (-spec.direct_to_reverberant_db / 10.0)  # direct energy is 1
    ir = np.empty(n_taps, dtype=np.float64)
    ir[0] = 1.0
    ir[1:] = tail * math.sqrt(target_energy / tail_energy)
    return ir


def render_reverb(
    samples: np.ndarray, spec: ReverbSpec, params: Mapping[str, Any], *, sample_rate: int
) -> np.ndarray:
    """Convolve ``samples`` (shape ``(n,)``) with the impulse response; same length, float32.

    The direct path sits at lag 0, so the speech is not delayed; the tail past the end of the
    input is cut off.
    """
    x = validate_audio(samples, source="reverb")
    ir = reverb_impulse_response(spec, params, sample_rate=sample_rate)
    wet = fftconvolve(x.astype(np.float64), ir, mode="full")[: x.size]
    return wet.astype(np.float32)


def apply_reverb(
    samples: np.ndarray, spec: ReverbSpec, *, sample_rate: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw the reverb's parameters from ``rng``, then render; returns audio and the record.

    The record holds ``reverb_seed`` (all that :func:`render_reverb` needs besides ``spec``)
    and, for the report, ``rt60_s``, ``direct_to_reverberant_db`` and ``ir_duration_s``.
    """
    params = draw_reverb(rng)
    out = render_reverb(samples, spec, params, sample_rate=sample_rate)
    n_taps = _n_taps(spec, sample_rate)
    record = {
        **params,
        "rt60_s": spec.rt60_s,
        "direct_to_reverberant_db": spec.direct_to_reverberant_db,
        "ir_duration_s": n_taps / sample_rate,
    }
    return out, record
