"""``analyze``: per-item counts → :class:`~lastmile.analysis.result.Analysis`."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lastmile.analysis.counts import CountTable, count_table
from lastmile.analysis.inference import (
    MIN_SPEAKERS_FOR_INTERVAL,
    CellInference,
    cell_inference,
    heterogeneity_test,
    pseudo_values,
    t_interval,
)
from lastmile.analysis.planning import plan_speakers
from lastmile.analysis.resampling import group_sums
from lastmile.analysis.result import (
    Analysis,
    CellStats,
    ConditionVerdict,
    Estimate,
    Flag,
    PairGap,
    Totals,
    pair_estimate,
)
from lastmile.analysis.settings import FairnessSettings
from lastmile.analysis.stats import benjamini_hochberg, disparity
from lastmile.errors import ConfigError

__all__ = ["analyze", "analyze_table"]


def analyze(
    items: Iterable[Mapping[str, Any]],
    *,
    clean_condition_id: str,
    settings: FairnessSettings,
    seed: int,
) -> Analysis:
    """Pooled WER, Δ, intervals, the test of equal degradation, BH q-values and verdicts.

    ``items``: one mapping per utterance × condition with ``condition_id``, ``utterance_id``,
    ``speaker``, ``group``, ``n_ref``, ``substitutions``, ``deletions``, ``insertions`` (whole
    numbers) and ``error`` (``None``/empty when scored; otherwise the item failed: it counts
    as failed and is left out of WER). ``seed`` is fanned out with ``numpy.random.SeedSequence``
    into the planning simulation of inconclusive conditions; the result does not depend on
    item order. Raises :class:`~lastmile.errors.ConfigError` on malformed items or when
    ``clean_condition_id`` is missing.
    """
    table = count_table(items, clean_condition_id=clean_condition_id)
    return analyze_table(table, settings=settings, seed=seed)


MOSTLY_FAILED = 0.5
"""A cell whose share of failed items exceeds this gets no verdict (insufficient-data)."""


def _wer_estimate(inf: CellInference, c: int, g: int, level: float) -> Estimate:
    """Pooled WER with a t interval on the log scale (WER is skewed across speakers)."""
    value, n, var = float(inf.wer[c, g]), int(inf.n_wer[c, g]), float(inf.var_wer[c, g])
    if not math.isfinite(value):
        return Estimate(math.nan, math.nan, math.nan, "no scored reference words")
    if n < MIN_SPEAKERS_FOR_INTERVAL:
        return Estimate(value, math.nan, math.nan, _few(n))
    if value <= 0 or not math.isfinite(var) or var <= 0:
        why = "no errors at all" if value <= 0 else "every speaker has the same WER"
        return Estimate(
            value, math.nan, math.nan, f"no interval: {why}, so the speakers' spread is unknown"
        )
    low, high = t_interval(
        np.array(math.log(value)), np.array(var / value**2), np.array(n - 1), level=level
    )
    return Estimate(value, math.exp(float(low)), math.exp(float(high)))


def _few(n: int) -> str:
    return (
        f"no interval: {n} speaker{'s' if n != 1 else ''}; intervals from fewer than "
        f"{MIN_SPEAKERS_FOR_INTERVAL} speakers do not reach their stated coverage"
    )


def _delta_estimate(inf: CellInference, c: int, g: int, level: float) -> Estimate:
    """Δ with a t interval (jackknife variance, n − 1 degrees of freedom)."""
    value, n = float(inf.delta[c, g]), int(inf.n_delta[c, g])
    var = float(inf.var_delta[c, g])
    if not math.isfinite(value):
        why = "clean WER is 0 (relative metric)" if math.isfinite(inf.wer[c, g]) else "no words"
        return Estimate(math.nan, math.nan, math.nan, f"undefined: {why}")
    if c == 0:
        return Estimate(value, math.nan, math.nan, "reference condition: Δ is 0 by definition")
    if n < MIN_SPEAKERS_FOR_INTERVAL:
        return Estimate(value, math.nan, math.nan, _few(n))
    if int(inf.jack_undefined[c, g]) > 0:
        return Estimate(
            value,
            math.nan,
            math.nan,
            "no interval: leaving out one speaker makes the group's clean WER 0, so Δ is "
            "undefined without that speaker (the clean errors come from one speaker)",
        )
    if not math.isfinite(var) or var <= 0:
        return Estimate(
            value,
            math.nan,
            math.nan,
            "no interval: every speaker has the same Δ, so the speakers' spread is unknown",
        )
    low, high = t_interval(np.array(value), np.array(var), np.array(n - 1), level=level)
    return Estimate(value, float(low), float(high))


def analyze_table(
    table: CountTable, *, settings: FairnessSettings, seed: int, plan: bool = True
) -> Analysis:
    """The same as :func:`analyze` on an already folded :class:`CountTable`.

    ``plan=False`` skips the simulation behind ``speakers_needed`` of inconclusive conditions
    (left ``None``; the validity studies run thousands of analyses and do not read it).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"analysis: seed: expected a whole number >= 0, got {seed!r}")
    n_cond, n_groups = len(table.conditions), len(table.groups)
    relative = settings.metric == "relative"
    plan_seq = np.random.SeedSequence(int(seed))
    errors, words, sg = table.errors, table.ref_words, table.speaker_group
    inf = cell_inference(errors, words, sg, n_groups, relative=relative)
    level = settings.ci_level

    # The test that every group's Δ is the same, per degraded condition.
    # The planning generators are spawned first, so they are the same as before the test drew.
    plan_children = plan_seq.spawn(n_cond)
    test_rng = np.random.default_rng(plan_seq.spawn(1)[0])
    p_values = np.full(n_cond, np.nan)
    psi = np.zeros((len(table.speakers), 0))
    if n_cond > 1 and n_groups >= 2:
        psi = pseudo_values(errors, words, sg, n_groups, relative=relative)
        _, p_values[1:] = heterogeneity_test(psi, sg, n_groups, rng=test_rng)
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
        sg,
        n_groups,
    ).reshape(6, n_cond, n_groups)
    counts = np.rint(count_sums).astype(np.int64)
    members = [np.flatnonzero(sg == g) for g in range(n_groups)]
    cells: list[tuple[CellStats, ...]] = []
    for c, condition_id in enumerate(table.conditions):
        row = []
        for g, group in enumerate(table.groups):
            items_, failed, n_words, subs, dels, ins = (int(counts[k, c, g]) for k in range(6))
            speaker_delta = tuple(
                (table.speakers[s], float(inf.speaker_delta[s, c]))
                for s in members[g]
                if c > 0 and (words[s, c] > 0 or words[s, 0] > 0)
            )
            row.append(
                CellStats(
                    condition_id=condition_id,
                    group=group,
                    n_items=items_,
                    n_failed=failed,
                    n_speakers=int(inf.n_wer[c, g]),
                    n_ref_words=n_words,
                    n_errors=subs + dels + ins,
                    substitutions=subs,
                    deletions=dels,
                    insertions=ins,
                    wer=_wer_estimate(inf, c, g, level),
                    delta=_delta_estimate(inf, c, g, level),
                    speaker_delta=speaker_delta,
                )
            )
        cells.append(tuple(row))

    # Verdicts.
    spread, worst, best = disparity(inf.delta)
    plan_rngs = [np.random.default_rng(s) for s in plan_children]
    verdicts: list[ConditionVerdict] = []
    for c, condition_id in enumerate(table.conditions):
        w, b = int(worst[c]), int(best[c])
        if c == 0:
            verdicts.append(
                ConditionVerdict(
                    condition_id=condition_id,
                    is_clean=True,
                    disparity=Estimate(math.nan, math.nan, math.nan, "reference condition"),
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
        pairs = _pairs(inf, table.groups, c, settings)
        if w >= 0:
            gap = pair_estimate(
                float(inf.delta[c, w]),
                float(inf.delta[c, b]),
                float(inf.var_delta[c, w]),
                float(inf.var_delta[c, b]),
                int(inf.n_delta[c, w]),
                int(inf.n_delta[c, b]),
                level=level,
                names=(table.groups[w], table.groups[b]),
            )
            if gap.ci_low < 0:  # U = max − min ≥ 0: the pair's order is what is unsure
                gap = dataclasses.replace(gap, ci_low=0.0)
        else:
            gap = Estimate(math.nan, math.nan, math.nan, "fewer than two groups with a defined Δ")
        flag, needed, note = _decide(
            c=c,
            table=table,
            inf=inf,
            settings=settings,
            spread=float(spread[c]),
            q=float(q_values[c]),
            pairs=pairs,
            psi=psi,
            rng=plan_rngs[c] if plan else None,
        )
        verdicts.append(
            ConditionVerdict(
                condition_id=condition_id,
                is_clean=False,
                disparity=gap,
                worst_group=table.groups[w] if w >= 0 else None,
                best_group=table.groups[b] if b >= 0 else None,
                p_value=float(p_values[c]),
                q_value=float(q_values[c]),
                flag=flag,
                speakers_needed=needed,
                note=note,
                pairs=pairs,
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
        n_even=flags.count("even"),
    )
    delta_var = np.array(inf.var_delta, dtype=np.float64)
    delta_speakers = np.array(inf.n_delta, dtype=np.int64)
    delta_var.flags.writeable = False
    delta_speakers.flags.writeable = False
    return Analysis(
        settings=settings,
        seed=int(seed),
        clean_condition_id=table.conditions[0],
        conditions=table.conditions,
        groups=table.groups,
        cells=tuple(cells),
        verdicts=tuple(verdicts),
        totals=totals,
        delta_var=delta_var,
        delta_speakers=delta_speakers,
        worst_items=table.worst_items,
    )


def _pairs(
    inf: CellInference, groups: tuple[str, ...], c: int, settings: FairnessSettings
) -> tuple[PairGap, ...]:
    """Every pairwise gap Δ_a − Δ_b with its interval and its (1 − 2α) equivalence interval."""
    out = []
    margin = settings.threshold
    for a, b in itertools.combinations(range(len(groups)), 2):
        args = (
            float(inf.delta[c, a]),
            float(inf.delta[c, b]),
            float(inf.var_delta[c, a]),
            float(inf.var_delta[c, b]),
            int(inf.n_delta[c, a]),
            int(inf.n_delta[c, b]),
        )
        names = (groups[a], groups[b])
        shown = pair_estimate(*args, level=settings.ci_level, names=names)
        equivalence = pair_estimate(*args, level=1.0 - 2.0 * settings.alpha, names=names)
        lo, hi = equivalence.ci_low, equivalence.ci_high
        within = bool(math.isfinite(lo) and math.isfinite(hi) and -margin < lo and hi < margin)
        out.append(PairGap(groups[a], groups[b], shown, lo, hi, within))
    return tuple(out)


def _problems(
    *, c: int, table: CountTable, inf: CellInference, settings: FairnessSettings, q: float
) -> list[str]:
    """Why a condition gets insufficient-data (empty when it can be judged)."""
    problems = []
    if len(table.groups) < 2:
        problems.append("fewer than two groups to compare")
    items = group_sums(
        np.stack([table.n_items[:, c], table.n_items[:, 0]], axis=1).astype(np.float64),
        table.speaker_group,
        len(table.groups),
    )
    failed = group_sums(
        np.stack([table.n_failed[:, c], table.n_failed[:, 0]], axis=1).astype(np.float64),
        table.speaker_group,
        len(table.groups),
    )
    thin: dict[int, list[str]] = {}  # speakers with scored words → groups: one sentence
    for g, group in enumerate(table.groups):
        n = int(min(inf.n_wer[c, g], inf.n_wer[0, g]))
        for k, where in ((0, "this condition"), (1, "the clean condition")):
            tried, bad = int(items[k, g]), int(failed[k, g])
            if tried and bad / tried > MOSTLY_FAILED:
                problems.append(
                    f"group {group!r}: {bad} of {tried} items failed in {where} (see the "
                    "errors in items.csv, then resume the run)"
                )
        if n < settings.min_speakers:
            thin.setdefault(n, []).append(repr(group))
        elif not math.isfinite(float(inf.delta[c, g])):
            problems.append(f"Δ of group {group!r} is undefined (clean WER is 0; relative metric)")
        elif int(inf.jack_undefined[c, g]) > 0:
            problems.append(
                f"Δ of group {group!r} rests on one speaker's clean errors (without that "
                "speaker its clean WER is 0; relative metric), so it cannot be tested"
            )
        elif float(inf.var_delta[c, g]) == 0.0:
            problems.append(
                f"every speaker of group {group!r} has the same Δ here, so its spread is 0 and "
                "the test cannot weigh it (more speakers or utterances per speaker would show "
                "their spread)"
            )
    for n, names in sorted(thin.items()):
        who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        problems.append(
            f"group{'s' if len(names) > 1 else ''} {who} "
            f"{'have' if len(names) > 1 else 'has'} {n} speaker{'s' if n != 1 else ''}"
            f"{' each' if len(names) > 1 else ''} with scored words "
            f"(minimum {settings.min_speakers})"
        )
    if not problems and not math.isfinite(q):
        problems.append(
            "the test cannot be computed (a group's Δ is undefined for a resampled set of "
            "its speakers)"
        )
    return problems


def _decide(
    *,
    c: int,
    table: CountTable,
    inf: CellInference,
    settings: FairnessSettings,
    spread: float,
    q: float,
    pairs: tuple[PairGap, ...],
    psi: np.ndarray,
    rng: np.random.Generator | None,
) -> tuple[Flag, int | None, str]:
    """Verdict of one non-clean condition, per shared DESIGN "Analysis"."""
    problems = _problems(c=c, table=table, inf=inf, settings=settings, q=q)
    if problems:
        return "insufficient-data", None, "; ".join(problems)
    relative = settings.metric == "relative"
    margin = settings.threshold
    shown = f"largest gap {_fmt(spread, relative)}"
    limit = settings.threshold_text()
    big = spread >= margin - 1e-12
    significant = q <= settings.alpha
    if big and significant:
        return "uneven", None, f"{shown} ≥ {limit}, and the groups differ: q = {q:.3g} ≤ α"
    if all(pair.within_margin for pair in pairs):
        widest = max(max(abs(p.equivalence_low), abs(p.equivalence_high)) for p in pairs)
        level = f"{(1 - 2 * settings.alpha) * 100:g}%"
        return (
            "even",
            None,
            f"every pairwise gap's {level} interval lies within ± {limit} "
            f"(widest bound {_fmt(widest, relative)})",
        )
    goal = "detect" if big else "even"
    if goal == "detect":
        why = f"{shown} ≥ {limit} but q = {q:.3g} > α = {settings.alpha:g}"
        aim = f"detect a gap of {limit}"
    else:
        why = f"{shown}, but not every pairwise gap is shown to lie within ± {limit}"
        aim = "show the groups even (if they truly are)"
    if rng is None:
        return "inconclusive", None, why
    residuals = []
    for g in range(len(table.groups)):
        values = psi[table.speaker_group == g, c - 1]
        residuals.append(values - values.mean())
    plan = plan_speakers(
        residuals,
        goal=goal,
        gap=margin,
        margin=margin,
        alpha=settings.alpha,
        n_tests=len(table.conditions) - 1,
        n_sims=200,
        rng=rng,
    )
    per = "80% power (simulated) at this run's utterances per speaker"
    if plan.speakers is not None:
        more = f"; about {plan.speakers} speakers per group would {aim} with {per}"
    else:
        more = f"; even {SIZES_MAX} speakers per group would not {aim} with {per}"
    return "inconclusive", plan.speakers, why + more


SIZES_MAX = 500


def _fmt(value: float, relative: bool) -> str:
    unit = "points of relative change" if relative else "WER points"
    return f"{value * 100:.1f} {unit}"
