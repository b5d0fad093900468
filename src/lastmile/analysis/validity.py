"""Checks of the analysis on synthetic runs with a known truth: coverage, false flags, power.

Used by ``benchmarks/stats_validity.py`` (large) and ``tests/analysis`` (small, fixed seeds).
Runs come from :mod:`lastmile.analysis.synthetic` (beta-binomial errors, insertion bursts,
speaker, utterance and speaker × condition effects) and go through the real
:func:`~lastmile.analysis.analyze_table`. Every run draws from its own child of
``SeedSequence(seed)``; nothing global.

The groups differ in clean WER (8 %, 12 %, 20 %), in speaker spread (logit SD 0.4, 0.6, 0.9:
the worst group is also the most varied) and, where a setting says so, in size. A null pack
has 10 degraded conditions in which every group loses the same WER points (metric absolute)
or grows by the same factor (metric relative).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lastmile.analysis.analyze import analyze_table
from lastmile.analysis.result import Analysis
from lastmile.analysis.settings import FairnessSettings, Metric
from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_table

__all__ = [
    "CLEAN_WER",
    "CoverageResult",
    "NullResult",
    "VerdictShares",
    "coverage",
    "null_uneven_rate",
    "pack_truth",
    "verdict_shares",
]

CLEAN_WER: tuple[float, ...] = (0.08, 0.12, 0.20)
SPEAKER_SD: tuple[float, ...] = (0.4, 0.6, 0.9)
GROUPS = ("a", "b", "c")
_STEPS = np.linspace(0.02, 0.25, 10)  # WER points lost (absolute) or 4 x growth (relative)


def pack_truth(
    metric: Metric, *, gap: float = 0.0, gap_condition: int = 5, n_conditions: int = 10
) -> np.ndarray:
    """True pooled WER, shape (1 + n_conditions, 3): groups degrade alike, except that group
    ``c`` has Δ larger by ``gap`` (Δ's unit) in degraded condition ``gap_condition``."""
    clean = np.array(CLEAN_WER)
    steps = np.linspace(0.02, 0.25, n_conditions)
    rows = [clean]
    for k, step in enumerate(steps, start=1):
        base = clean * (1.0 + 4.0 * step) if metric == "relative" else clean + step
        extra = np.array([0.0, 0.0, gap]) if k == gap_condition else np.zeros(3)
        rows.append(base + (clean * extra if metric == "relative" else extra))
    return np.stack(rows)


def true_delta(truth: np.ndarray, metric: Metric) -> np.ndarray:
    """Δ of a truth table (same shape)."""
    return truth / truth[:1] - 1.0 if metric == "relative" else truth - truth[:1]


def _runs(
    truth: np.ndarray,
    *,
    metric: Metric,
    sizes: Sequence[int],
    n_utterances: int,
    n_sims: int,
    seed: int,
    n_bootstrap: int,
) -> list[Analysis]:
    groups = {
        g: GroupSpec(n, list(truth[:, k]), SPEAKER_SD[k])
        for k, (g, n) in enumerate(zip(GROUPS, sizes, strict=True))
    }
    spec = SyntheticRun(groups, n_utterances=n_utterances)
    settings = FairnessSettings(metric=metric, n_bootstrap=n_bootstrap)
    out = []
    for child in np.random.SeedSequence(seed).spawn(n_sims):
        data_seq, analysis_seq = child.spawn(2)
        table = synthetic_table(spec, rng=np.random.default_rng(data_seq))
        analysis_seed = int(analysis_seq.generate_state(1, dtype=np.uint32)[0])
        out.append(analyze_table(table, settings=settings, seed=analysis_seed, plan=False))
    return out


@dataclass(frozen=True)
class CoverageResult:
    """Share of shown 95 % intervals containing the truth, and share of intervals shown."""

    wer: float
    delta: float
    pairs: float
    shown: float
    n_intervals: int
    n_sims: int


def coverage(
    *,
    metric: Metric = "absolute",
    n_speakers: int = 10,
    n_utterances: int = 10,
    n_sims: int = 200,
    seed: int = 0,
) -> CoverageResult:
    """Coverage of WER, Δ and pairwise Δ differences (truth: population pooled WERs); group c
    degrades 3 points (or 3 x its clean WER %) more per condition index, so pairs differ."""
    truth = pack_truth(metric, n_conditions=4)
    truth[1:, 2] += 0.01 * np.arange(1, 5) * (truth[0, 2] if metric == "relative" else 1.0)
    delta = true_delta(truth, metric)
    runs = _runs(
        truth,
        metric=metric,
        sizes=(n_speakers,) * 3,
        n_utterances=n_utterances,
        n_sims=n_sims,
        seed=seed,
        n_bootstrap=100,
    )
    hits: dict[str, list[bool]] = {"wer": [], "delta": [], "pairs": []}
    shown = total = 0
    for analysis in runs:
        for c, cond in enumerate(analysis.conditions):
            for g, group in enumerate(analysis.groups):
                for kind, est, target in (
                    ("wer", analysis.wer(cond, group), truth[c, g]),
                    ("delta", analysis.delta(cond, group), delta[c, g]),
                ):
                    if kind == "delta" and c == 0:
                        continue
                    total += 1
                    if np.isfinite(est.ci_low):
                        shown += 1
                        hits[kind].append(est.ci_low <= target <= est.ci_high)
            if c == 0:
                continue
            for a, b in itertools.combinations(range(3), 2):
                est = analysis.difference(cond, GROUPS[a], GROUPS[b])
                total += 1
                if np.isfinite(est.ci_low):
                    shown += 1
                    target = delta[c, a] - delta[c, b]
                    hits["pairs"].append(est.ci_low <= target <= est.ci_high)

    def share(values: list[bool]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return CoverageResult(
        wer=share(hits["wer"]),
        delta=share(hits["delta"]),
        pairs=share(hits["pairs"]),
        shown=shown / total,
        n_intervals=shown,
        n_sims=n_sims,
    )


@dataclass(frozen=True)
class NullResult:
    """A 10-condition null pack: share of runs with any condition ``uneven`` (family-wise),
    with any q ≤ α, and share of conditions with p ≤ α."""

    familywise_uneven: float
    familywise_q: float
    p_below_alpha: float
    n_sims: int


def null_uneven_rate(
    *,
    metric: Metric = "absolute",
    sizes: Sequence[int] = (10, 10, 10),
    n_utterances: int = 10,
    n_sims: int = 200,
    seed: int = 0,
    n_bootstrap: int = 500,
) -> NullResult:
    """Simulate null packs (every group degrades alike) and count false findings."""
    runs = _runs(
        pack_truth(metric),
        metric=metric,
        sizes=sizes,
        n_utterances=n_utterances,
        n_sims=n_sims,
        seed=seed,
        n_bootstrap=n_bootstrap,
    )
    alpha = runs[0].settings.alpha
    fw_flag: list[bool] = []
    fw_q: list[bool] = []
    p_small: list[bool] = []
    for analysis in runs:
        verdicts = [analysis.verdict(c) for c in analysis.degraded_conditions]
        fw_flag.append(any(v.flag == "uneven" for v in verdicts))
        fw_q.append(any(v.q_value <= alpha for v in verdicts))
        p_small.extend(v.p_value <= alpha for v in verdicts)
    return NullResult(
        familywise_uneven=float(np.mean(fw_flag)),
        familywise_q=float(np.mean(fw_q)),
        p_below_alpha=float(np.mean(p_small)),
        n_sims=n_sims,
    )


@dataclass(frozen=True)
class VerdictShares:
    """Verdict shares of the one condition whose gap is set (``gap_condition``)."""

    uneven: float
    even: float
    inconclusive: float
    insufficient: float
    n_sims: int


def verdict_shares(
    *,
    metric: Metric = "absolute",
    gap: float = 0.0,
    n_speakers: int = 10,
    n_utterances: int = 10,
    n_sims: int = 200,
    seed: int = 0,
    n_bootstrap: int = 500,
) -> VerdictShares:
    """Verdicts of degraded condition 5 of a 10-condition pack where group c's Δ is larger by
    ``gap`` there (0: every condition even; the threshold: a gap that must not be called
    even more than α of the time; larger: power)."""
    runs = _runs(
        pack_truth(metric, gap=gap),
        metric=metric,
        sizes=(n_speakers,) * 3,
        n_utterances=n_utterances,
        n_sims=n_sims,
        seed=seed,
        n_bootstrap=n_bootstrap,
    )
    flags = [a.verdicts[5].flag for a in runs]
    return VerdictShares(
        uneven=flags.count("uneven") / n_sims,
        even=flags.count("even") / n_sims,
        inconclusive=flags.count("inconclusive") / n_sims,
        insufficient=flags.count("insufficient-data") / n_sims,
        n_sims=n_sims,
    )
