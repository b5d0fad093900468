"""Fairness settings: the pack's ``fairness:`` mapping (see shared DESIGN, "Analysis").

The threshold is in the metric's own unit:

* metric ``absolute`` (default): Δ = WER(c, g) − WER(clean, g); ``threshold_pts: 5`` means a
  gap of 5 WER percentage points (e.g. one group loses 12.0 points, another 7.0).
* metric ``relative``: Δ = WER(c, g) / WER(clean, g) − 1; ``threshold_rel: 0.25`` means a gap
  of 0.25 in relative change (e.g. one group's WER grows by 60 %, another's by 35 %). A relative
  pack takes ``threshold_rel``; giving it ``threshold_pts`` is an error, and the other way round.

``tolerance_pts`` (regression against a baseline) is in WER points for both metrics.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["REL_MAX", "FairnessSettings", "Metric"]

Metric = Literal["absolute", "relative"]
REL_MAX = 5.0  # a relative margin above 500 % is a percentage typed as a fraction


class FairnessSettings(BaseModel):
    """How disparity between groups is measured, tested and flagged (frozen, unknown keys rejected).

    Embedded in the pack YAML as ``fairness:``; every field has a default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    threshold_pts: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        description=(
            "Metric absolute: the gap between groups' Δ, in WER percentage points, at or above "
            "which a condition can be flagged uneven, and within which it can be shown even "
            "(default 5; null under metric relative)."
        ),
    )
    threshold_rel: float | None = Field(
        default=None,
        gt=0,
        le=REL_MAX,
        description=(
            "Metric relative: the same margin as a difference of relative change "
            "(WER / clean WER − 1) as a fraction, at most 5; default 0.25, null under metric "
            "absolute."
        ),
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="False discovery rate (Benjamini–Hochberg across conditions).",
    )
    min_speakers: int = Field(
        default=3,
        ge=2,
        le=100_000,
        description=(
            "Fewest speakers a group needs in a condition for a verdict; fewer gives "
            "insufficient-data (intervals need at least 3 whatever this says)."
        ),
    )
    metric: Metric = Field(
        default="absolute",
        description="Degradation Δ: absolute (WER − clean WER) or relative (WER / clean WER − 1).",
    )
    n_bootstrap: int = Field(
        default=2000,
        ge=100,
        le=1_000_000,
        description="Unused since intervals and the test are analytic (kept so older packs load).",
    )
    n_permutations: int = Field(
        default=2000,
        ge=99,
        le=1_000_000,
        description="Unused since the test became a bootstrap-t (kept so older packs load).",
    )
    ci_level: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Level of the speaker-cluster t intervals of WER, Δ and gaps.",
    )
    tolerance_pts: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Regression tolerance against a stored baseline (pytest plugin), same units.",
    )

    @model_validator(mode="before")
    @classmethod
    def _threshold_in_the_metric_unit(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        metric = data.get("metric", "absolute")
        pts, rel = data.get("threshold_pts"), data.get("threshold_rel")
        if metric == "relative":
            if pts is not None:
                raise ValueError(
                    "metric relative takes threshold_rel (a difference of relative change, "
                    "e.g. 0.25), not threshold_pts; replace threshold_pts with threshold_rel"
                )
            if isinstance(rel, (int, float)) and not isinstance(rel, bool) and rel > REL_MAX:
                raise ValueError(
                    f"threshold_rel is a difference of relative change as a fraction (0.25 "
                    f"means 25 %); {rel:g} would be {rel * 100:g} %, more than the "
                    f"{REL_MAX * 100:g} % this accepts: did you mean {rel / 100:g}?"
                )
            data["threshold_rel"] = 0.25 if rel is None else rel
        elif metric == "absolute":
            if rel is not None:
                raise ValueError(
                    "threshold_rel applies to metric relative; metric absolute takes "
                    "threshold_pts (WER points), or set metric: relative"
                )
            data["threshold_pts"] = 5.0 if pts is None else pts
        return data

    @property
    def threshold(self) -> float:
        """The margin as a fraction in Δ's unit: threshold_pts / 100 or threshold_rel."""
        if self.metric == "absolute":
            return float(self.threshold_pts or 0.0) / 100.0
        return float(self.threshold_rel or 0.0)

    def threshold_text(self) -> str:
        """The margin as people read it, in the unit the reports show: ``"5 WER points"`` or
        ``"25 points of relative change (0.25 relative)"``."""
        if self.metric == "absolute":
            return f"{self.threshold_pts:g} WER points"
        rel = float(self.threshold_rel or 0.0)
        return f"{rel * 100:g} points of relative change ({rel:g} relative)"
