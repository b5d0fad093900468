"""ITU-T G.711 companding (μ-law and A-law), vectorized with numpy.

Samples are taken as 16-bit linear PCM (``round(x · 32768)``, saturated), encoded to 8-bit
G.711 codes with the standard's segment tables, and decoded back to the linear value at the
centre of each quantization interval. The arithmetic follows the classic reference
implementation (Sun Microsystems ``g711.c``, as in the ITU-T G.191 STL), so codes are
bit-exact with it. G.711 itself is defined at 8 kHz; these functions code samples at any
rate, and :func:`lastmile.channel.apply_channel` resamples to 8 kHz first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from lastmile.errors import ConfigError

__all__ = [
    "G711_SAMPLE_RATE",
    "alaw_decode",
    "alaw_encode",
    "g711_roundtrip",
    "ulaw_decode",
    "ulaw_encode",
]

G711_SAMPLE_RATE = 8000

_ULAW_BIAS = 0x84  # 33 in the 14-bit domain, times 4
_ULAW_CLIP = 32635  # 8159 in the 14-bit domain, times 4, minus the bias
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _to_pcm16(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int32)


def _from_pcm16(pcm: np.ndarray) -> np.ndarray:
    return (pcm.astype(np.float64) / 32768.0).astype(np.float32)


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """μ-law codes (uint8, transmitted form: bits inverted) for float samples in [-1, 1]."""
    pcm = _to_pcm16(samples)
    negative = pcm < 0
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + _ULAW_BIAS  # 132 .. 32767
    # segment = position of the leading one above bit 7: [128·2^s, 256·2^s) → s
    segment = np.clip(np.frexp(magnitude.astype(np.float64))[1] - 8, 0, 7).astype(np.int32)
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    code = (segment << 4) | mantissa
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """Float samples (float32) for μ-law codes (uint8)."""
    u = (~np.asarray(codes, dtype=np.uint8)).astype(np.int32)
    t = ((u & 0x0F) << 3) + _ULAW_BIAS
    t = t << ((u & 0x70) >> 4)
    pcm = np.where((u & 0x80) != 0, _ULAW_BIAS - t, t - _ULAW_BIAS)
    return _from_pcm16(pcm)


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    """A-law codes (uint8, transmitted form: even bits inverted) for float samples in [-1, 1]."""
    pcm = _to_pcm16(samples) >> 3  # 13-bit
    negative = pcm < 0
    magnitude = np.where(negative, -pcm - 1, pcm)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left").astype(np.int32)
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    mask = np.where(negative, 0x55, 0xD5)
    return (code ^ mask).astype(np.uint8)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """Float samples (float32) for A-law codes (uint8)."""
    a = np.asarray(codes, dtype=np.uint8).astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    t = np.where(segment == 0, t + 8, (t + 0x108) << np.maximum(segment - 1, 0))
    pcm = np.where((a & 0x80) != 0, t, -t)
    return _from_pcm16(pcm)


def g711_roundtrip(samples: np.ndarray, *, law: Literal["ulaw", "alaw"]) -> np.ndarray:
    """Encode then decode ``samples`` (shape ``(n,)``) with G.711 ``law``; float32 out."""
    if law == "ulaw":
        return ulaw_decode(ulaw_encode(samples))
    if law == "alaw":
        return alaw_decode(alaw_encode(samples))
    raise ConfigError(f"G.711: law must be 'ulaw' or 'alaw', got {law!r}")
