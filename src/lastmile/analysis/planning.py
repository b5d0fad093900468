"""How many speakers per group would decide? Estimated by simulation from a pilot's speakers.

A condition's groups are summarized by their speakers' jackknife pseudo-values of Δ
(:func:`lastmile.analysis.inference.pseudo_values`): a group's Δ is their mean and its variance
their spread over n. A planned run with n speakers per group is simulated by drawing n of the
pilot group's speakers with replacement (their deviations from the group's mean, so each
group keeps its own spread and shape), then

* to *detect* a gap D: one group (the one with the widest spread, the hardest case) is
  shifted by D and the run counts as detected when the test statistic of
  :func:`lastmile.analysis.inference.heterogeneity_test` exceeds its null critical value at
  α / m (m degraded conditions: what Benjamini–Hochberg asks of one uneven condition among m),
  the critical value taken from the same simulation without the shift;
* to *show even*: no shift, and every pairwise (1 − 2α) t interval lies inside ± the margin.

The answer is the smallest n on a grid with power ≥ ``power`` (``None`` if none up to the
grid's end). Everything draws from the one generator passed in.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from lastmile.analysis.inference import score_statistic

__all__ = ["SIZES", "PlanResult", "plan_speakers", "power_at"]

SIZES: tuple[int, ...] = (
    3,
    4,
    5,
    6,
    8,
    10,
    12,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
    80,
    100,
    130,
    160,
    200,
    250,
    320,
    400,
    500,
)


@dataclass(frozen=True)
class PlanResult:
    """Smallest speakers per group reaching ``power`` (``None``: not within ``SIZES``), and the
    power estimated at each size tried."""

    speakers: int | None
    goal: str  # "detect" or "even"
    power_by_size: tuple[tuple[int, float], ...]


def _draw(
    residuals: Sequence[np.ndarray], n: int, n_sims: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Means and variances of the mean of n resampled residuals per group: (n_sims, G) each."""
    means, variances = [], []
    for r in residuals:
        picks = r[rng.integers(0, r.size, size=(n_sims, n))]
        means.append(picks.mean(axis=1))
        variances.append(picks.var(axis=1, ddof=1) / n)
    return np.stack(means, axis=1), np.stack(variances, axis=1)


def power_at(
    residuals: Sequence[np.ndarray],
    n: int,
    *,
    goal: str,
    gap: float,
    margin: float,
    alpha: float,
    n_tests: int,
    n_sims: int,
    rng: np.random.Generator,
) -> float:
    """Estimated power with ``n`` speakers per group (see the module docstring)."""
    means, variances = _draw(residuals, n, n_sims, rng)
    sizes = np.full(len(residuals), float(n))
    if goal == "detect":
        shifted = means.copy()
        widest = int(np.argmax([float(np.var(r)) for r in residuals]))
        shifted[:, widest] += gap
        null = score_statistic(means, variances, sizes)
        alt = score_statistic(shifted, variances, sizes)
        critical = float(np.quantile(null, 1.0 - alpha / max(n_tests, 1)))
        return float(np.mean(alt > critical))
    t_value = float(student_t.ppf(1.0 - alpha, n - 1))  # equal sizes: Welch df >= n - 1
    inside = np.ones(n_sims, dtype=bool)
    for a, b in itertools.combinations(range(len(residuals)), 2):
        half = t_value * np.sqrt(variances[:, a] + variances[:, b])
        diff = means[:, a] - means[:, b]
        inside &= (diff - half > -margin) & (diff + half < margin)
    return float(np.mean(inside))


def plan_speakers(
    residuals: Sequence[np.ndarray],
    *,
    goal: str,
    gap: float,
    margin: float,
    alpha: float,
    n_tests: int,
    power: float = 0.8,
    n_sims: int = 400,
    rng: np.random.Generator,
    sizes: Sequence[int] = SIZES,
) -> PlanResult:
    """Smallest n (speakers per group) with estimated power ≥ ``power``.

    ``residuals``: per group, the pilot speakers' pseudo-values of Δ minus their group mean
    (at least 2 each, finite). ``goal``: ``"detect"`` a gap of ``gap`` (fraction) or show
    ``"even"`` within ± ``margin`` when the groups are truly alike. Sizes are tried in order;
    the search stops at the first that reaches the power.
    """
    if goal not in ("detect", "even"):
        raise ValueError(f"goal must be 'detect' or 'even', got {goal!r}")
    usable = [np.asarray(r, dtype=np.float64) for r in residuals]
    if len(usable) < 2 or any(r.size < 2 or not np.isfinite(r).all() for r in usable):
        return PlanResult(None, goal, ())
    tried: list[tuple[int, float]] = []
    for n in sizes:
        value = power_at(
            usable,
            n,
            goal=goal,
            gap=gap,
            margin=margin,
            alpha=alpha,
            n_tests=n_tests,
            n_sims=n_sims,
            rng=rng,
        )
        tried.append((n, value))
        if value >= power:
            return PlanResult(n, goal, tuple(tried))
    return PlanResult(None, goal, tuple(tried))
