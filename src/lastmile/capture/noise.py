"""Capture a noise profile from a recording: tones, broadband envelope, periodic events.

The analysis, in order (all on the DC-free recording, at its own sample rate):

1. **Periodic events.** An onset envelope (half-wave rectified rise of log band energies in 16
   bands, 5 ms hop, each band scaled by its own robust spread, only large rises kept) →
   its autocorrelation → period (the shortest lag whose peak is within 70 % of the best) →
   onsets on that grid → onset times refined by cross-correlating each event's band-energy
   envelope with the average → least-squares grid: period and jitter. Up to two trains.
   The event's energy spectrum is ``E(f) = (S_events − S_all) / (1 − L/P)``: the mean energy
   spectrum of windows on the events minus that of windows anywhere (which holds the
   stationary part and the events' average share). The envelope comes the same way from the
   power of an event-matched filter, 1 ms resolution.
2. **Tones.** A long Welch PSD (≈ 0.25 Hz bins, Hann); the background is a running median;
   peaks ≥ 12 dB above it are tone candidates (a candidate on an event comb line ``k/P``
   no stronger than the comb itself, ``2·E(f)/P²``, is the event's, not a tone). Each
   tone's frequency is the power centroid of its peak and its level the peak's power above
   the background. Peaks are grouped into harmonic series; the fundamental is the weighted
   least-squares fit ``f_k ≈ k·f0``. Drift: the strongest harmonics are tracked in 1 s
   frames (zero-padded FFT, log-parabolic interpolation); the drift's RMS is the tracked
   variance less the tracking noise (half the variance of successive differences), its time
   scale where the track's autocorrelation falls to 1/e.
3. **Broadband.** The PSD with tone peaks replaced by the background, less the events'
   average share ``E(f)/P``, averaged over fractional-octave bands; its level; and the slow
   level wander of 0.5 s frames beyond what steady Gaussian noise of that spectrum shows.
   **Modulation**: in three acoustic bands (below 500 Hz, 500-2000 Hz, above 2000 Hz; tone
   bins and event-dominated bins left out, event frames bridged) the level envelope in dB at
   100 frames/s; its modulation power per octave of modulation frequency (0.5-32 Hz) and
   its variance, less those of a phase-randomised copy of the recording (steady noise of
   the same spectrum, seeded); the bands' excess modulation correlation. Kept only where
   some band's excess depth reaches 0.5 dB.
4. **Statistics.** L10/L50/L90 of 125 ms levels, the standard deviation of 1 s levels and
   ``stationarity = exp(-std/3 dB)``.
5. **Speech** (:mod:`lastmile.capture.speech`), ignoring the event rates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.signal

from lastmile.capture.speech import SpeechReport, detect_speech
from lastmile.errors import AudioError
from lastmile.profiles.dsp import (
    band_edges,
    band_mean,
    db,
    fractional_octave_centres,
    welch_psd,
)
from lastmile.profiles.noise_model import (
    Broadband,
    EventTone,
    EventTrain,
    LevelStats,
    Modulation,
    ModulationBand,
    NoiseProfile,
    SourceInfo,
    Spectrum,
    ToneHarmonic,
    ToneSeries,
)

__all__ = [
    "MIN_RECORDING_S",
    "CaptureResult",
    "NoiseAnalysis",
    "analyse_noise",
    "capture_noise_profile",
    "prepare_recording",
]

MIN_RECORDING_S = 10.0
"""Shortest recording accepted for capture."""
SILENCE_DBFS = -100.0
"""A recording whose RMS level is below this is refused as silent."""
TONE_THRESHOLD_DB = 12.0
"""A spectral peak this far above the running-median background is a tone candidate."""
BANDS_PER_OCTAVE = 6
"""Resolution of the broadband envelope."""
EVENT_BANDS_PER_OCTAVE = 12
"""Resolution of event spectra (knocks and clunks ring at sharp resonances)."""
MIN_FREQ_HZ = 20.0
MAX_SERIES = 8
MAX_HARMONICS = 24
MAX_EVENT_TRAINS = 2

WANDER_FRAME_S = 0.5
MODULATION_BANDS_HZ = ((0.0, 500.0), (500.0, 2000.0), (2000.0, math.inf))
"""Acoustic bands whose envelope modulation is measured (the last ends at Nyquist)."""
MODULATION_FREQS_HZ = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
"""Centres of the octaves of modulation frequency."""
MODULATION_FRAME_RATE_HZ = 100.0
MIN_MODULATION_DB = 0.5
"""A band's excess envelope depth below this counts as none."""

_ENVELOPE_STEP_S = 0.001
_MIN_EVENTS = 6


@dataclass(frozen=True)
class CaptureResult:
    """A captured profile, the speech verdict and the notes said about the recording."""

    profile: NoiseProfile
    speech: SpeechReport
    notes: tuple[str, ...]


# --------------------------------------------------------------------------- input checks


