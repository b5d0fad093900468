"""``analyze``: per-item counts → :class:`~lastmile.analysis.result.Analysis`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lastmile.analysis.counts import CountTable, count_table
from lastmile.analysis.resampling import (
    bootstrap_group_sums,
    group_sums,
    permutation_group_sums,
)
from lastmile.analysis.result import (
    Analysis,
    CellStats,
    ConditionVerdict,
    Estimate,
    Flag,
    Totals,
)
from lastmile.analysis.settings import FairnessSettings
from lastmile.analysis.stats import (
    benjamini_hochberg,
    bootstrap_variance,
    degradation,
    disparity,
    expanded_tail,
    percentile_interval,
    permutation_p_value,
    pooled_ratio,
    speakers_needed,
)
from lastmile.errors import ConfigError

__all__ = ["analyze", "analyze_table"]


def analyze(
    items: Iterable[Mapping[str, Any]],
    *,
    clean_condition_id: str,
    settings: FairnessSettings,
    seed: int,
) -> Analysis:
    """Pooled WER, Δ, disparity, permutation test, BH q-values and flags of a run.

    ``items``: one mapping per utterance × condition with ``condition_id``, ``utterance_id``,
    ``speaker``, ``group``, ``n_ref``, ``substitutions``, ``deletions``, ``insertions`` (whole
    numbers) and ``error`` (``None``/empty when scored; otherwise the item failed: it counts
    as failed and is left out of WER). ``seed`` is fanned out with ``numpy.random.SeedSequence``
    into the bootstrap and the permutation generators; the result does not depend on item
    order. Raises :class:`~lastmile.errors.ConfigError` on malformed items or when
    ``clean_condition_id`` is missing.
    """
    table = count_table(items, clean_condition_id=clean_condition_id)
    return analyze_table(table, settings=settings, seed=seed)


def _u_stats(errors: np.ndarray, words: np.ndarray, relative: bool) -> tuple[np.ndarray, ...]:
    """(…, C, G) sums → wer, Δ, U, argmax, argmin."""
    wer = pooled_ratio(errors, words)
    delta = degradation(wer, clean_index=0, relative=relative)
    spread, worst, best = disparity(delta)
    return wer, delta, spread, worst, best


def analyze_table(table: CountTable, *, settings: FairnessSettings, seed: int) -> Analysis:
    """The same as :func:`analyze` on an already folded :class:`CountTable`."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"analysis: seed: expected a whole number >= 0, got {seed!r}")
    n_cond, n_groups = len(table.conditions), len(table.groups)
    relative = settings.metric == "relative"
    boot_seq, perm_seq = np.random.SeedSequence(int(seed)).spawn(2)

    errors = table.errors
    values = np.concatenate([errors, table.ref_words], axis=1)  # (S, 2C)

    # Observed.
    sums = group_sums(values, table.speaker_group, n_groups)  # (2C, G)
    wer, delta, spread, worst, best = _u_stats(sums[:n_cond], sums[n_cond:], relative)

    # Bootstrap: same draws for every condition.
    boot = bootstrap_group_sums(
        values,
        table.speaker_group,
        n_groups,
        n_draws=settings.n_bootstrap,
        rng=np.random.default_rng(boot_seq),
    )
    b_wer, b_delta, b_spread, _, _ = _u_stats(boot[:, :n_cond], boot[:, n_cond:], relative)
    speakers_in_cell = np.stack(
        [
            ((table.ref_words > 0) & (table.speaker_group[:, None] == g)).sum(axis=0)
            for g in range(n_groups)
        ],
        axis=1,
    )  # (C, G): speakers with scored reference words
    speakers_for_delta = np.minimum(speakers_in_cell, speakers_in_cell[:1])
    level = settings.ci_level
    wer_var, delta_var = bootstrap_variance(b_wer), bootstrap_variance(b_delta)
    wer_lo, wer_hi = percentile_interval(
        b_wer,
        expanded_tail(level, variances=wer_var[..., None], n_speakers=speakers_in_cell[..., None]),
    )
    delta_lo, delta_hi = percentile_interval(
        b_delta,
        expanded_tail(
            level, variances=delta_var[..., None], n_speakers=speakers_for_delta[..., None]
        ),
    )
    rows = np.arange(n_cond)
    pair = np.stack([np.maximum(worst, 0), np.maximum(best, 0)], axis=1)  # (C, 2)
    u_lo, u_hi = percentile_interval(
        b_spread,
        expanded_tail(
            level,
            variances=delta_var[rows[:, None], pair],
            n_speakers=speakers_for_delta[rows[:, None], pair],
        ),
    )
    delta_se = np.sqrt(delta_var)  # (C, G)

    # Permutation test of U, non-clean conditions.
    perm = permutation_group_sums(
        values,
        table.speaker_group,
        n_groups,
        n_draws=settings.n_permutations,
        rng=np.random.default_rng(perm_seq),
    )
    _, _, p_spread, _, _ = _u_stats(perm[:, :n_cond], perm[:, n_cond:], relative)
    p_values = np.full(n_cond, np.nan)
    for c in range(1, n_cond):
        p_values[c] = permutation_p_value(float(spread[c]), p_spread[:, c])
    q_values = np.full(n_cond, np.nan)
    q_values[1:] = benjamini_hochberg(p_values[1:])

    # Cells.
    count_sums = group_sums(
        np.concatenate(
            [
                table.n_items,
                table.n_failed,
                table.ref_words,
                table.substitutions,
                table.deletions,
                table.insertions,
            ],
            axis=1,
        ).astype(np.float64),
        table.speaker_group,
        n_groups,
    ).reshape(6, n_cond, n_groups)
    counts = np.rint(count_sums).astype(np.int64)
    cells: list[tuple[CellStats, ...]] = []
    for c, condition_id in enumerate(table.conditions):
        row = []
        for g, group in enumerate(table.groups):
            items_, failed, words, subs, dels, ins = (int(counts[k, c, g]) for k in range(6))
            row.append(
                CellStats(
                    condition_id=condition_id,
                    group=group,
                    n_items=items_,
                    n_failed=failed,
                    n_speakers=int(speakers_in_cell[c, g]),
                    n_ref_words=words,
                    n_errors=subs + dels + ins,
                    substitutions=subs,
                    deletions=dels,
                    insertions=ins,
                    wer=_estimate(wer[c, g], wer_lo[c, g], wer_hi[c, g]),
                    delta=_estimate(delta[c, g], delta_lo[c, g], delta_hi[c, g]),
                )
            )
        cells.append(tuple(row))

    # Verdicts.
    verdicts: list[ConditionVerdict] = []
    for c, condition_id in enumerate(table.conditions):
        disp = _estimate(spread[c], u_lo[c], u_hi[c])
        w, b = int(worst[c]), int(best[c])
        worst_group = table.groups[w] if w >= 0 else None
        best_group = table.groups[b] if b >= 0 else None
        if c == 0:
            verdicts.append(
                ConditionVerdict(
                    condition_id=condition_id,
                    is_clean=True,
                    disparity=disp,
                    worst_group=None,
                    best_group=None,
                    p_value=math.nan,
                    q_value=math.nan,
                    flag=None,
                    speakers_needed=None,
                    note="reference condition",
                )
            )
            continue
        flag, needed, note = _decide(
            c=c,
            table=table,
            settings=settings,
            spread=float(spread[c]),
            q=float(q_values[c]),
            delta=delta,
            delta_se=delta_se,
            speakers_in_cell=speakers_in_cell,
            worst=w,
            best=b,
        )
        verdicts.append(
            ConditionVerdict(
                condition_id=condition_id,
                is_clean=False,
                disparity=disp,
                worst_group=worst_group,
                best_group=best_group,
                p_value=float(p_values[c]),
                q_value=float(q_values[c]),
                flag=flag,
                speakers_needed=needed,
                note=note,
            )
        )

    flags = [v.flag for v in verdicts]
    totals = Totals(
        n_items=int(table.n_items.sum()),
        n_failed=int(table.n_failed.sum()),
        n_conditions=n_cond,
        n_groups=n_groups,
        n_speakers=len(table.speakers),
        n_uneven=flags.count("uneven"),
        n_inconclusive=flags.count("inconclusive"),
        n_insufficient=flags.count("insufficient-data"),
    )
    b_delta.flags.writeable = False
    return Analysis(
        settings=settings,
        seed=int(seed),
        clean_condition_id=table.conditions[0],
        conditions=table.conditions,
        groups=table.groups,
        cells=tuple(cells),
        verdicts=tuple(verdicts),
        totals=totals,
        delta_draws=b_delta,
    )


