"""Device presets: measured responses against their specification; AGC and clipping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import csd, welch

from lastmile.audio import rms_dbfs
from lastmile.channel import clip_at
from lastmile.errors import ConfigError
from lastmile.profiles.presets import (
    PRESET_NAMES,
    DeviceResponse,
    FirDeviceResponse,
    MagnitudeTable,
    apply_device,
    design_linear_phase_fir,
    get_preset,
    preset_table,
)
from lastmile.scenario.specs import DeviceSpec
from lastmile.testing import tone

# Frequencies "well outside" each preset's band, where it must be ≥ 20 dB down re 1 kHz.
OUTSIDE_HZ = {
    "narrowband-handset": (50.0, 100.0, 4500.0, 7000.0),
    "wideband-headset": (20.0, 40.0, 9000.0, 11000.0),
    "laptop-mic": (50.0, 80.0, 12000.0, 16000.0),
    "speakerphone": (50.0, 100.0, 8000.0, 10000.0),
}


def _flat(sample_rate: int) -> FirDeviceResponse:
    """An ideal flat device (a single unit tap) at ``sample_rate``: isolates AGC and clipping."""
    return FirDeviceResponse("flat", np.array([1.0]), sample_rate, (20.0, 20000.0), (0.0, 0.0))


def _measured_db(response: DeviceResponse, *, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply the response to an impulse mid-buffer and read the magnitude off its spectrum."""
    n = 4 * sample_rate // 10  # 0.4 s, far longer than the 64 ms FIR
    impulse = np.zeros(n, dtype=np.float32)
    impulse[n // 2] = 1.0
    h = response.apply(impulse, sample_rate=sample_rate).astype(np.float64)
    assert np.argmax(np.abs(h)) == pytest.approx(n // 2, abs=2)  # delay compensated
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    return freqs, 20 * np.log10(np.abs(np.fft.rfft(h)) + 1e-12)


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("sample_rate", [8000, 16000, 48000])
def test_preset_matches_its_specification(name: str, sample_rate: int) -> None:
    response = get_preset(name)
    freqs, measured = _measured_db(response, sample_rate=sample_rate)
    spec = response.magnitude_db(freqs, sample_rate=sample_rate)
    passband = (spec >= -6.0) & (freqs <= 0.95 * sample_rate / 2)
    assert passband.sum() > 50
    np.testing.assert_allclose(measured[passband], spec[passband], atol=1.5)
    at_1k = measured[np.argmin(np.abs(freqs - 1000.0))]
    for f_hz in OUTSIDE_HZ[name]:
        if f_hz < sample_rate / 2:
            assert measured[np.argmin(np.abs(freqs - f_hz))] <= at_1k - 20.0, f_hz


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_measured_on_white_noise(name: str) -> None:
    sample_rate = 16000
    response = get_preset(name)
    x = np.random.default_rng(0).standard_normal(4 * sample_rate).astype(np.float32)
    y = response.apply(x, sample_rate=sample_rate)
    assert y.dtype == np.float32 and y.shape == x.shape
    freqs, pxx = welch(x, fs=sample_rate, nperseg=2048)
    _, pxy = csd(x, y, fs=sample_rate, nperseg=2048)
    measured = 20 * np.log10(np.abs(pxy / pxx))
    spec = response.magnitude_db(freqs, sample_rate=sample_rate)
    passband = (spec >= -3.0) & (freqs <= 0.95 * sample_rate / 2)
    np.testing.assert_allclose(measured[passband], spec[passband], atol=2.0)


def test_narrowband_handset_is_telephone_like() -> None:
    table = preset_table("narrowband-handset")
    gains = table.gain_db(np.array([300.0, 1000.0, 3000.0, 3400.0, 4000.0]))
    assert gains[2] - gains[1] >= 3.0  # rising towards 3 kHz
    assert gains[0] >= -3.0 and gains[3] >= 0.0  # 300-3400 Hz passband
    assert gains[4] <= -30.0  # steep above 3.4 kHz


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="narrowband-handset.*wideband-headset"):
        get_preset("tin-can")


def test_magnitude_table_interpolates_in_log_frequency() -> None:
    table = MagnitudeTable((100.0, 400.0), (-12.0, 0.0))
    np.testing.assert_allclose(
        table.gain_db([50.0, 100.0, 200.0, 400.0, 8000.0]), [-12.0, -12.0, -6.0, 0.0, 0.0]
    )
    with pytest.raises(ConfigError, match="strictly increasing"):
        MagnitudeTable((400.0, 100.0), (0.0, 0.0))


def test_fir_device_response_uses_its_taps_and_redesigns_elsewhere() -> None:
    table = preset_table("speakerphone")
    taps = design_linear_phase_fir(table, sample_rate=16000)
    measured = FirDeviceResponse("measured", taps, 16000, table.freqs_hz, table.gains_db)
    assert measured.delay_samples == (taps.size - 1) // 2
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    same = get_preset("speakerphone").apply(x, sample_rate=16000)
    np.testing.assert_allclose(measured.apply(x, sample_rate=16000), same, atol=1e-6)
    freqs, at_8k = _measured_db(measured, sample_rate=8000)
    spec = measured.magnitude_db(freqs, sample_rate=8000)
    passband = (spec >= -6.0) & (freqs <= 3800)
    np.testing.assert_allclose(at_8k[passband], spec[passband], atol=1.5)


def test_fir_device_response_with_minimum_phase_taps_is_aligned() -> None:
    taps = np.array([0.0, 0.0, 1.0, 0.5, 0.25, 0.125])  # peak at 2: delay removed
    response = FirDeviceResponse("min-phase", taps, 16000, (100.0, 1000.0), (0.0, 0.0))
    assert response.delay_samples == 2
    x = np.zeros(100, dtype=np.float32)
    x[50] = 1.0
    y = response.apply(x, sample_rate=16000)
    np.testing.assert_allclose(y[50:54], [1.0, 0.5, 0.25, 0.125])


def test_device_without_agc_or_clipping_is_the_response() -> None:
    x = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    spec = DeviceSpec(name="laptop-mic")
    response = get_preset("laptop-mic")
    y, record = apply_device(x, spec, sample_rate=16000, response=response)
    np.testing.assert_array_equal(y, response.apply(x, sample_rate=16000))
    assert record["agc"] is False and record["clipped_fraction"] == 0.0
    assert record["device"] == "laptop-mic"


@pytest.mark.parametrize(
    ("input_dbfs", "output_dbfs"),
    [(-45.0, -25.0), (-30.0, -20.0), (-8.0, -20.0)],  # -45: held to the +20 dB gain limit
)
def test_agc_converges_to_its_target(input_dbfs: float, output_dbfs: float) -> None:
    sample_rate = 8000
    x = np.random.default_rng(3).standard_normal(4 * sample_rate)
    x = (x * 10 ** (input_dbfs / 20)).astype(np.float32)
    spec = DeviceSpec(name="flat", agc=True, agc_target_dbfs=-20.0)
    y, record = apply_device(x, spec, sample_rate=sample_rate, response=_flat(sample_rate))
    assert rms_dbfs(y[2 * sample_rate :]) == pytest.approx(output_dbfs, abs=1.0)
    assert record["agc_gain_db_mean"] == pytest.approx(output_dbfs - input_dbfs, abs=1.5)
    again, _ = apply_device(x, spec, sample_rate=sample_rate, response=_flat(sample_rate))
    assert again.tobytes() == y.tobytes()  # deterministic


def test_agc_is_slow_and_holds_through_silence() -> None:
    sample_rate = 8000
    rng = np.random.default_rng(4)
    quiet = rng.standard_normal(3 * sample_rate) * 10 ** (-40 / 20)
    loud = rng.standard_normal(3 * sample_rate) * 10 ** (-30 / 20)
    silence = np.zeros(sample_rate)
    x = np.concatenate([quiet, silence, loud]).astype(np.float32)
    spec = DeviceSpec(name="flat", agc=True, agc_target_dbfs=-20.0)
    y, record = apply_device(x, spec, sample_rate=sample_rate, response=_flat(sample_rate))
    start_loud = 4 * sample_rate
    # just after the step the gain is still the quiet part's (+20 dB): -30 + 20 = -10 dBFS
    assert rms_dbfs(y[start_loud : start_loud + sample_rate // 50]) == pytest.approx(-10, abs=1.5)
    # ~0.5 s time constant: settled at the target two seconds later
    assert rms_dbfs(y[start_loud + 2 * sample_rate :]) == pytest.approx(-20.0, abs=1.0)
    # silence stays silence and the gain never exceeded its limit
    assert not np.any(y[3 * sample_rate + 100 : start_loud])
    assert record["agc_gain_db_max"] <= 20.0 + 1e-9


def test_device_clipping() -> None:
    sample_rate = 16000
    x = tone(freq_hz=997.0, duration_s=1.0, sample_rate=sample_rate, level_dbfs=-3.0103)
    spec = DeviceSpec(name="flat", clip_dbfs=-6.0206)
    y, record = apply_device(x, spec, sample_rate=sample_rate, response=_flat(sample_rate))
    assert np.max(np.abs(y)) == pytest.approx(0.5, abs=1e-4)
    # |sin| > 1/2 two thirds of the time
    assert record["clipped_fraction"] == pytest.approx(2 / 3, abs=0.01)
    clipped, fraction = clip_at(x, clip_dbfs=0.0)
    assert fraction == 0.0
    np.testing.assert_array_equal(clipped, x)
