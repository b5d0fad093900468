"""Measure a device profile: from a recording of the sweep, or against a reference microphone.

**Sweep** (:func:`capture_device_from_sweep`): find the sync marker in the recording (its
offset is the latency, less the marker's own position in the sweep file), cut the recording
from where the sweep starts, deconvolve with the sweep (:func:`lastmile.capture.sweep.
deconvolve`), find the linear impulse response's peak (its offset adds to the latency),
window it (2.5 ms before the peak, ``ir_length_s`` after, half-Hann fades), and take its
spectrum on a 1/12-octave grid. The harmonic impulse responses (k = 2…5) sit ``L·ln k``
before the linear one; their spectra at ``k·f`` over the linear response at ``f`` give the
total harmonic distortion. The noise floor is the recording before the marker arrives.

**Reference** (:func:`capture_device_from_reference`): a reference microphone records the
same sound as the device at the same time. The two are aligned by cross-correlation, and the
transfer function is the H1 estimate ``Pxy / Pxx`` (Welch, Hann, 50 % overlap) with its
coherence; the noise floor is the incoherent part of the device's power, ``(1-γ²)·Pyy``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.signal

from lastmile.capture.sweep import SweepInfo, deconvolve, find_marker
from lastmile.errors import AudioError
from lastmile.profiles.device_model import (
    DeviceProfile,
    DeviceResponseTable,
    DeviceSource,
    FrequencyTable,
    SweepSettings,
)
from lastmile.profiles.dsp import band_edges, band_mean, db, fractional_octave_centres

__all__ = ["MIN_REFERENCE_S", "capture_device_from_reference", "capture_device_from_sweep"]

RESPONSE_BANDS_PER_OCTAVE = 12
REFERENCE_FREQ_HZ = 1000.0
USABLE_DROP_DB = 10.0
MIN_REFERENCE_S = 2.0
"""Shortest device and reference recordings :func:`capture_device_from_reference` takes."""
_PRE_S = 0.0025
_THD_FREQS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)


def _response_table(
    freqs: np.ndarray, power: np.ndarray, *, low_hz: float, high_hz: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """(centres, gain_db re reference, reference gain dB) from |H|² on a linear grid."""
    centres = fractional_octave_centres(
        bands_per_octave=RESPONSE_BANDS_PER_OCTAVE, low_hz=low_hz, high_hz=high_hz
    )
    lo, hi = band_edges(centres, top_hz=high_hz)
    gains = db(band_mean(freqs, power, low_hz=lo, high_hz=hi))
    ref_freq = (
        REFERENCE_FREQ_HZ
        if low_hz < REFERENCE_FREQ_HZ < high_hz
        else float(centres[int(np.argmax(gains))])
    )
    ref_gain = float(np.interp(np.log(ref_freq), np.log(centres), gains))
    return centres, gains - ref_gain, ref_gain


def _usable_band(
    centres: np.ndarray, gains: np.ndarray, *, reliable: np.ndarray | None = None
) -> tuple[float, float]:
    """The contiguous run of bands around the reference within :data:`USABLE_DROP_DB`."""
    ok = gains >= -USABLE_DROP_DB
    if reliable is not None:
        ok &= reliable
    i = int(np.argmin(np.abs(gains)))
    if not ok[i]:
        return float(centres[i]), float(centres[i])
    a = i
    while a > 0 and ok[a - 1]:
        a -= 1
    b = i
    while b < centres.size - 1 and ok[b + 1]:
        b += 1
    return float(centres[a]), float(centres[b])


def _window(n_pre: int, n_post: int) -> np.ndarray:
    fade_out = max(1, n_post // 4)
    w = np.ones(n_pre + n_post)
    w[:n_pre] = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_pre) / max(n_pre, 1))
    w[n_pre + n_post - fade_out :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(fade_out) / fade_out)
    return w


def _segment(ir: np.ndarray, start: int, length: int) -> np.ndarray:
    idx = (start + np.arange(length)) % ir.size
    return ir[idx]


def capture_device_from_sweep(
    recording: np.ndarray,
    sweep: np.ndarray,
    info: SweepInfo,
    *,
    name: str,
    description: str = "",
    recording_name: str | None = None,
    ir_length_s: float = 0.1,
    notes: Sequence[str] = (),
    created_by: str = "",
) -> DeviceProfile:
    """A :class:`DeviceProfile` from a recording (float, shape ``(n,)``, at the sweep's
    rate) of ``sweep`` (as read by :func:`lastmile.capture.sweep.read_sweep`) through
    the device.

    Raises :class:`AudioError` when the recording holds no sync marker, stops before the
    sweep ends, or is clipped.
    """
    fs = info.sample_rate
    source = recording_name or "recording"
    y = np.asarray(recording, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{source}: contains NaN or infinite samples; re-export it")
    if np.count_nonzero(np.abs(y) >= 0.999) >= 10:
        raise AudioError(
            f"{source}: the recording is clipped; play the sweep quieter or lower the input "
            "gain, then record again"
        )
    n_sweep = info.sweep_samples
    n_tail = round(1.0 * fs)
    need = info.sweep_offset - info.marker_offset + n_sweep + n_tail
    if y.size < need:
        raise AudioError(
            f"{source}: {y.size / fs:.2f} s long; a recording of this sweep needs at least "
            f"{need / fs:.2f} s (from its sync marker to 1 s after the sweep ends; the sweep "
            f"file is {info.total_samples / fs:.2f} s): play the whole file and record all of it"
        )
    marker_at, _ = find_marker(y, sample_rate=fs, source=source)
    offset = marker_at - info.marker_offset
    start = info.sweep_offset + offset
    if start < 0 or start + n_sweep > y.size:
        raise AudioError(
            f"{source}: the recording stops {((start + n_sweep - y.size) / fs):.2f} s before the "
            "sweep ends (or starts after it); record the whole sweep and its silent tail"
        )
    x = sweep[info.sweep_offset : info.sweep_offset + n_sweep]
    segment = y[start : min(y.size, start + n_sweep + n_tail)]
    f2_hz = min(info.f2_hz, 0.95 * fs / 2)
    ir = deconvolve(segment, x, sample_rate=fs, f1_hz=info.f1_hz, f2_hz=f2_hz)
    # the linear response's peak: within -5 ms .. +0.5 s of where the marker says
    search = np.concatenate(
        [np.arange(ir.size - round(0.005 * fs), ir.size), np.arange(0, round(0.5 * fs))]
    )
    peak = int(search[np.argmax(np.abs(ir[search]))])
    peak_delay = peak if peak < ir.size // 2 else peak - ir.size
    latency_s = (offset + peak_delay) / fs
    n_pre = round(_PRE_S * fs)
    n_post = round(ir_length_s * fs)
    window = _window(n_pre, n_post)
    linear = _segment(ir, peak - n_pre, n_pre + n_post) * window
    n_fft = 1 << math.ceil(math.log2(max(len(linear) * 4, fs)))
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    h1 = np.abs(np.fft.rfft(linear, n_fft)) ** 2
    centres, gains, ref_gain = _response_table(freqs, h1, low_hz=info.f1_hz, high_hz=f2_hz)
    # harmonic distortion from the harmonic impulse responses
    big_l = info.rate_constant_s
    thd_freqs, thd_values = [], []
    harmonics = []
    for k in range(2, 6):
        lead = round(big_l * math.log(k) * fs)
        room = round(big_l * math.log(k / (k - 1)) * fs)
        length = min(n_pre + n_post, max(n_pre + 8, room // 2))
        part = _segment(ir, peak - lead - n_pre, length) * _window(n_pre, length - n_pre)
        harmonics.append(np.abs(np.fft.rfft(part, n_fft)) ** 2)
    for f in _THD_FREQS_HZ:
        if f < info.f1_hz or 2 * f > f2_hz:
            continue
        fund = float(np.interp(f, freqs, h1))
        if fund <= 0:
            continue
        total = sum(
            float(np.interp(k * f, freqs, hk))
            for k, hk in enumerate(harmonics, start=2)
            if k * f <= f2_hz
        )
        thd_freqs.append(f)
        thd_values.append(round(100.0 * math.sqrt(total / fund), 3))
    # noise floor: the recording before the marker arrives
    quiet = y[: max(0, marker_at - round(0.05 * fs))]
    if quiet.size < round(0.1 * fs):
        quiet = y[min(y.size, start + n_sweep + n_tail // 2) :]
    floor = float(db(np.mean(quiet**2))) if quiet.size >= round(0.05 * fs) else -200.0
    level = float(db(np.mean(y[start : start + n_sweep] ** 2)))
    usable = _usable_band(centres, gains)
    return DeviceProfile(
        name=name,
        description=description,
        method="sweep",
        source=DeviceSource(
            sample_rate_hz=fs,
            recording=recording_name.rsplit("/", 1)[-1] if recording_name else None,
            sweep=SweepSettings(
                f1_hz=info.f1_hz,
                f2_hz=info.f2_hz,
                duration_s=info.duration_s,
                level_dbfs=info.level_dbfs,
            ),
            latency_s=round(latency_s, 6),
            notes=tuple(notes),
            created_by=created_by,
        ),
        response=DeviceResponseTable(
            reference_freq_hz=REFERENCE_FREQ_HZ
            if centres[0] < REFERENCE_FREQ_HZ < centres[-1]
            else round(float(centres[int(np.argmax(gains))]), 2),
            reference_gain_db=round(ref_gain, 2),
            freqs_hz=tuple(round(float(c), 2) for c in centres),
            gain_db=tuple(round(float(g), 2) for g in np.maximum(gains, -120.0)),
        ),
        usable_band_hz=(round(usable[0], 1), round(usable[1], 1)),
        noise_floor_dbfs=round(floor, 2),
        measurement_snr_db=round(level - floor, 2),
        distortion=FrequencyTable(freqs_hz=tuple(thd_freqs), values=tuple(thd_values))
        if len(thd_freqs) >= 2
        else None,
    )


def capture_device_from_reference(
    device: np.ndarray,
    reference: np.ndarray,
    *,
    sample_rate: int,
    name: str,
    description: str = "",
    recording_name: str | None = None,
    reference_name: str | None = None,
    notes: Sequence[str] = (),
    created_by: str = "",
    max_latency_s: float = 1.0,
) -> DeviceProfile:
    """A :class:`DeviceProfile` from simultaneous recordings of the same sound by the device
    and by a reference microphone (both float, shape ``(n,)``, at ``sample_rate``).

    Raises :class:`AudioError` when the recordings are too short, silent, or do not match
    (no clear alignment, coherence too low anywhere).
    """
    fs = sample_rate
    y = np.asarray(device, dtype=np.float64)
    x = np.asarray(reference, dtype=np.float64)
    src_y, src_x = recording_name or "device recording", reference_name or "reference"
    for arr, src in ((y, src_y), (x, src_x)):
        if arr.size < MIN_REFERENCE_S * fs:
            raise AudioError(
                f"{src}: {arr.size / fs:.2f} s long; a reference measurement needs at least "
                f"{MIN_REFERENCE_S:g} s of both recordings (10 s or more is better): record "
                "a longer stretch"
            )
        if not np.all(np.isfinite(arr)) or not np.any(arr):
            raise AudioError(f"{src}: silent or non-finite; check the recording")
    n = min(x.size, y.size)
    x, y = x[:n] - np.mean(x[:n]), y[:n] - np.mean(y[:n])
    max_lag = min(n // 4, round(max_latency_s * fs))
    xc = scipy.signal.fftconvolve(y, x[::-1], mode="full")
    centre = n - 1
    window = xc[centre - max_lag : centre + max_lag + 1]
    lag = int(np.argmax(np.abs(window))) - max_lag
    if lag >= 0:
        xa, ya = x[: n - lag], y[lag:]
    else:
        xa, ya = x[-lag:], y[: n + lag]
    nperseg = 1 << math.ceil(math.log2(0.1 * fs))
    freqs, pxy = scipy.signal.csd(xa, ya, fs=fs, nperseg=nperseg, window="hann")
    _, pxx = scipy.signal.welch(xa, fs=fs, nperseg=nperseg, window="hann")
    _, pyy = scipy.signal.welch(ya, fs=fs, nperseg=nperseg, window="hann")
    _, coh = scipy.signal.coherence(xa, ya, fs=fs, nperseg=nperseg, window="hann")
    h1 = np.abs(pxy) ** 2 / np.maximum(pxx, 1e-300) ** 2
    low = max(20.0, 2 * freqs[1])
    high = 0.95 * fs / 2
    centres, gains, ref_gain = _response_table(freqs, h1, low_hz=low, high_hz=high)
    lo, hi = band_edges(centres, top_hz=high)
    coh_bands = band_mean(freqs, coh, low_hz=lo, high_hz=hi)
    if float(np.max(coh_bands)) < 0.5:
        raise AudioError(
            f"{src_y} and {src_x}: coherence below 0.5 at every frequency; these are not "
            "simultaneous recordings of the same sound (or the device adds heavy noise)"
        )
    usable = _usable_band(centres, gains, reliable=coh_bands >= 0.9)
    noise = float(np.sum((1 - coh) * pyy) * (freqs[1] - freqs[0]))
    floor = float(db(noise))
    level = float(db(np.mean(ya**2)))
    third = fractional_octave_centres(bands_per_octave=3, low_hz=low, high_hz=high)
    tlo, thi = band_edges(third, top_hz=high)
    coh_third = band_mean(freqs, coh, low_hz=tlo, high_hz=thi)
    return DeviceProfile(
        name=name,
        description=description,
        method="reference",
        source=DeviceSource(
            sample_rate_hz=fs,
            recording=recording_name.rsplit("/", 1)[-1] if recording_name else None,
            reference=reference_name.rsplit("/", 1)[-1] if reference_name else None,
            latency_s=round(lag / fs, 6),
            notes=tuple(notes),
            created_by=created_by,
        ),
        response=DeviceResponseTable(
            reference_freq_hz=REFERENCE_FREQ_HZ,
            reference_gain_db=round(ref_gain, 2),
            freqs_hz=tuple(round(float(c), 2) for c in centres),
            gain_db=tuple(round(float(g), 2) for g in np.maximum(gains, -120.0)),
        ),
        usable_band_hz=(round(usable[0], 1), round(usable[1], 1)),
        noise_floor_dbfs=round(floor, 2),
        measurement_snr_db=round(level - floor, 2),
        coherence=FrequencyTable(
            freqs_hz=tuple(round(float(c), 2) for c in third),
            values=tuple(round(float(v), 4) for v in coh_third),
        ),
    )
