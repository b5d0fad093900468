"""The pack's ``hunt:`` mapping: the space a hunt searches and how it splits its speakers.

Every axis is optional; an axis left out takes its values from the pack's own conditions
(see :func:`lastmile.hunt.space.build_space`). Unknown keys are rejected.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lastmile.scenario.specs import (
    ChannelSpec,
    DeviceSpec,
    NoiseSpec,
    StrictModel,
    noise_shorthand,
)

__all__ = ["HARMONIC_SHAPES", "HuntSettings"]

HARMONIC_SHAPES: dict[str, tuple[float, ...]] = {
    "falling": (0.0, -6.0, -10.0, -14.0),
    "flat": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "odd": (0.0, -40.0, -3.0, -40.0, -6.0, -40.0, -9.0),
    "rich": tuple(-3.0 * k for k in range(12)),
}
"""Named hum harmonic shapes: level of harmonic k (k = 1 the fundamental) in dB."""


Shape = Literal["falling", "flat", "odd", "rich"]


def _default_shapes() -> list[Shape]:
    return ["falling", "flat", "odd"]


class HuntSettings(StrictModel):
    """What `lastmile hunt` searches (the pack's ``hunt:`` mapping)."""

    snr_db: tuple[float, float] | None = Field(
        None,
        description="SNR range [low, high] in dB searched continuously, within [-10, 60]; "
        "default: the lowest and highest SNR of the pack's conditions ([0, 30] without any).",
    )
    snr_step_db: float = Field(
        2.5, gt=0, le=20, description="Resolution of the SNR axis in dB (candidates snap to it)."
    )
    noise: list[NoiseSpec] | None = Field(
        None,
        description="Noise sources: white, pink, brown, {type: hum}, {type: tone, freq_hz}, "
        "{file: PATH}, {profile: NAME} (captured profiles); a hum's fundamental and harmonic "
        "shape are searched (hum_fundamental_hz, hum_harmonics). Default: the pack's noises.",
    )
    hum_fundamental_hz: tuple[float, float] = Field(
        (40.0, 480.0),
        description="Range [low, high] of a hum's fundamental in Hz, searched on a log scale.",
    )
    hum_steps_per_octave: int = Field(
        6, ge=1, le=48, description="Resolution of the hum fundamental: steps per octave."
    )
    hum_harmonics: list[Shape] = Field(
        default_factory=_default_shapes,
        min_length=1,
        description="Harmonic shapes of a hum: falling (0, -6, -10, -14 dB), flat (6 equal "
        "harmonics), odd (odd harmonics only), rich (12 harmonics falling 3 dB each).",
    )
    devices: list[DeviceSpec | None] | None = Field(
        None,
        description="Devices (null: none). Default: none plus the pack's devices.",
    )
    channels: list[ChannelSpec | None] | None = Field(
        None,
        description="Channels and bitrates, e.g. {codec: opus, bitrate_kbps: 8} (null: none). "
        "Default: none plus the pack's channels.",
    )
    reverb_rt60_s: list[float | None] | None = Field(
        None,
        description="Reverberation times in seconds (null: none). Default: none plus the "
        "pack's reverbs.",
    )
    top: int = Field(3, ge=1, le=50, description="Candidates re-run on the confirmation half.")
    confirm_share: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Share of every group's speakers held out for confirmation (raised to the "
        "fairness min_speakers where a group needs it, said in the output).",
    )

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, v: Any) -> Any:
        return [noise_shorthand(x) for x in v] if isinstance(v, list) else v

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("snr_db")
    @classmethod
    def _snr(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is None:
            return v
        lo, hi = v
        if not -10 <= lo <= hi <= 60:
            raise ValueError(f"expected [low, high] with -10 <= low <= high <= 60, got {list(v)}")
        return v

    @field_validator("hum_fundamental_hz")
    @classmethod
    def _fundamental(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 < lo <= hi <= 2000:
            raise ValueError(f"expected [low, high] with 0 < low <= high <= 2000, got {list(v)}")
        return v

    @field_validator("reverb_rt60_s")
    @classmethod
    def _rt60(cls, v: list[float | None] | None) -> list[float | None] | None:
        for x in v or []:
            if x is not None and not 0 < x <= 5:
                raise ValueError(f"expected reverberation times in (0, 5] s or null, got {x}")
        return v

    @model_validator(mode="after")
    def _non_empty(self) -> HuntSettings:
        for name in ("noise", "devices", "channels", "reverb_rt60_s"):
            value = getattr(self, name)
            if value is not None and len(value) == 0:
                raise ValueError(f"{name}: an empty list; give at least one value or leave it out")
        return self
