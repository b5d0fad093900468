"""Two runs of one pack side by side: is recognizer B's degradation more or less uneven than A's?

Two run folders of the same pack, seed and corpus (so the same utterances rendered under the
same conditions; different backends, or two versions of one model) are paired item by item.
An item that failed in either run is left out of both, and counted. Per condition c and group
g (definitions of DESIGN "Analysis"):

- WER and Δ of each run, with each run's own intervals (:func:`~lastmile.analysis.analyze_table`
  on the paired items);
- the changes WER_B − WER_A and Δ_B − Δ_A with a **paired** speaker-level interval: the
  delete-one-speaker jackknife over the group's speakers, a speaker left out of both runs at
  once (the same utterances in both), Student t with n − 1 degrees of freedom, the method of
  :mod:`lastmile.analysis.inference`. No interval below 3 speakers.
- the test "does B change every group's Δ alike?": the analysis's heterogeneity test
  (:func:`~lastmile.analysis.inference.heterogeneity_test`, a parametric bootstrap)
  over the speakers' paired jackknife pseudo-values ψ_B − ψ_A, Benjamini–Hochberg across the
  degraded conditions at the pack's α.

Verdict per degraded condition: ``no-difference`` when the test is not significant after BH
(B may still differ; the data do not show it); when it is significant, ``more-uneven`` if the
disparity U (max − min Δ over groups) grows from A to B, ``less-uneven`` if it shrinks, and
``changed`` if the groups change differently but U is not shown to grow or shrink (the groups
may have swapped places). "Grows" means the stratified delete-one-speaker jackknife interval of
U_B − U_A (t, smallest group's n − 1 df, at ``ci_level``) lies above 0. U is a max − min, so
that interval is conservative (simulated coverage 0.96–0.99 at 5 and 10 speakers per group):
it decides the direction and is not shown. ``insufficient-data`` when a group has fewer paired
speakers than the pack's ``min_speakers``, most of a cell's items were left out, or the test
cannot be computed.

Why the jackknife and not a speaker bootstrap: percentile bootstrap intervals under-covered with
few speakers per group. Simulated coverage of the paired intervals (tests/analysis/
test_compare.py: beta-binomial errors, speaker and utterance effects shared by both runs, 5 and
10 speakers per group) is within 0.93–0.97 up to Monte-Carlo error.

Numbers are fractions in Python; :meth:`Comparison.to_dict` gives points (×100), the schema
``lastmile/schemas/comparison.schema.json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from lastmile import __version__
from lastmile.analysis.analyze import analyze_table
from lastmile.analysis.counts import CountTable, count_table
from lastmile.analysis.inference import (
    MIN_SPEAKERS_FOR_INTERVAL,
    _degrade,
    _jackknife_var,
    _ratio,
    heterogeneity_test,
    pseudo_values,
    t_interval,
)
from lastmile.analysis.result import Analysis, Estimate
from lastmile.analysis.settings import FairnessSettings
from lastmile.analysis.stats import benjamini_hochberg, disparity
from lastmile.errors import ConfigError

__all__ = [
    "COMPARISON_SCHEMA_VERSION",
    "VERDICTS",
    "Comparison",
    "ConditionComparison",
    "GroupComparison",
    "PairedChange",
    "RunSide",
    "Verdict",
    "check_same_items",
    "compare_runs",
    "compare_tables",
    "comparison_schema",
    "paired_change",
]

COMPARISON_SCHEMA_VERSION = 1
"""Version of the comparison's JSON layout (``lastmile/schemas/comparison.schema.json``)."""

Verdict = Literal["more-uneven", "less-uneven", "changed", "no-difference", "insufficient-data"]
VERDICTS: tuple[Verdict, ...] = (
    "more-uneven",
    "less-uneven",
    "changed",
    "no-difference",
    "insufficient-data",
)

MOSTLY_EXCLUDED = 0.5
"""A cell whose share of left-out items (failed in either run) exceeds this gets no verdict."""

