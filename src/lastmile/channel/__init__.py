"""The transmission channel after the device: band limits, G.711 and ffmpeg codecs, clipping."""

from lastmile.channel.band import band_limit
from lastmile.channel.chain import apply_channel
from lastmile.channel.clipping import clip_at
from lastmile.channel.ffmpeg import FFMPEG_CODECS, ffmpeg_roundtrip
from lastmile.channel.g711 import (
    G711_SAMPLE_RATE,
    alaw_decode,
    alaw_encode,
    g711_roundtrip,
    ulaw_decode,
    ulaw_encode,
)

__all__ = [
    "FFMPEG_CODECS",
    "G711_SAMPLE_RATE",
    "alaw_decode",
    "alaw_encode",
    "apply_channel",
    "band_limit",
    "clip_at",
    "ffmpeg_roundtrip",
    "g711_roundtrip",
    "ulaw_decode",
    "ulaw_encode",
]
