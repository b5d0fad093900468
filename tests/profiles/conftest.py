"""Known-content material for the profile tests, made once per session.

A 30 s, 16 kHz "site" with known content: 60 Hz hum and four harmonics at set levels with a
sinusoidal drift (three whole periods, so the mean fundamental is exactly 60 Hz), coloured
broadband noise at a set level, and a train of knocks every 0.31 s with 3 ms jitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sitesim import (
    BroadbandSpec,
    EventSpec,
    HumSpec,
    broadband_noise,
    hum,
    pulse_train,
)

from lastmile.capture.noise import CaptureResult, capture_noise_profile

FS = 16000
SECONDS = 30.0
HUM = HumSpec(
    60.0,
    (-30.0, -36.0, -40.0, -46.0, -52.0),
    drift_rms_hz=0.035,
    drift_timescale_s=10.0,
    drift="sine",
)
BROADBAND = BroadbandSpec(-45.0, slope_db_per_octave=-3.0, low_cut_hz=30.0, high_cut_hz=7000.0)
KNOCKS = EventSpec(
    "knock", period_s=0.31, level_dbfs=-26.0, jitter_s=0.003, duration_s=0.04, freq_hz=900.0
)


@dataclass(frozen=True)
class Known:
    samples: np.ndarray
    hum: np.ndarray
    broadband: np.ndarray
    events: np.ndarray
    sample_rate: int = FS


@pytest.fixture(scope="session")
def known() -> Known:
    rng = np.random.default_rng(20240611)
    n = round(SECONDS * FS)
    h = hum(HUM, rng, n_samples=n, sample_rate=FS)
    b = broadband_noise(BROADBAND, rng, n_samples=n, sample_rate=FS)
    e = pulse_train(KNOCKS, rng, n_samples=n, sample_rate=FS)
    return Known(samples=(h + b + e).astype(np.float32), hum=h, broadband=b, events=e)


@pytest.fixture(scope="session")
def known_capture(known: Known) -> CaptureResult:
    return capture_noise_profile(known.samples, sample_rate=FS, name="known-site")
