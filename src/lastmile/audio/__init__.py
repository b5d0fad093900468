"""Audio in and out, levels and mixing."""

from lastmile.audio.io import (
    LoadedAudio,
    audio_sha256,
    read_audio,
    resample,
    validate_audio,
    write_audio,
)

__all__ = [
    "LoadedAudio",
    "audio_sha256",
    "read_audio",
    "resample",
    "validate_audio",
    "write_audio",
]
