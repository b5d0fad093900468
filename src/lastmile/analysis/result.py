"""The analysis result: a frozen, disaggregated object with small accessors.

Units in Python: WER and Δ are fractions (0.142 is 14.2 %), as jiwer reports them; the
JSON form (:meth:`Analysis.to_dict`) uses points on the x100 scale (``wer_pct``,
``delta_pts``, ``disparity_pts``). An undefined value (a cell with no reference words, a
relative Δ over a clean WER of 0) is ``nan`` in Python and ``null`` in JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lastmile.analysis.counts import WorstItem
from lastmile.analysis.inference import MIN_SPEAKERS_FOR_INTERVAL, t_interval, welch_df
from lastmile.analysis.settings import FairnessSettings
from lastmile.errors import ConfigError

__all__ = [
    "FLAGS",
    "Analysis",
    "CellStats",
    "ConditionVerdict",
    "Estimate",
    "Flag",
    "PairGap",
    "Totals",
    "pair_estimate",
]

Flag = Literal["uneven", "inconclusive", "insufficient-data", "even"]
FLAGS: tuple[Flag, ...] = ("uneven", "inconclusive", "insufficient-data", "even")


def _num(value: float, scale: float = 1.0, digits: int = 6) -> float | None:
    """A float for JSON: ``None`` when undefined, else ``value * scale`` rounded."""
    value = float(value)
    return None if not math.isfinite(value) else round(value * scale, digits)


def pair_estimate(
    delta_a: float,
    delta_b: float,
    var_a: float,
    var_b: float,
    n_a: int,
    n_b: int,
    *,
    level: float,
    names: tuple[str, str],
) -> Estimate:
    """Δ_a − Δ_b with a Welch t interval, or no interval and the reason."""
    value = delta_a - delta_b
    if not math.isfinite(value):
        which = [g for g, d in zip(names, (delta_a, delta_b), strict=True) if not math.isfinite(d)]
        named = " and ".join(repr(g) for g in which)
        return Estimate(
            math.nan,
            math.nan,
            math.nan,
            f"Δ of {named} is undefined (no scored words, or a clean WER of 0 under the "
            "relative metric)",
        )
    small = [
        f"{g!r} has {n} speaker{'' if n == 1 else 's'}"
        for g, n in zip(names, (n_a, n_b), strict=True)
        if n < MIN_SPEAKERS_FOR_INTERVAL
    ]
    if small:
        return Estimate(
            value,
            math.nan,
            math.nan,
            f"no interval: {' and '.join(small)}; intervals from fewer than "
            f"{MIN_SPEAKERS_FOR_INTERVAL} speakers per group do not reach their stated coverage",
        )
    if not (math.isfinite(var_a) and math.isfinite(var_b)) or var_a + var_b <= 0:
        return Estimate(
            value,
            math.nan,
            math.nan,
            "no interval: the speakers' spread cannot be estimated (every speaker has the same "
            "value, or leaving one out makes Δ undefined)",
        )
    df = welch_df(np.array(var_a), np.array(n_a), np.array(var_b), np.array(n_b))
    low, high = t_interval(np.array(value), np.array(var_a + var_b), df, level=level)
    return Estimate(value, float(low), float(high))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval (same units; nan if undefined).

    The interval is a speaker-cluster t interval (see :mod:`lastmile.analysis.inference`).
    When it is not shown (``nan`` bounds), ``ci_note`` says why in a sentence.
    """

    value: float
    ci_low: float
    ci_high: float
    ci_note: str = ""

    @property
    def defined(self) -> bool:
        """True when the point estimate is a finite number."""
        return math.isfinite(self.value)

    def to_dict(self, *, scale: float = 100.0) -> dict[str, float | str | None]:
        """``{"value", "ci_low", "ci_high"}`` multiplied by ``scale`` (fractions → points)."""
        return {
            "value": _num(self.value, scale),
            "ci_low": _num(self.ci_low, scale),
            "ci_high": _num(self.ci_high, scale),
            "ci_note": self.ci_note or None,
        }


