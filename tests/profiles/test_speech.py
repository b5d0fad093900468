"""The speech check: syllable-rate modulation, ignoring periodic machine events."""

from __future__ import annotations

import numpy as np
from sitesim import BroadbandSpec, broadband_noise, speech_like

from lastmile.capture.speech import SPEECH_THRESHOLD, _band_envelope, detect_speech

FS = 16000


def _noise(rng: np.random.Generator, n: int, level_dbfs: float) -> np.ndarray:
    spec = BroadbandSpec(level_dbfs, slope_db_per_octave=-3.0)
    return broadband_noise(spec, rng, n_samples=n, sample_rate=FS)


def test_a_talker_is_detected_alone_in_noise_and_for_part_of_the_time():
    rng = np.random.default_rng(1)
    n = 20 * FS
    talk = speech_like(rng, n_samples=n, sample_rate=FS, level_dbfs=-30)
    assert detect_speech(talk, sample_rate=FS).detected
    assert detect_speech(talk + _noise(rng, n, -30), sample_rate=FS).detected  # 0 dB SNR
    partly = talk.copy()
    partly[: 12 * FS] = 0
    report = detect_speech(partly + _noise(rng, n, -30), sample_rate=FS)
    assert report.detected and 0 < report.speech_fraction < 1


def test_steady_noise_is_not_speech():
    rng = np.random.default_rng(2)
    report = detect_speech(_noise(rng, 20 * FS, -30), sample_rate=FS)
    assert not report.detected and report.score < SPEECH_THRESHOLD


def test_periodic_knocks_at_syllable_rate_are_not_speech(known_capture):
    # the known site knocks 3.2 times a second, right in the 2-8 Hz band
    assert not known_capture.speech.detected
    assert not known_capture.profile.source.speech_detected


def _demo_speech(n_files: int = 10) -> np.ndarray:
    """About 30 s of real (synthetic-voice) speech: demo corpus utterances back to back."""
    import csv

    from lastmile.audio.io import read_audio
    from lastmile.resources import shipped_dir

    folder = shipped_dir("demo_corpus")
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[::20][:n_files]
    return np.concatenate([read_audio(folder / r["audio"], sample_rate=FS).samples for r in rows])


def _beating_hum(n: int) -> np.ndarray:
    """Two hums 0.2 Hz apart (mains and a generator): harmonic k beats at 0.2·k Hz, so
    harmonics 10-40 modulate the 300-3400 Hz band at 2-8 Hz, the syllable rate."""
    t = np.arange(n) / FS
    x = sum(np.sin(2 * np.pi * 50.0 * k * t) / k for k in range(1, 60))
    x = x + sum(np.sin(2 * np.pi * 50.2 * k * t + 1.0) / k for k in range(1, 60))
    return 0.1 * x / np.max(np.abs(x))


def _drifting_hum(rng: np.random.Generator, n: int, *, drift_hz: float) -> np.ndarray:
    from lastmile.profiles.generators import HumNoise

    hum = HumNoise(
        fundamental_hz=60.0,
        harmonics_db=tuple(-3.0 * np.arange(40)),
        drift_hz=drift_hz,
        drift_period_s=20.0,
        name="hum",
    )
    x = hum.render(hum.draw(rng, n_samples=n, sample_rate=FS), n_samples=n, sample_rate=FS)
    return 0.1 * x / np.max(np.abs(x))


def test_electrical_hum_with_harmonics_is_not_speech():
    rng = np.random.default_rng(4)
    n = 30 * FS
    beating = _beating_hum(n)
    # the beats are real: the 300-3400 Hz band power of every 4 s window fluctuates by 30 %
    envelope = _band_envelope(beating, sample_rate=FS)
    for start in range(0, envelope.size - 400, 400):
        window = envelope[start : start + 400]
        assert np.std(window) / np.mean(window) > 0.25
    for x in (
        beating,
        beating + _noise(rng, n, -60),  # a recorder's noise floor
        beating + _noise(rng, n, -45),
        _drifting_hum(rng, n, drift_hz=0.5),
        _drifting_hum(rng, n, drift_hz=0.5) + _noise(rng, n, -70),
    ):
        report = detect_speech(x.astype(np.float32), sample_rate=FS)
        assert not report.detected and report.score < SPEECH_THRESHOLD, report


def test_real_speech_is_found_alone_in_noise_and_under_hum():
    rng = np.random.default_rng(5)
    speech = _demo_speech()
    level = float(np.std(speech))
    hum = _beating_hum(speech.size)
    for x in (
        speech,
        speech + _noise(rng, speech.size, 20 * np.log10(level)),  # about 0 dB SNR
        speech + 3 * level * hum / np.std(hum),  # hum 10 dB above the speech
    ):
        report = detect_speech(x.astype(np.float32), sample_rate=FS)
        assert report.detected and report.score > 3 * SPEECH_THRESHOLD, report
