"""The broadband part's fast envelope modulation: captured, synthesized, measured again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lastmile.capture.noise import analyse_noise, capture_noise_profile
from lastmile.profiles.noise_model import Modulation, load_noise_profile
from lastmile.profiles.synthesis import ProfileNoise
from lastmile.testing import modulated_noise

from .conftest import FS

LEGACY = Path(__file__).parent / "data" / "legacy-hospital-imaging-suite.yaml"
# sha256 of its render (draw seed 11, 2 s at 16 kHz) by the synthesis before modulation
LEGACY_SHA256 = "54fd3f1e93fd7d5123df72b4236c42e3bcd6a448650c7107d362c586311765e1"


@pytest.fixture(scope="module")
def modulated():
    x = modulated_noise(np.random.default_rng(1), duration_s=30.0, sample_rate=FS, depth_db=6.0)
    profile = capture_noise_profile(x, sample_rate=FS, name="babble-like").profile
    gen = ProfileNoise(profile)
    record = gen.draw(np.random.default_rng(3), n_samples=x.size, sample_rate=FS)
    synth = gen.render(record, n_samples=x.size, sample_rate=FS).astype(np.float64)
    return profile, record, synth


def _octave(m: Modulation, freq_hz: float) -> int:
    return m.mod_freqs_hz.index(freq_hz)


def test_synthesis_reproduces_the_modulation(modulated):
    profile, _, synth = modulated
    source = profile.broadband.modulation
    assert source is not None
    again = analyse_noise(synth, sample_rate=FS).broadband.modulation
    assert again is not None
    for band, got in zip(source.bands, again.bands, strict=True):
        assert band.depth_db == pytest.approx(6.0, abs=0.75)  # the source's own depth
        assert got.depth_db == pytest.approx(band.depth_db, abs=0.75)
        # the modulation sits at 2-8 Hz in both, octave by octave within 2 dB
        assert max(band.mod_power_db) in {band.mod_power_db[_octave(source, f)] for f in (4.0, 8.0)}
        for f in (2.0, 4.0, 8.0, 16.0):
            k = _octave(source, f)
            assert got.mod_power_db[k] == pytest.approx(band.mod_power_db[k], abs=2.0)
    assert again.band_correlation >= 0.8 and source.band_correlation >= 0.8


def test_modulation_keeps_the_band_levels(modulated):
    profile, record, synth = modulated
    steady = ProfileNoise(
        profile.model_copy(
            update={"broadband": profile.broadband.model_copy(update={"modulation": None})}
        )
    )
    plain = steady.render(record, n_samples=synth.size, sample_rate=FS).astype(np.float64)
    spec_m = np.abs(np.fft.rfft(synth)) ** 2
    spec_p = np.abs(np.fft.rfft(plain)) ** 2
    freqs = np.fft.rfftfreq(synth.size, 1 / FS)
    for lo, hi in ((100, 500), (500, 2000), (2000, 6000)):
        band = (freqs >= lo) & (freqs < hi)
        ratio_db = 10 * np.log10(spec_m[band].sum() / spec_p[band].sum())
        assert abs(ratio_db) < 0.5


def test_steady_noise_has_no_modulation(known_capture):
    assert known_capture.profile.broadband.modulation is None


def test_profile_without_modulation_renders_as_before():
    gen = ProfileNoise(load_noise_profile(LEGACY))
    assert gen.profile.broadband.modulation is None
    record = gen.draw(np.random.default_rng(11), n_samples=2 * FS, sample_rate=FS)
    assert "modulation_seed" not in record
    y = gen.render(record, n_samples=2 * FS, sample_rate=FS)
    assert hashlib.sha256(y.tobytes()).hexdigest() == LEGACY_SHA256


def test_modulation_record_replays(modulated):
    profile, record, synth = modulated
    assert "modulation_seed" in record
    gen = ProfileNoise(profile)
    again = gen.render(record, n_samples=synth.size, sample_rate=FS).astype(np.float64)
    assert again.tobytes() == synth.tobytes()
