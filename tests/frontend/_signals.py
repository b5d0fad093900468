"""Real test signals for the front-end tests: demo speech, profile tones, measured SNR."""

from __future__ import annotations

import numpy as np
from scipy import signal

from lastmile.audio import active_speech_level, read_audio, rms_dbfs
from lastmile.profiles.noise_model import load_noise_profile, profile_search_dirs
from lastmile.profiles.synthesis import ProfileNoise
from lastmile.resources import shipped_dir

RATE = 16000


def demo_speech(utterance_id: str = "caribbean-f2-04", *, sample_rate: int = RATE) -> np.ndarray:
    path = shipped_dir("demo_corpus") / "audio" / f"{utterance_id}.flac"
    return read_audio(path, sample_rate=sample_rate).samples


def profile_tones(name: str, *, duration_s: float, seed: int = 1) -> np.ndarray:
    """Only the tones of a shipped profile (broadband at -160 dBFS, no events), as drawn."""
    p = load_noise_profile(name, search_dirs=profile_search_dirs())
    quiet = p.broadband.model_copy(update={"level_dbfs": -160.0})
    gen = ProfileNoise(p.model_copy(update={"events": (), "broadband": quiet}))
    n = int(duration_s * RATE)
    rec = gen.draw(np.random.default_rng(seed), n_samples=n, sample_rate=RATE)
    return gen.render(rec, n_samples=n, sample_rate=RATE)


def profile_noise(name: str, *, n_samples: int, seed: int = 2) -> np.ndarray:
    p = load_noise_profile(name, search_dirs=profile_search_dirs())
    gen = ProfileNoise(p)
    rec = gen.draw(np.random.default_rng(seed), n_samples=n_samples, sample_rate=RATE)
    return gen.render(rec, n_samples=n_samples, sample_rate=RATE)


def band_power_db(x: np.ndarray, lo_hz: float, hi_hz: float, *, nperseg: int = 2 * RATE) -> float:
    """Power of ``x`` in [lo_hz, hi_hz) from a Welch PSD (Hann, 50 % overlap), in dB."""
    f, p = signal.welch(x.astype(np.float64), RATE, nperseg=min(nperseg, x.size))
    m = (f >= lo_hz) & (f < hi_hz)
    return float(10 * np.log10(p[m].sum()))


def third_octaves(lo_hz: float = 50.0, hi_hz: float = 7000.0) -> list[tuple[float, float]]:
    """Third-octave bands (base-2 centres 1000·2^(k/3)) whose edges lie in [lo_hz, hi_hz]."""
    out = []
    for k in range(-30, 30):
        fc = 1000.0 * 2 ** (k / 3)
        lo, hi = fc * 2 ** (-1 / 6), fc * 2 ** (1 / 6)
        if lo >= lo_hz and hi <= hi_hz:
            out.append((lo, hi))
    return out


def measured_snr_db(out: np.ndarray, clean: np.ndarray) -> float:
    """SNR of ``out`` against known clean speech: ``out`` projected on the clean speech
    (a scale α), the P.56 active level of α·clean over the RMS level of what is left
    (noise and any speech distortion). Scale-invariant, so a gain is no improvement."""
    y, s = out.astype(np.float64), clean.astype(np.float64)
    alpha = float(np.dot(y, s) / np.dot(s, s))
    speech = alpha * s
    speech_level = active_speech_level(speech.astype(np.float32), sample_rate=RATE).level_dbfs
    return speech_level - rms_dbfs((y - speech).astype(np.float32))
