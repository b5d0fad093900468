"""Condition building blocks as pydantic models: noise, device and channel specs.

These are the public pack vocabulary (see shared DESIGN, "Pack format"). Unknown keys are
rejected everywhere. The DSP that realises each spec lives in ``lastmile.profiles`` (noise
generators, device presets and profiles) and ``lastmile.channel``.
"""

from __future__ import annotations

from typing import Annotated, Literal

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
]


class StrictModel(BaseModel):
    """Frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WhiteNoiseSpec(StrictModel):
    type: Literal["white"]


class PinkNoiseSpec(StrictModel):
    type: Literal["pink"]


class BrownNoiseSpec(StrictModel):
    type: Literal["brown"]


class HumNoiseSpec(StrictModel):
    """Mains or machine hum: a fundamental and harmonics with slow frequency drift."""

    type: Literal["hum"]
    fundamental_hz: float = Field(60.0, gt=0, le=2000)
    harmonics_db: list[float] = Field(
        default_factory=lambda: [0.0, -6.0, -10.0, -14.0],
        min_length=1,
        max_length=40,
        description="Level of harmonic k (k = 1 is the fundamental) relative to the fundamental.",
    )
    drift_hz: float = Field(
        0.05, ge=0, le=5, description="Peak deviation of the fundamental (slow sinusoidal drift)."
    )
    drift_period_s: float = Field(20.0, gt=0, le=3600)


class ToneNoiseSpec(StrictModel):
    type: Literal["tone"]
    freq_hz: float = Field(gt=0, le=20000)


class FileNoiseSpec(StrictModel):
    """A noise recording, looped with a crossfade; the start offset is drawn per item."""

    type: Literal["file"] = "file"
    file: str = Field(description="Path relative to the pack file.")
    crossfade_s: float = Field(0.25, ge=0, le=5)


class ProfileNoiseSpec(StrictModel):
    """Noise synthesized from a noise profile (``noise_profiles/NAME.yaml``)."""

    type: Literal["profile"] = "profile"
    profile: str


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

    name: str = Field(description="A device preset or a device profile name.")
    agc: bool = Field(False, description="Slow automatic gain control towards agc_target_dbfs.")
    agc_target_dbfs: float = Field(-20.0, ge=-60, le=0)
    clip_dbfs: float | None = Field(
        None, ge=-40, le=0, description="Hard clipping level of the device's converter."
    )


class ChannelSpec(StrictModel):
    """The transmission channel after the device."""

    codec: Literal["none", "g711-ulaw", "g711-alaw", "gsm", "amr-nb", "opus", "mp3"] = "none"
    bitrate_kbps: float | None = Field(None, gt=0, le=512, description="For opus and mp3.")
    band_hz: tuple[float, float] | None = Field(
        None, description="Band limit [low_hz, high_hz] applied before the codec."
    )
    clip_dbfs: float | None = Field(None, ge=-40, le=0)


class ReverbSpec(StrictModel):
    """Synthetic room reverberation (exponentially decaying noise impulse response)."""

    rt60_s: float = Field(gt=0, le=5)
    direct_to_reverberant_db: float = Field(0.0, ge=-20, le=30)
