"""Checks of the analysis on simulated runs with a known truth: false flags, coverage, power.

Used by ``benchmarks/stats_validity.py`` (large) and ``tests/analysis`` (small, fixed seeds).
Every simulation draws from its own child of ``SeedSequence(seed)``; nothing global.

Scenarios (3 groups whose clean population WERs differ: 8 %, 12 %, 15 %):

* null, absolute: every group loses the same WER points in each degraded condition;
* null, relative: every group's WER grows by the same factor;
* power: as the null, but group ``c`` loses ``extra_pts`` more WER points (one degraded
  condition, so the FDR family is that condition alone).

The truth of a cell is its population pooled WER (see :mod:`lastmile.analysis.simulate`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from lastmile.analysis.analyze import analyze_table
from lastmile.analysis.result import Analysis
from lastmile.analysis.settings import FairnessSettings, Metric
from lastmile.analysis.simulate import SimulationSpec, simulate_table
from lastmile.analysis.stats import percentile_interval

__all__ = [
    "CLEAN_WER",
    "CoverageResult",
    "NullResult",
    "ci_coverage",
    "null_flag_rate",
    "null_truth",
    "power",
]

CLEAN_WER: dict[str, float] = {"a": 0.08, "b": 0.12, "c": 0.15}
_ABSOLUTE_STEPS = (0.03, 0.07, 0.12, 0.20)  # WER lost by every group
_RELATIVE_STEPS = (0.25, 0.6, 1.0, 1.6)  # WER growth factor − 1 of every group


def null_truth(metric: Metric) -> dict[str, dict[str, float]]:
    """Population WER per condition and group where every group degrades alike."""
    truth = {"clean": dict(CLEAN_WER)}
    steps = _ABSOLUTE_STEPS if metric == "absolute" else _RELATIVE_STEPS
    for k, step in enumerate(steps):
        truth[f"deg{k}"] = {
            g: (w + step if metric == "absolute" else w * (1.0 + step))
            for g, w in CLEAN_WER.items()
        }
    return truth


def _true_delta(truth: dict[str, dict[str, float]], cond: str, group: str, metric: Metric) -> float:
    clean, here = truth["clean"][group], truth[cond][group]
    return here - clean if metric == "absolute" else here / clean - 1.0


def _runs(
    truth: dict[str, dict[str, float]],
    *,
    metric: Metric,
    n_sims: int,
    seed: int,
    n_speakers: int,
    n_utterances: int,
    n_bootstrap: int,
    n_permutations: int,
) -> list[Analysis]:
    spec = SimulationSpec(truth, n_speakers=n_speakers, n_utterances=n_utterances)
    settings = FairnessSettings(
        metric=metric, n_bootstrap=n_bootstrap, n_permutations=n_permutations
    )
    out = []
    for child in np.random.SeedSequence(seed).spawn(n_sims):
        data_seq, analysis_seq = child.spawn(2)
        table = simulate_table(spec, rng=np.random.default_rng(data_seq))
        analysis_seed = int(analysis_seq.generate_state(1, dtype=np.uint32)[0])
        out.append(analyze_table(table, settings=settings, seed=analysis_seed))
    return out


@dataclass(frozen=True)
class NullResult:
    """Under the null: share of degraded conditions flagged ``uneven`` and share with p ≤ α."""

    flag_rate: float
    p_below_alpha: float
    n_conditions: int
    n_sims: int


def null_flag_rate(
    *,
    metric: Metric = "absolute",
    n_sims: int = 200,
    seed: int = 0,
    n_speakers: int = 20,
    n_utterances: int = 10,
    n_bootstrap: int = 500,
    n_permutations: int = 999,
) -> NullResult:
    """Simulate runs where all groups degrade alike (4 degraded conditions each)."""
    runs = _runs(
        null_truth(metric),
        metric=metric,
        n_sims=n_sims,
        seed=seed,
        n_speakers=n_speakers,
        n_utterances=n_utterances,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
    )
    flags = [a.verdict(c).flag for a in runs for c in a.degraded_conditions]
    alpha = runs[0].settings.alpha
    p_values = [a.verdict(c).p_value for a in runs for c in a.degraded_conditions]
    return NullResult(
        flag_rate=flags.count("uneven") / len(flags),
        p_below_alpha=float(np.mean([p <= alpha for p in p_values])),
        n_conditions=len(flags),
        n_sims=n_sims,
    )


@dataclass(frozen=True)
class CoverageResult:
    """Share of intervals containing the truth: per-group Δ, pairwise Δ differences, both."""

    coverage: float
    delta: float
    pairs: float
    plain_percentile: float  # the same intervals read at plain (1 − level)/2 tails, for contrast
    n_intervals: int
    n_sims: int


def ci_coverage(
    *,
    metric: Metric = "absolute",
    n_sims: int = 200,
    seed: int = 0,
    n_speakers: int = 20,
    n_utterances: int = 10,
    n_bootstrap: int = 1000,
) -> CoverageResult:
    """Coverage of the nominal-95 % intervals of Δ(c, g) and Δ(c, a) − Δ(c, b) on null-shaped
    truths with different clean WERs (the truth: population pooled WERs)."""
    truth = null_truth(metric)
    # Make the groups differ in degradation too, so pairwise truths are not all zero.
    for k, cond in enumerate(c for c in truth if c != "clean"):
        truth[cond]["c"] += 0.02 * k
    runs = _runs(
        truth,
        metric=metric,
        n_sims=n_sims,
        seed=seed,
        n_speakers=n_speakers,
        n_utterances=n_utterances,
        n_bootstrap=n_bootstrap,
        n_permutations=99,
    )
    hits_delta: list[bool] = []
    hits_pairs: list[bool] = []
    hits_plain: list[bool] = []
    for analysis in runs:
        tail = (1.0 - analysis.settings.ci_level) / 2.0
        draws = analysis.delta_draws
        for cond in analysis.degraded_conditions:
            c = analysis.conditions.index(cond)
            for g in analysis.groups:
                target = _true_delta(truth, cond, g, metric)
                est = analysis.delta(cond, g)
                hits_delta.append(est.ci_low <= target <= est.ci_high)
                low, high = percentile_interval(draws[:, c, analysis.groups.index(g)], tail)
                hits_plain.append(bool(low <= target <= high))
            for a, b in itertools.combinations(analysis.groups, 2):
                est = analysis.difference(cond, a, b)
                target = _true_delta(truth, cond, a, metric) - _true_delta(truth, cond, b, metric)
                hits_pairs.append(est.ci_low <= target <= est.ci_high)
                ia, ib = analysis.groups.index(a), analysis.groups.index(b)
                low, high = percentile_interval(draws[:, c, ia] - draws[:, c, ib], tail)
                hits_plain.append(bool(low <= target <= high))
    every = hits_delta + hits_pairs
    return CoverageResult(
        coverage=float(np.mean(every)),
        delta=float(np.mean(hits_delta)),
        pairs=float(np.mean(hits_pairs)),
        plain_percentile=float(np.mean(hits_plain)),
        n_intervals=len(every),
        n_sims=n_sims,
    )


def power(
    *,
    metric: Metric = "absolute",
    extra_pts: float = 5.0,
    n_sims: int = 200,
    seed: int = 0,
    n_speakers: int = 10,
    n_utterances: int = 20,
    n_bootstrap: int = 500,
    n_permutations: int = 999,
) -> float:
    """Share of runs flagging ``uneven`` when group ``c`` loses ``extra_pts`` more WER points.

    One degraded condition: every group degrades as in the null's second condition, group c
    by ``extra_pts`` WER points more on top (for metric relative, that is 5 points on top of
    the common relative growth).
    """
    truth = null_truth(metric)
    cond = "deg1"
    truth = {"clean": truth["clean"], cond: dict(truth[cond])}
    truth[cond]["c"] += extra_pts / 100.0
    runs = _runs(
        truth,
        metric=metric,
        n_sims=n_sims,
        seed=seed,
        n_speakers=n_speakers,
        n_utterances=n_utterances,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
    )
    flagged = [a.verdict(cond).flag == "uneven" for a in runs]
    return float(np.mean(flagged)) if flagged else math.nan
