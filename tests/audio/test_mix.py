"""mix_at_snr: the SNR definition, exactly what was added, and the clip gain."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.audio import MixResult, active_speech_level, mix_at_snr, rms_dbfs, write_audio
from lastmile.errors import AudioError, ConfigError
from lastmile.profiles.generators import NoiseGenerator, make_noise_generator
from lastmile.scenario.specs import (
    BrownNoiseSpec,
    FileNoiseSpec,
    HumNoiseSpec,
    NoiseSpec,
    PinkNoiseSpec,
    ToneNoiseSpec,
    WhiteNoiseSpec,
)
from lastmile.testing import speech_like

SAMPLE_RATE = 16000
KINDS = ["white", "pink", "brown", "hum", "tone", "file"]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like(
        np.random.default_rng(3), duration_s=3.0, sample_rate=SAMPLE_RATE, level_dbfs=-26.0
    )


@pytest.fixture(scope="module")
def generators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NoiseGenerator]:
    folder = tmp_path_factory.mktemp("noise")
    recording = np.random.default_rng(5).standard_normal(2 * SAMPLE_RATE) * 0.05
    write_audio(folder / "fan.wav", recording.astype(np.float32), sample_rate=SAMPLE_RATE)
    specs: dict[str, NoiseSpec] = {
        "white": WhiteNoiseSpec(type="white"),
        "pink": PinkNoiseSpec(type="pink"),
        "brown": BrownNoiseSpec(type="brown"),
        "hum": HumNoiseSpec(type="hum", fundamental_hz=50.0),
        "tone": ToneNoiseSpec(type="tone", freq_hz=1000.0),
        "file": FileNoiseSpec(file="fan.wav"),
    }
    return {
        kind: make_noise_generator(spec, base_dir=folder, sample_rate=SAMPLE_RATE)
        for kind, spec in specs.items()
    }


def _noise(generator: NoiseGenerator, n_samples: int, seed: int) -> np.ndarray:
    params = generator.draw(
        np.random.default_rng(seed), n_samples=n_samples, sample_rate=SAMPLE_RATE
    )
    return generator.render(params, n_samples=n_samples, sample_rate=SAMPLE_RATE)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("snr_db", [30.0, 10.0, 0.0, -5.0])
def test_achieved_snr_matches_target(
    kind: str, snr_db: float, speech: np.ndarray, generators: dict[str, NoiseGenerator]
) -> None:
    noise = _noise(generators[kind], speech.size, seed=int(snr_db) + 100)
    result = mix_at_snr(speech, noise, snr_db=snr_db, sample_rate=SAMPLE_RATE)
    assert isinstance(result, MixResult)
    assert result.achieved_snr_db == pytest.approx(snr_db, abs=0.05)
    assert result.target_snr_db == snr_db
    # the record is what was added
    np.testing.assert_array_equal(result.mix, result.speech + result.noise)
    assert result.noise_level_dbfs == pytest.approx(rms_dbfs(result.noise), abs=1e-9)
    assert (
        result.speech_level_dbfs == active_speech_level(speech, sample_rate=SAMPLE_RATE).level_dbfs
    )
    assert result.mix.dtype == np.float32
    assert result.mix.shape == speech.shape
    if result.clip_gain_db == 0.0:
        # independently: the P.56 level of the speech added minus the noise's RMS level
        measured = active_speech_level(
            result.speech, sample_rate=SAMPLE_RATE
        ).level_dbfs - rms_dbfs(result.noise)
        assert measured == pytest.approx(snr_db, abs=0.05)
        np.testing.assert_array_equal(result.speech, speech)
    assert np.max(np.abs(result.mix)) <= 0.99 + 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_clip_gain_keeps_the_snr(
    kind: str, speech: np.ndarray, generators: dict[str, NoiseGenerator]
) -> None:
    loud = (speech / np.max(np.abs(speech)) * 0.95).astype(np.float32)
    noise = _noise(generators[kind], loud.size, seed=9)
    result = mix_at_snr(loud, noise, snr_db=-3.0, sample_rate=SAMPLE_RATE, peak_limit=0.9)
    assert result.clip_gain_db < -1.0
    assert np.max(np.abs(result.mix)) == pytest.approx(0.9, abs=1e-6)
    assert result.achieved_snr_db == pytest.approx(-3.0, abs=0.05)
    # speech and noise were scaled alike, by the recorded clip gain
    gain = 10 ** (result.clip_gain_db / 20)
    np.testing.assert_allclose(result.speech, loud * gain, rtol=1e-6, atol=1e-9)
    scaled_noise_level = rms_dbfs(noise) + result.noise_gain_db + result.clip_gain_db
    assert rms_dbfs(result.noise) == pytest.approx(scaled_noise_level, abs=1e-4)


def test_noise_length_must_match(speech: np.ndarray) -> None:
    noise = np.ones(speech.size - 1, dtype=np.float32)
    with pytest.raises(AudioError, match="samples but speech has"):
        mix_at_snr(speech, noise, snr_db=10.0, sample_rate=SAMPLE_RATE)


def test_silent_speech_and_zero_noise_raise(speech: np.ndarray) -> None:
    noise = np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    with pytest.raises(AudioError, match="no active speech"):
        mix_at_snr(np.zeros_like(speech), noise, snr_db=10.0, sample_rate=SAMPLE_RATE)
    with pytest.raises(AudioError, match="all zero"):
        mix_at_snr(speech, np.zeros_like(speech), snr_db=10.0, sample_rate=SAMPLE_RATE)


def test_bad_arguments_raise(speech: np.ndarray) -> None:
    noise = np.ones_like(speech)
    with pytest.raises(ConfigError, match="peak_limit"):
        mix_at_snr(speech, noise, snr_db=10.0, sample_rate=SAMPLE_RATE, peak_limit=1.5)
    with pytest.raises(ConfigError, match="snr_db"):
        mix_at_snr(speech, noise, snr_db=float("nan"), sample_rate=SAMPLE_RATE)
