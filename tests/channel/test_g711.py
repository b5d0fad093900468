"""G.711 μ-law and A-law: bit-exact codes and the quantization SNR of the standard."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from lastmile.channel import (
    alaw_decode,
    alaw_encode,
    apply_channel,
    g711_roundtrip,
    ulaw_decode,
    ulaw_encode,
)
from lastmile.errors import ConfigError
from lastmile.scenario.specs import ChannelSpec
from lastmile.testing import tone

Law = Literal["ulaw", "alaw"]
Codec = Literal["g711-ulaw", "g711-alaw"]


def _ulaw_reference(pcm: int) -> int:
    """Scalar transcription of the classic linear2ulaw (16-bit in, 8-bit code out)."""
    if pcm < 0:
        pcm, mask = 0x84 - pcm, 0x7F
    else:
        pcm, mask = pcm + 0x84, 0xFF
    for seg, end in enumerate((0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF)):
        if pcm <= end:
            return ((seg << 4) | ((pcm >> (seg + 3)) & 0xF)) ^ mask
    return 0x7F ^ mask


def _alaw_reference(pcm: int) -> int:
    """Scalar transcription of the classic linear2alaw (16-bit in, 8-bit code out)."""
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    for seg, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)):
        if pcm <= end:
            low = (pcm >> 1) & 0xF if seg < 2 else (pcm >> seg) & 0xF
            return ((seg << 4) | low) ^ mask
    return 0x7F ^ mask


def _snr_db(clean: np.ndarray, coded: np.ndarray) -> float:
    clean64 = clean.astype(np.float64)
    error = coded.astype(np.float64) - clean64
    return float(10 * np.log10(np.sum(clean64**2) / np.sum(error**2)))


def test_codes_are_bit_exact_for_every_16_bit_value() -> None:
    pcm = np.arange(-32768, 32768)
    x = pcm / 32768.0
    expected_u = np.array([_ulaw_reference(int(p)) for p in pcm])
    expected_a = np.array([_alaw_reference(int(p)) for p in pcm])
    np.testing.assert_array_equal(ulaw_encode(x), expected_u)
    np.testing.assert_array_equal(alaw_encode(x), expected_a)


def test_known_code_values() -> None:
    x = np.array([0.0, 32767 / 32768, -1.0])
    assert ulaw_encode(x).tolist() == [0xFF, 0x80, 0x00]
    assert alaw_encode(x).tolist() == [0xD5, 0xAA, 0x2A]
    # the largest decoded magnitudes: 8031·4 (μ-law) and 4032·8 (A-law)
    codes = np.arange(256, dtype=np.uint8)
    assert np.max(ulaw_decode(codes)) * 32768 == 32124
    assert np.max(alaw_decode(codes)) * 32768 == 32256
    # decoding then encoding again gives the same codes (the decoded values are on the grid)
    # (μ-law's negative zero, 0x7F, decodes to 0 and comes back as positive zero, 0xFF)
    expected_u = np.where(codes == 0x7F, 0xFF, codes)
    np.testing.assert_array_equal(ulaw_encode(ulaw_decode(codes)), expected_u)
    np.testing.assert_array_equal(alaw_encode(alaw_decode(codes)), codes)


# 1020 Hz, not 1000 Hz: at 8 kHz a 1000 Hz sine hits only 8 sample values and its "SNR"
# depends on where those fall; 1020 Hz (ITU-T O.132's test tone) sweeps the quantizer.
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_full_scale_sine_snr_is_about_38_db(law: Law) -> None:
    x = tone(freq_hz=1020.0, duration_s=1.0, sample_rate=8000, level_dbfs=-3.0103)
    assert _snr_db(x, g711_roundtrip(x, law=law)) == pytest.approx(38.0, abs=2.0)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_quiet_sine_survives(law: Law) -> None:
    x = tone(freq_hz=1020.0, duration_s=1.0, sample_rate=8000, level_dbfs=-33.0103)  # -30 dBFS peak
    assert _snr_db(x, g711_roundtrip(x, law=law)) > 30.0


def test_companding_beats_8_bit_linear_on_quiet_signals() -> None:
    x = tone(freq_hz=1020.0, duration_s=1.0, sample_rate=8000, level_dbfs=-40.0)
    linear_8_bit = np.round(x * 128) / 128
    assert _snr_db(x, g711_roundtrip(x, law="ulaw")) > _snr_db(x, linear_8_bit) + 20


@pytest.mark.parametrize(("codec", "law"), [("g711-ulaw", "ulaw"), ("g711-alaw", "alaw")])
def test_channel_resamples_to_8_khz(codec: Codec, law: Law) -> None:
    x = tone(freq_hz=1020.0, duration_s=1.0, sample_rate=16000, level_dbfs=-20.0)
    y, rate, record = apply_channel(x, ChannelSpec(codec=codec), sample_rate=16000)
    assert rate == 8000 and y.shape == (8000,) and y.dtype == np.float32
    assert record["output_sample_rate"] == 8000 and record["bitrate_kbps"] == 64.0
    at_8k = tone(freq_hz=1020.0, duration_s=1.0, sample_rate=8000, level_dbfs=-20.0)
    np.testing.assert_array_equal(
        apply_channel(at_8k, ChannelSpec(codec=codec), sample_rate=8000)[0],
        g711_roundtrip(at_8k, law=law),
    )
    assert _snr_db(at_8k[100:-100], y[100:-100]) > 30.0


def test_g711_refuses_a_bitrate() -> None:
    x = tone(freq_hz=1020.0, duration_s=0.1, sample_rate=8000)
    with pytest.raises(ConfigError, match="64 kbps"):
        apply_channel(x, ChannelSpec(codec="g711-ulaw", bitrate_kbps=32), sample_rate=8000)
