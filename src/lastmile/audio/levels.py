"""Signal levels: RMS level and the ITU-T P.56 (method B) active speech level.

Levels are in dB relative to full scale 1.0 (dBFS): a full-scale square wave is 0 dBFS and a
full-scale sine is -3.01 dBFS. The active speech level follows the ITU-T G.191 Software Tool
Library speech voltmeter (``sv-p56.c``, used by ``actlev`` and ``sv56demo``) step for step, so
it agrees with that reference; only the loops are vectorized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from lastmile.errors import AudioError

__all__ = [
    "P56_HANGOVER_S",
    "P56_MARGIN_DB",
    "P56_TIME_CONSTANT_S",
    "ActiveLevel",
    "active_speech_level",
    "rms_dbfs",
]

P56_TIME_CONSTANT_S = 0.03
"""Time constant T of the envelope smoothing (P.56, method B)."""
P56_HANGOVER_S = 0.2
"""Hangover H: how long a sample stays active after the envelope drops below a threshold."""
P56_MARGIN_DB = 15.9
"""Margin M between the active speech level and the activity threshold."""

_N_THRESHOLDS = 15
# Thresholds c_j = 2^-15 ... 2^-1 (a 6.02 dB ladder from one 16-bit step to half scale).
_THRESHOLDS = 2.0 ** -np.arange(_N_THRESHOLDS, 0, -1, dtype=np.float64)
_MIN_LOG_OFFSET = 1.0e-20  # as in the reference: keeps log10 finite
_INTERP_TOLERANCE_DB = 0.5  # the reference's bin_interp tolerance


@dataclass(frozen=True)
class ActiveLevel:
    """A P.56 active speech level and the activity factor (share of active time, 0..1)."""

    level_dbfs: float
    activity: float


def _as_float64(samples: np.ndarray, *, what: str) -> np.ndarray:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.size == 0:
        shape = getattr(samples, "shape", type(samples).__name__)
        raise AudioError(f"{what}: expected non-empty mono audio of shape (n,), got {shape}")
    x = np.asarray(samples, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{what}: audio contains NaN or infinite samples")
    return x


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` (shape ``(n,)``) in dBFS: ``20·log10(rms)`` re full scale 1.0.

    Raises :class:`AudioError` when the input is all zero (the level is undefined).
    """
    x = _as_float64(samples, what="rms_dbfs")
    mean_square = float(np.mean(x * x))
    if mean_square <= 0.0:
        raise AudioError(
            "rms_dbfs: the audio is all zero, so its level is undefined; "
            "pass audio that contains a signal"
        )
    return 10.0 * math.log10(mean_square)


def _bin_interp(
    up_level_db: float,
    low_level_db: float,
    up_threshold_db: float,
    low_threshold_db: float,
    margin_db: float,
    tolerance_db: float,
) -> float:
    """Interpolate, in dB, between two thresholds the level whose margin to its threshold is M.

    The reference (``bin_interp`` of STL2005 v2.3) bisects the straight line between the two
    (level, threshold) points until the margin is within ``tolerance_db``; this is the same.
    """
    if abs((up_level_db - up_threshold_db) - margin_db) < tolerance_db:
        return up_level_db
    if abs((low_level_db - low_threshold_db) - margin_db) < tolerance_db:
        return low_level_db
    mid_level = (up_level_db + low_level_db) / 2.0
    mid_threshold = (up_threshold_db + low_threshold_db) / 2.0
    iteration = 1
    while True:
        diff = (mid_level - mid_threshold) - margin_db
        if abs(diff) <= tolerance_db:
            return mid_level
        iteration += 1
        if iteration > 20:
            tolerance_db *= 1.1
        if diff > tolerance_db:
            mid_level = (up_level_db + mid_level) / 2.0
            mid_threshold = (up_threshold_db + mid_threshold) / 2.0
            low_level_db, low_threshold_db = mid_level, mid_threshold
        elif diff < -tolerance_db:
            mid_level = (mid_level + low_level_db) / 2.0
            mid_threshold = (mid_threshold + low_threshold_db) / 2.0
            up_level_db, up_threshold_db = mid_level, mid_threshold


