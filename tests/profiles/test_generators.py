"""Noise generators: spectra, hum harmonics and drift, seamless file loops, decide-then-do."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt, welch

from lastmile.audio import write_audio
from lastmile.errors import ConfigError
from lastmile.profiles.generators import (
    ColouredNoise,
    FileNoise,
    HumNoise,
    NoiseGenerator,
    make_noise_generator,
)
from lastmile.scenario.specs import (
    BrownNoiseSpec,
    FileNoiseSpec,
    HumNoiseSpec,
    NoiseSpec,
    PinkNoiseSpec,
    ProfileNoiseSpec,
    ToneNoiseSpec,
    WhiteNoiseSpec,
)

SAMPLE_RATE = 16000


def _render(generator: NoiseGenerator, seed: int, n_samples: int) -> np.ndarray:
    params = generator.draw(
        np.random.default_rng(seed), n_samples=n_samples, sample_rate=SAMPLE_RATE
    )
    return generator.render(params, n_samples=n_samples, sample_rate=SAMPLE_RATE)


def _write_recording(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    return write_audio(path, samples.astype(np.float32), sample_rate=sample_rate)


def _smooth_recording(duration_s: float, seed: int) -> np.ndarray:
    """Low-passed noise on a ramp: its two ends differ a lot, so a plain loop has a seam."""
    n = round(duration_s * SAMPLE_RATE)
    noise = np.random.default_rng(seed).standard_normal(n + 2000)
    noise = sosfiltfilt(butter(4, 800, fs=SAMPLE_RATE, output="sos"), noise)[1000:-1000]
    noise *= 0.1 / np.std(noise)
    return noise + np.linspace(-0.4, 0.4, n)


@pytest.fixture()
def all_generators(tmp_path: Path) -> dict[str, NoiseGenerator]:
    _write_recording(tmp_path / "room.wav", _smooth_recording(1.5, seed=1))
    specs: dict[str, NoiseSpec] = {
        "white": WhiteNoiseSpec(type="white"),
        "pink": PinkNoiseSpec(type="pink"),
        "brown": BrownNoiseSpec(type="brown"),
        "hum": HumNoiseSpec(type="hum"),
        "tone": ToneNoiseSpec(type="tone", freq_hz=440.0),
        "file": FileNoiseSpec(file="room.wav"),
    }
    return {
        kind: make_noise_generator(spec, base_dir=tmp_path, sample_rate=SAMPLE_RATE)
        for kind, spec in specs.items()
    }


@pytest.mark.parametrize(
    ("spec", "slope_db_per_octave"),
    [
        (WhiteNoiseSpec(type="white"), 0.0),
        (PinkNoiseSpec(type="pink"), -3.01),
        (BrownNoiseSpec(type="brown"), -6.02),
    ],
)
def test_coloured_noise_slope(spec: NoiseSpec, slope_db_per_octave: float) -> None:
    generator = make_noise_generator(spec, base_dir=Path("."), sample_rate=SAMPLE_RATE)
    x = _render(generator, seed=4, n_samples=8 * SAMPLE_RATE)
    freqs, psd = welch(x, fs=SAMPLE_RATE, nperseg=4096)
    band = (freqs >= 100) & (freqs <= 6000)
    slope = np.polyfit(np.log2(freqs[band]), 10 * np.log10(psd[band]), 1)[0]
    assert slope == pytest.approx(slope_db_per_octave, abs=0.3)
    # octave by octave, too (not only on average)
    for low_hz in (125, 250, 500, 1000, 2000):
        lo = psd[(freqs >= low_hz) & (freqs < 2 * low_hz)].mean()
        hi = psd[(freqs >= 2 * low_hz) & (freqs < 4 * low_hz)].mean()
        assert 10 * np.log10(hi / lo) == pytest.approx(slope_db_per_octave, abs=1.0)


def test_hum_harmonic_levels() -> None:
    levels_db = [0.0, -6.0, -10.0, -14.0, -20.0]
    hum = HumNoise(
        fundamental_hz=100.0, harmonics_db=tuple(levels_db), drift_hz=0.5, drift_period_s=4.0
    )
    x = _render(hum, seed=2, n_samples=8 * SAMPLE_RATE)
    freqs, psd = welch(x, fs=SAMPLE_RATE, nperseg=SAMPLE_RATE)  # 1 Hz bins
    power = []
    for k in range(1, len(levels_db) + 1):
        around = np.abs(freqs - k * 100.0) <= 8.0  # the drift moves harmonic k by ±k·0.5 Hz
        power.append(psd[around].sum())
    relative_db = 10 * np.log10(np.array(power) / power[0])
    np.testing.assert_allclose(relative_db, levels_db, atol=1.0)
    # nothing between the harmonics
    between = np.abs(freqs - 150.0) <= 5.0
    assert 10 * np.log10(psd[between].sum() / power[0]) < -60


def test_hum_drift_is_visible_and_phase_continuous() -> None:
    hum = HumNoise(fundamental_hz=100.0, harmonics_db=(0.0,), drift_hz=3.0, drift_period_s=2.0)
    n = 4 * SAMPLE_RATE
    x = hum.render(
        {"harmonic_phases_rad": [0.3], "drift_phase_rad": 0.0},
        n_samples=n,
        sample_rate=SAMPLE_RATE,
    )
    phase = np.unwrap(np.angle(hilbert(x.astype(np.float64))))
    inst_hz = np.diff(phase) * SAMPLE_RATE / (2 * np.pi)
    t_s = (np.arange(n - 1) + 0.5) / SAMPLE_RATE
    expected_hz = 100.0 + 3.0 * np.sin(2 * np.pi * t_s / 2.0)
    middle = slice(SAMPLE_RATE // 4, n - SAMPLE_RATE // 4)  # away from Hilbert edge effects
    np.testing.assert_allclose(inst_hz[middle], expected_hz[middle], atol=0.1)
    assert inst_hz[middle].max() - inst_hz[middle].min() == pytest.approx(6.0, abs=0.2)
    # phase-continuous: no sample-to-sample step beyond a 103 Hz sine's largest one
    amplitude = np.max(np.abs(x))
    assert np.max(np.abs(np.diff(x))) <= amplitude * 2 * np.pi * 103.0 / SAMPLE_RATE * 1.01


def test_tone_frequency_and_phase_draw() -> None:
    generator = make_noise_generator(
        ToneNoiseSpec(type="tone", freq_hz=1234.0), base_dir=Path("."), sample_rate=SAMPLE_RATE
    )
    x = _render(generator, seed=1, n_samples=SAMPLE_RATE)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.argmax(spectrum) == 1234  # 1 Hz bins over 1 s


def test_file_loop_has_no_seam(tmp_path: Path) -> None:
    recording = _smooth_recording(1.5, seed=3)
    path = _write_recording(tmp_path / "ward.wav", recording)
    normal_step = np.max(np.abs(np.diff(recording)))

    looped = FileNoise.from_file(path, sample_rate=SAMPLE_RATE, crossfade_s=0.25)
    period = looped.loop.size
    assert period == recording.size - round(0.25 * SAMPLE_RATE)
    x = looped.render(
        {"start_offset_samples": period - 100}, n_samples=3 * period, sample_rate=SAMPLE_RATE
    )
    assert np.max(np.abs(np.diff(x))) <= 1.05 * normal_step

    # the test recording really would click without the crossfade
    plain = FileNoise.from_file(path, sample_rate=SAMPLE_RATE, crossfade_s=0.0)
    y = plain.render(
        {"start_offset_samples": 0}, n_samples=2 * plain.loop.size, sample_rate=SAMPLE_RATE
    )
    assert np.max(np.abs(np.diff(y))) > 5 * normal_step


def test_file_offset_comes_from_the_generator(all_generators: dict[str, NoiseGenerator]) -> None:
    file_noise = all_generators["file"]
    offsets = {
        file_noise.draw(np.random.default_rng(seed), n_samples=1000, sample_rate=SAMPLE_RATE)[
            "start_offset_samples"
        ]
        for seed in (1, 2, 3)
    }
    assert len(offsets) == 3


def test_short_file_is_refused_naming_it(tmp_path: Path) -> None:
    _write_recording(tmp_path / "blip.wav", _smooth_recording(0.5, seed=0))
    with pytest.raises(ConfigError, match=r"blip\.wav.*at least 1 s"):
        make_noise_generator(
            FileNoiseSpec(file="blip.wav"), base_dir=tmp_path, sample_rate=SAMPLE_RATE
        )


def test_missing_file_and_long_crossfade_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothere.wav"):
        make_noise_generator(
            FileNoiseSpec(file="nothere.wav"), base_dir=tmp_path, sample_rate=SAMPLE_RATE
        )
    _write_recording(tmp_path / "short.wav", _smooth_recording(1.2, seed=0))
    with pytest.raises(ConfigError, match="crossfade"):
        make_noise_generator(
            FileNoiseSpec(file="short.wav", crossfade_s=0.7),
            base_dir=tmp_path,
            sample_rate=SAMPLE_RATE,
        )


def test_file_at_another_rate_is_resampled_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_recording(tmp_path / "fan8k.wav", _smooth_recording(1.5, seed=2)[::2], 8000)
    with caplog.at_level(logging.WARNING):
        generator = make_noise_generator(
            FileNoiseSpec(file="fan8k.wav"), base_dir=tmp_path, sample_rate=SAMPLE_RATE
        )
    assert isinstance(generator, FileNoise)
    assert any("resampled 8000 Hz to 16000 Hz" in note for note in generator.notes)
    assert "resampled" in caplog.text
    with pytest.raises(ConfigError, match="loaded at 16000 Hz"):
        generator.draw(np.random.default_rng(0), n_samples=100, sample_rate=8000)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum", "tone", "file"])
def test_decide_then_do(kind: str, all_generators: dict[str, NoiseGenerator]) -> None:
    generator = all_generators[kind]
    n = SAMPLE_RATE // 2
    params = generator.draw(np.random.default_rng(42), n_samples=n, sample_rate=SAMPLE_RATE)
    again = generator.draw(np.random.default_rng(42), n_samples=n, sample_rate=SAMPLE_RATE)
    other = generator.draw(np.random.default_rng(43), n_samples=n, sample_rate=SAMPLE_RATE)
    assert params == again
    assert params != other
    # the record is plain JSON, and rendering reads only it: byte-identical every time
    replayed = json.loads(json.dumps(params))
    first = generator.render(params, n_samples=n, sample_rate=SAMPLE_RATE)
    second = generator.render(replayed, n_samples=n, sample_rate=SAMPLE_RATE)
    assert first.tobytes() == second.tobytes()
    assert first.dtype == np.float32 and first.shape == (n,)
    assert np.any(first != 0)
    different = generator.render(other, n_samples=n, sample_rate=SAMPLE_RATE)
    assert different.tobytes() != first.tobytes()


def test_render_refuses_a_foreign_record(all_generators: dict[str, NoiseGenerator]) -> None:
    with pytest.raises(ConfigError, match="noise_seed"):
        all_generators["pink"].render({"phase_rad": 0.0}, n_samples=10, sample_rate=SAMPLE_RATE)


def test_frequencies_above_nyquist_are_refused() -> None:
    with pytest.raises(ConfigError, match="Nyquist"):
        make_noise_generator(
            ToneNoiseSpec(type="tone", freq_hz=9000.0), base_dir=Path("."), sample_rate=SAMPLE_RATE
        )
    with pytest.raises(ConfigError, match="Nyquist"):
        make_noise_generator(
            HumNoiseSpec(type="hum", fundamental_hz=1500.0), base_dir=Path("."), sample_rate=2000
        )


def test_hum_leaves_out_harmonics_above_nyquist() -> None:
    hum = HumNoise(fundamental_hz=1000.0, harmonics_db=(0.0, 0.0, 0.0, 0.0, 0.0))
    assert hum.audible_harmonics(sample_rate=8000) == 3
    params = hum.draw(np.random.default_rng(0), n_samples=8000, sample_rate=8000)
    x = hum.render(params, n_samples=8000, sample_rate=8000)
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    peaks = sorted(np.argsort(spectrum)[-3:].tolist())
    assert peaks == [1000, 2000, 3000]


def test_profile_specs_are_delegated() -> None:
    spec = ProfileNoiseSpec(profile="hospital-imaging-suite")
    with pytest.raises(ConfigError, match="profiles are unavailable"):
        make_noise_generator(spec, base_dir=Path("."), sample_rate=SAMPLE_RATE)
    asked: list[str] = []
    made = ColouredNoise(name="from-profile", exponent=1.0)

    def loader(name: str) -> NoiseGenerator:
        asked.append(name)
        return made

    got = make_noise_generator(
        spec, base_dir=Path("."), sample_rate=SAMPLE_RATE, profile_loader=loader
    )
    assert got is made
    assert asked == ["hospital-imaging-suite"]
