"""Lossy codecs through ffmpeg (skipped where this machine's ffmpeg lacks the encoder)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lastmile.audio import resample
from lastmile.channel import FFMPEG_CODECS, apply_channel
from lastmile.errors import ConfigError
from lastmile.scenario.specs import ChannelSpec
from lastmile.testing import speech_like

FFMPEG = shutil.which("ffmpeg")


@functools.cache
def _has_encoder(codec: str) -> bool:
    if FFMPEG is None:
        return False
    listing = subprocess.run(
        [FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False
    ).stdout
    return f" {FFMPEG_CODECS[codec].encoder} " in listing


def _speech(sample_rate: int) -> np.ndarray:
    return speech_like(
        np.random.default_rng(8), duration_s=1.5, sample_rate=sample_rate, level_dbfs=-20.0
    )


def _voiced(sample_rate: int) -> np.ndarray:
    """A vowel-like harmonic complex with gliding pitch and a syllable envelope: what speech
    codecs model, so the decoded waveform follows the input closely."""
    t_s = np.arange(round(1.5 * sample_rate)) / sample_rate
    pitch_hz = 120.0 + 10.0 * np.sin(2 * np.pi * 1.3 * t_s)
    phase = 2 * np.pi * np.cumsum(pitch_hz) / sample_rate
    harmonics = sum(0.7**k * np.sin(k * phase) for k in range(1, 20))
    envelope = np.sqrt(np.clip(np.sin(2 * np.pi * 3.0 * t_s), 0.0, None))
    return (0.1 * harmonics * envelope).astype(np.float32)


def _lagged_correlation(reference: np.ndarray, decoded: np.ndarray, lag: int) -> float:
    if lag >= 0:
        a, b = reference[: reference.size - lag], decoded[lag:]
    else:
        a, b = reference[-lag:], decoded[:lag]
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


@pytest.mark.parametrize(
    ("codec", "bitrate_kbps", "out_rate"),
    [("gsm", None, 8000), ("opus", 24.0, 16000), ("mp3", 32.0, 16000), ("amr-nb", 12.2, 8000)],
)
def test_codec_round_trip_is_aligned(codec: str, bitrate_kbps: float | None, out_rate: int) -> None:
    if not _has_encoder(codec):
        pytest.skip(f"this ffmpeg has no {FFMPEG_CODECS[codec].encoder}")
    x = _voiced(16000)
    spec = ChannelSpec(codec=codec, bitrate_kbps=bitrate_kbps)  # type: ignore[arg-type]
    y, rate, record = apply_channel(x, spec, sample_rate=16000)
    assert rate == out_rate and record["output_sample_rate"] == out_rate
    assert y.dtype == np.float32 and y.size == round(x.size * out_rate / 16000)
    reference = resample(x, orig_sample_rate=16000, sample_rate=out_rate)
    # aligned: the decoded waveform follows the input best at lag 0
    by_lag = {lag: _lagged_correlation(reference, y, lag) for lag in range(-20, 21)}
    assert max(by_lag, key=by_lag.__getitem__) == 0
    assert by_lag[0] > 0.9
    assert record["bitrate_kbps"] == bitrate_kbps
    if codec == "mp3":
        assert record["codec_delay_samples"] > 0  # LAME's delay cannot be signalled in a pipe


def test_missing_encoder_names_what_to_install() -> None:
    if FFMPEG is None or _has_encoder("amr-nb"):
        pytest.skip("needs an ffmpeg without libopencore_amrnb")
    with pytest.raises(ConfigError, match="libopencore_amrnb.*install"):
        apply_channel(_speech(8000), ChannelSpec(codec="amr-nb"), sample_rate=8000)


def test_missing_ffmpeg_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no ffmpeg to be found
    with pytest.raises(ConfigError, match="ffmpeg.*install"):
        apply_channel(_speech(8000), ChannelSpec(codec="gsm"), sample_rate=8000)


def test_bitrates_are_checked() -> None:
    x = _speech(8000)
    with pytest.raises(ConfigError, match="fixed bitrate"):
        apply_channel(x, ChannelSpec(codec="gsm", bitrate_kbps=13.0), sample_rate=8000)
    with pytest.raises(ConfigError, match="one of"):
        apply_channel(x, ChannelSpec(codec="amr-nb", bitrate_kbps=9.0), sample_rate=8000)