def prepare_recording(
    samples: np.ndarray, *, sample_rate: int, source: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Check a recording for capture and remove any DC offset (said in the notes).

    Refuses (:class:`AudioError` naming ``source`` and the fix): non-finite or empty audio,
    multichannel arrays, recordings shorter than :data:`MIN_RECORDING_S`, silence (below
    :data:`SILENCE_DBFS`) and clipping (samples stuck at full scale, or runs of samples
    stuck at the peak value).
    """
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        shape = getattr(samples, "shape", None)
        raise AudioError(
            f"{source}: expected mono audio of shape (n,), got shape {shape}; downmix to one "
            "channel first (read_audio does so, loudly)"
        )
    if samples.size == 0:
        raise AudioError(f"{source}: the recording is empty")
    x = np.asarray(samples, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise AudioError(f"{source}: {bad} samples are NaN or infinite; re-export the recording")
    duration_s = x.size / sample_rate
    if duration_s < MIN_RECORDING_S:
        raise AudioError(
            f"{source}: {duration_s:.2f} s long; a noise profile needs at least "
            f"{MIN_RECORDING_S:g} s (two minutes is better): record a longer stretch"
        )
    notes: list[str] = []
    mean = float(np.mean(x))
    x = x - mean
    rms = float(np.sqrt(np.mean(x * x)))
    if rms <= 0 or 20 * math.log10(rms) < SILENCE_DBFS:
        level = "-inf" if rms <= 0 else f"{20 * math.log10(rms):.1f}"
        raise AudioError(
            f"{source}: the recording is silent ({level} dBFS RMS, below {SILENCE_DBFS:g} "
            "dBFS); check the microphone was on and the input gain up"
        )
    if abs(mean) >= max(1e-4, 0.01 * rms):
        notes.append(
            f"removed a DC offset of {mean:+.5f} ({20 * math.log10(abs(mean)):.1f} dBFS); "
            "check the recorder's input coupling"
        )
    peak = float(np.max(np.abs(samples)))
    at_full_scale = int(np.count_nonzero(np.abs(samples) >= 0.999))
    stuck = np.abs(samples) >= peak * (1 - 1e-6)
    runs = int(np.count_nonzero(stuck[2:] & stuck[1:-1] & stuck[:-2] & ~np.r_[False, stuck[:-3]]))
    if at_full_scale >= 10 or runs >= 3:
        raise AudioError(
            f"{source}: the recording is clipped ({at_full_scale} samples at full scale, "
            f"{runs} runs of 3+ samples stuck at the peak {peak:.4f}); clipping adds "
            "distortion that is not the site's noise: record again with lower input gain"
        )
    return x, tuple(notes)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Train:
    onsets_s: np.ndarray
    period_s: float
    jitter_s: float
    strength: float


def _frames(x: np.ndarray, *, frame: int, hop: int) -> np.ndarray:
    n = 1 + (x.size - frame) // hop
    return np.lib.stride_tricks.as_strided(
        x, shape=(n, frame), strides=(x.strides[0] * hop, x.strides[0]), writeable=False
    )


def _band_energies(
    x: np.ndarray, *, sample_rate: int, hop: int, frame: int, edges_hz: np.ndarray
) -> np.ndarray:
    """Energy per frame (rows) and band (columns) from a Hann STFT, computed in chunks."""
    n_fft = 1 << math.ceil(math.log2(frame))
    frames = _frames(x, frame=frame, hop=hop)
    window = np.hanning(frame)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    idx = np.searchsorted(freqs, edges_hz)
    out = np.empty((frames.shape[0], edges_hz.size - 1))
    for start in range(0, frames.shape[0], 4096):
        block = np.abs(np.fft.rfft(frames[start : start + 4096] * window, n_fft, axis=1)) ** 2
        cum = np.concatenate([np.zeros((block.shape[0], 1)), np.cumsum(block, axis=1)], axis=1)
        out[start : start + block.shape[0]] = cum[:, idx[1:]] - cum[:, idx[:-1]]
    return out


def _onset_envelope(energies: np.ndarray) -> np.ndarray:
    """Sum over bands of large standardized rises of log energy (one value per frame)."""
    log_e = db(energies)
    rise = np.diff(log_e, axis=0, prepend=log_e[:1])
    centred = rise - np.median(rise, axis=0)
    spread = 1.4826 * np.median(np.abs(centred), axis=0)
    z = np.where(spread > 0, centred / np.where(spread > 0, spread, 1.0), 0.0)
    return np.sum(np.maximum(z - 2.0, 0.0), axis=1)


def _autocorrelation(v: np.ndarray) -> np.ndarray:
    v = v - np.mean(v)
    n = v.size
    spec = np.fft.rfft(v, 2 * n)
    acf = np.fft.irfft(np.abs(spec) ** 2)[:n]
    return acf / acf[0] if acf[0] > 0 else np.zeros(n)


def _parabolic(y: np.ndarray, i: int) -> float:
    """Offset of the vertex of the parabola through ``y[i-1..i+1]`` (in samples)."""
    if i <= 0 or i >= y.size - 1:
        return 0.0
    a, b, c = y[i - 1], y[i], y[i + 1]
    den = a - 2 * b + c
    return 0.0 if den == 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _find_period(onset: np.ndarray, *, hop_s: float, duration_s: float) -> tuple[float, float]:
    """(period_s, strength) from the onset envelope's autocorrelation; (0, 0) if none.

    Every autocorrelation peak is a candidate period P, scored by the mean of the
    autocorrelation at P, 2P, 3P, … (each the maximum within ±15 ms, for jitter): a train's
    true period scores high at every multiple, a sub-multiple at only some, and the lag where
    two trains coincide at only some. The shortest candidate whose first four multiples all
    reach 40 % of the best score wins. The envelope is smoothed over ~25 ms first (jitter).
    """
    acf = _autocorrelation(scipy.ndimage.gaussian_filter1d(onset, 0.025 / hop_s))
    lo = max(2, math.ceil(0.08 / hop_s))
    hi = min(acf.size - 3, math.floor(min(10.0, duration_s / 3) / hop_s))
    if hi < 2 * lo + 2:
        return 0.0, 0.0
    tol = max(1, round(0.015 / hop_s))
    widened = scipy.ndimage.maximum_filter1d(acf, 2 * tol + 1)
    peaks, _ = scipy.signal.find_peaks(acf[lo : hi // 2 + 1])
    scored = []
    for i in peaks + lo:
        lag = i + _parabolic(acf, int(i))
        multiples = np.arange(1, math.floor(hi / lag) + 1)
        if multiples.size < 2:
            continue
        values = widened[np.round(multiples * lag).astype(int)]
        scored.append((lag, float(np.mean(values)), float(np.min(values[:4]))))
    if not scored:
        return 0.0, 0.0
    best = max(score for _, score, _ in scored)
    if best <= 0:
        return 0.0, 0.0
    for lag, score, weakest in sorted(scored):
        if weakest >= 0.4 * best:
            return lag * hop_s, score
    lag, score, _ = max(scored, key=lambda c: c[1])
    return lag * hop_s, score


def _locate_onsets(onset: np.ndarray, *, period_frames: float) -> np.ndarray:
    """Frame index of each event: the envelope's maximum near each point of the best grid."""
    n = onset.size
    n_bins = max(4, round(period_frames))
    phase_bins = (np.arange(n) % period_frames) / period_frames * n_bins
    folded = np.bincount(phase_bins.astype(int) % n_bins, weights=onset, minlength=n_bins)
    folded = folded + np.roll(folded, 1) + np.roll(folded, -1)
    phase = (int(np.argmax(folded)) + 0.5) / n_bins * period_frames
    half = max(1, round(min(0.3 * period_frames, max(0.1 * period_frames, 6.0))))
    found = []
    k = 0
    while phase + k * period_frames < n:
        centre = round(phase + k * period_frames)
        a, b = max(0, centre - half), min(n, centre + half + 1)
        if b > a:
            found.append(a + int(np.argmax(onset[a:b])))
        k += 1
    idx = np.unique(np.array(found, dtype=int))
    if idx.size == 0:
        return idx
    heights = onset[idx]
    return idx[heights >= 0.25 * np.median(heights[heights > 0]) if np.any(heights > 0) else []]


def _refine_onsets(
    feature: np.ndarray, idx: np.ndarray, *, period_frames: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-frame onset positions by cross-correlating each event's feature with the mean.

    Returns (positions in frames, indices into ``idx`` that were kept).
    """
    pre = max(2, round(0.2 * period_frames))
    post = max(4, round(0.6 * period_frames))
    keep = np.flatnonzero((idx - pre >= 0) & (idx + post < feature.size))
    pos = idx[keep].astype(float)
    if keep.size < 3:
        return pos, keep
    span = np.arange(-pre, post)
    max_shift = max(2, round(0.1 * period_frames))
    for _ in range(3):
        segs = np.array([np.interp(p + span, np.arange(feature.size), feature) for p in pos])
        segs = segs - segs.mean(axis=1, keepdims=True)
        template = segs.mean(axis=0)
        shifts = np.zeros(pos.size)
        for i, s in enumerate(segs):
            xc = scipy.signal.correlate(s, template, mode="full", method="fft")
            centre = template.size - 1
            window = xc[centre - max_shift : centre + max_shift + 1]
            j = int(np.argmax(window))
            shifts[i] = j - max_shift + _parabolic(window, j)
        pos = pos + shifts
        if np.max(np.abs(shifts)) < 0.05:
            break
    return pos, keep


def _fit_grid(times_s: np.ndarray, period_s: float) -> tuple[float, float, np.ndarray]:
    """Least-squares grid ``t ≈ t0 + k·P`` through onset times: (P, jitter, kept times)."""
    times = np.sort(times_s)
    for _ in range(3):
        k = np.round((times - times[0]) / period_s)
        a = np.vstack([np.ones_like(k), k]).T
        coef, *_ = np.linalg.lstsq(a, times, rcond=None)
        period_s = float(coef[1])
        resid = times - a @ coef
        spread = max(1.4826 * float(np.median(np.abs(resid))), 1e-6)
        ok = np.abs(resid) <= max(4 * spread, 0.002)
        if np.all(ok) or ok.sum() < _MIN_EVENTS:
            break
        times = times[ok]
    k = np.round((times - times[0]) / period_s)
    jitter = float(
        np.std(
            times - (times[0] + k * period_s) - np.mean(times - (times[0] + k * period_s)),
            ddof=min(2, times.size - 1),
        )
    )
    return period_s, jitter, times


def _find_trains(x: np.ndarray, *, sample_rate: int) -> tuple[list[_Train], np.ndarray, float]:
    """Up to :data:`MAX_EVENT_TRAINS` periodic trains; also the band energies and hop."""
    hop = max(1, round(0.005 * sample_rate))
    frame = 4 * hop
    hop_s = hop / sample_rate
    duration_s = x.size / sample_rate
    top = min(12000.0, 0.45 * sample_rate)
    edges = np.geomspace(100.0, top, 17)
    energies = _band_energies(x, sample_rate=sample_rate, hop=hop, frame=frame, edges_hz=edges)
    onset = _onset_envelope(energies)
    trains: list[_Train] = []
    masked = onset.copy()
    mask = np.zeros(onset.size, dtype=bool)
    for _ in range(MAX_EVENT_TRAINS):
        period_s, strength = _find_period(masked, hop_s=hop_s, duration_s=duration_s)
        if period_s <= 0 or strength < 0.15:
            break
        if any(
            abs(period_s / t.period_s - round(period_s / t.period_s)) < 0.03
            or abs(t.period_s / period_s - round(t.period_s / period_s)) < 0.03
            for t in trains
        ):
            break
        period_frames = period_s / hop_s
        idx = _locate_onsets(masked, period_frames=period_frames)
        if idx.size < _MIN_EVENTS:
            break
        # band weights: how much each band rises at the events
        lo, hi = max(1, round(0.05 * period_frames)), max(2, round(0.3 * period_frames))
        ok = idx[(idx - lo >= 0) & (idx + hi < energies.shape[0])]
        before = np.mean([energies[i - lo] for i in ok], axis=0)
        during = np.mean([energies[i : i + hi].max(axis=0) for i in ok], axis=0)
        weight = np.maximum(db(during) - db(before) - 1.0, 0.0)
        if not np.any(weight > 0):
            weight = np.ones_like(weight)
        feature = (energies / np.maximum(np.median(energies, axis=0), 1e-30)) @ weight
        feature = scipy.ndimage.uniform_filter1d(feature, 3)
        pos, _ = _refine_onsets(feature, idx, period_frames=period_frames)
        if pos.size < _MIN_EVENTS:
            break
        times = pos * hop_s
        period_s, jitter_s, times = _fit_grid(times, period_s)
        trains.append(_Train(times, period_s, jitter_s, strength))
        # mask this train's onset spikes (-30..+40 ms) before looking for another
        for i in idx:
            mask[max(0, i - round(0.03 / hop_s)) : i + round(0.04 / hop_s) + 1] = True
        masked = onset.copy()
        masked[mask] = float(np.mean(onset[~mask])) if np.any(~mask) else 0.0
    return trains, energies, hop_s


@dataclass(frozen=True)
class _EventShape:
    train: _Train
    start_s: float  # relative to the onset reference
    duration_s: float
    envelope_db: np.ndarray
    energy_freqs_hz: np.ndarray
    energy_density: np.ndarray  # one-sided ESD, FS²·s/Hz
    level_dbfs: float
    level_std_db: float


def _esd_windows(
    x: np.ndarray,
    starts: np.ndarray,
    *,
    length: int,
    sample_rate: int,
    n_fft: int,
    window: np.ndarray | None = None,
) -> np.ndarray:
    """Mean one-sided energy spectral density of windowed segments (FS²·s/Hz); the window
    defaults to Tukey (α = 0.2)."""
    if window is None:
        window = scipy.signal.windows.tukey(length, 0.2)
    acc = np.zeros(n_fft // 2 + 1)
    count = 0
    for i in range(0, starts.size, 256):
        block = np.array([x[s : s + length] for s in starts[i : i + 256]])
        acc += np.sum(np.abs(np.fft.rfft(block * window, n_fft, axis=1)) ** 2, axis=0)
        count += block.shape[0]
    return 2.0 * acc / max(count, 1) / sample_rate**2


def _event_shape(x: np.ndarray, train: _Train, *, sample_rate: int) -> _EventShape | None:
    fs = sample_rate
    period = train.period_s
    onsets = np.round(train.onsets_s * fs).astype(int)
    pre = round(min(0.1 * period, 0.05) * fs)
    length = round(min(0.9 * period, 2.0) * fs)
    starts = onsets - pre
    starts = starts[(starts >= 0) & (starts + length <= x.size)]
    if starts.size < _MIN_EVENTS:
        return None
    n_fft = 1 << math.ceil(math.log2(2 * length))
    everywhere = np.arange(0, x.size - length, max(1, length // 2))
    s_all = _esd_windows(x, everywhere, length=length, sample_rate=fs, n_fft=n_fft)
    s_ev = _esd_windows(x, starts, length=length, sample_rate=fs, n_fft=n_fft)
    share = length / fs / period
    esd = np.maximum(s_ev - s_all, 0.0) / (1.0 - share)
    # event-matched filter: weight frequencies by the events' share of the power there
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    window_s = float(np.sum(scipy.signal.windows.tukey(length, 0.2) ** 2)) / fs
    weight = np.nan_to_num(np.clip(esd / period / np.maximum(s_all / window_s, 1e-30), 0, 1))
    weight = np.clip(scipy.ndimage.uniform_filter1d(weight, max(1, n_fft // 256)), 0.0, 1.0)
    if not np.any(weight > 0):
        return None
    taps = scipy.signal.firwin2(127, freqs, np.sqrt(weight) + 1e-6, fs=fs)
    filtered = scipy.signal.fftconvolve(x, taps, mode="same")
    power = filtered**2
    step = max(1, round(_ENVELOPE_STEP_S * fs))
    n_steps = length // step
    idx = starts[:, None] + np.arange(n_steps * step)[None, :]
    env = power[idx].reshape(starts.size, n_steps, step).mean(axis=2)
    mean_env = env.mean(axis=0)
    m_all = float(np.mean(power))
    event_energy = float(np.sum(mean_env - m_all)) / (1.0 - share)
    excess = mean_env - m_all + event_energy / (period * fs / step)
    smooth = scipy.ndimage.uniform_filter1d(excess, 3)
    i_peak = int(np.argmax(smooth))
    peak = float(smooth[i_peak])
    if not peak > 0:
        return None
    # the event spans the contiguous run around its peak above -20 dB re the peak, or above
    # four times the scatter of the excess away from the event, whichever is higher
    pre_steps = pre // step
    away = np.concatenate([smooth[: max(0, pre_steps - 2)], smooth[-max(1, n_steps // 4) :]])
    threshold = max(0.01 * peak, 4.0 * float(np.std(away)) if away.size > 2 else 0.0)
    first = i_peak
    while first > 0 and smooth[first - 1] >= threshold:
        first -= 1
    below = np.flatnonzero(smooth[i_peak:] < threshold)
    quiet = max(1, round(0.005 * fs / step))
    last = n_steps - 1
    for j in below:
        if np.all(smooth[i_peak + j : i_peak + j + quiet] < threshold):
            last = i_peak + int(j) - 1
            break
    start_s = (first * step - pre) / fs
    duration_s = (last - first + 1) * step / fs
    env_db = db(np.maximum(smooth[first : last + 1], 1e-4 * peak) / peak)
    # energy spectrum again over the event only (less stationary noise), through a Hann
    # window twice the event's span (low sidelobes keep resonance peaks out of the valleys
    # between them); the window's weighting of the event is undone with the envelope
    span = (last - first + 1) * step
    pad = span // 2 + round(0.003 * fs)
    tight = span + 2 * pad
    window = np.hanning(tight)
    env_lin = np.repeat(np.maximum(smooth[first : last + 1], 0.0), step)
    inside = window[pad : pad + span] ** 2
    weighted = float(np.sum(env_lin * inside))
    if weighted <= 0:
        return None
    captured = weighted / float(np.sum(env_lin))
    t_starts = starts + first * step - pad
    t_starts = t_starts[(t_starts >= 0) & (t_starts + tight <= x.size)]
    n_fft_t = 1 << math.ceil(math.log2(4 * tight))
    everywhere_t = np.arange(0, x.size - tight, max(1, tight // 4))
    s_all_t = _esd_windows(
        x, everywhere_t, length=tight, sample_rate=fs, n_fft=n_fft_t, window=window
    )
    s_ev_t = _esd_windows(x, t_starts, length=tight, sample_rate=fs, n_fft=n_fft_t, window=window)
    window_s = float(np.sum(window**2)) / fs
    esd_t = np.maximum(s_ev_t - s_all_t, 0.0) / (captured - window_s / period)
    # where the events add under 5 % to the average power, the estimate is noise: drop it
    esd_t[esd_t / period < 0.05 * s_all_t / window_s] = 0.0
    freqs_t = np.fft.rfftfreq(n_fft_t, 1 / fs)
    total_energy = float(np.sum(esd_t) * (freqs_t[1] - freqs_t[0]))
    if total_energy <= 0:
        return None
    level_dbfs = float(db(total_energy / duration_s))
    level_std_db = _level_std_db(
        power,
        starts,
        first=first * step,
        length=(last - first + 1) * step,
        stationary=(m_all - event_energy / (period * fs / step)) / step,
        period=period,
        fs=fs,
    )
    return _EventShape(
        train=train,
        start_s=start_s,
        duration_s=duration_s,
        envelope_db=env_db,
        energy_freqs_hz=freqs_t,
        energy_density=esd_t,
        level_dbfs=level_dbfs,
        level_std_db=level_std_db,
    )


def _level_std_db(
    power: np.ndarray,
    starts: np.ndarray,
    *,
    first: int,
    length: int,
    stationary: float,
    period: float,
    fs: int,
) -> float:
    """Event-to-event level spread (dB), less the scatter the stationary floor alone shows
    (windows half a period later, when the events are short enough to leave them clear)."""
    cum = np.concatenate([[0.0], np.cumsum(power)])

    def sums(offsets: np.ndarray) -> np.ndarray:
        ok = (offsets >= 0) & (offsets + length <= power.size)
        return cum[offsets[ok] + length] - cum[offsets[ok]]

    excess = sums(starts + first) - stationary * length
    excess = excess[excess > 0]
    if excess.size < _MIN_EVENTS:
        return 0.0
    spread_db = float(np.std(db(excess)))
    noise_db = 0.0
    if length < 0.4 * period * fs:
        floor = sums(starts + first + round(0.5 * period * fs))
        if floor.size >= _MIN_EVENTS:
            noise_db = 10 / math.log(10) * float(np.std(floor)) / float(np.mean(excess))
    return math.sqrt(max(spread_db**2 - noise_db**2, 0.0))


def _event_regions(
    shapes: Sequence[_EventShape], *, duration_s: float, tail_s: float = 0.0
) -> list[tuple[float, float]]:
    """Time spans (s) of every event found or predicted by its train's grid, with margins
    (and ``tail_s`` more after each, for decays below the -20 dB span)."""
    regions = []
    for s in shapes:
        t = s.train
        k = np.round((t.onsets_s - t.onsets_s[0]) / t.period_s)
        t0 = float(np.mean(t.onsets_s - k * t.period_s))
        grid = t0 + t.period_s * np.arange(
            math.floor(-t0 / t.period_s) - 1, math.ceil((duration_s - t0) / t.period_s) + 1
        )
        margin = 0.005 + 3 * t.jitter_s
        for onset in grid:
            end = onset + s.start_s + s.duration_s + margin + tail_s
            regions.append((onset + s.start_s - margin, end))
        for onset in t.onsets_s:
            end = onset + s.start_s + s.duration_s + 0.005 + tail_s
            regions.append((onset + s.start_s - 0.005, end))
    return regions


def _gap_psd(
    x: np.ndarray,
    shapes: Sequence[_EventShape],
    *,
    sample_rate: int,
    tones: Sequence[tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray] | None:
    """PSD of the stationary part measured in windows between events, less the leakage of
    the known tones into those short windows; None when the gaps are too few or short."""
    fs = sample_rate
    step = max(1, round(0.001 * fs))
    busy = np.zeros(x.size // step + 1, dtype=bool)
    for a, b in _event_regions(shapes, duration_s=x.size / fs):
        busy[max(0, math.floor(a * fs / step)) : max(0, math.ceil(b * fs / step))] = True
    change = np.diff(np.concatenate([[0], (~busy).astype(np.int8), [0]]))
    free = np.stack([np.flatnonzero(change == 1), np.flatnonzero(change == -1)], axis=1)
    free = free[(free[:, 1] - free[:, 0]) * step >= 0.03 * fs]
    if free.shape[0] < 8:
        return None
    lengths = np.diff(free, axis=1)[:, 0] * step
    length = int(np.clip(np.percentile(lengths, 25), 0.03 * fs, 0.5 * fs))
    starts = []
    for (a, _), run in zip(free, lengths, strict=True):
        for j in range(int(run // length)):
            starts.append(a * step + j * length)
    starts_arr = np.array([s for s in starts if s + length <= x.size], dtype=int)
    if starts_arr.size < 8:
        return None
    n_fft = 1 << math.ceil(math.log2(2 * length))
    window = scipy.signal.windows.tukey(length, 0.2)
    esd = _esd_windows(x, starts_arr, length=length, sample_rate=fs, n_fft=n_fft)
    window_s = float(np.sum(window**2)) / fs
    psd = esd / window_s
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    n = np.arange(length) / fs
    for freq, power in tones:
        tone = math.sqrt(2 * power) * np.cos(2 * math.pi * freq * n) * window
        psd -= 2.0 * np.abs(np.fft.rfft(tone, n_fft)) ** 2 / fs**2 / window_s
    return freqs, np.maximum(psd, 0.05 * esd / window_s)


def _event_tone_power(
    model: EventTrain, shape: _EventShape, freqs_hz: np.ndarray, *, df: float
) -> float:
    """Average power the event's tones put on ``freqs_hz`` (a narrow region of the long
    PSD): each tone's energy per event / period, spread like the spectrum of the event's
    amplitude envelope (sidelobes included)."""
    amp = 10 ** (shape.envelope_db / 20)
    dt = _ENVELOPE_STEP_S
    t = np.arange(amp.size) * dt
    norm = float(np.sum(amp**2)) * dt
    total = 0.0
    event_energy = 10 ** (model.level_dbfs / 10) * model.duration_s
    for tone in model.tones:
        offsets = freqs_hz - tone.freq_hz
        if np.min(np.abs(offsets)) > 0.45 / dt:
            continue
        spectrum = np.exp(-2j * np.pi * np.outer(offsets, t)) @ amp * dt
        share = float(np.sum(np.abs(spectrum) ** 2)) * df / norm
        total += event_energy * 10 ** (tone.level_db / 10) / model.period_s * share
    return total


def _log_grid(nyquist_hz: float, *, bands_per_octave: int = BANDS_PER_OCTAVE) -> np.ndarray:
    centres = fractional_octave_centres(
        bands_per_octave=bands_per_octave, low_hz=9.0, high_hz=nyquist_hz
    )
    edge = centres[-1] * 2 ** (1 / (2 * bands_per_octave))
    if nyquist_hz * 0.97 > edge * 1.01:
        centres = np.append(centres, nyquist_hz * 0.97)
    return centres


def _event_train_model(shape: _EventShape, *, nyquist_hz: float) -> EventTrain:
    f = shape.energy_freqs_hz
    e = shape.energy_density
    df = f[1] - f[0]
    total = float(np.sum(e) * df)
    # tones inside the event (beeps, ringing resonances): the largest peaks standing well
    # above a low-percentile baseline over 2/3 octave, each down to where it stops falling
    log_f = np.log2(np.maximum(f, 1.0))
    grid = np.arange(log_f[1], log_f[-1], 1 / 48)
    on_grid = np.interp(grid, log_f, db(e))
    base_grid = scipy.ndimage.percentile_filter(on_grid, 25, size=33, mode="nearest")
    baseline = 10 ** (np.interp(log_f, grid, base_grid) / 10)
    tones: list[EventTone] = []
    noise = e.copy()
    for _ in range(6):
        excess = noise - baseline
        excess[f < MIN_FREQ_HZ] = 0
        i = int(np.argmax(excess))
        if noise[i] < 4.0 * baseline[i]:
            break
        a = i
        while a > 0 and noise[a - 1] < noise[a] and noise[a - 1] > 1.5 * baseline[a - 1]:
            a -= 1
        b = i
        while b < f.size - 1 and noise[b + 1] < noise[b] and noise[b + 1] > 1.5 * baseline[b + 1]:
            b += 1
        b += 1
        energy = float(np.sum(np.maximum(noise[a:b] - baseline[a:b], 0.0)) * df)
        if energy < 0.02 * total:
            break
        freq = float(f[i] + _parabolic(db(noise), i) * df)
        level_db = round(float(db(energy / total)), 2)
        tones.append(EventTone(freq_hz=round(freq, 1), level_db=level_db))
        noise[a:b] = np.minimum(noise[a:b], baseline[a:b])
    noise_energy = max(float(np.sum(noise) * df), 1e-12 * total)
    centres = _log_grid(nyquist_hz, bands_per_octave=EVENT_BANDS_PER_OCTAVE)
    lo, hi = band_edges(centres, top_hz=nyquist_hz)
    bands = db(band_mean(f, e, low_hz=lo, high_hz=hi))
    bands = np.maximum(bands - np.max(bands), -80.0)
    step = _ENVELOPE_STEP_S
    env = shape.envelope_db
    n_max = 96
    if env.size > n_max:
        factor = math.ceil(env.size / n_max)
        env_lin = 10 ** (env / 10)
        pad = (-env.size) % factor
        env_lin = np.concatenate([env_lin, np.full(pad, env_lin[-1])]).reshape(-1, factor)
        env = db(env_lin.mean(axis=1))
        env = env - np.max(env)
        step = step * factor
    if env.size < 2:
        env = np.array([0.0, float(env[0]) if env.size else 0.0])
    return EventTrain(
        period_s=round(shape.train.period_s, 5),
        jitter_s=round(shape.train.jitter_s, 5),
        duration_s=round(shape.duration_s, 4),
        level_dbfs=round(shape.level_dbfs, 2),
        level_std_db=round(shape.level_std_db, 2),
        envelope_step_s=round(step, 5),
        envelope_db=tuple(round(float(v), 1) for v in np.maximum(env, -60.0)),
        noise_level_db=round(float(db(noise_energy / total)), 2),
        spectrum=Spectrum(
            freqs_hz=tuple(round(float(c), 2) for c in centres),
            psd_db=tuple(round(float(v), 1) for v in bands),
        ),
        tones=tuple(tones),
    )


# --------------------------------------------------------------------------- tones


@dataclass(frozen=True)
class _Peak:
    freq_hz: float
    power: float
    lo: int  # region [lo, hi) in PSD bins
    hi: int
    snr: float


def _psd_segment(n_samples: int, sample_rate: int) -> int:
    target = 1 << math.ceil(math.log2(4.0 * sample_rate))
    limit = 1 << math.floor(math.log2(n_samples / 3.5))
    return max(256, min(target, limit))


def _background(freqs: np.ndarray, psd: np.ndarray, *, dof: float) -> np.ndarray:
    """Running median of the PSD over max(6 Hz, 4 % of f) — wide enough that a drifting
    tone does not lift it — corrected for the median's bias under χ².

    Octave by octave; where the window spans many bins the PSD is first averaged in groups
    (so the median runs over about 33 points).
    """
    df = float(freqs[1] - freqs[0])
    nyquist = float(freqs[-1])
    out = np.empty_like(psd)
    edges = [0.0]
    while edges[-1] < nyquist:
        edges.append(max(50.0, 2 * edges[-1]))
    for fa, fb in itertools.pairwise(edges):
        width_hz = max(6.0, 0.04 * min(fb, nyquist))
        size = max(31, round(width_hz / df))
        group = max(1, size // 33)
        ia, ib = np.searchsorted(freqs, [fa, fb])
        ib = min(ib, freqs.size) if fb < nyquist else freqs.size
        if ib <= ia:
            continue
        pad = size
        lo, hi = max(0, ia - pad), min(freqs.size, ib + pad)
        seg = psd[lo:hi]
        n_groups = seg.size // group
        if n_groups < 3:
            grouped, centres = seg, np.arange(lo, hi, dtype=float)
            group = 1
        else:
            grouped = seg[: n_groups * group].reshape(n_groups, group).mean(axis=1)
            centres = lo + (np.arange(n_groups) + 0.5) * group - 0.5
        med = scipy.ndimage.median_filter(
            db(grouped), size=max(3, round(size / group)) | 1, mode="nearest"
        )
        nu = dof * group
        bias = (1 - 2 / (9 * nu)) ** 3  # median of χ²_ν/ν (Wilson–Hilferty)
        out[ia:ib] = 10 ** (np.interp(np.arange(ia, ib), centres, med) / 10) / bias
    return out


def _tone_peaks(
    freqs: np.ndarray, psd: np.ndarray, bg: np.ndarray, *, nyquist_hz: float
) -> list[_Peak]:
    """Tone candidates: peaks of the PSD (and of it smoothed over ~2 and ~8 Hz, for drifting
    tones) standing :data:`TONE_THRESHOLD_DB` (smoothed: 7 and 5 dB) above the background."""
    df = freqs[1] - freqs[0]
    levels = [(1, TONE_THRESHOLD_DB)]
    for width_hz, thr in ((2.0, 7.0), (8.0, 5.0)):
        k = round(width_hz / df)
        if k >= 3:
            levels.append((k | 1, thr))
    candidates: list[tuple[float, int, int]] = []  # (smoothed power, bin, level)
    ratios = []
    for level, (k, thr) in enumerate(levels):
        smooth = scipy.ndimage.uniform_filter1d(psd, k) if k > 1 else psd
        ratio = smooth / np.maximum(bg, 1e-300)
        ratios.append(ratio)
        cand, _ = scipy.signal.find_peaks(ratio, height=10 ** (thr / 10), distance=max(3, k))
        cand = cand[(freqs[cand] >= MIN_FREQ_HZ) & (freqs[cand] <= 0.98 * nyquist_hz)]
        candidates += [(float(smooth[i] * k), int(i), level) for i in cand]
    peaks: list[_Peak] = []
    taken = np.zeros(psd.size, dtype=bool)
    for _, i, level in sorted(candidates, reverse=True):
        if taken[i]:
            continue
        ratio = ratios[level]
        k = levels[level][0]
        cap = max(8, round(0.03 * freqs[i] / df))
        lo = i
        while lo > max(1, i - cap) and ratio[lo - 1] > 1.5 and not taken[lo - 1]:
            lo -= 1
        hi = i
        while hi < min(psd.size - 2, i + cap) and ratio[hi + 1] > 1.5 and not taken[hi + 1]:
            hi += 1
        margin = 3 + k // 2
        lo, hi = max(1, lo - margin), min(psd.size, hi + margin + 1)
        while taken[lo]:
            lo += 1
        while taken[hi - 1]:
            hi -= 1
        excess = np.maximum(psd[lo:hi] - bg[lo:hi], 0.0)
        power = float(np.sum(excess) * df)
        # the region as a whole must stand 3 dB above the background (a smoothed peak can
        # be the skirt of a stronger tone already taken, or a ripple)
        if power <= 0 or np.sum(psd[lo:hi]) < 2.0 * np.sum(bg[lo:hi]):
            continue
        freq = float(np.sum(freqs[lo:hi] * excess) / np.sum(excess))
        taken[lo:hi] = True
        snr = float(np.max(ratios[0][lo:hi]))
        peaks.append(_Peak(freq, power, lo, hi, snr))
    return peaks


def _group_harmonics(peaks: list[_Peak], *, df: float) -> list[list[tuple[int, _Peak]]]:
    """Greedy grouping into harmonic series: [(harmonic number, peak), ...] per series."""
    remaining = sorted(peaks, key=lambda p: -p.power)
    series: list[list[tuple[int, _Peak]]] = []

    def members(f0: float, pool: list[_Peak]) -> list[tuple[int, _Peak]]:
        got: dict[int, _Peak] = {}
        for p in pool:
            k = round(p.freq_hz / f0)
            if k < 1 or k > MAX_HARMONICS:
                continue
            near = abs(p.freq_hz - k * f0) <= max(3 * df, 0.004 * p.freq_hz)
            if near and (k not in got or got[k].power < p.power):
                got[k] = p
        return sorted(got.items())

    while remaining and len(series) < MAX_SERIES:
        best: list[tuple[int, _Peak]] = []
        best_key = (0, 0.0)
        for cand in remaining[:12]:
            for div in (1, 2, 3):
                f0 = cand.freq_hz / div
                if f0 < MIN_FREQ_HZ:
                    continue
                group = members(f0, remaining)
                if not any(k == 1 for k, _ in group) and div == 1:
                    continue
                # prefer more members; then the larger fundamental (a real peak)
                key = (len(group), f0 if div == 1 else f0 * 0.999)
                if len(group) > best_key[0] or (
                    len(group) == best_key[0] and key[1] > best_key[1] and div == 1
                ):
                    if div > 1 and len(group) <= len(members(cand.freq_hz, remaining)):
                        continue
                    best, best_key = group, key
        if not best:
            best = [(1, remaining[0])]
        series.append(best)
        used = {id(p) for _, p in best}
        remaining = [p for p in remaining if id(p) not in used]
    return series


def _track_drifts(
    x: np.ndarray, *, sample_rate: int, groups: list[list[tuple[int, _Peak]]]
) -> list[tuple[float, float]]:
    """(drift_rms_hz, drift_timescale_s) of each series' fundamental, from 1 s frames.

    Per series the (up to) three strongest harmonics are tracked: the frame spectrum's
    maximum near each, refined by log-parabolic interpolation, divided by the harmonic
    number and averaged with weights SNR·k². The tracked variance less the tracking noise
    (half the variance of successive differences) is the drift's; its time scale is where
    the track's autocorrelation falls to 1/e.
    """
    duration_s = x.size / sample_rate
    frame_s = min(1.0, duration_s / 10)
    frame = round(frame_s * sample_rate)
    n_fft = 1 << math.ceil(math.log2(2 * frame))
    df = sample_rate / n_fft
    frames = _frames(x, frame=frame, hop=frame)
    window = np.hanning(frame)
    requests: list[tuple[int, int, int, int, float]] = []  # (group, k, a, b, weight)
    for g, group in enumerate(groups):
        for k, p in sorted(group, key=lambda kp: -kp[1].snr)[:3]:
            half = max(3, round((0.01 * p.freq_hz + 2.0) / df))
            centre = round(p.freq_hz / df)
            a, b = max(1, centre - half), centre + half + 1
            if b < n_fft // 2:
                requests.append((g, k, a, b, p.snr * k * k))
    mags = [np.empty((frames.shape[0], b - a)) for _, _, a, b, _ in requests]
    for start in range(0, frames.shape[0], 32):
        spec = np.abs(np.fft.rfft(frames[start : start + 32] * window, n_fft, axis=1)) ** 2
        for m, (_, _, a, b, _) in zip(mags, requests, strict=True):
            m[start : start + spec.shape[0]] = db(spec[:, a:b])
    results = []
    for g in range(len(groups)):
        tracks, weights = [], []
        for m, (gg, k, a, _, w) in zip(mags, requests, strict=True):
            if gg != g:
                continue
            j = np.argmax(m, axis=1)
            offs = np.array([_parabolic(row, int(jj)) for row, jj in zip(m, j, strict=True)])
            tracks.append(((a + j + offs) * df) / k)
            weights.append(w)
        results.append(_drift_stats(tracks, weights, frame_s=frame_s, duration_s=duration_s))
    return results


def _drift_stats(
    tracks: list[np.ndarray], weights: list[float], *, frame_s: float, duration_s: float
) -> tuple[float, float]:
    if not tracks or tracks[0].size < 4:
        return 0.0, 10.0
    w = np.array(weights)
    track = np.sum(np.array(tracks) * w[:, None], axis=0) / np.sum(w)
    dev = track - np.mean(track)
    var = float(np.var(dev))
    noise = 0.5 * float(np.var(np.diff(track)))
    drift_var = var - noise
    if drift_var <= noise or drift_var <= 0:
        return 0.0, 10.0
    acf = _autocorrelation(dev) * var / drift_var
    below = np.flatnonzero(acf[1:] < math.exp(-1))
    if below.size:
        i = int(below[0]) + 1
        frac = (acf[i - 1] - math.exp(-1)) / max(acf[i - 1] - acf[i], 1e-12)
        timescale = (i - 1 + float(np.clip(frac, 0, 1))) * frame_s
    else:
        timescale = duration_s / 2
    return math.sqrt(drift_var), float(np.clip(timescale, frame_s, max(duration_s / 2, frame_s)))


# --------------------------------------------------------------------------- the analysis


def _level_stats(x: np.ndarray, *, sample_rate: int) -> LevelStats:
    def frame_levels(seconds: float) -> np.ndarray:
        n = max(1, round(seconds * sample_rate))
        m = x.size // n
        return db(np.mean(x[: m * n].reshape(m, n) ** 2, axis=1))

    fast = frame_levels(0.125)
    slow = frame_levels(1.0)
    std = float(np.std(slow))
    return LevelStats(
        level_dbfs=round(float(db(np.mean(x * x))), 2),
        l10_dbfs=round(float(np.percentile(fast, 90)), 2),
        l50_dbfs=round(float(np.percentile(fast, 50)), 2),
        l90_dbfs=round(float(np.percentile(fast, 10)), 2),
        short_term_std_db=round(std, 2),
        stationarity=round(math.exp(-std / 3.0), 3),
    )


def _wander(
    x: np.ndarray,
    *,
    sample_rate: int,
    exclude_hz: list[tuple[float, float]],
    event_share: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[float, float]:
    """Slow level wander (dB RMS beyond steady Gaussian noise) and its time scale."""
    frame_s = WANDER_FRAME_S
    frame = round(frame_s * sample_rate)
    frames = _frames(x, frame=frame, hop=frame)
    if frames.shape[0] < 8:
        return 0.0, 3.0
    spec = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1 / sample_rate)
    use = freqs >= MIN_FREQ_HZ
    for lo, hi in exclude_hz:
        use &= ~((freqs >= lo) & (freqs <= hi))
    if event_share is not None:
        f_e, share = event_share
        use &= np.interp(freqs, f_e, share) < 0.3
    if np.count_nonzero(use) < 8:
        return 0.0, 3.0
    p = spec[:, use].sum(axis=1)
    levels = db(p)
    mean_spec = spec[:, use].mean(axis=0)
    kappa = 1.944  # Σ of squared correlations between Hann-windowed bins
    noise_var = (
        (10 / math.log(10)) ** 2 * kappa * float(np.sum(mean_spec**2) / np.sum(mean_spec) ** 2)
    )
    var = float(np.var(levels))
    wander_var = var - noise_var
    if wander_var <= 0.25 * noise_var or wander_var < 0.01:
        return 0.0, 3.0
    acf = _autocorrelation(levels) * var / wander_var
    below = np.flatnonzero(acf[1:] < math.exp(-1))
    timescale = (int(below[0]) + 1) * frame_s if below.size else levels.size * frame_s / 2
    return math.sqrt(wander_var), float(max(timescale, frame_s))


def _band_envelopes_db(
    x: np.ndarray,
    *,
    sample_rate: int,
    bins: list[np.ndarray],
    busy: np.ndarray,
) -> np.ndarray:
    """Level envelopes (dB, shape ``(len(bins), n_frames)``) of the bin sets ``bins`` of
    20 ms Hann frames every 10 ms; frames flagged ``busy`` bridged linearly in dB."""
    hop = round(sample_rate / MODULATION_FRAME_RATE_HZ)
    frames = _frames(x, frame=2 * hop, hop=hop)
    spec = np.abs(np.fft.rfft(frames * np.hanning(2 * hop), axis=1)) ** 2
    env = np.stack([db(spec[:, b].sum(axis=1) + 1e-30) for b in bins])
    idle = np.flatnonzero(~busy[: env.shape[1]])
    if idle.size < env.shape[1]:
        t = np.arange(env.shape[1])
        env = np.stack([np.interp(t, idle, e[idle]) for e in env])
    return env


def _octave_powers(env: np.ndarray, *, nperseg: int) -> np.ndarray:
    """Power of each envelope (dB²) per octave of modulation frequency, and the cross
    power of every pair: shape ``(n_bands, n_bands, n_octaves)``."""
    n_bands = env.shape[0]
    out = np.zeros((n_bands, n_bands, len(MODULATION_FREQS_HZ)))
    centres = np.asarray(MODULATION_FREQS_HZ)
    lo, hi = centres / math.sqrt(2), centres * math.sqrt(2)
    for i in range(n_bands):
        for j in range(i, n_bands):
            f, p = scipy.signal.csd(
                env[i], env[j], fs=MODULATION_FRAME_RATE_HZ, nperseg=nperseg, detrend="constant"
            )
            df = f[1] - f[0]
            for k in range(centres.size):
                out[i, j, k] = out[j, i, k] = float(np.sum(p.real[(f >= lo[k]) & (f < hi[k])]) * df)
    return out


def _modulation(
    x: np.ndarray,
    *,
    sample_rate: int,
    exclude_hz: list[tuple[float, float]],
    event_share: tuple[np.ndarray, np.ndarray] | None,
    event_regions_s: Sequence[tuple[float, float]],
    wander_frame_s: float,
) -> tuple[Modulation | None, float]:
    """Fast envelope modulation of the broadband part per acoustic band (see the module
    docstring; None when no band shows any beyond steady noise), and the share of its
    variance (dB²) that frames of ``wander_frame_s`` still see (already in the wander)."""
    fs = sample_rate
    hop = round(fs / MODULATION_FRAME_RATE_HZ)
    n_frames = 1 + (x.size - 2 * hop) // hop
    if n_frames < 512:
        return None, 0.0
    freqs = np.fft.rfftfreq(2 * hop, 1 / fs)
    use = freqs >= MIN_FREQ_HZ
    width = freqs[1] - freqs[0]
    for lo_hz, hi_hz in exclude_hz:
        use &= ~((freqs >= lo_hz - 1.5 * width) & (freqs <= hi_hz + 1.5 * width))
    if event_share is not None:
        f_e, share = event_share
        use &= np.interp(freqs, f_e, share) < 0.3
    nyquist = fs / 2.0
    edges = [
        (lo_hz, min(hi_hz, nyquist)) for lo_hz, hi_hz in MODULATION_BANDS_HZ if lo_hz < nyquist
    ]
    bins = [np.flatnonzero(use & (freqs >= a) & (freqs < b)) for a, b in edges]
    keep = [i for i, b in enumerate(bins) if b.size >= 2]
    if not keep:
        return None, 0.0
    bins = [bins[i] for i in keep]
    edges = [edges[i] for i in keep]
    busy = np.zeros(n_frames, dtype=bool)
    centre_s = (np.arange(n_frames) * hop + hop) / fs
    for a, b in event_regions_s:
        busy |= (centre_s >= a - 0.01) & (centre_s <= b + 0.01)
    if np.mean(busy) > 0.6:
        return None, 0.0
    # steady noise of the same long-term spectrum: the recording with random phases
    spectrum = np.fft.rfft(x)
    phases = np.random.default_rng(0).uniform(0, 2 * math.pi, spectrum.size)
    phases[0] = 0.0
    surrogate = np.fft.irfft(np.abs(spectrum) * np.exp(1j * phases), n=x.size)
    nperseg = min(1024, n_frames)
    powers = []
    for signal in (x, surrogate):
        env = _band_envelopes_db(signal, sample_rate=fs, bins=bins, busy=busy)
        powers.append(_octave_powers(env, nperseg=nperseg))
    rec, steady = powers
    n_bands = len(bins)
    excess = np.array([np.maximum(rec[i, i] - steady[i, i], 0.0) for i in range(n_bands)])
    noise_var = np.array([steady[i, i].sum() for i in range(n_bands)])
    var = excess.sum(axis=1)
    modulated = (var >= MIN_MODULATION_DB**2) & (var > 0.25 * noise_var)
    if not np.any(modulated):
        return None, 0.0
    # the wander's Hann frames weight power by w²: they pass |H(f)|² of each octave
    t = np.linspace(0.0, 1.0, 512)
    weight = np.hanning(512) ** 2
    weight /= weight.sum()
    passed = np.array(
        [
            float(
                np.mean(
                    np.abs(
                        np.exp(
                            -2j
                            * np.pi
                            * np.outer(
                                np.geomspace(f / math.sqrt(2), f * math.sqrt(2), 32),
                                t * wander_frame_s,
                            )
                        )
                        @ weight
                    )
                    ** 2
                )
            )
            for f in MODULATION_FREQS_HZ
        ]
    )
    leak = float(np.mean(excess[modulated] @ passed))
    corr = []
    for p, q in itertools.combinations(np.flatnonzero(modulated).tolist(), 2):
        cross = float(np.sum(rec[p, q] - steady[p, q]))
        corr.append(cross / math.sqrt(var[p] * var[q]))
    bands = []
    for i, (a, b) in enumerate(edges):
        depth = math.sqrt(var[i]) if modulated[i] else 0.0
        shape = db(excess[i] / excess[i].max()) if modulated[i] else np.zeros(excess.shape[1])
        bands.append(
            ModulationBand(
                low_hz=round(a, 1),
                high_hz=round(b, 1),
                depth_db=round(min(depth, 30.0), 2),
                mod_power_db=tuple(round(float(max(v, -60.0)), 2) for v in shape),
            )
        )
    model = Modulation(
        frame_rate_hz=MODULATION_FRAME_RATE_HZ,
        mod_freqs_hz=MODULATION_FREQS_HZ,
        band_correlation=round(float(np.clip(np.mean(corr), 0.0, 1.0)) if corr else 0.0, 3),
        bands=tuple(bands),
    )
    return model, leak


@dataclass(frozen=True)
class NoiseAnalysis:
    """The profile's parts, and where the events are (for the speech check)."""

    tones: tuple[ToneSeries, ...]
    broadband: Broadband
    events: tuple[EventTrain, ...]
    event_rates_hz: tuple[float, ...]
    event_regions_s: tuple[tuple[float, float], ...]


def analyse_noise(x: np.ndarray, *, sample_rate: int) -> NoiseAnalysis:
    """The profile's parts from a checked, DC-free recording (see the module docstring)."""
    fs = sample_rate
    nyquist = fs / 2.0
    # 1. events
    trains, _, _ = _find_trains(x, sample_rate=fs)
    shapes = [s for s in (_event_shape(x, t, sample_rate=fs) for t in trains) if s is not None]
    models = [_event_train_model(s, nyquist_hz=nyquist) for s in shapes]
    # 2. tones
    nperseg = _psd_segment(x.size, fs)
    freqs, psd = welch_psd(x, sample_rate=fs, nperseg=nperseg)
    df = freqs[1] - freqs[0]
    n_segments = max(1, (x.size - nperseg) // (nperseg // 2) + 1)
    dof = max(2.0, 2 * n_segments * 0.9)
    event_psd = np.zeros_like(psd)
    for s in shapes:
        event_psd += np.interp(freqs, s.energy_freqs_hz, s.energy_density) / s.train.period_s
    # tones are looked for in what the events leave (their own spectra have peaks too)
    stationary = np.maximum(psd - event_psd, 0.02 * psd)
    bg = _background(freqs, stationary, dof=dof)
    peaks = _tone_peaks(freqs, stationary, bg, nyquist_hz=nyquist)
    tones_ok: list[_Peak] = []
    for p in peaks:
        # what the events put in this narrow region on average (resonance and sidelobe
        # residues of the subtraction), and their comb lines k/P, are not tones
        if p.power <= float(np.sum(event_psd[p.lo : p.hi])) * df:
            continue
        explained = any(
            p.power <= 2.0 * _event_tone_power(model, shape, freqs[p.lo : p.hi], df=df)
            for model, shape in zip(models, shapes, strict=True)
        )
        if explained:
            continue
        comb = False
        for s in shapes:
            period = s.train.period_s
            k = round(p.freq_hz * period)
            if k >= 1 and abs(p.freq_hz - k / period) <= 2 * df:
                line = 2 * float(np.interp(p.freq_hz, s.energy_freqs_hz, s.energy_density))
                if p.power <= line / period**2:
                    comb = True
        if not comb:
            tones_ok.append(p)
    groups = _group_harmonics(tones_ok, df=df)
    drifts = _track_drifts(x, sample_rate=fs, groups=groups)
    series: list[ToneSeries] = []
    for group, (drift_rms, drift_t) in zip(groups, drifts, strict=True):
        ks = np.array([k for k, _ in group], dtype=float)
        fk = np.array([p.freq_hz for _, p in group])
        w = np.clip(np.array([p.snr for _, p in group]), 1.0, 1e6)
        f0 = float(np.sum(w * ks * fk) / np.sum(w * ks * ks))
        series.append(
            ToneSeries(
                fundamental_hz=round(f0, 4),
                drift_rms_hz=round(drift_rms, 4),
                drift_timescale_s=round(drift_t, 2),
                harmonics=tuple(
                    ToneHarmonic(
                        number=int(k),
                        freq_hz=round(p.freq_hz, 4),
                        level_dbfs=round(float(db(p.power)), 2),
                    )
                    for k, p in group
                ),
            )
        )
    series.sort(key=lambda s: -max(h.level_dbfs for h in s.harmonics))
    # 3. broadband: tone peaks replaced by the background, less the events' share; where
    # the events dominate, measured directly between them instead
    clean = stationary.copy()
    for p in tones_ok:
        clean[p.lo : p.hi] = bg[p.lo : p.hi]
    broadband_psd = clean
    if shapes:
        gap = _gap_psd(x, shapes, sample_rate=fs, tones=[(p.freq_hz, p.power) for p in tones_ok])
        if gap is not None:
            share = scipy.ndimage.uniform_filter1d(
                event_psd / np.maximum(psd, 1e-300), max(1, round(10.0 / df))
            )
            blend = np.clip((share - 0.2) / 0.3, 0.0, 1.0)
            # the short gap windows smear strong tones: keep their estimate away from tones
            reach = max(10.0, 8.0 * float(gap[0][1] - gap[0][0]))
            for p in tones_ok:
                blend[np.abs(freqs - p.freq_hz) <= reach] = 0.0
            gap_on_grid = np.interp(freqs, gap[0], gap[1])
            broadband_psd = (1 - blend) * broadband_psd + blend * gap_on_grid
    centres = _log_grid(nyquist)
    lo, hi = band_edges(centres, top_hz=nyquist)
    bands = band_mean(freqs, broadband_psd, low_hz=lo, high_hz=hi)
    level = float(db(np.sum(broadband_psd[1:]) * df))
    exclude = [(freqs[p.lo], freqs[min(p.hi, freqs.size - 1)]) for p in tones_ok]
    share = None
    if shapes:
        share = (freqs, event_psd / np.maximum(psd, 1e-300))
    wander_db, wander_t = _wander(x, sample_rate=fs, exclude_hz=exclude, event_share=share)
    regions = tuple(_event_regions(shapes, duration_s=x.size / fs, tail_s=0.05))
    modulation, leak = _modulation(
        x,
        sample_rate=fs,
        exclude_hz=exclude,
        event_share=share,
        event_regions_s=regions,
        wander_frame_s=WANDER_FRAME_S,
    )
    if leak > 0:  # the modulation's slowest part is in the wander too: count it once
        wander_db = math.sqrt(max(wander_db**2 - leak, 0.0))
        if wander_db < 0.1:
            wander_db = 0.0
    broadband = Broadband(
        level_dbfs=round(level, 2),
        bands_per_octave=BANDS_PER_OCTAVE,
        spectrum=Spectrum(
            freqs_hz=tuple(round(float(c), 2) for c in centres),
            psd_db=tuple(round(float(v), 2) for v in db(bands)),
        ),
        wander_db=round(wander_db, 2),
        wander_timescale_s=round(wander_t, 2),
        modulation=modulation,
    )
    events = tuple(models)
    return NoiseAnalysis(
        tones=tuple(series),
        broadband=broadband,
        events=events,
        event_rates_hz=tuple(1.0 / s.train.period_s for s in shapes),
        event_regions_s=regions,
    )


def capture_noise_profile(
    samples: np.ndarray,
    *,
    sample_rate: int,
    name: str,
    description: str = "",
    source_name: str | None = None,
    notes: Sequence[str] = (),
    created_by: str = "",
) -> CaptureResult:
    """Capture a :class:`NoiseProfile` from a recording (float, shape ``(n,)``, any rate).

    ``notes`` are what was already done to the recording on the way in (downmix, ...); they
    are kept in the profile with the DC note, if any. Raises :class:`AudioError` for a
    recording that cannot be profiled (see :func:`prepare_recording`).
    """
    source = source_name or "recording"
    x, more_notes = prepare_recording(samples, sample_rate=sample_rate, source=source)
    all_notes = (*notes, *more_notes)
    analysis = analyse_noise(x, sample_rate=sample_rate)
    speech = detect_speech(
        x,
        sample_rate=sample_rate,
        exclude_rates_hz=analysis.event_rates_hz,
        exclude_regions_s=analysis.event_regions_s,
    )
    tones, broadband, events = analysis.tones, analysis.broadband, analysis.events
    profile = NoiseProfile(
        name=name,
        description=description,
        source=SourceInfo(
            file=source_name.rsplit("/", 1)[-1] if source_name else None,
            duration_s=round(x.size / sample_rate, 3),
            sample_rate_hz=int(sample_rate),
            notes=tuple(all_notes),
            speech_detected=speech.detected,
            speech_score=round(speech.score, 3),
            clip_file=None,
            created_by=created_by,
        ),
        stats=_level_stats(x, sample_rate=sample_rate),
        tones=tones,
        broadband=broadband,
        events=events,
    )
    return CaptureResult(profile=profile, speech=speech, notes=tuple(all_notes))
