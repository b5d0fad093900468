"""Fairness settings: the pack's ``fairness:`` mapping (see shared DESIGN, "Analysis").

Units: ``threshold_pts`` and ``tolerance_pts`` are *points on the metric's x100 scale*:

* metric ``absolute`` (default): Δ = WER(c, g) − WER(clean, g); 5 points means a disparity of
  5 WER percentage points (e.g. one group loses 12.0 points, another 7.0).
* metric ``relative``: Δ = WER(c, g) / WER(clean, g) − 1; 5 points means a difference of 5
  percentage points of relative change (e.g. one group's WER grows by 45 %, another's by 40 %).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FairnessSettings", "Metric"]

Metric = Literal["absolute", "relative"]


class FairnessSettings(BaseModel):
    """How disparity between groups is measured, tested and flagged (frozen, unknown keys rejected).

    Embedded in the pack YAML as ``fairness:``; every field has a default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    threshold_pts: float = Field(
        default=5.0,
        ge=0,
        le=1000,
        description=(
            "Disparity U at or above which a condition can be flagged. Metric absolute: WER "
            "percentage points. Metric relative: percentage points of relative change."
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
        description="Fewest speakers a group needs in a condition; fewer gives insufficient-data.",
    )
    metric: Metric = Field(
        default="absolute",
        description="Degradation Δ: absolute (WER − clean WER) or relative (WER / clean WER − 1).",
    )
    n_bootstrap: int = Field(
        default=2000, ge=100, le=1_000_000, description="Speaker-cluster bootstrap draws B."
    )
    n_permutations: int = Field(
        default=2000,
        ge=99,
        le=1_000_000,
        description="Permutations P of group labels across speakers.",
    )
    ci_level: float = Field(
        default=0.95,
        gt=0.5,
        lt=1,
        description="Level of the percentile intervals (expanded for few speakers).",
    )
    tolerance_pts: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Regression tolerance against a stored baseline (pytest plugin), same units.",
    )
