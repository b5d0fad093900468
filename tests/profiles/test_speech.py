"""The speech check: syllable-rate modulation, ignoring periodic machine events."""

from __future__ import annotations

import numpy as np

from lastmile.profiles.sitesim import BroadbandSpec, broadband_noise, speech_like
from lastmile.profiles.speech import SPEECH_THRESHOLD, detect_speech

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