@dataclass(frozen=True)
class CellStats:
    """One condition × group cell: raw counts over scored items, pooled WER and Δ from clean.

    ``n_items`` counts attempted items (scored + failed); ``n_speakers`` counts speakers with at
    least one scored reference word; ``wer`` = Σ(S+D+I)/ΣN; ``delta`` per the metric.
    """

    condition_id: str
    group: str
    n_items: int
    n_failed: int
    n_speakers: int
    n_ref_words: int
    n_errors: int
    substitutions: int
    deletions: int
    insertions: int
    wer: Estimate
    delta: Estimate
    speaker_delta: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form, WER in percent and Δ in points; each speaker's own Δ (points, null when
        undefined) under ``speakers``."""
        return {
            "group": self.group,
            "n_items": self.n_items,
            "n_failed": self.n_failed,
            "n_speakers": self.n_speakers,
            "n_ref_words": self.n_ref_words,
            "n_errors": self.n_errors,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "wer_pct": self.wer.to_dict(),
            "delta_pts": self.delta.to_dict(),
            "speakers": [
                {"speaker": name, "delta_pts": _num(value, 100.0)}
                for name, value in self.speaker_delta
            ],
        }


@dataclass(frozen=True)
class PairGap:
    """Δ(c, a) − Δ(c, b) with its interval at ``ci_level`` and the (1 − 2α) equivalence
    interval; ``within_margin`` is True when that interval lies inside ± the threshold."""

    group_a: str
    group_b: str
    difference: Estimate
    equivalence_low: float
    equivalence_high: float
    within_margin: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form (points)."""
        return {
            "groups": [self.group_a, self.group_b],
            "difference_pts": self.difference.to_dict(),
            "equivalence_ci_pts": [
                _num(self.equivalence_low, 100.0),
                _num(self.equivalence_high, 100.0),
            ],
            "within_margin": self.within_margin,
        }


