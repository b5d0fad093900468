"""Does a noise recording contain speech? A syllable-rate modulation heuristic.

Speech modulates the energy of the telephone band (300-3400 Hz) at the syllable rate,
2-8 Hz, deeply and irregularly; steady machine noise does not, and periodic machine
transients modulate it only at their own rate and its multiples.

Steady tones are taken out first: hum and its harmonics stay put in frequency, and two of
them a few hertz apart (two transformers, or mains and a generator) beat, modulating the
band at their difference frequency, right in the syllable range. The recording is analysed
at 8 kHz; frequencies whose median power over 0.5 s frames stands 10 dB above their ±30 Hz
neighbourhood are brought down to it; where nothing but the tones' leakage is left (45 dB
below the band's power) a window scores 0.

The measure: the band's power envelope (32 ms Hann frames, 10 ms hop) is cut into 4 s
windows (2 s hop). In each, the envelope divided by its mean, less one, is Hann-windowed and
its modulation spectrum taken; the *syllabic modulation depth* is the RMS of that spectrum
between 2 and 8 Hz (a relative level fluctuation: 0.1 means ±10 %), less the measurement's
own modulation noise (estimated between 20 and 40 Hz, where speech has little). Bins within
0.6 Hz of a known event rate or its multiples are left out (their share of the band is made
up from the others), and envelope frames inside known machine events are replaced by the
window's mean. Steady Gaussian noise scores about 0.07; a synthetic talker alone 0.9, at 0 dB
SNR 0.4-0.5, at -5 dB SNR about 0.2; a babble of 30 such talkers about 0.15. A window scores
as speech above :data:`SPEECH_THRESHOLD`; the recording is said to contain speech when at
least two windows (or 10 %) do.

It is a heuristic: irregular machine transients at a few per second can trip it (it errs
on the side of saying "speech"), and a many-talker babble whose talkers blur together may
not. It decides only what lastmile says and whether a clip may be kept, never the profile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

__all__ = ["SPEECH_THRESHOLD", "SpeechReport", "detect_speech"]

SPEECH_THRESHOLD = 0.15
"""Syllabic modulation depth above which a 4 s window counts as speech-like."""

_BAND_HZ = (300.0, 3400.0)
_MOD_BAND_HZ = (2.0, 8.0)
_FLOOR_BAND_HZ = (20.0, 40.0)
_WINDOW_S = 4.0
_HOP_S = 2.0
_FRAME_RATE_HZ = 100.0
_ANALYSIS_RATE = 8000
_TONE_EXCESS_DB = 10.0
_RESIDUE_FLOOR = 10 ** (-45.0 / 10)


@dataclass(frozen=True)
class SpeechReport:
    """``score``: the highest window's syllabic modulation depth; ``speech_fraction``: the
    share of windows above the threshold; ``detected``: the verdict."""

    detected: bool
    score: float
    speech_fraction: float
    windows: int
    threshold: float = SPEECH_THRESHOLD


def _band_envelope(x: np.ndarray, *, sample_rate: int) -> np.ndarray:
    hop = round(sample_rate / _FRAME_RATE_HZ)
    frame = round(0.032 * sample_rate)
    n_fft = 1 << math.ceil(math.log2(frame))
    n = 1 + (x.size - frame) // hop
    if n < 1:
        return np.zeros(0)
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n, frame), strides=(x.strides[0] * hop, x.strides[0]), writeable=False
    )
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    top = min(_BAND_HZ[1], 0.95 * sample_rate / 2)
    sel = (freqs >= _BAND_HZ[0]) & (freqs <= top)
    window = np.hanning(frame)
    out = np.empty(n)
    for start in range(0, n, 4096):
        block = np.fft.rfft(frames[start : start + 4096] * window, n_fft, axis=1)
        out[start : start + block.shape[0]] = np.sum(np.abs(block[:, sel]) ** 2, axis=1)
    return out


def _without_steady_tones(x: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """``x`` with its steady spectral lines (mains hum and its harmonics, machine whine)
    brought down to the level of the spectrum around them.

    A line is a frequency whose *median* power over 0.5 s frames (present all the time;
    speech is not) stands :data:`_TONE_EXCESS_DB` above the median of its neighbours within
    ±30 Hz. Its bins (with the window's main lobe and a bin either side) are scaled in every
    frame by √(neighbours / median), and the signal resynthesized. Tones beating against
    each other modulate the band's power at their difference frequency, which can fall in
    the syllable range; speech's harmonics move with its pitch and are not steady lines.
    """
    nperseg = 4096
    if x.size < 4 * nperseg:
        return x
    _, _, spec = scipy.signal.stft(
        x.astype(np.float32), fs=sample_rate, window="hann", nperseg=nperseg, noverlap=nperseg // 2
    )
    power = np.abs(spec) ** 2
    typical = np.median(power, axis=1)
    width = 2 * round(30.0 * nperseg / sample_rate) + 1
    baseline = scipy.ndimage.median_filter(typical, size=width, mode="nearest")
    lines = typical > baseline * 10 ** (_TONE_EXCESS_DB / 10)
    if not np.any(lines):
        return x
    # a drifting line visits neighbouring bins part of the time: take in every bin it
    # reaches (loud in a tenth of the frames) next to a steady one
    loud = np.percentile(power, 90, axis=1)
    reach = loud > baseline * 10 ** ((_TONE_EXCESS_DB + 5) / 10)
    labels, _ = scipy.ndimage.label(reach | lines)
    keep = np.isin(labels, np.unique(labels[lines]))
    keep = scipy.ndimage.binary_dilation(keep, iterations=3)
    gain = np.sqrt(np.minimum(1.0, baseline / np.maximum(loud, 1e-300)))
    spec[keep, :] *= gain[keep, None].astype(spec.real.dtype)
    _, y = scipy.signal.istft(
        spec, fs=sample_rate, window="hann", nperseg=nperseg, noverlap=nperseg // 2
    )
    out = np.zeros(x.size)
    out[: min(x.size, y.size)] = y[: x.size]
    return out


def detect_speech(
    samples: np.ndarray,
    *,
    sample_rate: int,
    exclude_rates_hz: Sequence[float] = (),
    exclude_regions_s: Sequence[tuple[float, float]] = (),
) -> SpeechReport:
    """Score ``samples`` (shape ``(n,)``) for speech; see the module docstring.

    ``exclude_regions_s``: time spans of known machine events; their envelope frames are
    replaced by the mean of the window's other frames before the modulation is measured.
    """
    x = np.asarray(samples, dtype=np.float64)
    if sample_rate != _ANALYSIS_RATE:
        g = math.gcd(int(sample_rate), _ANALYSIS_RATE)
        x = scipy.signal.resample_poly(x, _ANALYSIS_RATE // g, int(sample_rate) // g)
    whole = _band_envelope(x, sample_rate=_ANALYSIS_RATE)
    x = _without_steady_tones(x, sample_rate=_ANALYSIS_RATE)
    env = _band_envelope(x, sample_rate=_ANALYSIS_RATE)
    masked = np.zeros(env.size, dtype=bool)
    centre_s = (np.arange(env.size) + 1.6) / _FRAME_RATE_HZ
    for a, b in exclude_regions_s:
        i, j = np.searchsorted(centre_s, [a - 0.016, b + 0.016])
        masked[i:j] = True
    win = round(_WINDOW_S * _FRAME_RATE_HZ)
    hop = round(_HOP_S * _FRAME_RATE_HZ)
    if env.size < win:
        win = env.size
    if win < 50:
        return SpeechReport(detected=False, score=0.0, speech_fraction=0.0, windows=0)
    n_fft = 1 << math.ceil(math.log2(4 * win))
    fm = np.fft.rfftfreq(n_fft, 1 / _FRAME_RATE_HZ)
    band = (fm >= _MOD_BAND_HZ[0]) & (fm <= _MOD_BAND_HZ[1])
    floor_band = (fm >= _FLOOR_BAND_HZ[0]) & (fm <= _FLOOR_BAND_HZ[1])
    keep = band.copy()
    for rate in exclude_rates_hz:
        if rate <= 0:
            continue
        k = np.round(fm / rate)
        keep &= ~((k >= 1) & (np.abs(fm - k * rate) <= 0.6))
    if not np.any(keep):
        keep = band
    make_up = np.count_nonzero(band) / np.count_nonzero(keep)
    taper = np.hanning(win)
    scores = []
    for start in range(0, env.size - win + 1, hop):
        seg = env[start : start + win].copy()
        hidden = masked[start : start + win]
        if np.mean(hidden) > 0.7:
            continue
        if np.any(hidden):
            seg[hidden] = np.mean(seg[~hidden])
        mean = float(np.mean(seg))
        if mean <= float(np.mean(whole[start : start + win])) * _RESIDUE_FLOOR:
            # nothing but the tones' own leakage is left: no speech to find
            scores.append(0.0)
            continue
        m = (seg / mean - 1.0) * taper
        spec = np.abs(np.fft.rfft(m, n_fft)) ** 2
        # one-sided and normalised so that the sum over all bins is the mean square of m
        spec *= 2.0 / (n_fft * float(np.sum(taper**2)))
        # less the estimator's own (white) modulation noise, read off at 20-40 Hz where
        # speech has little
        floor = float(np.mean(spec[floor_band])) * np.count_nonzero(band)
        scores.append(math.sqrt(max(float(np.sum(spec[keep])) * make_up - floor, 0.0)))
    arr = np.array(scores)
    above = int(np.count_nonzero(arr > SPEECH_THRESHOLD))
    detected = above >= 2 or (arr.size > 0 and above >= max(1, math.ceil(0.1 * arr.size)))
    return SpeechReport(
        detected=bool(detected),
        score=float(np.max(arr)) if arr.size else 0.0,
        speech_fraction=above / arr.size if arr.size else 0.0,
        windows=int(arr.size),
    )
