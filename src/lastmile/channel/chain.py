"""The transmission channel: band limit, then codec, then clipping."""

from __future__ import annotations

from typing import Any

import numpy as np

from lastmile.audio.io import resample, validate_audio
from lastmile.channel.band import band_limit
from lastmile.channel.clipping import clip_at
from lastmile.channel.ffmpeg import FFMPEG_CODECS, ffmpeg_roundtrip
from lastmile.channel.g711 import G711_SAMPLE_RATE, g711_roundtrip
from lastmile.errors import ConfigError
from lastmile.scenario.specs import ChannelSpec

__all__ = ["apply_channel"]


def apply_channel(
    samples: np.ndarray, spec: ChannelSpec, *, sample_rate: int
) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Pass ``samples`` (float32, shape ``(n,)``) through the channel ``spec``.

    1. Band limit to ``spec.band_hz`` (zero-phase Butterworth, -3 dB at the edges), at the
       input rate.
    2. Codec: ``g711-ulaw`` / ``g711-alaw`` resample to 8 kHz (soxr) and compand with G.711;
       ``gsm``, ``amr-nb``, ``opus``, ``mp3`` run through ffmpeg (see
       :func:`lastmile.channel.ffmpeg.ffmpeg_roundtrip`); ``none`` leaves the audio alone.
    3. Clip at ``spec.clip_dbfs``.

    Returns the audio, its sample rate (8000 after G.711, GSM and AMR-NB) and a JSON-able
    record: ``codec``, ``band_hz``, ``input_sample_rate``, ``output_sample_rate``,
    ``bitrate_kbps``, ``codec_delay_samples``, ``clip_dbfs``, ``clipped_fraction``.
    """
    x = validate_audio(samples, source="channel")
    record: dict[str, Any] = {
        "codec": spec.codec,
        "band_hz": list(spec.band_hz) if spec.band_hz is not None else None,
        "input_sample_rate": sample_rate,
        "output_sample_rate": sample_rate,
        "bitrate_kbps": None,
        "codec_delay_samples": 0,
        "clip_dbfs": spec.clip_dbfs,
        "clipped_fraction": 0.0,
    }
    if spec.band_hz is not None:
        low_hz, high_hz = spec.band_hz
        x = band_limit(x, low_hz=low_hz, high_hz=high_hz, sample_rate=sample_rate)

    rate = sample_rate
    if spec.codec in ("g711-ulaw", "g711-alaw"):
        if spec.bitrate_kbps is not None:
            raise ConfigError(
                f"channel codec {spec.codec}: G.711 runs at a fixed 64 kbps; remove bitrate_kbps"
            )
        x = resample(x, orig_sample_rate=sample_rate, sample_rate=G711_SAMPLE_RATE)
        x = g711_roundtrip(x, law="ulaw" if spec.codec == "g711-ulaw" else "alaw")
        rate = G711_SAMPLE_RATE
        record["bitrate_kbps"] = 64.0
    elif spec.codec in FFMPEG_CODECS:
        x, rate, codec_record = ffmpeg_roundtrip(
            x, codec=spec.codec, sample_rate=sample_rate, bitrate_kbps=spec.bitrate_kbps
        )
        record["bitrate_kbps"] = codec_record["bitrate_kbps"]
        record["codec_delay_samples"] = codec_record["codec_delay_samples"]
    elif spec.codec == "none":
        if spec.bitrate_kbps is not None:
            raise ConfigError("channel: bitrate_kbps is set but codec is 'none'; remove one")
    else:  # pragma: no cover - the spec's Literal forbids it
        raise ConfigError(f"channel: unknown codec {spec.codec!r}")
    record["output_sample_rate"] = rate

    if spec.clip_dbfs is not None:
        x, fraction = clip_at(x, clip_dbfs=spec.clip_dbfs)
        record["clipped_fraction"] = fraction
    return x.astype(np.float32, copy=False), rate, record
