"""Planning speakers and utterances per speaker from a pilot's items (lastmile.analysis.planning).

The pilots are synthetic runs item by item (logit speaker and utterance effects, beta-binomial
errors, insertion bursts, the same utterances under every condition); the plans are checked
against fresh synthetic runs at the planned design, tested with the analysis's own test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from lastmile.analysis import count_table
from lastmile.analysis.inference import heterogeneity_test, pseudo_values
from lastmile.analysis.planning import (
    SIZES,
    DesignPlan,
    PilotCondition,
    assumed_condition,
    default_utterances,
    pilot_conditions,
    pilot_from_items,
    plan_design,
)
from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_items, synthetic_table

WERS = {"a": 0.08, "b": 0.12, "c": 0.2}  # clean WER per group; every group degrades 8 points

# Within-speaker (utterance) noise dominates: speakers barely differ in how they degrade.
WITHIN = {"sd_speaker": 0.05, "sd_speaker_condition": 0.0, "sd_utterance": 0.6}
# Speaker-to-speaker differences in Δ dominate.
BETWEEN = {"sd_speaker": 1.0, "sd_speaker_condition": 0.8, "sd_utterance": 0.3}


def run_spec(
    n: int, m: int, model: dict[str, float], gap_group: str | None = None, gap: float = 0.0
) -> SyntheticRun:
    return SyntheticRun(
        {
            g: GroupSpec(n, [w, w + 0.08 + (gap if g == gap_group else 0.0)], model["sd_speaker"])
            for g, w in WERS.items()
        },
        n_utterances=m,
        sd_utterance=model["sd_utterance"],
        sd_speaker_condition=model["sd_speaker_condition"],
    )


def pilot(items: list[dict[str, Any]], *, relative: bool = False) -> PilotCondition:
    table, utterances = pilot_from_items(items, clean_condition_id="clean")
    (condition,) = pilot_conditions(table, utterances, relative=relative)
    return condition


def design(condition: PilotCondition, gap: float, seed: int = 1, **kw: Any) -> DesignPlan:
    return plan_design(
        condition,
        goal="detect",
        gap=gap,
        margin=0.05,
        alpha=0.05,
        n_tests=1,
        rng=np.random.default_rng(seed),
        **kw,
    )


def realised_power(
    n: int,
    m: int,
    model: dict[str, float],
    *,
    gap_group: str,
    gap: float,
    shift: bool,
    sims: int,
    seed: int,
) -> float:
    """Share of fresh synthetic runs (n speakers × m utterances) whose Welch test (the
    analysis's, p ≤ α) finds the gap. ``shift``: the gap is added to the group's speakers'
    pseudo-values (what the plan assumes); otherwise to its true degraded WER (a logit
    model: its speakers then also spread more)."""
    rng = np.random.default_rng(seed)
    g_index = sorted(WERS).index(gap_group)
    hits = 0
    for _ in range(sims):
        spec = run_spec(n, m, model, None if shift else gap_group, 0.0 if shift else gap)
        table = synthetic_table(spec, rng=rng)
        psi = pseudo_values(table.errors, table.ref_words, table.speaker_group, 3, relative=False)
        if shift:
            psi = psi + gap * (table.speaker_group == g_index)[:, None]
        _, p = heterogeneity_test(psi, table.speaker_group, 3, rng=rng)
        hits += bool(p[0] <= 0.05)
    return hits / sims


def test_items_fold_to_the_same_table_as_synthetic_table():
    spec = run_spec(4, 3, WITHIN)
    items = synthetic_items(spec, rng=np.random.default_rng(9))
    assert len(items) == 3 * 4 * 3 * 2  # groups × speakers × utterances × conditions
    folded = count_table(items, clean_condition_id="clean")
    direct = synthetic_table(spec, rng=np.random.default_rng(9))
    assert folded.speakers == direct.speakers
    assert np.array_equal(folded.errors, direct.errors)
    assert np.array_equal(folded.ref_words, direct.ref_words)


@pytest.mark.timeout(60)
def test_speakers_who_differ_in_nothing_are_all_within_speaker_noise():
    """Every speaker has the same error rates (no speaker, utterance or speaker × condition
    effect): the whole spread of their Δ is utterance sampling, so within ≈ total."""
    model = {"sd_speaker": 0.0, "sd_speaker_condition": 0.0, "sd_utterance": 0.0}
    spec = SyntheticRun(
        {"a": GroupSpec(500, [0.08, 0.16], 0.0), "b": GroupSpec(500, [0.2, 0.28], 0.0)},
        n_utterances=10,
        sd_utterance=model["sd_utterance"],
        sd_speaker_condition=model["sd_speaker_condition"],
    )
    condition = pilot(synthetic_items(spec, rng=np.random.default_rng(5)))
    for part in condition.groups:
        assert part.utterances == 10 and part.speakers == 500
        assert part.within is not None
        # 500 speakers: the total variance is known to about ±10%. With the one-speaker
        # jackknife's (m − 1)/m factor this ratio was 0.78 (it must be m/(m − 1)).
        assert 0.85 <= part.within / part.total <= 1.15, part


@pytest.mark.timeout(60)
def test_pairing_clean_and_degraded_items_of_an_utterance():
    """Utterance difficulty is shared by an utterance's clean and degraded renderings; it
    cancels in Δ only when they leave the jackknife together. Renamed apart (as if different
    utterances), the within part absorbs the difficulty twice and exceeds the total."""
    spec = SyntheticRun(
        {"a": GroupSpec(300, [0.1, 0.18], 0.0), "b": GroupSpec(300, [0.15, 0.23], 0.0)},
        n_utterances=10,
        sd_utterance=1.5,
        sd_speaker_condition=0.0,
    )
    items = synthetic_items(spec, rng=np.random.default_rng(6))
    paired = pilot(items)
    apart = pilot(
        [
            dict(item, utterance_id=f"{item['utterance_id']}-{item['condition_id']}")
            for item in items
        ]
    )
    for p, a in zip(paired.groups, apart.groups, strict=True):
        assert p.within is not None and a.within is not None
        assert 0.8 <= p.within / p.total <= 1.2
        assert a.within > 1.3 * p.within
        assert a.truncated and a.between == 0.0  # said, not hidden
    assert apart.pilot_utterances == 20 and paired.pilot_utterances == 10


@pytest.mark.timeout(120)
def test_plan_holds_on_fresh_runs_when_utterance_noise_dominates():
    """Pilots of 60 speakers × 10 utterances per group; the plan at 5 and 20 utterances per
    speaker is run on fresh synthetic runs with the gap on the group's true WER."""
    realised = []
    for seed in (0, 3, 4):
        condition = pilot(
            synthetic_items(run_spec(60, 10, WITHIN), rng=np.random.default_rng(seed))
        )
        plan = design(condition, gap=0.05)
        assert [m for m, _ in plan.by_utterances] == [5, 10, 20, 40]
        at = {m: p.speakers for m, p in plan.by_utterances}
        assert all(isinstance(v, int) for v in at.values())
        # Doubling the utterances per speaker about halves the speakers needed.
        assert at[20] <= 0.7 * at[10] and at[10] <= 0.7 * at[5]
        assert "more utterances per speaker cut the speakers needed" in plan.limit
        gap_group = sorted(WERS)[plan.gap_group]  # the most varied in this pilot
        for m in (5, 20):
            power = realised_power(
                at[m], m, WITHIN, gap_group=gap_group, gap=0.05, shift=False, sims=200, seed=seed
            )
            realised.append(power)
            assert abs(power - 0.8) <= 0.15, (seed, m, at[m], power)
    assert abs(float(np.mean(realised)) - 0.8) <= 0.08, realised


@pytest.mark.timeout(120)
def test_more_utterances_do_not_replace_speakers_when_speakers_differ():
    reached: list[float] = []
    short: list[float] = []
    widened: list[float] = []
    for seed in (0, 1, 2):
        condition = pilot(
            synthetic_items(run_spec(60, 10, BETWEEN), rng=np.random.default_rng(seed))
        )
        for part in condition.groups:
            assert part.between is not None and part.between > 2 * float(part.within or 0.0)
        plan = design(condition, gap=0.10)
        at = {m: p.speakers for m, p in plan.by_utterances}
        assert all(isinstance(v, int) for v in at.values())
        assert at[20] >= 0.8 * at[10] and at[40] >= 0.6 * at[10]
        floor = plan.unlimited.speakers if plan.unlimited else None
        assert floor is not None and floor >= 0.6 * at[10]
        assert f"cannot get below {floor} speakers per group" in plan.limit
        assert "speaker-to-speaker variation dominates" in plan.limit
        gap_group = sorted(WERS)[plan.gap_group]
        kw = {"gap_group": gap_group, "gap": 0.10, "sims": 150, "seed": seed}
        n = at[20]
        previous = SIZES[SIZES.index(n) - 1]
        reached.append(realised_power(n, 20, BETWEEN, shift=True, **kw))
        short.append(realised_power(previous, 20, BETWEEN, shift=True, **kw))
        widened.append(realised_power(n, 20, BETWEEN, shift=False, **kw))
    # As the plan assumes (the gap shifts the group): the planned n reaches the goal and the
    # size before it on the grid does not already exceed it by much. A pilot's own sampling
    # (60 speakers: variances known to about ±20%) and the grid's steps (30 → 40) put the
    # realised power at the planned n anywhere in 0.75-0.95 (measured 0.77-0.95).
    assert all(p >= 0.68 for p in reached), reached
    assert all(p <= 0.92 for p in short), short
    # A real 10-point WER gap in a logit model also spreads that group's speakers (SD of
    # their Δ 11 → 16 points), which the plan (a shift) does not foresee: the realised power
    # at the same n is lower (measured 0.86 / 0.66 / 0.89 against 0.93 / 0.77 / 0.95).
    # Documented in `lastmile power --help`; this keeps the shortfall measured and bounded.
    assert all(w < r for w, r in zip(widened, reached, strict=True)), (widened, reached)
    assert 0.03 <= float(np.mean(reached) - np.mean(widened)) <= 0.2, (widened, reached)
    assert min(widened) >= 0.55, widened


def test_one_utterance_per_speaker_plans_speakers_only():
    items = synthetic_items(run_spec(8, 1, WITHIN), rng=np.random.default_rng(2))
    condition = pilot(items)
    assert condition.pilot_utterances == 1
    assert "no speaker has 2 or more scored utterances" in condition.problem
    assert all(p.within is None and p.between is None for p in condition.groups)
    plan = design(condition, gap=0.05, utterances=(1, 2, 4))
    assert [m for m, _ in plan.by_utterances] == [1] and plan.unlimited is None
    assert plan.limit.startswith("utterances per speaker not planned: groups 'a', 'b', 'c'")
    assert isinstance(plan.by_utterances[0][1].speakers, int)


def test_a_group_of_one_speaker_and_a_group_whose_items_failed_are_stated():
    spec = SyntheticRun(
        {
            "a": GroupSpec(6, [0.1, 0.2]),
            "b": GroupSpec(1, [0.1, 0.2]),
            "c": GroupSpec(6, [0.1, 0.2]),
        },
        n_utterances=4,
    )
    items = synthetic_items(spec, rng=np.random.default_rng(3))
    plan = design(pilot(items), gap=0.05)
    assert plan.by_utterances[0][1].speakers is None
    assert "group 'b' has 1 speaker with scored items" in plan.limit
    failed = [dict(item, error="decoder crashed") for item in items]
    condition = pilot(failed)
    assert all(p.speakers == 0 and math.isnan(p.total) for p in condition.groups)
    plan = design(condition, gap=0.05)
    assert plan.by_utterances[0][1].speakers is None
    # Adapted (acceptance pass of issue 12): this said "group 'a' has 0 speakers with scored
    # items"; the cause is that every item failed, and it names the condition.
    assert "all 24 items of group 'a' in c01 failed" in plan.limit
    assert "all 4 items of group 'b' in c01 failed" in plan.limit


def test_relative_metric_and_a_zero_clean_wer_stay_finite():
    items = synthetic_items(run_spec(10, 6, WITHIN), rng=np.random.default_rng(4))
    condition = pilot(items, relative=True)
    assert all(p.within is not None and math.isfinite(p.within) for p in condition.groups)
    # Group a never errs clean: its relative Δ is undefined, a stated problem, not NaN.
    zero = [dict(i, substitutions=0) if i["group"] == "a" and i["condition_id"] == "clean"
            else i for i in items]  # fmt: skip
    condition = pilot(zero, relative=True)
    assert "group 'a'" in condition.problem
    assert design(condition, gap=0.05).by_utterances[0][1].speakers is None


def test_assumed_spreads_and_the_utterance_grid():
    assert default_utterances(10) == (5, 10, 20, 40)
    assert default_utterances(1) == (1, 2, 4)
    assert default_utterances(3) == (2, 3, 6, 12)
    kw: dict[str, Any] = {"sd": 0.08, "utterances": 10, "n_groups": 3}
    noise_only = design(
        assumed_condition(within_sd=0.08, rng=np.random.default_rng(0), **kw), gap=0.05
    )
    speakers_only = design(
        assumed_condition(within_sd=0.0, rng=np.random.default_rng(0), **kw), gap=0.05
    )
    a = {m: p.speakers for m, p in noise_only.by_utterances}
    b = {m: p.speakers for m, p in speakers_only.by_utterances}
    assert a[10] == b[10]  # the same spread at the assumed 10 utterances: the same answer
    assert a[40] is not None and a[10] is not None and a[40] <= 0.4 * a[10]
    assert b[40] == b[10] == b[5]
    assert "no speaker-to-speaker spread" in noise_only.limit
    with pytest.raises(ValueError, match="cannot exceed the total SD"):
        assumed_condition(within_sd=0.09, rng=np.random.default_rng(0), **kw)
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        design(
            assumed_condition(within_sd=0.04, rng=np.random.default_rng(0), **kw),
            gap=0.05,
            utterances=(0, 5),
        )


def test_a_gap_too_small_for_any_design_is_said():
    condition = assumed_condition(
        sd=0.4, within_sd=0.2, utterances=10, n_groups=3, rng=np.random.default_rng(0)
    )
    plan = design(condition, gap=0.01, sizes=(3, 5, 8))
    assert all(p.speakers is None for _, p in plan.by_utterances)
    assert plan.unlimited is not None and plan.unlimited.speakers is None
    assert plan.limit.startswith(
        "even unlimited utterances per speaker would need more than 8 speakers per group: "
        "speaker-to-speaker variation alone is too large for this gap"
    )


def test_why_a_group_cannot_be_planned_names_the_cause_and_the_condition():
    items = synthetic_items(run_spec(6, 4, WITHIN), rng=np.random.default_rng(3))

    def failing(where: Any) -> list[dict[str, Any]]:
        return [dict(i, error="decoder crashed") if where(i) else i for i in items]

    # Every c01 item of group c failed; its clean items did not. Before: "group 'c' has 6
    # speakers with scored items" (counted in clean *or* the condition).
    condition = pilot(failing(lambda i: i["group"] == "c" and i["condition_id"] == "c01"))
    assert not condition.plannable
    assert condition.problem.startswith("all 24 items of group 'c' in c01 failed")
    plan = design(condition, gap=0.05)
    assert plan.by_utterances[0][1].speakers is None
    assert plan.limit.startswith("cannot plan: all 24 items of group 'c' in c01 failed")
    # Its clean items all failed instead.
    condition = pilot(failing(lambda i: i["group"] == "c" and i["condition_id"] == "clean"))
    assert condition.problem.startswith(
        "all 24 items of group 'c' in the clean condition (clean) failed, so its Δ in c01"
    )
    # One speaker of group c scored in c01: the other five still had finite pseudo-values
    # (leaving them out moves only the clean side), so before a plan was made from them.
    condition = pilot(
        failing(
            lambda i: (
                i["group"] == "c"
                and i["condition_id"] == "c01"
                and not i["speaker"].endswith("s000")
            )
        )
    )
    assert not condition.plannable
    assert condition.problem.startswith(
        "group 'c' has 1 speaker with scored items in both the clean condition and c01"
    )
    assert design(condition, gap=0.05).by_utterances[0][1].speakers is None
    # A clean WER of 0 under the relative metric. Before: "group 'a' has 6 speakers with
    # scored items".
    zero = [dict(i, substitutions=0) if i["group"] == "a" and i["condition_id"] == "clean"
            else i for i in items]  # fmt: skip
    condition = pilot(zero, relative=True)
    assert condition.problem.startswith(
        "Δ of group 'a' in c01 is undefined: its clean WER is 0 and the relative metric "
        "divides by it"
    )
    assert "speakers with scored items" not in condition.problem
    assert pilot(items).plannable and pilot(items, relative=True).plannable


def test_a_grid_that_falls_short_is_extended_to_where_the_plan_is_feasible():
    # Utterance sampling is nearly all of a speaker's spread at 2 utterances per speaker
    # (SD 0.6, of which 0.595 within): 1-8 utterances need more than 500 speakers per group,
    # unlimited utterances (SD 0.077 left) far fewer.
    condition = assumed_condition(
        sd=0.6, within_sd=0.595, utterances=2, n_groups=3, rng=np.random.default_rng(0)
    )
    short = design(condition, gap=0.05, extend_to=0)
    assert [m for m, _ in short.by_utterances] == [1, 2, 4, 8]
    assert all(p.speakers is None for _, p in short.by_utterances)
    assert short.unlimited is not None and isinstance(short.unlimited.speakers, int)
    assert short.reach is None
    assert short.reach_note.startswith(
        "no design up to 8 utterances per speaker reaches 80% power with 500 speakers per "
        "group or fewer; only unlimited utterances do"
    )
    plan = design(condition, gap=0.05)
    reach = plan.reach
    assert isinstance(reach, int) and reach > 8
    at = dict(plan.by_utterances)
    assert list(at) == [1, 2, 4, 8, reach] and isinstance(at[reach].speakers, int)
    assert plan.reach_note.startswith(f"the plan becomes feasible from {reach} utterances")
    # The interval was halved down to 5 %: the fewest utterances reaching the power, give
    # or take one step. Searched on its own, a design one step below does not reach it.
    below = reach - max(1, round(0.05 * reach))
    alone = design(condition, gap=0.05, utterances=(below,), extend_to=0)
    assert dict(alone.by_utterances)[below].speakers is None
    # Not searched when a design of the grid reaches the power already.
    assert design(condition, gap=0.05, utterances=(2, 64)).reach is None


def test_more_utterances_never_need_more_speakers_whatever_the_simulation_noise():
    from lastmile.analysis.planning import PlanResult, _monotone

    def plan(n):
        return PlanResult(n, "detect", ())

    # at the edge of the goal the simulated power crossed back: 20 utterances reached it with
    # 500 speakers, 40 did not (None: more than the largest size), nor did unlimited ones
    by, unlimited = _monotone([(40, plan(None)), (10, plan(None)), (20, plan(500))], plan(None))
    assert [(k, p.speakers) for k, p in by] == [(10, None), (20, 500), (40, 500)]
    assert unlimited.speakers == 500
    by, unlimited = _monotone([(5, plan(30)), (10, plan(40)), (20, plan(20))], plan(25))
    assert [p.speakers for _, p in by] == [30, 30, 20] and unlimited.speakers == 20