@dataclass(frozen=True)
class ConditionVerdict:
    """Disparity, test and flag of one condition.

    ``disparity`` U = max_g Δ − min_g Δ (fraction units, biased upward: for reading) with
    the interval of the difference between those two groups; ``p_value`` from the bootstrap-t
    test that all groups' Δ are equal, ``q_value`` Benjamini–Hochberg across the non-clean
    conditions. ``flag`` is ``None`` only for the clean (reference) condition.
    ``speakers_needed`` is set only when the flag is ``inconclusive`` (from simulation).
    ``pairs`` lists every pairwise gap with its equivalence interval.
    """

    condition_id: str
    is_clean: bool
    disparity: Estimate
    worst_group: str | None
    best_group: str | None
    p_value: float
    q_value: float
    flag: Flag | None
    speakers_needed: int | None
    note: str
    pairs: tuple[PairGap, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (disparity in points)."""
        return {
            "disparity_pts": self.disparity.to_dict(),
            "worst_group": self.worst_group,
            "best_group": self.best_group,
            "p_value": _num(self.p_value, 1.0, 8),
            "q_value": _num(self.q_value, 1.0, 8),
            "flag": self.flag,
            "speakers_needed_per_group": self.speakers_needed,
            "note": self.note,
            "pairs": [pair.to_dict() for pair in self.pairs],
        }


@dataclass(frozen=True)
class Totals:
    """Run-wide counts."""

    n_items: int
    n_failed: int
    n_conditions: int
    n_groups: int
    n_speakers: int
    n_uneven: int
    n_inconclusive: int
    n_insufficient: int
    n_even: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON form."""
        return {
            "n_items": self.n_items,
            "n_failed": self.n_failed,
            "n_conditions": self.n_conditions,
            "n_groups": self.n_groups,
            "n_speakers": self.n_speakers,
            "n_uneven": self.n_uneven,
            "n_inconclusive": self.n_inconclusive,
            "n_insufficient_data": self.n_insufficient,
            "n_even": self.n_even,
        }


@dataclass(frozen=True, eq=False)
class Analysis:
    """Per condition × group pooled WER, Δ from clean, disparity, test and flag.

    Build it with :func:`lastmile.analysis.analyze`. ``conditions`` lists the clean condition
    first; ``groups`` are sorted. ``cells`` has shape (C, G); ``verdicts`` has length C.
    ``delta_var`` (C, G) holds the jackknife variances of Δ and ``delta_speakers`` (C, G)
    the speakers they rest on, for contrasts (:meth:`difference`).
    """

    settings: FairnessSettings
    seed: int
    clean_condition_id: str
    conditions: tuple[str, ...]
    groups: tuple[str, ...]
    cells: tuple[tuple[CellStats, ...], ...]
    verdicts: tuple[ConditionVerdict, ...]
    totals: Totals
    delta_var: np.ndarray
    delta_speakers: np.ndarray
    worst_items: tuple[tuple[WorstItem, ...], ...] = ()

    # -- lookups ----------------------------------------------------------------------------
    def _ci(self, condition_id: str) -> int:
        try:
            return self.conditions.index(condition_id)
        except ValueError:
            raise ConfigError(
                f"analysis: unknown condition {condition_id!r}; known: {', '.join(self.conditions)}"
            ) from None

    def _gi(self, group: str) -> int:
        try:
            return self.groups.index(group)
        except ValueError:
            raise ConfigError(
                f"analysis: unknown group {group!r}; known: {', '.join(self.groups)}"
            ) from None

    # -- accessors --------------------------------------------------------------------------
    def cell(self, condition_id: str, group: str) -> CellStats:
        """Counts and estimates of one condition × group cell."""
        return self.cells[self._ci(condition_id)][self._gi(group)]

    def by_group(self, condition_id: str) -> dict[str, CellStats]:
        """The cells of one condition, keyed by group (sorted)."""
        row = self.cells[self._ci(condition_id)]
        return {cell.group: cell for cell in row}

    def wer(self, condition_id: str, group: str) -> Estimate:
        """Pooled WER Σ(S+D+I)/ΣN of a cell (fraction) with its interval."""
        return self.cell(condition_id, group).wer

    def delta(self, condition_id: str, group: str) -> Estimate:
        """Degradation Δ of a group in a condition from its clean WER (fraction) with interval."""
        return self.cell(condition_id, group).delta

    def verdict(self, condition_id: str) -> ConditionVerdict:
        """Disparity, p, q and flag of one condition."""
        return self.verdicts[self._ci(condition_id)]

    def disparity(self, condition_id: str) -> Estimate:
        """U(c) = max_g Δ − min_g Δ (fraction) with its interval (biased upward: see DESIGN)."""
        return self.verdict(condition_id).disparity

    def difference(self, condition_id: str, group_a: str, group_b: str) -> Estimate:
        """Δ(c, a) − Δ(c, b) with its t interval (jackknife variances, Welch degrees of freedom).

        No interval (and a ``ci_note``) when either group has fewer than 3 speakers or an
        undefined variance.
        """
        c, a, b = self._ci(condition_id), self._gi(group_a), self._gi(group_b)
        return pair_estimate(
            self.cells[c][a].delta.value,
            self.cells[c][b].delta.value,
            float(self.delta_var[c, a]),
            float(self.delta_var[c, b]),
            int(self.delta_speakers[c, a]),
            int(self.delta_speakers[c, b]),
            level=self.settings.ci_level,
            names=(group_a, group_b),
        )

    @property
    def degraded_conditions(self) -> tuple[str, ...]:
        """Every condition but the clean one, in order."""
        return self.conditions[1:]

    @property
    def flags(self) -> dict[str, Flag]:
        """Flag of every non-clean condition."""
        return {v.condition_id: v.flag for v in self.verdicts if v.flag is not None}

    @property
    def flagged(self) -> tuple[str, ...]:
        """Conditions flagged ``uneven``."""
        return tuple(c for c, flag in self.flags.items() if flag == "uneven")

    def to_dict(self) -> dict[str, Any]:
        """The ``analysis`` part of summary.json (see ``lastmile/schemas/summary.schema.json``)."""
        conditions = []
        for c, condition_id in enumerate(self.conditions):
            verdict = self.verdicts[c]
            row = self.cells[c]
            conditions.append(
                {
                    "id": condition_id,
                    "is_clean": verdict.is_clean,
                    "n_items": sum(cell.n_items for cell in row),
                    "n_failed": sum(cell.n_failed for cell in row),
                    **verdict.to_dict(),
                    "groups": [cell.to_dict() for cell in row],
                    "worst_items": [
                        item.to_dict()
                        for item in (self.worst_items[c] if c < len(self.worst_items) else ())
                    ],
                }
            )
        return {
            "metric": self.settings.metric,
            "units": {
                "wer_pct": "pooled WER x 100",
                "delta_pts": (
                    "WER percentage points"
                    if self.settings.metric == "absolute"
                    else "percentage points of relative change (WER / clean WER - 1) x 100"
                ),
            },
            "settings": self.settings.model_dump(mode="json"),
            "seed": self.seed,
            "clean_condition_id": self.clean_condition_id,
            "groups": list(self.groups),
            "totals": self.totals.to_dict(),
            "conditions": conditions,
        }
