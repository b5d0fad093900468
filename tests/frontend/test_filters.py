"""Notch and high-pass: measured responses on real signals (profile tones, demo speech)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import signal

from lastmile.errors import ConfigError
from lastmile.frontend import HighpassSpec, NotchSpec, build_stage
from lastmile.frontend.highpass import Highpass
from lastmile.frontend.notch import Notch
from lastmile.profiles.noise_model import profile_search_dirs

from ._signals import RATE, band_power_db, demo_speech, profile_noise, profile_tones, third_octaves

DIRS = profile_search_dirs()


@pytest.mark.parametrize(
    "profile", ["hospital-imaging-suite", "warehouse-conveyor", "vehicle-cabin"]
)
def test_notch_at_a_profiles_tones_lowers_them_by_40_db(profile: str) -> None:
    tones = profile_tones(profile, duration_s=8.0)
    stage = build_stage(NotchSpec(type="notch", profile=profile), search_dirs=DIRS)
    out = stage.apply(tones, sample_rate=RATE)
    assert out.shape == tones.shape and out.dtype == np.float32
    targets = [t for t in stage.targets if t.freq_hz < RATE / 2]  # type: ignore[attr-defined]
    assert len(targets) >= 3
    for t in targets:
        lo, hi = t.freq_hz - 2.0, t.freq_hz + 2.0
        drop = band_power_db(tones, lo, hi) - band_power_db(out, lo, hi)
        assert drop >= 40.0, f"{profile}: tone at {t.freq_hz:.1f} Hz lowered by {drop:.1f} dB"


def test_notch_leaves_other_third_octave_bands_within_half_a_db() -> None:
    speech = demo_speech()
    noise = profile_noise("hospital-imaging-suite", n_samples=speech.size)
    x = (speech + noise).astype(np.float32)
    stage = build_stage(NotchSpec(type="notch", profile="hospital-imaging-suite"), search_dirs=DIRS)
    out = stage.apply(x, sample_rate=RATE)
    targets = stage.targets  # type: ignore[attr-defined]
    checked = 0
    for lo, hi in third_octaves(50.0, 7000.0):
        if any(lo - 2 * t.width_hz < t.freq_hz < hi + 2 * t.width_hz for t in targets):
            continue
        change = band_power_db(out, lo, hi) - band_power_db(x, lo, hi)
        assert abs(change) < 0.5, f"band {lo:.0f}-{hi:.0f} Hz changed by {change:.2f} dB"
        checked += 1
    assert checked >= 12  # 21 bands in 50-7000 Hz, 8 hold a notch


def test_notch_width_and_q_set_the_measured_minus_3_db_width() -> None:
    for spec, expected in [
        (NotchSpec(type="notch", freqs_hz=[1000.0], width_hz=50.0), 50.0),
        (NotchSpec(type="notch", freqs_hz=[1000.0], q=10.0), 100.0),
    ]:
        sos = Notch(spec).sos(sample_rate=RATE)
        f, h = signal.sosfreqz(sos, worN=2**18, fs=RATE)
        power = np.abs(h) ** 4  # forward and backward
        below = f[(power < 0.5) & (f > 500) & (f < 1500)]
        assert below.max() - below.min() == pytest.approx(expected, rel=0.02)


def test_notch_given_frequencies_and_per_frequency_widths() -> None:
    x = (profile_tones("hospital-imaging-suite", duration_s=4.0)).astype(np.float32)
    narrow = Notch(NotchSpec(type="notch", freqs_hz=[60.002, 119.9907], width_hz=[4.0, 8.0]))
    assert [t.width_hz for t in narrow.targets] == [4.0, 8.0]
    out = narrow.apply(x, sample_rate=RATE)
    assert band_power_db(x, 58, 62) - band_power_db(out, 58, 62) >= 40
    # the third harmonic (not notched) is untouched
    assert abs(band_power_db(x, 178, 182) - band_power_db(out, 178, 182)) < 0.5


def test_notch_profile_widths_follow_the_tones_drift() -> None:
    steady = Notch(NotchSpec(type="notch", profile="hospital-imaging-suite"), search_dirs=DIRS)
    drifting = Notch(NotchSpec(type="notch", profile="warehouse-conveyor"), search_dirs=DIRS)
    assert {t.width_hz for t in steady.targets} == {4.0}
    widths = [t.width_hz for t in drifting.targets]
    assert widths == sorted(widths) and widths[0] > 4.0  # wider for higher harmonics


def test_notch_refuses_bad_specs_and_frequencies_above_nyquist() -> None:
    with pytest.raises(ValidationError, match="either freqs_hz"):
        NotchSpec(type="notch")
    with pytest.raises(ValidationError, match="same length"):
        NotchSpec(type="notch", freqs_hz=[60.0, 120.0], width_hz=[4.0])
    with pytest.raises(ConfigError, match="not found"):
        Notch(NotchSpec(type="notch", profile="no-such-profile"), search_dirs=DIRS)
    stage = Notch(NotchSpec(type="notch", freqs_hz=[5000.0]))
    with pytest.raises(ConfigError, match="half the sample rate"):
        stage.apply(np.zeros(1000, dtype=np.float32) + 0.1, sample_rate=8000)


def test_highpass_measured_response_minus_3_db_at_cutoff_and_slope() -> None:
    warp = lambda f: np.tan(np.pi * f / RATE)  # noqa: E731 (the bilinear transform's warping)
    freqs = np.array([30.0, 60.0, 120.0, 1000.0])
    for order in (2, 4, 8):
        hp = Highpass(HighpassSpec(type="highpass", cutoff_hz=120.0, order=order))
        _, h = signal.sosfreqz(hp.sos(sample_rate=RATE), worN=freqs, fs=RATE)
        db = 20 * np.log10(np.abs(h) ** 2)  # forward and backward
        assert db[2] == pytest.approx(-3.01, abs=0.02)
        # a Butterworth of order/2, squared, with its design cutoff moved below 120 Hz
        m = order // 2
        ratio = (warp(120.0) / warp(freqs)) ** (2 * m) * (np.sqrt(2) - 1)
        np.testing.assert_allclose(db, -20 * np.log10(1 + ratio), atol=0.02)


def test_highpass_on_speech_removes_rumble_keeps_speech_band_and_timing() -> None:
    speech = demo_speech()
    rumble = profile_noise("vehicle-cabin", n_samples=speech.size)
    x = (speech + rumble).astype(np.float32)
    out = Highpass(HighpassSpec(type="highpass", cutoff_hz=150.0, order=8)).apply(
        x, sample_rate=RATE
    )
    assert band_power_db(x, 20, 60) - band_power_db(out, 20, 60) > 30
    for lo, hi in third_octaves(400.0, 7000.0):
        assert abs(band_power_db(out, lo, hi) - band_power_db(x, lo, hi)) < 0.2
    lag = np.argmax(signal.correlate(out, speech, mode="full")) - (speech.size - 1)
    assert lag == 0  # zero phase: the speech is not delayed


def test_highpass_refuses_odd_order_and_cutoff_above_nyquist() -> None:
    with pytest.raises(ValidationError, match="even number"):
        HighpassSpec(type="highpass", cutoff_hz=100.0, order=3)
    with pytest.raises(ConfigError, match="half the sample rate"):
        Highpass(HighpassSpec(type="highpass", cutoff_hz=4000.0)).apply(
            np.full(100, 0.1, dtype=np.float32), sample_rate=8000
        )


def test_filters_are_byte_identical_on_the_same_input() -> None:
    x = demo_speech()
    for stage in (
        Notch(NotchSpec(type="notch", profile="icu-monitors"), search_dirs=DIRS),
        Highpass(HighpassSpec(type="highpass", cutoff_hz=100.0)),
    ):
        first = stage.apply(x, sample_rate=RATE)
        assert first.tobytes() == stage.apply(x.copy(), sample_rate=RATE).tobytes()
