"""Condition building blocks as pydantic models: noise, device and channel specs.

These are the public pack vocabulary (see shared DESIGN, "Pack format"). Unknown keys are
rejected everywhere. The DSP that realises each spec lives in ``lastmile.profiles`` (noise
generators, device presets and profiles) and ``lastmile.channel``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BrownNoiseSpec",
    "ChannelSpec",
    "DeviceSpec",
    "FileNoiseSpec",
    "HumNoiseSpec",
    "NoiseSpec",
    "PinkNoiseSpec",
    "ProfileNoiseSpec",
    "ReverbSpec",
    "StrictModel",
    "ToneNoiseSpec",
    "WhiteNoiseSpec",
    "noise_shorthand",
]


class StrictModel(BaseModel):
    """Frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WhiteNoiseSpec(StrictModel):
    """White noise: equal power per hertz."""

    type: Literal["white"] = Field(description="white: a flat spectrum (hiss).")


class PinkNoiseSpec(StrictModel):
    """Pink noise: equal power per octave."""

    type: Literal["pink"] = Field(description="pink: power falling 3 dB per octave.")


class BrownNoiseSpec(StrictModel):
    """Brown (red) noise: power falling 6 dB per octave."""

    type: Literal["brown"] = Field(description="brown: power falling 6 dB per octave (rumble).")


class HumNoiseSpec(StrictModel):
    """Mains or machine hum: a fundamental and harmonics with slow frequency drift."""

    type: Literal["hum"] = Field(description="hum: a fundamental and its harmonics.")
    fundamental_hz: float = Field(
        60.0, gt=0, le=2000, description="Fundamental frequency in Hz (50 or 60 for mains)."
    )
    harmonics_db: list[float] = Field(
        default_factory=lambda: [0.0, -6.0, -10.0, -14.0],
        min_length=1,
        max_length=40,
        description="Level of harmonic k (k = 1 is the fundamental) relative to the fundamental.",
    )
    drift_hz: float = Field(
        0.05, ge=0, le=5, description="Peak deviation of the fundamental (slow sinusoidal drift)."
    )
    drift_period_s: float = Field(
        20.0, gt=0, le=3600, description="Period of the fundamental's drift, in seconds."
    )


class ToneNoiseSpec(StrictModel):
    """A steady sine tone (a whine, a beep that never stops)."""

    type: Literal["tone"] = Field(description="tone: one steady sine.")
    freq_hz: float = Field(gt=0, le=20000, description="Its frequency in Hz, below Nyquist.")


class FileNoiseSpec(StrictModel):
    """A noise recording, looped with a crossfade; the start offset is drawn per item."""

    type: Literal["file"] = Field(
        "file", description="file: a recording (the shorthand {file: PATH} sets it)."
    )
    file: str = Field(
        description="The recording (WAV, FLAC, OGG; at least 1 s), relative to the pack file."
    )
    crossfade_s: float = Field(
        0.25, ge=0, le=5, description="Crossfade where the loop wraps, in seconds."
    )


class ProfileNoiseSpec(StrictModel):
    """Noise synthesized from a noise profile (``noise_profiles/NAME.yaml``)."""

    type: Literal["profile"] = Field(
        "profile", description="profile: synthesized from a noise profile ({profile: NAME})."
    )
    profile: str = Field(
        description="Noise profile name: NAME.yaml in noise_profiles/ beside the pack file, "
        "then the shipped profiles (`lastmile profiles list`)."
    )


NoiseSpec = Annotated[
    WhiteNoiseSpec
    | PinkNoiseSpec
    | BrownNoiseSpec
    | HumNoiseSpec
    | ToneNoiseSpec
    | FileNoiseSpec
    | ProfileNoiseSpec,
    Field(discriminator="type"),
]


class DeviceSpec(StrictModel):
    """A handset or microphone: a response (preset or measured profile), then AGC and clipping."""

    name: str = Field(
        description="A device profile (NAME.yaml in noise_profiles/ beside the pack file, "
        "then the shipped ones) or a built-in preset; a profile wins over a preset of the "
        "same name."
    )
    agc: bool = Field(False, description="Slow automatic gain control towards agc_target_dbfs.")
    agc_target_dbfs: float = Field(
        -20.0, ge=-60, le=0, description="Level the AGC steers towards, in dBFS RMS."
    )
    clip_dbfs: float | None = Field(
        None, ge=-40, le=0, description="Hard clipping level of the device's converter."
    )


class ChannelSpec(StrictModel):
    """The transmission channel after the device."""

    codec: Literal["none", "g711-ulaw", "g711-alaw", "gsm", "amr-nb", "opus", "mp3"] = Field(
        "none",
        description="Speech codec: G.711 μ-law or A-law (8 kHz, built in); gsm, amr-nb, opus, "
        "mp3 through ffmpeg (installed separately).",
    )
    bitrate_kbps: float | None = Field(None, gt=0, le=512, description="For opus and mp3.")
    band_hz: tuple[float, float] | None = Field(
        None, description="Band limit [low_hz, high_hz] applied before the codec."
    )
    clip_dbfs: float | None = Field(
        None, ge=-40, le=0, description="Hard clipping level of the channel, in dBFS."
    )


class ReverbSpec(StrictModel):
    """Synthetic room reverberation (exponentially decaying noise impulse response)."""

    rt60_s: float = Field(
        gt=0, le=5, description="Reverberation time: seconds for the tail to fall 60 dB."
    )
    direct_to_reverberant_db: float = Field(
        0.0,
        ge=-20,
        le=30,
        description="Energy of the direct sound over the reverberant tail, in dB (higher: "
        "the talker nearer the microphone).",
    )


def noise_shorthand(value: Any) -> Any:
    """`pink` → {type: pink}; {profile: X} → {type: profile, ...}; {file: X} likewise: the
    short forms a pack (and its ``hunt:`` section) may write a noise source in."""
    if isinstance(value, str):
        return {"type": value}
    if isinstance(value, dict) and "type" not in value:
        if "profile" in value:
            return {"type": "profile", **value}
        if "file" in value:
            return {"type": "file", **value}
    return value
