"""Synthesis from a profile: decide-then-do, determinism, any length, any rate, no seam."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from lastmile.errors import ConfigError
from lastmile.profiles.dsp import db, welch_psd
from lastmile.profiles.generators import NoiseGenerator, make_noise_generator
from lastmile.profiles.noise_model import save_noise_profile
from lastmile.profiles.synthesis import ProfileNoise, profile_loader
from lastmile.scenario.specs import ProfileNoiseSpec

from .conftest import FS


def test_same_record_same_bytes_and_seeds_matter(known_capture):
    gen = ProfileNoise(known_capture.profile)
    a = gen.draw(np.random.default_rng(7), n_samples=FS, sample_rate=FS)
    b = gen.draw(np.random.default_rng(7), n_samples=FS, sample_rate=FS)
    c = gen.draw(np.random.default_rng(8), n_samples=FS, sample_rate=FS)
    assert a == b and a != c
    x = gen.render(a, n_samples=FS, sample_rate=FS)
    assert x.dtype == np.float32 and x.shape == (FS,)
    assert x.tobytes() == gen.render(b, n_samples=FS, sample_rate=FS).tobytes()
    assert not np.array_equal(x, gen.render(c, n_samples=FS, sample_rate=FS))


def test_render_reads_only_the_json_record(known_capture):
    gen = ProfileNoise(known_capture.profile)
    params = gen.draw(np.random.default_rng(3), n_samples=12345, sample_rate=FS)
    replayed = json.loads(json.dumps(params))
    first = gen.render(params, n_samples=12345, sample_rate=FS)
    again = ProfileNoise(known_capture.profile).render(replayed, n_samples=12345, sample_rate=FS)
    assert first.tobytes() == again.tobytes()
    assert len(params["events"][0]["onsets_s"]) == len(params["events"][0]["gains_db"])


def test_bad_records_are_refused(known_capture):
    gen = ProfileNoise(known_capture.profile)
    params = gen.draw(np.random.default_rng(3), n_samples=FS, sample_rate=FS)
    with pytest.raises(ConfigError, match="no 'broadband_seed'"):
        gen.render(
            {k: v for k, v in params.items() if k != "broadband_seed"}, n_samples=FS, sample_rate=FS
        )
    with pytest.raises(ConfigError, match="tone series"):
        gen.render({**params, "tones": []}, n_samples=FS, sample_rate=FS)
    with pytest.raises(ConfigError, match="n_samples"):
        gen.draw(np.random.default_rng(0), n_samples=0, sample_rate=FS)


def test_long_render_has_no_loop_seam(known_capture):
    gen = ProfileNoise(known_capture.profile)
    n = 75 * FS  # longer than the 30 s recording
    x = gen.render(
        gen.draw(np.random.default_rng(4), n_samples=n, sample_rate=FS), n_samples=n, sample_rate=FS
    ).astype(np.float64)
    bb = gen.render_broadband(1, 2, n_samples=n, sample_rate=FS)
    head = bb[:FS]
    # the broadband part never repeats: the first second matches no later stretch
    xc = np.abs(fftconvolve(bb[FS:], head[::-1], mode="valid")) / np.sum(head**2)
    assert float(np.max(xc)) < 0.1
    # and the level is steady from start to end
    levels = db(np.mean(x.reshape(75, FS) ** 2, axis=1))
    assert float(np.max(levels) - np.min(levels)) < 1.0


def test_any_rate_and_nothing_above_the_source_band(known_capture):
    gen = ProfileNoise(known_capture.profile)
    for rate in (8000, 44100):
        n = 4 * rate
        x = gen.render(
            gen.draw(np.random.default_rng(5), n_samples=n, sample_rate=rate),
            n_samples=n,
            sample_rate=rate,
        )
        freqs, psd = welch_psd(x.astype(np.float64), sample_rate=rate, nperseg=4096)
        if rate > 2 * FS / 2:
            above = psd[freqs > FS / 2 * 1.02]
            assert float(np.max(above)) < 1e-6 * float(np.max(psd))
        assert np.all(np.isfinite(x))


def test_level_matches_the_profile(known_capture, known):
    gen = ProfileNoise(known_capture.profile)
    n = known.samples.size
    x = gen.render(
        gen.draw(np.random.default_rng(6), n_samples=n, sample_rate=FS), n_samples=n, sample_rate=FS
    )
    level = float(db(np.mean(x.astype(np.float64) ** 2)))
    assert abs(level - known_capture.profile.stats.level_dbfs) <= 0.5


def test_profile_loader_serves_the_pack_factory(known_capture, tmp_path: Path):
    save_noise_profile(
        known_capture.profile.model_copy(update={"name": "ward-3"}), tmp_path / "ward-3.yaml"
    )
    loader = profile_loader([tmp_path])
    gen = make_noise_generator(
        ProfileNoiseSpec(profile="ward-3"), base_dir=tmp_path, sample_rate=FS, profile_loader=loader
    )
    assert isinstance(gen, NoiseGenerator) and isinstance(gen, ProfileNoise)
    assert gen.name == "ward-3"
    assert loader("ward-3") is gen  # each profile is read once
    with pytest.raises(ConfigError, match="not found"):
        loader("ward-4")
