"""Exponential sine sweeps (Farina) with a sync marker, and their deconvolution.

The test signal, in order: 0.5 s of silence, the **sync marker** (a 50 ms linear chirp from
600 to 2800 Hz under a Hann window: it passes a telephone band and compresses to a sharp
peak under cross-correlation), 1 s of silence, the **sweep** (synchronized exponential sine
sweep, Novak et al. 2015, so harmonic impulse responses come out phase-correct, with 10 ms
fades), then 2 s of silence for the response to die away. Its parameters are written into
the WAV file's comment as JSON, so ``lastmile capture device`` can read them back.

Deconvolution divides the recording's spectrum by the sweep's (regularized outside the swept
band). The linear impulse response lands at the latency; the k-th harmonic's response lands
``L·ln k`` earlier (``L = T / ln(f2/f1)``), where it wraps to the end of the result.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

from lastmile.errors import AudioError, ConfigError
from lastmile.profiles.files import atomic_write_bytes

__all__ = [
    "MARKER_F_HZ",
    "SweepInfo",
    "deconvolve",
    "default_f2_hz",
    "find_marker",
    "make_sweep",
    "marker_signal",
    "read_sweep",
    "write_sweep",
]

MARKER_F_HZ = (600.0, 2800.0)
_MARKER_S = 0.05
_LEAD_S = 0.5
_GAP_S = 1.0
_TAIL_S = 2.0
_FADE_S = 0.01
_TAG = "lastmile-sweep"


@dataclass(frozen=True)
class SweepInfo:
    """Where things are in a sweep file (sample offsets at ``sample_rate``) and the sweep."""

    sample_rate: int
    f1_hz: float
    f2_hz: float
    duration_s: float
    level_dbfs: float
    marker_offset: int
    sweep_offset: int
    total_samples: int

    @property
    def rate_constant_s(self) -> float:
        """``L`` of the synchronized sweep: the k-th harmonic leads by ``L·ln k``."""
        return _rate_constant(self.f1_hz, self.f2_hz, self.duration_s)

    @property
    def sweep_samples(self) -> int:
        return round(self.duration_s * self.sample_rate)


def _rate_constant(f1_hz: float, f2_hz: float, duration_s: float) -> float:
    # synchronized sweep: L·f1 an integer number of cycles (Novak et al.)
    return max(1, round(f1_hz * duration_s / math.log(f2_hz / f1_hz))) / f1_hz


def marker_signal(*, sample_rate: int) -> np.ndarray:
    """The sync marker (float64), peak 1."""
    n = round(_MARKER_S * sample_rate)
    t = np.arange(n) / sample_rate
    chirp = scipy.signal.chirp(t, MARKER_F_HZ[0], _MARKER_S, MARKER_F_HZ[1], method="linear")
    return chirp * np.hanning(n)


def default_f2_hz(sample_rate: int) -> float:
    """The sweep's default end frequency: 20 kHz, or 0.45 × the rate when that is lower
    (below the 0.95 × Nyquist limit, with room for the anti-aliasing filter)."""
    return float(min(20000.0, 0.45 * sample_rate))


def _check_sweep_params(sample_rate: int, f1_hz: float, f2_hz: float, seconds: float) -> None:
    if sample_rate < 8000:
        raise ConfigError(f"sweep: --sample-rate {sample_rate} Hz is too low; use 8000 or more")
    if not 0 < f1_hz < f2_hz:
        raise ConfigError(f"sweep: need 0 < --f1-hz < --f2-hz, got {f1_hz} and {f2_hz}")
    if f2_hz > 0.95 * sample_rate / 2:
        raise ConfigError(
            f"sweep: --f2-hz {f2_hz:g} is above 0.95 × Nyquist ({0.95 * sample_rate / 2:g} Hz at "
            f"{sample_rate} Hz); lower it or raise --sample-rate"
        )
    if f2_hz / f1_hz < 2:
        raise ConfigError("sweep: the sweep must span at least an octave (--f2-hz ≥ 2 × --f1-hz)")
    if not 1.0 <= seconds <= 120.0:
        raise ConfigError(f"sweep: --seconds must be in [1, 120], got {seconds}")


def make_sweep(
    *,
    sample_rate: int = 48000,
    f1_hz: float = 20.0,
    f2_hz: float | None = None,
    seconds: float = 10.0,
    level_dbfs: float = -6.0,
) -> tuple[np.ndarray, SweepInfo]:
    """The whole test signal (float32, marker and sweep at peak ``level_dbfs``) and its info.

    ``f2_hz`` defaults to :func:`default_f2_hz` of the rate (20 kHz at 48 kHz, 7.2 kHz at
    16 kHz). Raises :class:`ConfigError` for parameters outside what can be swept.
    """
    if f2_hz is None:
        f2_hz = default_f2_hz(sample_rate)
    _check_sweep_params(sample_rate, f1_hz, f2_hz, seconds)
    if not -40.0 <= level_dbfs <= 0.0:
        raise ConfigError(f"sweep: level must be in [-40, 0] dBFS, got {level_dbfs}")
    amp = 10 ** (level_dbfs / 20)
    lead = round(_LEAD_S * sample_rate)
    marker = marker_signal(sample_rate=sample_rate) * amp
    gap = round(_GAP_S * sample_rate)
    n = round(seconds * sample_rate)
    big_l = _rate_constant(f1_hz, f2_hz, seconds)
    t = np.arange(n) / sample_rate
    sweep = np.sin(2 * math.pi * f1_hz * big_l * np.exp(t / big_l))
    fade = round(_FADE_S * sample_rate)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    sweep[:fade] *= ramp
    sweep[n - fade :] *= ramp[::-1]
    tail = round(_TAIL_S * sample_rate)
    marker_offset = lead
    sweep_offset = lead + marker.size + gap
    signal = np.concatenate([np.zeros(lead), marker, np.zeros(gap), amp * sweep, np.zeros(tail)])
    info = SweepInfo(
        sample_rate=int(sample_rate),
        f1_hz=float(f1_hz),
        f2_hz=float(f2_hz),
        duration_s=float(seconds),
        level_dbfs=float(level_dbfs),
        marker_offset=marker_offset,
        sweep_offset=sweep_offset,
        total_samples=signal.size,
    )
    return signal.astype(np.float32), info


def write_sweep(path: str | Path, samples: np.ndarray, info: SweepInfo) -> Path:
    """Write the sweep as a 32-bit float WAV with its info in the comment (atomically)."""
    import io

    path = Path(path)
    if path.suffix.lower() != ".wav":
        raise ConfigError(f"{path}: write the sweep as .wav (32-bit float keeps it exact)")
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer, "w", samplerate=info.sample_rate, channels=1, format="WAV", subtype="FLOAT"
    ) as handle:
        handle.comment = json.dumps({"tag": _TAG, **asdict(info)}, separators=(",", ":"))
        handle.write(np.asarray(samples, dtype=np.float32))
    return atomic_write_bytes(path, buffer.getvalue())


def read_sweep(path: str | Path) -> tuple[np.ndarray, SweepInfo]:
    """Read a sweep written by :func:`write_sweep` (samples float64 and its info).

    Raises :class:`ConfigError` naming the file when it is not one (no sweep info in it).
    """
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as handle:
            comment = handle.comment
            samples = handle.read(dtype="float64", always_2d=True)[:, 0]
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot be read as audio ({exc})") from exc
    try:
        data = json.loads(comment)
        if data.pop("tag") != _TAG:
            raise ValueError("not a lastmile sweep")
        info = SweepInfo(**data)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"{path}: not a lastmile sweep file (no sweep parameters in its comment: {exc}); "
            "pass the file written by `lastmile capture sweep`, unmodified"
        ) from None
    if samples.size != info.total_samples:
        raise ConfigError(
            f"{path}: has {samples.size} samples but its parameters say {info.total_samples}; "
            "the file was edited or re-encoded: regenerate it with `lastmile capture sweep`"
        )
    return samples, info


def find_marker(recording: np.ndarray, *, sample_rate: int, source: str) -> tuple[int, float]:
    """Sample offset of the sync marker in ``recording`` and the match quality (0..1).

    The marker is the peak of the normalized cross-correlation with the known chirp. Raises
    :class:`AudioError` naming ``source`` when no marker stands out (quality below 0.3, or
    the peak not 4× the next one at least 20 ms away).
    """
    marker = marker_signal(sample_rate=sample_rate)
    if recording.size < marker.size * 2:
        raise AudioError(f"{source}: too short to hold the sweep ({recording.size} samples)")
    xc = scipy.signal.fftconvolve(recording, marker[::-1], mode="valid")
    energy = np.convolve(recording**2, np.ones(marker.size), mode="valid")
    norm = np.sqrt(np.maximum(energy, 1e-30) * float(np.sum(marker**2)))
    quality = np.abs(xc) / norm
    loud = energy >= 1e-6 * float(np.max(energy))  # ignore near-silence (0/0 noise)
    quality = np.where(loud, quality, 0.0)
    i = int(np.argmax(quality))
    best = float(quality[i])
    guard = round(0.02 * sample_rate)
    others = quality.copy()
    others[max(0, i - guard) : i + guard] = 0.0
    runner_up = float(np.max(others)) if others.size else 0.0
    if best < 0.3 or best < 2.0 * runner_up:
        raise AudioError(
            f"{source}: no sync marker found (best match {best:.2f}, next {runner_up:.2f}); "
            "this recording does not contain the sweep from `lastmile capture sweep` (was it "
            "played in full, and recorded at a level well above the noise?)"
        )
    return i, best


def deconvolve(
    recording: np.ndarray, sweep: np.ndarray, *, sample_rate: int, f1_hz: float, f2_hz: float
) -> np.ndarray:
    """Impulse response(s) from a recording of ``sweep`` that starts with it (both float).

    ``H = Y·X* / (|X|² + ε)``, ε tiny in [f1, f2] and rising steeply outside, so nothing
    outside the swept band is amplified. The result has ``N ≥ len(recording) + len(sweep)``
    samples: the linear response from index 0, harmonic responses at the end (negative time).
    """
    n = 1 << math.ceil(math.log2(recording.size + sweep.size))
    spec_x = np.fft.rfft(sweep, n)
    spec_y = np.fft.rfft(recording, n)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    power = np.abs(spec_x) ** 2
    inside = (freqs >= f1_hz) & (freqs <= f2_hz)
    level = float(np.median(power[inside])) if np.any(inside) else float(np.max(power))
    outside = np.where(
        freqs < f1_hz,
        (f1_hz / np.maximum(freqs, 1e-3)) ** 4,
        np.where(freqs > f2_hz, (freqs / f2_hz) ** 4, 0.0),
    )
    eps = level * (1e-4 + np.minimum(outside, 1e6))
    return np.fft.irfft(spec_y * np.conj(spec_x) / (power + eps), n)
