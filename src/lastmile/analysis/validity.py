"""Checks of the analysis on synthetic runs with a known truth: coverage, false flags, power.

Used by ``benchmarks/stats_validity.py`` (large) and ``tests/analysis`` (small, fixed seeds).
Runs come from :mod:`lastmile.analysis.synthetic` (beta-binomial errors, insertion bursts,
speaker, utterance and speaker × condition effects) and go through the real
:func:`~lastmile.analysis.analyze_table`. Every run draws from its own child of
``SeedSequence(seed)``; nothing global.

The groups differ in clean WER (8 %, 12 %, 20 %), in speaker spread (logit SD 0.4, 0.6, 0.9:
the worst group is also the most varied) and, where a setting says so, in size. A null pack
has 10 degraded conditions in which every group loses the same WER points (metric absolute)
or grows by the same factor (metric relative). :func:`many_groups_null` checks the test with
4–8 groups of 4–8 speakers at low and high WER (what a hunt's confirmation sees);
:func:`power_study` sets the analysis's power beside an oracle's and other tests' on the same
runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, ncx2, norm

from lastmile.analysis.analyze import analyze_table
from lastmile.analysis.counts import CountTable
from lastmile.analysis.inference import (
    bootstrap_heterogeneity,
    group_means,
    pseudo_values,
    welch_heterogeneity,
)
from lastmile.analysis.result import Analysis
from lastmile.analysis.settings import FairnessSettings, Metric
from lastmile.analysis.stats import benjamini_hochberg
from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_table

__all__ = [
    "CLEAN_WER",
    "CoverageResult",
    "NullResult",
    "PowerResult",
    "VerdictShares",
    "coverage",
    "many_groups_null",
    "null_uneven_rate",
    "pack_truth",
    "power_study",
    "shortcut_null",
    "verdict_shares",
]

CLEAN_WER: tuple[float, ...] = (0.08, 0.12, 0.20)
SPEAKER_SD: tuple[float, ...] = (0.4, 0.6, 0.9)
GROUPS = ("a", "b", "c")
_STEPS = np.linspace(0.02, 0.25, 10)  # WER points lost (absolute) or 4 x growth (relative)


def pack_truth(
    metric: Metric,
    *,
    gap: float = 0.0,
    gap_condition: int = 5,
    n_conditions: int = 10,
    gap_group: int = 2,
) -> np.ndarray:
    """True pooled WER, shape (1 + n_conditions, 3): groups degrade alike, except that group
    ``gap_group`` (default 2: ``c``, the most varied) has Δ larger by ``gap`` (Δ's unit) in
    degraded condition ``gap_condition``."""
    clean = np.array(CLEAN_WER)
    steps = np.linspace(0.02, 0.25, n_conditions)
    rows = [clean]
    for k, step in enumerate(steps, start=1):
        base = clean * (1.0 + 4.0 * step) if metric == "relative" else clean + step
        extra = np.zeros(3)
        if k == gap_condition:
            extra[gap_group] = gap
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
    return [a for _, a in _simulate(spec, settings, n_sims=n_sims, seed=seed)]


def _simulate(
    spec: SyntheticRun, settings: FairnessSettings, *, n_sims: int, seed: int
) -> list[tuple[CountTable, Analysis]]:
    """``n_sims`` synthetic tables of ``spec``, each with its real analysis."""
    out = []
    for child in np.random.SeedSequence(seed).spawn(n_sims):
        data_seq, analysis_seq = child.spawn(2)
        table = synthetic_table(spec, rng=np.random.default_rng(data_seq))
        analysis_seed = int(analysis_seq.generate_state(1, dtype=np.uint32)[0])
        out.append((table, analyze_table(table, settings=settings, seed=analysis_seed, plan=False)))
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
    with any q ≤ α, and share of conditions with p ≤ α. :func:`many_groups_null` also gives
    the last two for Welch's F with capped df (the test before) and for the largest
    studentized pairwise gap under the analysis's parametric bootstrap, on the same runs
    (``nan`` elsewhere)."""

    familywise_uneven: float
    familywise_q: float
    p_below_alpha: float
    n_sims: int
    welch_f_p_below_alpha: float = float("nan")
    welch_f_familywise: float = float("nan")
    max_p_below_alpha: float = float("nan")
    max_familywise: float = float("nan")


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
    return _null_result(runs)


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


def _null_result(analyses: Sequence[Analysis]) -> NullResult:
    alpha = analyses[0].settings.alpha
    fw_flag: list[bool] = []
    fw_q: list[bool] = []
    p_small: list[bool] = []
    for analysis in analyses:
        verdicts = [analysis.verdict(c) for c in analysis.degraded_conditions]
        fw_flag.append(any(v.flag == "uneven" for v in verdicts))
        fw_q.append(any(v.q_value <= alpha for v in verdicts))
        p_small.extend(v.p_value <= alpha for v in verdicts)
    return NullResult(
        familywise_uneven=float(np.mean(fw_flag)),
        familywise_q=float(np.mean(fw_q)),
        p_below_alpha=float(np.mean(p_small)),
        n_sims=len(analyses),
    )


def many_groups_null(
    *,
    n_groups: int,
    n_speakers: int,
    level: str,
    n_utterances: int = 10,
    n_sims: int = 200,
    seed: int = 0,
) -> NullResult:
    """Null packs (10 degraded conditions, every group loses the same points) with many small
    groups. Group j of k has clean WER from 5 % to 12 % and speaker logit SD from 0.4 to 0.9
    (evenly spaced: the worst group is the most varied); ``level`` ``"low"`` adds 2–6 points
    (about 10 % WER under noise), ``"high"`` 25–35 points (about 40 %)."""
    if level not in ("low", "high"):
        raise ValueError(f"level must be 'low' or 'high', got {level!r}")
    clean = np.linspace(0.05, 0.12, n_groups)
    spread = np.linspace(0.4, 0.9, n_groups)
    steps = np.linspace(0.02, 0.06, 10) if level == "low" else np.linspace(0.25, 0.35, 10)
    groups = {
        f"g{j}": GroupSpec(n_speakers, [clean[j], *(clean[j] + steps)], float(spread[j]))
        for j in range(n_groups)
    }
    spec = SyntheticRun(groups, n_utterances=n_utterances)
    settings = FairnessSettings()
    runs = _simulate(spec, settings, n_sims=n_sims, seed=seed)
    result = _null_result([a for _, a in runs])
    # The other tests on the same runs: flagged as the analysis flags (q ≤ α after BH and a
    # shown disparity ≥ the threshold).
    other: dict[str, tuple[list[bool], list[bool]]] = {"welch_f": ([], []), "max": ([], [])}
    test_seqs = np.random.SeedSequence([seed, 1]).spawn(n_sims)
    for (table, analysis), test_seq in zip(runs, test_seqs, strict=True):
        psi = pseudo_values(
            table.errors, table.ref_words, table.speaker_group, n_groups, relative=False
        )
        means, variances, sizes = group_means(psi, table.speaker_group, n_groups)
        sizes_2d = np.broadcast_to(sizes, means.shape)
        shown = np.array([v.disparity.value >= settings.threshold for v in analysis.verdicts[1:]])
        for key, p in (
            ("welch_f", welch_heterogeneity(means, variances, sizes_2d, cap_df=True)[3]),
            (
                "max",
                bootstrap_heterogeneity(
                    means, variances, sizes, rng=np.random.default_rng(test_seq), statistic="max"
                )[1],
            ),
        ):
            other[key][0].extend(p <= settings.alpha)
            other[key][1].append(bool(np.any((benjamini_hochberg(p) <= settings.alpha) & shown)))
    return NullResult(
        familywise_uneven=result.familywise_uneven,
        familywise_q=result.familywise_q,
        p_below_alpha=result.p_below_alpha,
        n_sims=result.n_sims,
        welch_f_p_below_alpha=float(np.mean(other["welch_f"][0])),
        welch_f_familywise=float(np.mean(other["welch_f"][1])),
        max_p_below_alpha=float(np.mean(other["max"][0])),
        max_familywise=float(np.mean(other["max"][1])),
    )


@dataclass(frozen=True)
class PowerResult:
    """Power at one uneven condition among 10 (share of runs flagging it ``uneven``), on the
    same simulated runs: the analysis; an oracle; two other calibrations of the test.

    ``oracle``: a one-sided z test that knows the uneven group, the gap's sign and the true
    standard errors: z = (Δ_gap-group − the precision-weighted mean of the others' Δ) / its
    true sd (the sd over the runs), rejected at z_{1 − α/m} (m = 10: Benjamini–Hochberg's
    threshold for one uneven condition among m). ``oracle_formula``: the same from the normal
    law, Φ(gap / sd − z_{1 − α/m}). ``omnibus_known_se``: the best a test of "all groups alike"
    could do that does not know the group or the sign but knows every standard error: Welch's
    statistic is then χ²_{k−1} with noncentrality (gap / sd)², rejected at χ²_{k−1, 1 − α/m}.
    ``welch_f``: Welch's F with the capped degrees of freedom
    (the test before); ``bootstrap_max``: the largest studentized pairwise gap calibrated by
    the same parametric bootstrap as the analysis's Welch statistic. For these two, flagged is
    q ≤ α after BH over the pack and a shown disparity ≥ the threshold, as the analysis does.

    Two shortcuts that do reach more power, flagged the same way (their false flags:
    :func:`shortcut_null`): ``chi2_reference``, Welch's statistic referred to χ²_{k−1} as if
    the estimated standard errors were the true ones; ``pooled_variance``, the same with each
    group's variance averaged over the pack's conditions (borrowing strength across
    conditions, as empirical-Bayes variance moderation does at its limit).
    """

    uneven: float
    oracle: float
    oracle_formula: float
    omnibus_known_se: float
    contrast_sd: float
    welch_f: float
    bootstrap_max: float
    chi2_reference: float
    pooled_variance: float
    n_sims: int


def _shortcut_p(means: np.ndarray, variances: np.ndarray) -> dict[str, np.ndarray]:
    """p-values per condition (rows) of the two shortcuts in :class:`PowerResult`."""
    k = means.shape[1]

    def chi2_p(variance: np.ndarray) -> np.ndarray:
        w = 1.0 / variance
        centre = (w * means).sum(axis=1, keepdims=True) / w.sum(axis=1, keepdims=True)
        return np.asarray(chi2.sf((w * (means - centre) ** 2).sum(axis=1), k - 1))

    pooled = np.broadcast_to(variances.mean(axis=0, keepdims=True), variances.shape)
    return {"chi2_reference": chi2_p(variances), "pooled_variance": chi2_p(pooled)}


def power_study(
    *,
    gap: float = 0.10,
    gap_group: int = 2,
    n_speakers: int = 10,
    n_utterances: int = 20,
    n_sims: int = 200,
    seed: int = 0,
) -> PowerResult:
    """Power at a ``gap`` (absolute metric) on group ``gap_group`` (0: ``a``, the least
    varied; 2: ``c``, the most varied) in degraded condition 5 of a 10-condition pack."""
    gap_condition = 5
    truth = pack_truth("absolute", gap=gap, gap_group=gap_group, gap_condition=gap_condition)
    spec = SyntheticRun(
        {g: GroupSpec(n_speakers, list(truth[:, k]), SPEAKER_SD[k]) for k, g in enumerate(GROUPS)},
        n_utterances=n_utterances,
    )
    settings = FairnessSettings()
    runs = _simulate(spec, settings, n_sims=n_sims, seed=seed)
    alpha, threshold = settings.alpha, settings.threshold
    flags: dict[str, list[bool]] = {
        "uneven": [],
        "welch_f": [],
        "bootstrap_max": [],
        "chi2_reference": [],
        "pooled_variance": [],
    }
    deltas = []
    test_rngs = np.random.SeedSequence([seed, 1]).spawn(n_sims)
    for (table, analysis), test_seq in zip(runs, test_rngs, strict=True):
        verdict = analysis.verdicts[gap_condition]
        flags["uneven"].append(verdict.flag == "uneven")
        shown = verdict.disparity.value >= threshold
        psi = pseudo_values(table.errors, table.ref_words, table.speaker_group, 3, relative=False)
        means, variances, sizes = group_means(psi, table.speaker_group, 3)
        p_welch = welch_heterogeneity(
            means, variances, np.broadcast_to(sizes, means.shape), cap_df=True
        )[3]
        _, p_max = bootstrap_heterogeneity(
            means, variances, sizes, rng=np.random.default_rng(test_seq), statistic="max"
        )
        tests = {"welch_f": p_welch, "bootstrap_max": p_max, **_shortcut_p(means, variances)}
        for key, p in tests.items():
            q = benjamini_hochberg(p)[gap_condition - 1]
            flags[key].append(bool(q <= alpha and shown))
        deltas.append([analysis.delta(analysis.conditions[gap_condition], g).value for g in GROUPS])
    d = np.array(deltas)  # (n_sims, 3)
    others = [g for g in range(3) if g != gap_group]
    weight = 1.0 / d[:, others].var(axis=0, ddof=1)
    contrast = d[:, gap_group] - (d[:, others] * weight).sum(axis=1) / weight.sum()
    sd = float(contrast.std(ddof=1))
    critical = float(norm.ppf(1.0 - alpha / 10))
    return PowerResult(
        uneven=float(np.mean(flags["uneven"])),
        oracle=float(np.mean(contrast / sd > critical)),
        oracle_formula=float(norm.sf(critical - gap / sd)),
        omnibus_known_se=float(ncx2.sf(chi2.ppf(1.0 - alpha / 10, 2), 2, (gap / sd) ** 2)),
        contrast_sd=sd,
        welch_f=float(np.mean(flags["welch_f"])),
        bootstrap_max=float(np.mean(flags["bootstrap_max"])),
        chi2_reference=float(np.mean(flags["chi2_reference"])),
        pooled_variance=float(np.mean(flags["pooled_variance"])),
        n_sims=n_sims,
    )


def shortcut_null(
    *,
    sizes: Sequence[int] = (10, 10, 10),
    n_utterances: int = 20,
    n_sims: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Family-wise false ``uneven`` rate on 10-condition null packs (absolute metric) of the
    analysis and of the two shortcuts of :class:`PowerResult`, on the same runs (flagged as
    the analysis flags: q ≤ α after BH and a shown disparity ≥ the threshold)."""
    truth = pack_truth("absolute")
    spec = SyntheticRun(
        {
            g: GroupSpec(n, list(truth[:, k]), SPEAKER_SD[k])
            for k, (g, n) in enumerate(zip(GROUPS, sizes, strict=True))
        },
        n_utterances=n_utterances,
    )
    settings = FairnessSettings()
    runs = _simulate(spec, settings, n_sims=n_sims, seed=seed)
    flagged: dict[str, list[bool]] = {"uneven": [], "chi2_reference": [], "pooled_variance": []}
    for table, analysis in runs:
        flagged["uneven"].append(any(v.flag == "uneven" for v in analysis.verdicts[1:]))
        psi = pseudo_values(table.errors, table.ref_words, table.speaker_group, 3, relative=False)
        means, variances, _ = group_means(psi, table.speaker_group, 3)
        shown = np.array([v.disparity.value >= settings.threshold for v in analysis.verdicts[1:]])
        for key, p in _shortcut_p(means, variances).items():
            hit = (benjamini_hochberg(p) <= settings.alpha) & shown
            flagged[key].append(bool(np.any(hit)))
    return {key: float(np.mean(values)) for key, values in flagged.items()}
