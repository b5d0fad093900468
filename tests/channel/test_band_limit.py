"""Band limiting: measured response of the zero-phase Butterworth band limit."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.channel import apply_channel, band_limit
from lastmile.errors import ConfigError
from lastmile.scenario.specs import ChannelSpec

SAMPLE_RATE = 16000


def _response_db(low_hz: float, high_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = 2 * SAMPLE_RATE
    impulse = np.zeros(n, dtype=np.float32)
    impulse[n // 2] = 1.0
    h = band_limit(impulse, low_hz=low_hz, high_hz=high_hz, sample_rate=SAMPLE_RATE)
    freqs = np.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE)
    magnitude_db = 20 * np.log10(np.abs(np.fft.rfft(h.astype(np.float64))) + 1e-15)
    return freqs, magnitude_db, h


def _at(freqs: np.ndarray, values: np.ndarray, f_hz: float) -> float:
    return float(values[np.argmin(np.abs(freqs - f_hz))])


def test_band_limit_response() -> None:
    freqs, db, h = _response_db(300.0, 3400.0)
    assert _at(freqs, db, 300.0) == pytest.approx(-3.0, abs=0.1)
    assert _at(freqs, db, 3400.0) == pytest.approx(-3.0, abs=0.1)
    passband = (freqs >= 600) & (freqs <= 2000)
    assert np.max(np.abs(db[passband])) < 0.2
    # 48 dB/octave skirts: an octave outside each edge is more than 40 dB down
    assert _at(freqs, db, 150.0) < -40.0
    assert _at(freqs, db, 6800.0) < -40.0
    # zero-phase: the impulse response is symmetric about the impulse
    centre = h.size // 2
    np.testing.assert_allclose(h[centre - 200 : centre], h[centre + 200 : centre : -1], atol=1e-5)


def test_one_sided_band_limits() -> None:
    freqs, db, _ = _response_db(0.0, 4000.0)  # low-pass only
    assert _at(freqs, db, 50.0) == pytest.approx(0.0, abs=0.01)
    assert _at(freqs, db, 4000.0) == pytest.approx(-3.0, abs=0.1)
    freqs, db, _ = _response_db(200.0, 8000.0)  # high-pass only (8 kHz is Nyquist)
    assert _at(freqs, db, 200.0) == pytest.approx(-3.0, abs=0.1)
    assert _at(freqs, db, 7000.0) == pytest.approx(0.0, abs=0.01)


def test_channel_band_limit_and_clipping() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = (0.9 * np.sin(2 * np.pi * 1000 * t) + 0.05 * np.sin(2 * np.pi * 60 * t)).astype(np.float32)
    spec = ChannelSpec(band_hz=(300.0, 3400.0), clip_dbfs=-6.0206)
    y, rate, record = apply_channel(x, spec, sample_rate=SAMPLE_RATE)
    assert rate == SAMPLE_RATE and y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=1e-4)
    assert 0.5 < record["clipped_fraction"] < 0.8
    assert record["band_hz"] == [300.0, 3400.0]
    # the 60 Hz hum is gone: measure the unclipped band limit mid-signal, Hann-windowed
    limited = band_limit(x, low_hz=300.0, high_hz=3400.0, sample_rate=SAMPLE_RATE)
    window = np.hanning(8000)
    before = np.abs(np.fft.rfft(x[4000:12000] * window))
    after = np.abs(np.fft.rfft(limited[4000:12000] * window))
    bin_60 = 60 * 8000 // SAMPLE_RATE
    bin_1k = 1000 * 8000 // SAMPLE_RATE
    assert after[bin_60] < 10 ** (-60 / 20) * before[bin_60]
    assert after[bin_1k] == pytest.approx(before[bin_1k], rel=0.01)


def test_bad_band_is_refused() -> None:
    x = np.ones(1000, dtype=np.float32)
    with pytest.raises(ConfigError, match="low_hz < high_hz"):
        band_limit(x, low_hz=3000.0, high_hz=300.0, sample_rate=SAMPLE_RATE)
    with pytest.raises(ConfigError, match="Nyquist"):
        band_limit(x, low_hz=9000.0, high_hz=12000.0, sample_rate=SAMPLE_RATE)