# The parts of run.json's identity that must agree: what determines the items (the audio each
# recognizer heard and the reference it is scored against). The backend may differ (the point)
# and the normalizer only with allow_normalizer_change.
_SAME_PARTS: tuple[tuple[str, str], ...] = (
    ("seed", "seed"),
    ("conditions", "conditions (ids, specs or the noise and device files they use)"),
    ("utterances", "corpus (utterances, their audio, transcripts, speakers or groups)"),
    ("group_by", "group_by"),
    ("render_sample_rate", "render_sample_rate"),
    ("renderer", "renderer version (the runs were made by different lastmile versions)"),
)


# -- the paired statistics ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PairedChange:
    """B − A per cell, shape (C, G) (fractions): the change in pooled WER and in Δ, their
    paired jackknife variances and the number of speakers (clusters) behind each; per
    condition (C,) the change of the disparity U_B − U_A with its stratified jackknife
    variance (``nan`` where undefined)."""

    wer: np.ndarray
    var_wer: np.ndarray
    n_wer: np.ndarray
    delta: np.ndarray
    var_delta: np.ndarray
    n_delta: np.ndarray
    disparity: np.ndarray
    var_disparity: np.ndarray


def paired_change(table_a: CountTable, table_b: CountTable, *, relative: bool) -> PairedChange:
    """WER_B − WER_A and Δ_B − Δ_A per cell with delete-one-speaker jackknife variances, a
    speaker left out of both runs at once. The tables must list the same conditions, groups and
    speakers in the same order (:func:`compare_tables` checks)."""
    sg, n_groups = table_a.speaker_group, len(table_a.groups)
    onehot = np.zeros((sg.size, n_groups))
    onehot[np.arange(sg.size), sg] = 1.0

    def parts(table: CountTable) -> tuple[np.ndarray, ...]:
        errors, words = table.errors, table.ref_words
        e_sum, n_sum = errors.T @ onehot, words.T @ onehot  # (C, G)
        wer = _ratio(e_sum, n_sum)
        wer_loo = _ratio(e_sum.T[sg] - errors, n_sum.T[sg] - words)  # (S, C)
        return (
            wer,
            _degrade(wer, wer[:1], relative),
            wer_loo,
            _degrade(wer_loo, wer_loo[:, :1], relative),
        )

    wer_a, delta_a, wer_loo_a, delta_loo_a = parts(table_a)
    wer_b, delta_b, wer_loo_b, delta_loo_b = parts(table_b)

    def u_loo(delta: np.ndarray, delta_loo: np.ndarray) -> np.ndarray:
        """U with each speaker left out of its group (the other groups whole), (S, C)."""
        full = np.broadcast_to(delta, (sg.size, *delta.shape)).copy()  # (S, C, G)
        full[np.arange(sg.size), :, sg] = delta_loo
        return disparity(full)[0]

    u_change = disparity(delta_b)[0] - disparity(delta_a)[0]
    u_change_loo = u_loo(delta_b, delta_loo_b) - u_loo(delta_a, delta_loo_a)
    var_u = np.zeros(u_change.shape)
    for g in range(n_groups):
        rows = u_change_loo[sg == g]
        n = rows.shape[0]
        if n < 2:
            var_u[:] = np.nan
            break
        var_u += (n - 1) / n * ((rows - rows.mean(axis=0)) ** 2).sum(axis=0)
    has_words = (table_a.ref_words > 0) | (table_b.ref_words > 0)
    in_delta = has_words | has_words[:, :1]
    n_wer = (has_words.astype(np.float64).T @ onehot).astype(np.int64)
    n_delta = (in_delta.astype(np.float64).T @ onehot).astype(np.int64)
    var_wer = _jackknife_var(wer_loo_b - wer_loo_a, has_words, sg, n_wer, n_groups)
    loo = delta_loo_b - delta_loo_a
    undefined = (in_delta & ~np.isfinite(loo)).astype(np.float64).T @ onehot
    var_delta = _jackknife_var(loo, in_delta, sg, n_delta, n_groups)
    var_delta = np.where(undefined > 0, np.nan, var_delta)
    return PairedChange(
        wer=wer_b - wer_a,
        var_wer=var_wer,
        n_wer=n_wer,
        delta=delta_b - delta_a,
        var_delta=var_delta,
        n_delta=n_delta,
        disparity=u_change,
        var_disparity=var_u,
    )


