"""RMS level and the ITU-T P.56 active speech level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lastmile.audio.levels import ActiveLevel, active_speech_level, rms_dbfs
from lastmile.errors import AudioError
from lastmile.testing import speech_like, tone


def _reference_p56(x: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """A sample-by-sample transcription of the ITU-T G.191 STL ``speech_voltmeter`` (sv-p56.c,
    v2.3), slow and literal, as the yardstick for the vectorized meter."""
    n_thr, margin = 15, 15.9
    c = [0.5 / 2.0**k for k in range(n_thr)][::-1]  # c[0] = 2^-15 ... c[14] = 0.5
    hang_max = math.floor(0.2 * sample_rate + 0.5)
    g = math.exp(-1.0 / (sample_rate * 0.03))
    a = [0] * n_thr
    hang = [hang_max] * n_thr
    sq = p = q = 0.0
    for value in x.astype(np.float64).tolist():
        sq += value * value
        p = g * p + (1 - g) * abs(value)
        q = g * q + (1 - g) * p
        for j in range(n_thr):
            if q >= c[j]:
                a[j] += 1
                hang[j] = 0
            elif hang[j] < hang_max:
                a[j] += 1
                hang[j] += 1

    def bin_interp(upc: float, lwc: float, upt: float, lwt: float, tol: float) -> float:
        if abs((upc - upt) - margin) < tol:
            return upc
        if abs((lwc - lwt) - margin) < tol:
            return lwc
        midc, midt, it = (upc + lwc) / 2, (upt + lwt) / 2, 1
        while abs((midc - midt) - margin) > tol:
            diff = (midc - midt) - margin
            it += 1
            if it > 20:
                tol *= 1.1
            if diff > tol:
                midc, midt = (upc + midc) / 2, (upt + midt) / 2
                lwc, lwt = midc, midt
            elif diff < -tol:
                midc, midt = (midc + lwc) / 2, (midt + lwt) / 2
                upc, upt = midc, midt
        return midc

    long_term = 10 * math.log10(sq / x.size + 1e-20)
    for j in range(1, n_thr):
        if a[j]:
            adb = 10 * math.log10(sq / a[j] + 1e-20)
            cdb = 20 * math.log10(c[j] + 1e-20)
            if adb - cdb <= margin:
                amdb = 10 * math.log10(sq / a[j - 1] + 1e-20)
                cmdb = 20 * math.log10(c[j - 1] + 1e-20)
                level = bin_interp(adb, amdb, cdb, cmdb, 0.5)
                return level, 10 ** ((long_term - level) / 10)
    raise AssertionError("reference found no level")


def test_rms_of_full_scale_sine_is_minus_3_dbfs() -> None:
    x = tone(freq_hz=997.0, duration_s=1.0, sample_rate=48000, level_dbfs=-3.0103)
    assert np.max(np.abs(x)) == pytest.approx(1.0, abs=1e-4)
    assert rms_dbfs(x) == pytest.approx(-3.0103, abs=0.01)


def test_rms_of_silence_raises() -> None:
    with pytest.raises(AudioError, match="all zero"):
        rms_dbfs(np.zeros(100, dtype=np.float32))


@pytest.mark.parametrize("level_dbfs", [-10.0, -26.0, -50.0])
def test_tone_burst_between_silences_measures_the_burst(level_dbfs: float) -> None:
    sample_rate = 8000
    burst = tone(freq_hz=440.0, duration_s=5.0, sample_rate=sample_rate, level_dbfs=level_dbfs)
    silence = np.zeros(2 * sample_rate, dtype=np.float32)
    x = np.concatenate([silence, burst, silence])
    result = active_speech_level(x, sample_rate=sample_rate)
    assert isinstance(result, ActiveLevel)
    assert result.level_dbfs == pytest.approx(rms_dbfs(burst), abs=0.5)
    share = burst.size / x.size
    # P.56 adds the envelope decay and the 0.2 s hangover after the burst (~0.3 s of 9 s).
    assert share <= result.activity <= share + 0.05


def test_continuous_tone_is_fully_active() -> None:
    x = tone(freq_hz=1000.0, duration_s=2.0, sample_rate=16000, level_dbfs=-20.0)
    result = active_speech_level(x, sample_rate=16000)
    assert result.level_dbfs == pytest.approx(-20.0, abs=0.1)
    assert result.activity == pytest.approx(1.0, abs=0.02)  # the envelope's rise at the start


def test_speech_like_signal_is_sensible() -> None:
    sample_rate = 16000
    x = speech_like(
        np.random.default_rng(7), duration_s=6.0, sample_rate=sample_rate, level_dbfs=-26.0
    )
    result = active_speech_level(x, sample_rate=sample_rate)
    long_term = rms_dbfs(x)
    # pauses do not dilute the active level: it sits above the long-term level by exactly
    # the activity factor, and the activity is speech-like (neither all nor nothing)
    assert 0.3 < result.activity < 0.95
    assert result.level_dbfs - long_term == pytest.approx(
        -10 * math.log10(result.activity), abs=1e-9
    )
    assert result.level_dbfs > long_term + 1.0
    # the factory scales the non-silent samples to -26 dBFS; P.56 bridges the envelope's
    # syllable dips, so it reads a little lower, but within a few dB
    assert -30.0 < result.level_dbfs < -24.0


@pytest.mark.parametrize("gain_db", [0.0, -13.7])
def test_agrees_with_the_itu_reference_algorithm(gain_db: float) -> None:
    sample_rate = 8000
    x = speech_like(
        np.random.default_rng(11), duration_s=1.5, sample_rate=sample_rate, level_dbfs=-22.0
    )
    x = (x * 10 ** (gain_db / 20)).astype(np.float32)
    ref_level, ref_activity = _reference_p56(x, sample_rate)
    ours = active_speech_level(x, sample_rate=sample_rate)
    assert ours.level_dbfs == pytest.approx(ref_level, abs=1e-6)
    assert ours.activity == pytest.approx(ref_activity, abs=1e-6)


def test_silence_raises() -> None:
    with pytest.raises(AudioError, match="no active speech"):
        active_speech_level(np.zeros(16000, dtype=np.float32), sample_rate=16000)


def test_signal_below_the_lowest_threshold_is_silence() -> None:
    x = tone(freq_hz=300.0, duration_s=1.0, sample_rate=16000, level_dbfs=-110.0)
    with pytest.raises(AudioError):
        active_speech_level(x, sample_rate=16000)


def test_non_finite_input_raises() -> None:
    x = np.ones(100, dtype=np.float32)
    x[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        active_speech_level(x, sample_rate=16000)