def _activity_counts(envelope: np.ndarray, *, hangover_samples: int) -> np.ndarray:
    """Per threshold, the number of samples counted active (envelope ≥ c_j, plus hangover).

    A sample below the threshold still counts when it lies within ``hangover_samples`` samples
    after the last sample at or above it (the reference's per-threshold hangover counter,
    which starts exhausted).
    """
    n = envelope.size
    index = np.arange(n, dtype=np.int64)
    never = np.int64(-(hangover_samples + 1))
    counts = np.zeros(_N_THRESHOLDS, dtype=np.int64)
    for j, threshold in enumerate(_THRESHOLDS):
        above = envelope >= threshold
        n_above = int(np.count_nonzero(above))
        if n_above == 0:
            continue  # higher thresholds are empty too, but keep the loop simple
        last_above = np.maximum.accumulate(np.where(above, index, never))
        counted = above | (index - last_above <= hangover_samples)
        counts[j] = int(np.count_nonzero(counted))
    return counts


def active_speech_level(samples: np.ndarray, *, sample_rate: int) -> ActiveLevel:
    """Active speech level of ``samples`` (shape ``(n,)``, full scale 1.0), ITU-T P.56 method B.

    Envelope: two cascaded one-pole smoothers of ``|x|`` with time constant 0.03 s. For each
    threshold ``c_j = 2^-15 … 2^-1`` the activity count is the number of samples whose
    envelope reaches ``c_j`` plus a 0.2 s hangover; ``A_j = 10·log10(Σx² / count_j)``. The
    active level is where ``A − C`` (C the threshold in dB) equals the 15.9 dB margin,
    interpolated in dB between the two thresholds that bracket it exactly as the ITU-T G.191
    reference does. ``activity`` is ``10^((L_long_term − L_active)/10)``.

    Raises :class:`AudioError` when the audio is silent (no activity above the margin).
    """
    if sample_rate <= 0:
        raise AudioError(f"active_speech_level: sample_rate must be positive, got {sample_rate}")
    x = _as_float64(samples, what="active_speech_level")
    n = x.size
    sum_squares = float(np.dot(x, x))
    silence = AudioError(
        "active_speech_level: no active speech found (the audio is silent or below the "
        "P.56 thresholds, under -90 dBFS); check the utterance is not empty or muted"
    )
    if sum_squares <= 0.0:
        raise silence

    g = math.exp(-1.0 / (sample_rate * P56_TIME_CONSTANT_S))
    smoother_b, smoother_a = [1.0 - g], [1.0, -g]
    envelope = lfilter(smoother_b, smoother_a, lfilter(smoother_b, smoother_a, np.abs(x)))
    hangover_samples = math.floor(P56_HANGOVER_S * sample_rate + 0.5)
    counts = _activity_counts(envelope, hangover_samples=hangover_samples)

    long_term_db = 10.0 * math.log10(sum_squares / n + _MIN_LOG_OFFSET)
    if counts[0] == 0:
        raise silence
    level_db = 10.0 * math.log10(sum_squares / counts[0] + _MIN_LOG_OFFSET)
    threshold_db = 20.0 * math.log10(_THRESHOLDS[0])
    if level_db - threshold_db < P56_MARGIN_DB:
        raise silence

    for j in range(1, _N_THRESHOLDS):
        if counts[j] == 0:
            continue
        level_db = 10.0 * math.log10(sum_squares / counts[j] + _MIN_LOG_OFFSET)
        threshold_db = 20.0 * math.log10(_THRESHOLDS[j] + _MIN_LOG_OFFSET)
        if level_db - threshold_db <= P56_MARGIN_DB:
            prev_level_db = 10.0 * math.log10(sum_squares / counts[j - 1] + _MIN_LOG_OFFSET)
            prev_threshold_db = 20.0 * math.log10(_THRESHOLDS[j - 1] + _MIN_LOG_OFFSET)
            active_db = _bin_interp(
                level_db,
                prev_level_db,
                threshold_db,
                prev_threshold_db,
                P56_MARGIN_DB,
                _INTERP_TOLERANCE_DB,
            )
            activity = 10.0 ** ((long_term_db - active_db) / 10.0)
            return ActiveLevel(level_dbfs=active_db, activity=min(activity, 1.0))
    # The reference returns -100 dB here: the margin is never reached, which takes either
    # sparse clicks (envelope under the second threshold) or samples far above full scale.
    raise AudioError(
        "active_speech_level: the P.56 margin is never reached (the audio is a few sparse "
        "clicks, or far above full scale); pass speech, scaled into [-1, 1]"
    )