def _change_estimate(value: float, var: float, n: int, level: float) -> Estimate:
    """A paired change with its t interval (n − 1 df), or the reason there is none."""
    if not math.isfinite(value):
        return Estimate(math.nan, math.nan, math.nan, "undefined in a run (no words, or Δ)")
    if n < MIN_SPEAKERS_FOR_INTERVAL:
        return Estimate(
            value,
            math.nan,
            math.nan,
            f"no interval: {n} paired speaker{'s' if n != 1 else ''}; intervals from fewer "
            f"than {MIN_SPEAKERS_FOR_INTERVAL} speakers do not reach their stated coverage",
        )
    if not math.isfinite(var) or var <= 0:
        return Estimate(
            value,
            math.nan,
            math.nan,
            "no interval: every speaker changed alike (or leaving one out makes Δ undefined), "
            "so the speakers' spread is unknown",
        )
    low, high = t_interval(np.array(value), np.array(var), np.array(n - 1), level=level)
    return Estimate(value, float(low), float(high))


# -- the result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSide:
    """One of the two runs: its folder, backend and item counts (after pairing)."""

    label: str  # "A" or "B"
    path: str
    backend_name: str
    backend_spec: str
    backend_fingerprint: str
    normalizer: str
    n_items: int
    n_failed: int  # items that failed in this run (each is left out of both)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "backend": {
                "name": self.backend_name,
                "spec": self.backend_spec,
                "fingerprint": self.backend_fingerprint,
            },
            "normalizer": self.normalizer,
            "n_items": self.n_items,
            "n_failed": self.n_failed,
        }


@dataclass(frozen=True)
class GroupComparison:
    """One condition × group: each run's WER and Δ, and B − A with paired intervals."""

    group: str
    n_speakers: int  # paired speakers behind Δ's change
    n_items: int  # paired items in the cell (left-out ones included)
    n_excluded: int  # items left out (failed in A or B)
    wer_a: Estimate
    wer_b: Estimate
    delta_a: Estimate
    delta_b: Estimate
    wer_change: Estimate
    delta_change: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n_speakers": self.n_speakers,
            "n_items": self.n_items,
            "n_excluded": self.n_excluded,
            "wer_a_pct": self.wer_a.to_dict(),
            "wer_b_pct": self.wer_b.to_dict(),
            "delta_a_pts": self.delta_a.to_dict(),
            "delta_b_pts": self.delta_b.to_dict(),
            "wer_change_pts": self.wer_change.to_dict(),
            "delta_change_pts": self.delta_change.to_dict(),
        }


def _num(value: float, scale: float = 100.0, digits: int = 6) -> float | None:
    return None if not math.isfinite(value) else round(float(value) * scale, digits)


