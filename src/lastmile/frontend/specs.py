"""The pack vocabulary of front-end stages (``frontend: {NAME: [stage, ...]}``).

Each stage spec is a frozen pydantic model with unknown keys rejected; the DSP that realises
it is the stage class of the same name in :mod:`lastmile.frontend`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lastmile.scenario.specs import StrictModel

__all__ = [
    "CommandSpec",
    "FrontEndStageSpec",
    "HighpassSpec",
    "MitigationExpect",
    "MitigationSettings",
    "NotchSpec",
    "RnnoiseSpec",
    "SpectralGateSpec",
]


class NotchSpec(StrictModel):
    """Narrow band-stop filters at given frequencies, or at the tones of a noise profile."""

    type: Literal["notch"] = Field(description="notch: remove narrow bands around tones.")
    freqs_hz: list[float] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Centre frequencies in Hz (each > 0 and below half the render rate). "
        "Give these or `profile`, not both.",
    )
    profile: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="A noise profile whose tones (every harmonic of every tone series) are "
        "notched; found in PACK_DIR/noise_profiles, then among the shipped profiles.",
    )
    width_hz: float | list[float] | None = Field(
        None,
        description="-3 dB width of each notch in Hz (one value for all, or one per "
        "frequency). Default: 4 Hz, widened for a profile's drifting tones to 20 × the "
        "harmonic's RMS drift.",
    )
    q: float | None = Field(
        None,
        gt=0,
        le=1000,
        description="Quality factor (centre / width) instead of width_hz.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> NotchSpec:
        if (self.freqs_hz is None) == (self.profile is None):
            raise ValueError(
                "give either freqs_hz: [60, 120, ...] or profile: NAME (the profile's tones)"
            )
        if self.width_hz is not None and self.q is not None:
            raise ValueError("give width_hz or q, not both")
        widths = self.width_hz if isinstance(self.width_hz, list) else [self.width_hz]
        if any(w is not None and not 0 < w <= 2000 for w in widths):
            raise ValueError(f"width_hz: expected numbers in (0, 2000], got {self.width_hz}")
        if isinstance(self.width_hz, list) and (
            self.freqs_hz is None or len(self.width_hz) != len(self.freqs_hz)
        ):
            raise ValueError(
                "width_hz as a list needs freqs_hz of the same length; give one number "
                "to use the same width everywhere"
            )
        if self.freqs_hz is not None and any(f <= 0 for f in self.freqs_hz):
            raise ValueError(f"freqs_hz: expected frequencies > 0 Hz, got {self.freqs_hz}")
        return self


class HighpassSpec(StrictModel):
    """A Butterworth high-pass, applied forward and backward (zero phase)."""

    type: Literal["highpass"] = Field(description="highpass: remove rumble below a cutoff.")
    cutoff_hz: float = Field(
        gt=0,
        le=4000,
        description="Where the (zero-phase) response is -3 dB, in Hz; below half the rate.",
    )
    order: int = Field(
        4,
        ge=1,
        le=8,
        description="Butterworth order of the overall response (even: designed as half the "
        "order, run forward and backward); slope 6 dB per octave per order.",
    )

    @model_validator(mode="after")
    def _even(self) -> HighpassSpec:
        if self.order % 2:
            raise ValueError(
                f"order: expected an even number (2, 4, 6, 8), got {self.order}; the filter "
                "runs forward and backward, which doubles the designed order"
            )
        return self


class SpectralGateSpec(StrictModel):
    """Spectral gating with the ``noisereduce`` package (extra ``lastmile[frontends]``)."""

    type: Literal["spectral-gate"] = Field(
        description="spectral-gate: attenuate time-frequency bins below a noise threshold."
    )
    stationary: bool = Field(
        True,
        description="True: one noise threshold per frequency from the whole utterance "
        "(steady hum, fans); false: a threshold that follows the noise over time.",
    )
    prop_decrease: float = Field(
        1.0, ge=0, le=1, description="How far gated bins are lowered (1: fully, 0: not at all)."
    )
    n_std_thresh: float = Field(
        1.5,
        gt=0,
        le=10,
        description="Stationary gate: a bin is speech when above the noise mean by this many "
        "standard deviations.",
    )


class RnnoiseSpec(StrictModel):
    """Xiph RNNoise through the ``pyrnnoise`` package (extra ``lastmile[frontends]``)."""

    type: Literal["rnnoise"] = Field(
        description="rnnoise: a recurrent-network denoiser run at 48 kHz in 10 ms frames."
    )


class CommandSpec(StrictModel):
    """The customer's own enhancement program: reads ``{in}``, writes ``{out}`` (WAV)."""

    type: Literal["command"] = Field(description="command: run your own program (no shell).")
    argv: list[str] = Field(
        min_length=1,
        description="The program and its arguments, one word per item (no shell); must name "
        "{in} (a mono 32-bit float WAV it reads) and {out} (the WAV it writes, same rate). "
        "A program given as a relative path is relative to the pack file.",
    )
    timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Seconds before the program (its process group) is killed."
    )

    @model_validator(mode="after")
    def _placeholders(self) -> CommandSpec:
        words = " ".join(self.argv)
        missing = [p for p in ("{in}", "{out}") if p not in words]
        if missing:
            raise ValueError(
                f"argv must contain {' and '.join(missing)}, where the input and output WAV "
                f"paths go, e.g. [./enhance, --in, '{{in}}', --out, '{{out}}']; got {self.argv}"
            )
        return self


FrontEndStageSpec = Annotated[
    NotchSpec | HighpassSpec | SpectralGateSpec | RnnoiseSpec | CommandSpec,
    Field(discriminator="type"),
]
"""One stage of a front-end chain, told apart by ``type``."""


class MitigationExpect(StrictModel):
    """What a front end must keep doing (checked by the pytest plugin's mitigation item)."""

    closes_pct_at_least: float | None = Field(
        None,
        ge=-1000,
        le=100,
        description="Smallest share (%) of the gap between groups (U) the front end must "
        "close in each checked condition: 100 · (U without − U with) / U without.",
    )
    clean_cost_pts_at_most: float | None = Field(
        None,
        ge=-100,
        le=100,
        description="Largest WER change on clean speech (WER points, pooled over groups) the "
        "front end may cause: WER(clean+NAME) − WER(clean).",
    )
    conditions: list[str] | None = Field(
        None,
        min_length=1,
        description="Condition ids (without the front end) to check closes_pct_at_least in; "
        "default: every condition whose gap without the front end reaches the fairness "
        "threshold (the gaps worth closing).",
    )


class MitigationSettings(StrictModel):
    """The pack's ``mitigation:`` mapping."""

    expect: dict[str, MitigationExpect] = Field(
        default_factory=dict,
        description="Front-end name → what it must keep doing; each becomes a pytest item "
        "mitigation[NAME] when the pack runs as a test.",
    )
