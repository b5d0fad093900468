"""Lossy codecs through the ``ffmpeg`` executable: GSM, AMR-NB, Opus, MP3.

Audio goes to ffmpeg and back through pipes (raw float32), encode and decode as two
processes, no files written. Codec delay (e.g. MP3 encoder delay, which a piped MP3 cannot
signal) is found by cross-correlation with the encoder's input and removed, and the result is
cut or zero-padded to the input's duration, so speech stays aligned.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from lastmile.audio.io import resample
from lastmile.errors import AudioError, ConfigError

__all__ = ["FFMPEG_CODECS", "FfmpegCodec", "ffmpeg_roundtrip"]

_MAX_DELAY_S = 0.25
_TIMEOUT_S = 120


@dataclass(frozen=True)
class FfmpegCodec:
    """How one codec is run: encoder, container, rates and bitrates it accepts."""

    name: str
    encoder: str
    container: str
    sample_rates: tuple[int, ...]
    default_bitrate_kbps: float | None
    bitrates_kbps: tuple[float, ...] | None = None  # None: any in (min, max)
    min_bitrate_kbps: float = 0.0
    max_bitrate_kbps: float = 0.0
    build_hint: str = ""


FFMPEG_CODECS: dict[str, FfmpegCodec] = {
    "gsm": FfmpegCodec(
        name="gsm",
        encoder="libgsm",
        container="gsm",
        sample_rates=(8000,),
        default_bitrate_kbps=None,
        build_hint="an ffmpeg built with --enable-libgsm (Debian/Ubuntu: apt-get install ffmpeg)",
    ),
    "amr-nb": FfmpegCodec(
        name="amr-nb",
        encoder="libopencore_amrnb",
        container="amr",
        sample_rates=(8000,),
        default_bitrate_kbps=12.2,
        bitrates_kbps=(4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2),
        build_hint=(
            "an ffmpeg built with --enable-libopencore-amrnb (e.g. conda install -c conda-forge "
            "ffmpeg, or a static build from johnvansickle.com/ffmpeg)"
        ),
    ),
    "opus": FfmpegCodec(
        name="opus",
        encoder="libopus",
        container="ogg",
        sample_rates=(8000, 12000, 16000, 24000, 48000),
        default_bitrate_kbps=24.0,
        min_bitrate_kbps=6.0,
        max_bitrate_kbps=510.0,
        build_hint="an ffmpeg built with --enable-libopus (Debian/Ubuntu: apt-get install ffmpeg)",
    ),
    "mp3": FfmpegCodec(
        name="mp3",
        encoder="libmp3lame",
        container="mp3",
        sample_rates=(8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
        default_bitrate_kbps=32.0,
        min_bitrate_kbps=8.0,
        max_bitrate_kbps=320.0,
        build_hint=(
            "an ffmpeg built with --enable-libmp3lame (Debian/Ubuntu: apt-get install ffmpeg)"
        ),
    ),
}


def _ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise ConfigError(
            "channel codec: the ffmpeg executable was not found on PATH; install ffmpeg "
            "(Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; conda: "
            "conda install -c conda-forge ffmpeg) or use codec g711-ulaw / g711-alaw"
        )
    return path


@functools.lru_cache(maxsize=8)
def _encoders(ffmpeg: str) -> frozenset[str]:
    result = subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    names = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] == "A":
            names.add(parts[1])
    return frozenset(names)


def _run(cmd: list[str], data: bytes, *, what: str) -> bytes:
    try:
        result = subprocess.run(
            cmd, input=data, capture_output=True, timeout=_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"channel codec: ffmpeg timed out while {what}") from exc
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip()[-600:]
        raise AudioError(
            f"channel codec: ffmpeg failed while {what} (exit {result.returncode}): {tail}"
        )
    return result.stdout


def _choose_bitrate(codec: FfmpegCodec, bitrate_kbps: float | None) -> float | None:
    if bitrate_kbps is None:
        return codec.default_bitrate_kbps
    if codec.default_bitrate_kbps is None:
        raise ConfigError(f"channel codec {codec.name}: has a fixed bitrate; remove bitrate_kbps")
    if codec.bitrates_kbps is not None:
        if not any(math.isclose(bitrate_kbps, b) for b in codec.bitrates_kbps):
            allowed = ", ".join(f"{b:g}" for b in codec.bitrates_kbps)
            raise ConfigError(
                f"channel codec {codec.name}: bitrate_kbps must be one of {allowed}, "
                f"got {bitrate_kbps:g}"
            )
    elif not codec.min_bitrate_kbps <= bitrate_kbps <= codec.max_bitrate_kbps:
        raise ConfigError(
            f"channel codec {codec.name}: bitrate_kbps must be in "
            f"[{codec.min_bitrate_kbps:g}, {codec.max_bitrate_kbps:g}], got {bitrate_kbps:g}"
        )
    return bitrate_kbps


def _delay_samples(reference: np.ndarray, decoded: np.ndarray, *, max_lag: int) -> int:
    """The lag (0..max_lag) at which ``decoded`` best matches ``reference``."""
    n = reference.size + decoded.size
    n_fft = scipy.fft.next_fast_len(n, real=True)
    xcorr = scipy.fft.irfft(
        scipy.fft.rfft(decoded, n_fft) * np.conj(scipy.fft.rfft(reference, n_fft)), n_fft
    )
    lags = xcorr[: max_lag + 1]
    if not np.any(lags):
        return 0
    return int(np.argmax(lags))


def ffmpeg_roundtrip(
    samples: np.ndarray,
    *,
    codec: str,
    sample_rate: int,
    bitrate_kbps: float | None = None,
) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Encode and decode ``samples`` with ``codec`` (gsm, amr-nb, opus, mp3) through ffmpeg.

    The audio is first resampled (soxr) to the codec's rate when it does not support
    ``sample_rate`` (8 kHz for GSM and AMR-NB, 48 kHz for Opus and MP3). Returns the decoded
    audio (float32, aligned, same duration), its sample rate and a record (``codec_rate_hz``,
    ``bitrate_kbps``, ``codec_delay_samples``). Raises :class:`ConfigError` naming what to
    install when ffmpeg or the encoder is missing.
    """
    try:
        spec = FFMPEG_CODECS[codec]
    except KeyError:
        raise ConfigError(
            f"channel codec {codec!r}: not an ffmpeg codec; expected one of "
            f"{', '.join(FFMPEG_CODECS)}"
        ) from None
    bitrate = _choose_bitrate(spec, bitrate_kbps)
    ffmpeg = _ffmpeg_path()
    if spec.encoder not in _encoders(ffmpeg):
        raise ConfigError(
            f"channel codec {codec}: the ffmpeg at {ffmpeg} has no {spec.encoder} encoder; "
            f"install {spec.build_hint}"
        )
    codec_rate = sample_rate if sample_rate in spec.sample_rates else max(spec.sample_rates)
    x = resample(samples, orig_sample_rate=sample_rate, sample_rate=codec_rate)
    x = np.ascontiguousarray(x, dtype="<f4")

    encode = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    encode += ["-f", "f32le", "-ar", str(codec_rate), "-ac", "1", "-i", "pipe:0"]
    encode += ["-c:a", spec.encoder]
    if bitrate is not None:
        encode += ["-b:a", f"{bitrate * 1000:.0f}"]
    encode += ["-f", spec.container, "pipe:1"]
    coded = _run(encode, x.tobytes(), what=f"encoding {codec}")

    decode = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    decode += ["-f", spec.container, "-i", "pipe:0"]
    decode += ["-f", "f32le", "-ar", str(codec_rate), "-ac", "1", "pipe:1"]
    decoded = np.frombuffer(_run(decode, coded, what=f"decoding {codec}"), dtype="<f4")
    if decoded.size == 0:
        raise AudioError(f"channel codec {codec}: ffmpeg decoded no audio")

    delay = _delay_samples(
        x.astype(np.float64),
        decoded.astype(np.float64),
        max_lag=min(round(_MAX_DELAY_S * codec_rate), max(decoded.size - 1, 0)),
    )
    aligned = np.zeros(x.size, dtype=np.float32)
    tail = decoded[delay : delay + x.size]
    aligned[: tail.size] = tail
    record = {
        "codec_rate_hz": codec_rate,
        "bitrate_kbps": bitrate,
        "coded_bytes": len(coded),
        "codec_delay_samples": delay,
    }
    return aligned, codec_rate, record