@dataclass(frozen=True)
class ConditionComparison:
    """One condition: per-group rows, each run's disparity and flag, the test and a verdict
    (``None`` for the clean reference condition)."""

    condition_id: str
    label: str
    is_clean: bool
    groups: tuple[GroupComparison, ...]
    disparity_a: float
    disparity_b: float
    worst_group_a: str | None
    worst_group_b: str | None
    flag_a: str | None
    flag_b: str | None
    p_value: float
    q_value: float
    verdict: Verdict | None
    note: str

    @property
    def disparity_change(self) -> float:
        """U_B − U_A (fraction units; ``nan`` when either is undefined)."""
        return self.disparity_b - self.disparity_a

    def group(self, name: str) -> GroupComparison:
        for row in self.groups:
            if row.group == name:
                return row
        raise KeyError(f"no group {name!r}; groups are {', '.join(g.group for g in self.groups)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition_id": self.condition_id,
            "label": self.label,
            "is_clean": self.is_clean,
            "groups": [g.to_dict() for g in self.groups],
            "disparity_a_pts": _num(self.disparity_a),
            "disparity_b_pts": _num(self.disparity_b),
            "disparity_change_pts": _num(self.disparity_change),
            "worst_group_a": self.worst_group_a,
            "worst_group_b": self.worst_group_b,
            "flag_a": self.flag_a,
            "flag_b": self.flag_b,
            "p_value": _num(self.p_value, 1.0, 8),
            "q_value": _num(self.q_value, 1.0, 8),
            "verdict": self.verdict,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """Two runs of one pack side by side (see the module's docstring)."""

    pack_name: str
    seed: int
    settings: FairnessSettings
    run_a: RunSide
    run_b: RunSide
    n_items: int  # items per run (utterances × conditions)
    n_excluded: int  # left out of both: failed in A, in B or in both
    n_failed_both: int
    normalizer_changed: bool
    conditions: tuple[ConditionComparison, ...]
    notes: tuple[str, ...] = ()

    @property
    def more_uneven(self) -> tuple[str, ...]:
        """Ids of the conditions under which B is significantly more uneven than A."""
        return tuple(c.condition_id for c in self.conditions if c.verdict == "more-uneven")

    @property
    def less_uneven(self) -> tuple[str, ...]:
        """Ids of the conditions under which B is significantly less uneven than A."""
        return tuple(c.condition_id for c in self.conditions if c.verdict == "less-uneven")

    def condition(self, condition_id: str) -> ConditionComparison:
        for cond in self.conditions:
            if cond.condition_id == condition_id:
                return cond
        known = ", ".join(c.condition_id for c in self.conditions)
        raise KeyError(f"no condition {condition_id!r}; conditions are {known}")

    def sentences(self) -> list[str]:
        """Plain-language findings, one per degraded condition with a verdict."""
        out = []
        for cond in self.conditions:
            if cond.is_clean:
                continue
            ua, ub = _pts(cond.disparity_a), _pts(cond.disparity_b)
            gaps = f"gap between groups {ua} under A, {ub} under B"
            q = f"q = {cond.q_value:.3g}" if math.isfinite(cond.q_value) else "no test"
            if cond.verdict == "more-uneven":
                out.append(f"Under {cond.label}, B degrades more unevenly than A ({gaps}; {q}).")
            elif cond.verdict == "less-uneven":
                out.append(f"Under {cond.label}, B degrades less unevenly than A ({gaps}; {q}).")
            elif cond.verdict == "changed":
                out.append(
                    f"Under {cond.label}, B changes the groups differently from A, but the gap is "
                    f"not shown to widen or narrow ({gaps}; {q})."
                )
            elif cond.verdict == "no-difference":
                out.append(
                    f"Under {cond.label}, no difference in unevenness between A and B is shown "
                    f"({gaps}; {q})."
                )
            else:
                out.append(f"Under {cond.label}, too little data to compare: {cond.note}.")
        if self.n_excluded:
            out.append(
                f"{self.n_excluded} of {self.n_items} items failed in one run or both "
                f"(A {self.run_a.n_failed}, B {self.run_b.n_failed}) and were left out of both."
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form: WER in percent, Δ and changes in points (``lastmile/schemas/
        comparison.schema.json``)."""
        s = self.settings
        return {
            "schema_version": COMPARISON_SCHEMA_VERSION,
            "generated_by": {"lastmile": __version__},
            "pack": {"name": self.pack_name, "seed": self.seed},
            "settings": {
                "metric": s.metric,
                "threshold_pts": s.threshold_pts,
                "threshold_rel": s.threshold_rel,
                "alpha": s.alpha,
                "ci_level": s.ci_level,
                "min_speakers": s.min_speakers,
                "interval": "paired delete-one-speaker jackknife, Student t (n - 1 df)",
                "test": "Welch statistic of paired pseudo-values, parametric bootstrap, BH",
            },
            "run_a": self.run_a.to_dict(),
            "run_b": self.run_b.to_dict(),
            "n_items": self.n_items,
            "n_excluded": self.n_excluded,
            "n_failed_both": self.n_failed_both,
            "normalizer_changed": self.normalizer_changed,
            "more_uneven": list(self.more_uneven),
            "less_uneven": list(self.less_uneven),
            "conditions": [c.to_dict() for c in self.conditions],
            "findings": self.sentences(),
            "notes": list(self.notes),
        }


def _pts(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value * 100:.1f}"


def comparison_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :meth:`Comparison.to_dict`, as shipped."""
    import json
    from importlib import resources

    text = (resources.files("lastmile") / "schemas" / "comparison.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# -- from two count tables ---------------------------------------------------------------------


def compare_tables(
    table_a: CountTable,
    table_b: CountTable,
    *,
    settings: FairnessSettings,
    seed: int = 0,
    labels: Mapping[str, str] | None = None,
    excluded: np.ndarray | None = None,
) -> tuple[tuple[ConditionComparison, ...], Analysis, Analysis]:
    """Per condition the side-by-side rows, the paired test and a verdict, and each run's own
    analysis. ``table_a`` and ``table_b`` hold the same items (failed ones marked failed in
    both); ``excluded`` (S, C) counts the items left out per speaker and condition (default:
    ``table_a.n_failed``). Raises :class:`ConfigError` when the tables are not paired."""
    for what in ("conditions", "groups", "speakers"):
        if getattr(table_a, what) != getattr(table_b, what):
            raise ConfigError(
                f"compare: the runs' {what} differ; they are not runs of the same items"
            )
    if not np.array_equal(table_a.speaker_group, table_b.speaker_group):
        raise ConfigError("compare: a speaker is in different groups in the two runs")
    if not np.array_equal(table_a.n_items, table_b.n_items):
        raise ConfigError("compare: the runs hold different items per speaker and condition")
    relative = settings.metric == "relative"
    level = settings.ci_level
    labels = labels or {}
    excluded = table_a.n_failed if excluded is None else excluded
    analysis_a = analyze_table(table_a, settings=settings, seed=seed, plan=False)
    analysis_b = analyze_table(table_b, settings=settings, seed=seed, plan=False)
    change = paired_change(table_a, table_b, relative=relative)
    sg, n_groups = table_a.speaker_group, len(table_a.groups)
    n_cond = len(table_a.conditions)

    p_values = np.full(n_cond, np.nan)
    if n_cond > 1 and n_groups >= 2:
        psi_a = pseudo_values(table_a.errors, table_a.ref_words, sg, n_groups, relative=relative)
        psi_b = pseudo_values(table_b.errors, table_b.ref_words, sg, n_groups, relative=relative)
        test_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        _, p_values[1:] = heterogeneity_test(psi_b - psi_a, sg, n_groups, rng=test_rng)
    q_values = np.full(n_cond, np.nan)
    q_values[1:] = benjamini_hochberg(p_values[1:])

    delta_a = np.array([[c.delta.value for c in row] for row in analysis_a.cells])
    delta_b = np.array([[c.delta.value for c in row] for row in analysis_b.cells])
    u_a, worst_a, _ = disparity(delta_a)
    u_b, worst_b, _ = disparity(delta_b)
    onehot = np.zeros((sg.size, n_groups))
    onehot[np.arange(sg.size), sg] = 1.0
    items = (table_a.n_items.T @ onehot).astype(np.int64)  # (C, G)
    left_out = (np.asarray(excluded, dtype=np.float64).T @ onehot).astype(np.int64)

    out = []
    for c, cid in enumerate(table_a.conditions):
        rows = []
        for g, group in enumerate(table_a.groups):
            cell_a, cell_b = analysis_a.cells[c][g], analysis_b.cells[c][g]
            if c == 0:
                d_change = Estimate(0.0, 0.0, 0.0, "reference condition")
            else:
                d_change = _change_estimate(
                    float(change.delta[c, g]),
                    float(change.var_delta[c, g]),
                    int(change.n_delta[c, g]),
                    level,
                )
            rows.append(
                GroupComparison(
                    group=group,
                    n_speakers=int(change.n_delta[c, g]),
                    n_items=int(items[c, g]),
                    n_excluded=int(left_out[c, g]),
                    wer_a=cell_a.wer,
                    wer_b=cell_b.wer,
                    delta_a=cell_a.delta,
                    delta_b=cell_b.delta,
                    wer_change=_change_estimate(
                        float(change.wer[c, g]),
                        float(change.var_wer[c, g]),
                        int(change.n_wer[c, g]),
                        level,
                    ),
                    delta_change=d_change,
                )
            )
        verdict: Verdict | None
        if c == 0:
            verdict, note = None, "reference condition"
        else:
            verdict, note = _verdict(
                c=c,
                groups=table_a.groups,
                change=change,
                items=items,
                left_out=left_out,
                settings=settings,
                q=float(q_values[c]),
                u_a=float(u_a[c]),
                u_b=float(u_b[c]),
                u_interval=t_interval(
                    np.array(change.disparity[c]),
                    np.array(change.var_disparity[c]),
                    np.array(float(change.n_delta[c].min()) - 1.0),
                    level=level,
                ),
            )
        out.append(
            ConditionComparison(
                condition_id=cid,
                label=labels.get(cid, cid),
                is_clean=c == 0,
                groups=tuple(rows),
                disparity_a=float(u_a[c]) if c else math.nan,
                disparity_b=float(u_b[c]) if c else math.nan,
                worst_group_a=table_a.groups[int(worst_a[c])] if c and worst_a[c] >= 0 else None,
                worst_group_b=table_a.groups[int(worst_b[c])] if c and worst_b[c] >= 0 else None,
                flag_a=analysis_a.verdicts[c].flag,
                flag_b=analysis_b.verdicts[c].flag,
                p_value=float(p_values[c]),
                q_value=float(q_values[c]),
                verdict=verdict,
                note=note,
            )
        )
    return tuple(out), analysis_a, analysis_b


def _verdict(
    *,
    c: int,
    groups: tuple[str, ...],
    change: PairedChange,
    items: np.ndarray,
    left_out: np.ndarray,
    settings: FairnessSettings,
    q: float,
    u_a: float,
    u_b: float,
    u_interval: tuple[np.ndarray, np.ndarray],
) -> tuple[Verdict, str]:
    problems = []
    if len(groups) < 2:
        problems.append("fewer than two groups to compare")
    for g, group in enumerate(groups):
        for k, where in ((c, "this condition"), (0, "the clean condition")):
            tried, gone = int(items[k, g]), int(left_out[k, g])
            if tried and gone / tried > MOSTLY_EXCLUDED:
                problems.append(
                    f"group {group!r}: {gone} of {tried} items in {where} failed in a run "
                    "(see the errors in each run's items.csv, then resume the run)"
                )
        n = int(change.n_delta[c, g])
        if n < settings.min_speakers:
            problems.append(
                f"group {group!r} has {n} paired speaker{'s' if n != 1 else ''} "
                f"(minimum {settings.min_speakers})"
            )
    if not problems and not math.isfinite(q):
        problems.append(
            "the test cannot be computed (a group's Δ is undefined in a run, or every speaker "
            "of a group changed alike)"
        )
    if problems:
        return "insufficient-data", "; ".join(problems)
    alpha = settings.alpha
    if q > alpha:
        return (
            "no-difference",
            f"the groups' change from A to B is not shown to differ: q = {q:.3g} > α = {alpha:g}",
        )
    low, high = float(u_interval[0]), float(u_interval[1])
    level = f"{settings.ci_level * 100:g}%"
    differ = f"the groups change differently (q = {q:.3g} ≤ α)"
    gap = f"gap {_pts(u_a)} → {_pts(u_b)}"
    if low > 0:
        return "more-uneven", f"{differ} and the gap widens: {gap} ({level} jackknife bound > 0)"
    if high < 0:
        return "less-uneven", f"{differ} and the gap narrows: {gap} ({level} jackknife bound < 0)"
    return (
        "changed",
        f"{differ}, but the gap is not shown to widen or narrow ({gap}; the groups may have "
        "swapped places)",
    )


# -- from two run folders ----------------------------------------------------------------------


def _meta_text(meta: Mapping[str, Any], *keys: str) -> str:
    value: Any = meta
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, sort_keys=True)


def _identity_parts(meta: Mapping[str, Any], where: Path) -> Mapping[str, Any]:
    identity = meta.get("identity")
    parts = identity.get("parts") if isinstance(identity, Mapping) else None
    if not isinstance(parts, Mapping):
        raise ConfigError(
            f"{where / 'run.json'}: no identity (written by an older lastmile), so it cannot "
            "be shown to be a run of the same items; rerun the pack with this lastmile"
        )
    return parts


def check_same_items(
    meta_a: Mapping[str, Any],
    meta_b: Mapping[str, Any],
    *,
    path_a: Path,
    path_b: Path,
    allow_normalizer_change: bool = False,
) -> list[str]:
    """Refuse (:class:`ConfigError` naming what differs) two runs that are not of the same
    pack selection; returns notes about differences that are allowed."""
    parts_a = _identity_parts(meta_a, path_a)
    parts_b = _identity_parts(meta_b, path_b)
    differ = [what for key, what in _SAME_PARTS if parts_a.get(key) != parts_b.get(key)]
    if parts_a.get("version") != parts_b.get("version"):
        differ.insert(0, "identity version (the runs were made by different lastmile versions)")
    if differ:
        raise ConfigError(
            f"compare: {path_a} and {path_b} are not runs of the same items: "
            f"{'; '.join(differ)} differ. Run the same pack (same seed, conditions and corpus) "
            "with each recognizer: lastmile run PACK --asr SPEC --out FOLDER"
        )
    notes = []
    norm_a, norm_b = _meta_text(meta_a, "normalizer"), _meta_text(meta_b, "normalizer")
    if parts_a.get("normalizer") != parts_b.get("normalizer") or norm_a != norm_b:
        if not allow_normalizer_change:
            raise ConfigError(
                f"compare: the runs scored with different normalizers ({norm_a or '?'} in "
                f"{path_a}, {norm_b or '?'} in {path_b}), so their WERs are not comparable; "
                "rerun one with the other's normalizer, or pass --allow-normalizer-change"
            )
        notes.append(
            f"the runs scored with different normalizers ({norm_a} in A, {norm_b} in B): part "
            "of every change is the normalizer's"
        )
    if parts_a.get("backend") == parts_b.get("backend"):
        notes.append("both runs used the same backend fingerprint")
    fair_a, fair_b = meta_a.get("fairness") or {}, meta_b.get("fairness") or {}
    if fair_a != fair_b:
        notes.append("the runs' fairness settings differ; run A's are used")
    return notes


def _settings(meta: Mapping[str, Any], where: Path) -> FairnessSettings:
    try:
        return FairnessSettings.model_validate(meta.get("fairness") or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"fairness.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"{where / 'run.json'}: {problems}; fix the pack's fairness: block"
        ) from None


_Items = dict[tuple[str, str], dict[str, Any]]


def _keyed(items: Iterable[Mapping[str, Any]], where: Path) -> _Items:
    out: _Items = {}
    for item in items:
        key = (str(item["condition_id"]), str(item["utterance_id"]))
        if key in out:
            raise ConfigError(
                f"{where / 'items.csv'}: utterance {key[1]!r} in condition {key[0]!r} appears "
                "twice; each item must be counted once (resume the run, do not append)"
            )
        out[key] = dict(item)
    return out


def _missing_text(keys: Sequence[tuple[str, str]]) -> str:
    shown = ", ".join(f"{u} in {c}" for c, u in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def compare_runs(
    a_dir: str | Path,
    b_dir: str | Path,
    *,
    allow_normalizer_change: bool = False,
) -> Comparison:
    """Compare run folder ``b_dir`` (B) with ``a_dir`` (A) item by item.

    Both must be runs of the same pack selection (seed, conditions, corpus, grouping, renderer;
    see run.json's ``identity``) and scored with the same normalizer unless
    ``allow_normalizer_change``; each must hold every item of the other. Items that failed in
    either run are left out of both and counted. The fairness settings (metric, α, threshold,
    ``min_speakers``, ``ci_level``) are run A's. Deterministic.

    Raises :class:`~lastmile.errors.ConfigError` naming what differs or what is missing.
    """
    from lastmile.report.run_folder import iter_items_csv, read_run_json

    path_a, path_b = Path(a_dir), Path(b_dir)
    meta_a, meta_b = read_run_json(path_a), read_run_json(path_b)
    if path_a.resolve() == path_b.resolve():
        raise ConfigError(f"compare: RUN_A and RUN_B are the same folder ({path_a}); give two runs")
    notes = check_same_items(
        meta_a,
        meta_b,
        path_a=path_a,
        path_b=path_b,
        allow_normalizer_change=allow_normalizer_change,
    )
    settings = _settings(meta_a, path_a)
    items_a = _keyed(iter_items_csv(path_a / "items.csv"), path_a)
    items_b = _keyed(iter_items_csv(path_b / "items.csv"), path_b)
    only_a = sorted(k for k in items_a if k not in items_b)
    only_b = sorted(k for k in items_b if k not in items_a)
    for missing, short, full in ((only_a, "B", path_b), (only_b, "A", path_a)):
        if missing:
            raise ConfigError(
                f"compare: run {short} ({full}) lacks {len(missing)} item(s) the other run has "
                f"({_missing_text(missing)}); finish it with lastmile run PACK --resume {full}"
            )
    if not items_a:
        raise ConfigError(f"{path_a / 'items.csv'}: no items; the run finished nothing")
    order = {str(c.get("id")): k for k, c in enumerate(meta_a.get("conditions") or [])}
    keys = sorted(items_a, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))
    failed_a = failed_b = both = 0
    rows_a, rows_b = [], []
    for key in keys:
        a, b = items_a[key], items_b[key]
        for field in ("speaker", "group"):
            if str(a[field]) != str(b[field]):
                raise ConfigError(
                    f"compare: utterance {key[1]!r}: {field} is {a[field]!r} in A and "
                    f"{b[field]!r} in B; the runs are not of the same corpus"
                )
        bad_a, bad_b = bool(a.get("error")), bool(b.get("error"))
        failed_a += bad_a
        failed_b += bad_b
        both += bad_a and bad_b
        if bad_a or bad_b:
            reason = "failed in " + ("both runs" if bad_a and bad_b else "A" if bad_a else "B")
            a = {**a, "error": a.get("error") or reason}
            b = {**b, "error": b.get("error") or reason}
        rows_a.append(a)
        rows_b.append(b)
    clean = str(meta_a["clean_condition_id"])
    try:
        table_a = count_table(rows_a, clean_condition_id=clean)
        table_b = count_table(rows_b, clean_condition_id=clean)
    except ConfigError as exc:
        raise ConfigError(f"compare: {exc}") from exc
    labels = {
        str(c.get("id")): str(c.get("label") or c.get("id")) for c in meta_a.get("conditions") or []
    }
    seed = (meta_a.get("pack") or {}).get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        seed = 0
    conditions, _, _ = compare_tables(table_a, table_b, settings=settings, seed=seed, labels=labels)
    n_items = len(keys)

    def side(label: str, path: Path, meta: Mapping[str, Any], failed: int) -> RunSide:
        return RunSide(
            label=label,
            path=str(path),
            backend_name=_meta_text(meta, "backend", "name"),
            backend_spec=_meta_text(meta, "backend", "spec"),
            backend_fingerprint=_meta_text(meta, "backend", "fingerprint"),
            normalizer=_meta_text(meta, "normalizer"),
            n_items=n_items,
            n_failed=failed,
        )

    return Comparison(
        pack_name=_meta_text(meta_a, "pack", "name"),
        seed=seed,
        settings=settings,
        run_a=side("A", path_a, meta_a, failed_a),
        run_b=side("B", path_b, meta_b, failed_b),
        n_items=n_items,
        n_excluded=failed_a + failed_b - both,
        n_failed_both=both,
        normalizer_changed=any("normalizers" in n for n in notes),
        conditions=conditions,
        notes=tuple(notes),
    )
