"""Audio in and out, levels and mixing."""

from lastmile.audio.io import (
    LoadedAudio,
    audio_sha256,
    read_audio,
    resample,
    validate_audio,
    write_audio,
)
from lastmile.audio.levels import ActiveLevel, active_speech_level, rms_dbfs
from lastmile.audio.mix import MixResult, mix_at_snr

__all__ = [
    "ActiveLevel",
    "LoadedAudio",
    "MixResult",
    "active_speech_level",
    "audio_sha256",
    "mix_at_snr",
    "read_audio",
    "resample",
    "rms_dbfs",
    "validate_audio",
    "write_audio",
]