def _estimate(value: float, low: float, high: float) -> Estimate:
    if not math.isfinite(float(value)):
        return Estimate(math.nan, math.nan, math.nan)
    return Estimate(float(value), float(low), float(high))


def _decide(
    *,
    c: int,
    table: CountTable,
    settings: FairnessSettings,
    spread: float,
    q: float,
    delta: np.ndarray,
    delta_se: np.ndarray,
    speakers_in_cell: np.ndarray,
    worst: int,
    best: int,
) -> tuple[Flag, int | None, str]:
    """Flag of one non-clean condition, per shared DESIGN "Analysis"."""
    scale = 100.0
    unit = "points" if settings.metric == "absolute" else "points of relative change"
    problems = []
    if len(table.groups) < 2:
        problems.append("fewer than two groups to compare")
    for g, group in enumerate(table.groups):
        n_here, n_clean = int(speakers_in_cell[c, g]), int(speakers_in_cell[0, g])
        n = min(n_here, n_clean)
        if n < settings.min_speakers:
            problems.append(
                f"group {group!r} has {n} speaker{'s' if n != 1 else ''} with scored words "
                f"(minimum {settings.min_speakers})"
            )
        elif not math.isfinite(float(delta[c, g])):
            problems.append(f"Δ of group {group!r} is undefined (clean WER is 0; relative metric)")
    if problems:
        return "insufficient-data", None, "; ".join(problems)
    threshold = settings.threshold_pts / scale
    big = spread >= threshold - 1e-12
    significant = math.isfinite(q) and q <= settings.alpha
    shown = f"disparity {spread * scale:.1f} {unit}"
    if big and significant:
        return "uneven", None, f"{shown} ≥ {settings.threshold_pts:g}, q = {q:.3g} ≤ α"
    if big:
        needed = speakers_needed(
            spread,
            float(delta_se[c, worst]),
            int(speakers_in_cell[c, worst]),
            float(delta_se[c, best]),
            int(speakers_in_cell[c, best]),
            alpha=settings.alpha,
        )
        more = f"; about {needed} speakers per group would detect it at 80% power" if needed else ""
        return (
            "inconclusive",
            needed,
            f"{shown} ≥ {settings.threshold_pts:g} but q = {q:.3g} > α = {settings.alpha:g}{more}",
        )
    return "even", None, f"{shown} < {settings.threshold_pts:g}"
