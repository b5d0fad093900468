"""How faithfully a noise profile reproduces a recording (``lastmile profiles compare``).

The recording and a synthesis from the profile (same rate, same length, seeded) are both
analysed with the capture's own analysis, and compared:

- ``lsd_db``: log-spectral distance, the RMS over 1/3-octave bands (25 Hz up to 0.9 × the
  lower Nyquist frequency) of the difference of the two band levels in dB;
- tones: every harmonic found in the recording is *expected*; it is *matched* when the
  synthesis has a harmonic within max(1 Hz, 0.5 %) of it; for the matched ones the largest
  frequency error (Hz) and level error (dB);
- events: for each event train of the recording, the synthesis train of nearest period;
  the largest period error in percent.

With an ASR backend (:func:`asr_wer_figures`) the demo corpus is mixed at one SNR with
segments of the recording and with synthesis, and both word error rates are reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lastmile.audio.io import resample
from lastmile.capture.noise import NoiseAnalysis, analyse_noise, prepare_recording
from lastmile.profiles.dsp import db, third_octave_band_powers
from lastmile.profiles.noise_model import NoiseProfile
from lastmile.profiles.synthesis import ProfileNoise

__all__ = [
    "Fidelity",
    "WerComparison",
    "asr_wer_figures",
    "compare_profile",
    "log_spectral_distance",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Fidelity:
    """Fidelity figures; ``None`` where a figure does not apply (no tones, no events)."""

    lsd_db: float
    tones_expected: int
    tones_matched: int
    max_tone_freq_err_hz: float | None
    max_tone_level_err_db: float | None
    events_expected: int
    events_matched: int
    event_period_err_pct: float | None

    def lines(self) -> list[str]:
        """``key=value`` lines, as ``lastmile profiles compare`` prints them."""

        def fmt(value: float | None, digits: int) -> str:
            return "none" if value is None else f"{value:.{digits}f}"

        return [
            f"lsd_db={self.lsd_db:.2f}",
            f"tones_matched={self.tones_matched}/{self.tones_expected}",
            f"max_tone_freq_err_hz={fmt(self.max_tone_freq_err_hz, 3)}",
            f"max_tone_level_err_db={fmt(self.max_tone_level_err_db, 2)}",
            f"events_matched={self.events_matched}/{self.events_expected}",
            f"event_period_err_pct={fmt(self.event_period_err_pct, 2)}",
        ]


def log_spectral_distance(a: np.ndarray, b: np.ndarray, *, sample_rate: int) -> float:
    """RMS difference (dB) of the 1/3-octave band levels of ``a`` and ``b`` (same rate)."""
    _, pa = third_octave_band_powers(a, sample_rate=sample_rate)
    _, pb = third_octave_band_powers(b, sample_rate=sample_rate)
    return float(np.sqrt(np.mean((db(pa) - db(pb)) ** 2)))


def _harmonics(analysis: NoiseAnalysis) -> list[tuple[float, float]]:
    return [(h.freq_hz, h.level_dbfs) for s in analysis.tones for h in s.harmonics]


def compare_profile(
    profile: NoiseProfile,
    samples: np.ndarray,
    *,
    sample_rate: int,
    seed: int = 0,
    source: str = "recording",
) -> Fidelity:
    """Fidelity of ``profile`` to a recording (float, shape ``(n,)``, at ``sample_rate``).

    The synthesis is drawn from ``numpy.random.default_rng(seed)``. Raises
    :class:`lastmile.errors.AudioError` naming ``source`` for a recording that cannot be
    analysed.
    """
    x, _ = prepare_recording(samples, sample_rate=sample_rate, source=source)
    generator = ProfileNoise(profile)
    params = generator.draw(np.random.default_rng(seed), n_samples=x.size, sample_rate=sample_rate)
    y = generator.render(params, n_samples=x.size, sample_rate=sample_rate).astype(np.float64)
    top = min(0.9 * sample_rate / 2, 0.9 * profile.max_freq_hz)
    _, pa = third_octave_band_powers(x, sample_rate=sample_rate, high_hz=top)
    _, pb = third_octave_band_powers(y, sample_rate=sample_rate, high_hz=top)
    lsd = float(np.sqrt(np.mean((db(pa) - db(pb)) ** 2)))
    rec = analyse_noise(x, sample_rate=sample_rate)
    syn = analyse_noise(y - np.mean(y), sample_rate=sample_rate)
    expected = _harmonics(rec)
    found = _harmonics(syn)
    freq_errs, level_errs = [], []
    for freq, level in expected:
        if not found:
            break
        j = int(np.argmin([abs(f - freq) for f, _ in found]))
        if abs(found[j][0] - freq) <= max(1.0, 0.005 * freq):
            freq_errs.append(abs(found[j][0] - freq))
            level_errs.append(abs(found[j][1] - level))
    period_errs = []
    for train in rec.events:
        if not syn.events:
            break
        nearest = min(syn.events, key=lambda t: abs(t.period_s - train.period_s))
        err = abs(nearest.period_s - train.period_s) / train.period_s * 100.0
        if err <= 10.0:
            period_errs.append(err)
    return Fidelity(
        lsd_db=lsd,
        tones_expected=len(expected),
        tones_matched=len(freq_errs),
        max_tone_freq_err_hz=max(freq_errs) if freq_errs else None,
        max_tone_level_err_db=max(level_errs) if level_errs else None,
        events_expected=len(rec.events),
        events_matched=len(period_errs),
        event_period_err_pct=max(period_errs) if period_errs else None,
    )


@dataclass(frozen=True)
class WerComparison:
    """Pooled WERs (fractions) of the same utterances mixed with the recording and with the
    synthesis, and the standard error of their difference."""

    wer_recording: float
    wer_synth: float
    diff_se: float
    """Standard error of ``wer_synth - wer_recording``: items paired, clustered by
    utterance (the noise draws are what differs between the two)."""
    n_items: int
    n_words: int

    def lines(self) -> list[str]:
        return [
            f"wer_recording={self.wer_recording:.4f}",
            f"wer_synth={self.wer_synth:.4f}",
            f"wer_diff={self.wer_synth - self.wer_recording:+.4f}",
            f"wer_diff_se={self.diff_se:.4f}",
            f"wer_items={self.n_items}",
        ]


def asr_wer_figures(
    profile: NoiseProfile,
    samples: np.ndarray,
    *,
    sample_rate: int,
    asr_spec: str,
    snr_db: float = 10.0,
    n_utterances: int = 28,
    repeats: int = 1,
    seed: int = 0,
) -> WerComparison:
    """The demo subset mixed at ``snr_db`` with segments of the recording, and with
    synthesis from ``profile``, decoded by the backend ``asr_spec``; ``repeats`` times, each
    with new recording offsets and a new synthesis for the same utterances.

    Pooled WER (errors / reference words) with the ``default`` normalizer. The recording
    segments start at offsets drawn from ``default_rng([seed, 0])`` (looping a short
    recording); the synthesis draws from ``default_rng([seed, 1])``, so neither depends on
    the other. The defaults (one utterance of each of the 28 demo speakers, 10 dB) keep the
    comparison off the WER cliff, where a few words swing it by 10 points: at 5 dB with 12
    utterances two synthesis seeds differed by 7 points. Telling a 2-point difference from
    noise takes a few hundred utterances (``diff_se`` says how well it is resolved).
    """
    from lastmile.asr import build_backend
    from lastmile.audio.io import read_audio
    from lastmile.audio.mix import mix_at_snr
    from lastmile.corpus import load_manifest
    from lastmile.resources import shipped_dir
    from lastmile.score import pooled_wer, score_item

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    backend = build_backend(asr_spec)
    rate = int(backend.sample_rate)
    corpus = load_manifest(shipped_dir("demo_corpus") / "manifest.csv")
    chosen = _spread(corpus.utterances, n_utterances)
    rng_recording = np.random.default_rng([seed, 0])
    rng_synth = np.random.default_rng([seed, 1])
    recording = resample(
        np.asarray(samples, dtype=np.float32), orig_sample_rate=sample_rate, sample_rate=rate
    )
    generator = ProfileNoise(profile)
    speeches = [read_audio(utt.audio, sample_rate=rate).samples for utt in chosen]
    counts_rec, counts_syn = [], []
    for _ in range(repeats):
        with_recording, with_synth = [], []
        for speech in speeches:
            n = speech.size
            start = int(rng_recording.integers(0, recording.size))
            segment = recording[(start + np.arange(n)) % recording.size]
            params = generator.draw(rng_synth, n_samples=n, sample_rate=rate)
            synth = generator.render(params, n_samples=n, sample_rate=rate)
            with_recording.append(mix_at_snr(speech, segment, snr_db=snr_db, sample_rate=rate).mix)
            with_synth.append(mix_at_snr(speech, synth, snr_db=snr_db, sample_rate=rate).mix)
        hyp_rec = backend.transcribe(with_recording)
        hyp_syn = backend.transcribe(with_synth)
        counts_rec.append([score_item(u.text, h) for u, h in zip(chosen, hyp_rec, strict=True)])
        counts_syn.append([score_item(u.text, h) for u, h in zip(chosen, hyp_syn, strict=True)])
    flat_rec = [c for run in counts_rec for c in run]
    flat_syn = [c for run in counts_syn for c in run]
    wer_rec = float(pooled_wer(flat_rec) or 0.0)
    wer_syn = float(pooled_wer(flat_syn) or 0.0)
    # per utterance, summed over repeats: extra errors with the synthesis, and words
    extra = np.zeros(len(chosen))
    words = np.zeros(len(chosen))
    for run_rec, run_syn in zip(counts_rec, counts_syn, strict=True):
        for i, (a, b) in enumerate(zip(run_rec, run_syn, strict=True)):
            extra[i] += b.errors - a.errors
            words[i] += a.n_ref
    total = float(words.sum())
    k = len(chosen)
    if total > 0 and k > 1:
        resid = extra - (wer_syn - wer_rec) * words
        diff_se = float(np.sqrt(k / (k - 1) * np.sum(resid**2)) / total)
    else:
        diff_se = float("nan")
    return WerComparison(
        wer_recording=wer_rec,
        wer_synth=wer_syn,
        diff_se=diff_se,
        n_items=len(flat_rec),
        n_words=int(total),
    )


def _spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items evenly spread over ``items`` (all of them when fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[math.floor(i * step)] for i in range(count)]
