import json
import math

import numpy as np
import pytest

from lastmile.analysis import Analysis, FairnessSettings, analyze, benjamini_hochberg
from lastmile.errors import ConfigError

from ._items import grid_items, make_item

CLEAN6 = [10] * 6


def run(items, settings, seed=7, clean="clean") -> Analysis:
    return analyze(items, clean_condition_id=clean, settings=settings, seed=seed)


def test_pooled_wer_is_not_the_mean_of_utterance_wers(fast_settings):
    # Speaker a0: utterance 1 has 2 words, both wrong (WER 100 %); utterance 2 has 18 words,
    # none wrong (0 %). Mean of per-utterance WER = 50 %; pooled = 2 / 20 = 10 %.
    items = [
        make_item("clean", "u1", "a0", "a", 2, 2),
        make_item("clean", "u2", "a0", "a", 18, 0),
    ]
    analysis = run(items, fast_settings)
    cell = analysis.cell("clean", "a")
    assert analysis.wer("clean", "a").value == pytest.approx(0.10)
    assert (cell.n_ref_words, cell.n_errors, cell.n_items, cell.n_speakers) == (20, 2, 2, 1)


def test_counts_sum_substitutions_deletions_insertions(fast_settings):
    item = make_item("clean", "u1", "a0", "a", 10)
    item.update(substitutions=1, deletions=2, insertions=3)
    cell = run([item], fast_settings).cell("clean", "a")
    assert (cell.substitutions, cell.deletions, cell.insertions, cell.n_errors) == (1, 2, 3, 6)
    assert cell.wer.value == pytest.approx(0.6)


def test_failed_items_are_counted_but_left_out_of_wer(fast_settings):
    items = grid_items({"clean": {"a": [10, 10, 10]}, "noisy": {"a": [20, 20, 20]}})
    items.append(make_item("noisy", "a0-u1", "a0", "a", 50, 50, error="decoder timeout"))
    analysis = run(items, fast_settings)
    cell = analysis.cell("noisy", "a")
    assert cell.wer.value == pytest.approx(0.20)
    assert (cell.n_items, cell.n_failed, cell.n_ref_words) == (4, 1, 300)
    assert analysis.totals.n_failed == 1
    assert analysis.totals.n_items == 7


def test_uneven_when_one_group_degrades_far_more(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": CLEAN6, "c": CLEAN6},
        "noisy": {
            "a": [18, 19, 20, 21, 22, 20],
            "b": [18, 19, 20, 21, 22, 20],
            "c": [38, 39, 40, 41, 42, 40],
        },
    }
    analysis = run(grid_items(errors), fast_settings)
    verdict = analysis.verdict("noisy")
    assert analysis.delta("noisy", "c").value == pytest.approx(0.30)
    assert analysis.delta("noisy", "a").value == pytest.approx(0.10)
    assert verdict.disparity.value == pytest.approx(0.20)
    assert verdict.worst_group == "c"
    assert verdict.p_value < 0.01
    assert verdict.q_value == pytest.approx(verdict.p_value)  # one degraded condition
    assert verdict.flag == "uneven"
    assert analysis.flagged == ("noisy",)
    ci = analysis.delta("noisy", "c")
    assert ci.ci_low <= 0.30 <= ci.ci_high
    diff = analysis.difference("noisy", "c", "a")
    assert diff.value == pytest.approx(0.20)
    assert diff.ci_low > 0.1


def test_even_when_groups_degrade_alike(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": CLEAN6, "c": CLEAN6},
        "noisy": {g: [19, 20, 21, 20, 19, 21] for g in "abc"},
    }
    verdict = run(grid_items(errors), fast_settings).verdict("noisy")
    assert verdict.disparity.value == pytest.approx(0.0)
    assert verdict.flag == "even"
    assert verdict.speakers_needed is None
    assert len(verdict.pairs) == 3 and all(p.within_margin for p in verdict.pairs)
    assert "90% interval lies within ± 5 WER points" in verdict.note


def test_inconclusive_carries_speakers_needed_from_simulation(fast_settings):
    # c's Δ is driven by one of its three speakers: a 10-point gap that three speakers cannot
    # establish (the other two show none), and that cannot be shown even either.
    errors = {
        "clean": {"a": [10] * 3, "b": [10] * 3, "c": [10] * 3},
        "noisy": {"a": [19, 20, 21], "b": [20, 21, 19], "c": [20, 20, 50]},
    }
    verdict = run(grid_items(errors), fast_settings).verdict("noisy")
    assert verdict.disparity.value == pytest.approx(0.10)
    assert verdict.p_value > 0.05
    assert verdict.flag == "inconclusive"
    assert isinstance(verdict.speakers_needed, int)
    assert verdict.speakers_needed > 3
    assert "speakers per group would detect a gap of 5 WER points" in verdict.note
    assert "(simulated)" in verdict.note


def test_even_is_a_finding_and_a_close_gap_is_not_even(fast_settings):
    # Same spread in both conditions; "near" has a true 3-point gap within the 5-point margin
    # and 12 speakers, "edge" a 5-point gap: the 90 % interval crosses the margin.
    spread = [-2, -1, 0, 1, 2, 0, -2, -1, 0, 1, 2, 0]
    errors = {
        "clean": {"a": [10] * 12, "b": [10] * 12},
        "near": {"a": [20 + d for d in spread], "b": [23 + d for d in spread]},
        "edge": {"a": [20 + d for d in spread], "b": [25 + d for d in spread]},
    }
    analysis = run(grid_items(errors), fast_settings)
    near = analysis.verdict("near")
    assert near.flag == "even"
    (pair,) = near.pairs
    assert pair.within_margin and -0.05 < pair.equivalence_low < pair.equivalence_high < 0.05
    assert analysis.verdict("edge").flag != "even"
    assert analysis.totals.n_even == 1


def test_intervals_are_t_intervals_on_jackknife_variances(fast_settings):
    # One group of 4 speakers, 100 words each; Δ per speaker = 0.10, 0.12, 0.14, 0.16 (clean
    # 10 errors each). Pooled Δ = 0.13; for a ratio with equal word counts the jackknife
    # variance is the sample variance / n: sd = 0.0258199, se = 0.0129099;
    # t_{0.975, 3} = 3.18245 → half width 0.0410852.
    errors = {
        "clean": {"a": [10] * 4, "b": [10] * 4},
        "noisy": {"a": [20, 22, 24, 26], "b": [20, 22, 24, 26]},
    }
    analysis = run(grid_items(errors), fast_settings)
    est = analysis.delta("noisy", "a")
    assert est.value == pytest.approx(0.13)
    assert est.ci_low == pytest.approx(0.13 - 0.0410852, abs=1e-6)
    assert est.ci_high == pytest.approx(0.13 + 0.0410852, abs=1e-6)
    # The difference of two such groups: se = sqrt(2) · 0.0129099, Welch df = 6.
    diff = analysis.difference("noisy", "a", "b")
    assert diff.value == pytest.approx(0.0, abs=1e-12)
    assert diff.ci_high == pytest.approx(2.446912 * math.sqrt(2) * 0.0129099, abs=1e-6)


def test_wer_interval_is_on_the_log_scale_and_never_zero_width(fast_settings):
    errors = {"clean": {"a": [10, 20, 30, 40]}, "same": {"a": [10] * 4}}
    analysis = run(grid_items(errors), fast_settings)
    wer = analysis.wer("clean", "a")
    assert wer.value == pytest.approx(0.25)
    assert wer.ci_low > 0 and (wer.value - wer.ci_low) < (wer.ci_high - wer.value)
    flat = analysis.wer("same", "a")
    assert math.isnan(flat.ci_low) and "same WER" in flat.ci_note
    assert flat.to_dict()["ci_note"].startswith("no interval")


def test_no_interval_below_three_speakers_and_a_sentence_why(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": [10, 12]},
        "noisy": {"a": [20] * 6, "b": [30, 33]},
    }
    analysis = run(grid_items(errors), fast_settings.model_copy(update={"min_speakers": 2}))
    est = analysis.delta("noisy", "b")
    assert est.value == pytest.approx(0.205)
    assert math.isnan(est.ci_low) and math.isnan(est.ci_high)
    assert "2 speakers" in est.ci_note and "coverage" in est.ci_note
    assert "'b' has 2" in analysis.difference("noisy", "a", "b").ci_note


def test_mostly_failed_cell_is_insufficient(fast_settings):
    errors = {"clean": {"a": [10] * 4, "b": [10] * 4}, "noisy": {"a": [20] * 4, "b": [40] * 4}}
    items = grid_items(errors)
    for k in range(4):
        for extra in range(2):
            items.append(make_item("noisy", f"b{k}-x{extra}", f"b{k}", "b", 10, 0, error="timeout"))
    verdict = run(items, fast_settings).verdict("noisy")
    assert verdict.flag == "insufficient-data"
    assert "'b': 8 of 12 items failed in this condition" in verdict.note


def test_relative_metric_one_speaker_carrying_clean_errors(fast_settings):
    # Group a's clean errors all come from one speaker: leaving it out makes the clean WER 0,
    # so Δ has no interval and the condition gets a stated verdict, not NaN.
    settings = FairnessSettings(metric="relative", n_bootstrap=400)
    errors = {
        "clean": {"a": [10, 0, 0, 0], "b": [10] * 4},
        "noisy": {"a": [20, 5, 5, 5], "b": [20] * 4},
    }
    analysis = run(grid_items(errors), settings)
    est = analysis.delta("noisy", "a")
    assert est.value == pytest.approx(35 / 10 - 1)
    assert math.isnan(est.ci_low) and "clean WER 0" in est.ci_note
    verdict = analysis.verdict("noisy")
    assert verdict.flag == "insufficient-data"
    assert "rests on one speaker's clean errors" in verdict.note
    json.dumps(analysis.to_dict(), allow_nan=False)


def test_a_group_whose_speakers_all_lose_the_same_is_named(fast_settings):
    # Group b's transcripts do not change at all (a front end that does nothing for them):
    # every speaker's Δ is 0, its spread is 0, the test cannot weigh it, and the note says so.
    errors = {
        "clean": {"a": [10, 12, 8, 11], "b": [10, 9, 12, 8]},
        "noisy": {"a": [14, 20, 9, 18], "b": [10, 9, 12, 8]},
    }
    verdict = run(grid_items(errors), fast_settings).verdict("noisy")
    assert verdict.flag == "insufficient-data"
    assert "every speaker of group 'b' has the same Δ here, so its spread is 0" in verdict.note


def test_summary_carries_each_speakers_delta(fast_settings):
    errors = {"clean": {"a": [10, 10, 10]}, "noisy": {"a": [12, 15, 30]}}
    data = run(grid_items(errors), fast_settings).to_dict()
    speakers = data["conditions"][1]["groups"][0]["speakers"]
    assert speakers == [
        {"speaker": "a0", "delta_pts": 2.0},
        {"speaker": "a1", "delta_pts": 5.0},
        {"speaker": "a2", "delta_pts": 20.0},
    ]
    assert data["conditions"][0]["groups"][0]["speakers"] == []


def test_one_speaker_group_is_insufficient_not_uneven(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": CLEAN6, "c": [10]},
        "noisy": {"a": [20] * 6, "b": [20] * 6, "c": [90]},
    }
    analysis = run(grid_items(errors), fast_settings)
    verdict = analysis.verdict("noisy")
    assert verdict.flag == "insufficient-data"
    assert "'c' has 1 speaker " in verdict.note
    assert analysis.cell("noisy", "c").n_speakers == 1
    assert analysis.flagged == ()


def test_a_one_speaker_group_leaves_the_other_groups_intervals_alone(fast_settings):
    # The one speaker's leave-one-out WER is undefined (0/0); it once reached every group's
    # jackknife sum and erased all intervals, with a wrong "every speaker has the same WER".
    healthy = {
        "clean": {"a": [8, 12, 10, 9, 11], "b": [14, 10, 12, 13, 11]},
        "noisy": {"a": [20, 31, 22, 28, 25], "b": [12, 3, 13, 7, 13]},
    }
    alone = run(grid_items(healthy), fast_settings)
    with_one = {c: {**groups, "c": [10 if c == "clean" else 40]} for c, groups in healthy.items()}
    analysis = run(grid_items(with_one), fast_settings)
    for condition in ("clean", "noisy"):
        for group in ("a", "b"):
            assert analysis.wer(condition, group) == alone.wer(condition, group)
            assert not analysis.wer(condition, group).ci_note
        assert math.isnan(analysis.wer(condition, "c").ci_low)
    for group in ("a", "b"):
        assert analysis.delta("noisy", group) == alone.delta("noisy", group)
        assert analysis.delta("noisy", group).ci_low < analysis.delta("noisy", group).ci_high
    assert analysis.verdict("noisy").flag == "insufficient-data"


def test_below_min_speakers_is_insufficient(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": [10, 10]},
        "noisy": {"a": [19, 20, 21, 20, 19, 21], "b": [58, 62]},
    }
    assert run(grid_items(errors), fast_settings).verdict("noisy").flag == "insufficient-data"
    relaxed = fast_settings.model_copy(update={"min_speakers": 2})
    assert run(grid_items(errors), relaxed).verdict("noisy").flag == "uneven"


def test_empty_references_give_undefined_wer_and_no_flag(fast_settings):
    errors = {"clean": {"a": CLEAN6, "b": CLEAN6}, "noisy": {"a": [20] * 6, "b": [0] * 6}}
    items = grid_items(errors)
    for item in items:
        if item["condition_id"] == "noisy" and item["group"] == "b":
            item["n_ref"] = 0
    analysis = run(items, fast_settings)
    wer = analysis.wer("noisy", "b")
    assert math.isnan(wer.value) and not wer.defined
    assert analysis.verdict("noisy").flag == "insufficient-data"
    data = analysis.to_dict()
    cell = data["conditions"][1]["groups"][1]
    assert cell["wer_pct"] == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "ci_note": "no scored reference words",
    }
    json.dumps(data, allow_nan=False)


def test_relative_metric_hand_example():
    settings = FairnessSettings(metric="relative", n_bootstrap=200, n_permutations=199)
    errors = {
        "clean": {"a": [10] * 4, "b": [20] * 4},
        "noisy": {"a": [15] * 4, "b": [40] * 4},
    }
    analysis = run(grid_items(errors), settings)
    assert analysis.delta("noisy", "a").value == pytest.approx(0.5)  # 15 % / 10 % − 1
    assert analysis.delta("noisy", "b").value == pytest.approx(1.0)
    data = analysis.to_dict()
    assert data["conditions"][1]["groups"][0]["delta_pts"]["value"] == pytest.approx(50.0)
    assert data["conditions"][1]["disparity_pts"]["value"] == pytest.approx(50.0)
    assert "relative" in data["units"]["delta_pts"]


def test_relative_metric_with_zero_clean_wer_is_insufficient():
    settings = FairnessSettings(metric="relative", n_bootstrap=200, n_permutations=199)
    errors = {"clean": {"a": [0] * 4, "b": [10] * 4}, "noisy": {"a": [5] * 4, "b": [20] * 4}}
    analysis = run(grid_items(errors), settings)
    verdict = analysis.verdict("noisy")
    assert verdict.flag == "insufficient-data"
    assert "clean WER is 0" in verdict.note
    gap = analysis.difference("noisy", "a", "b")  # names the group whose Δ is undefined
    assert gap.ci_note.startswith("Δ of 'a' is undefined (no scored words, or a clean WER of 0")


def test_q_values_are_benjamini_hochberg_of_the_p_values(fast_settings):
    rng = np.random.default_rng(3)
    errors = {"clean": {g: list(rng.integers(8, 12, 5)) for g in "abc"}}
    for k, extra in enumerate([0, 5, 30]):
        errors[f"c{k}"] = {
            g: list(rng.integers(15, 25, 5) + (extra if g == "c" else 0)) for g in "abc"
        }
    analysis = run(grid_items(errors), fast_settings)
    p = np.array([analysis.verdict(c).p_value for c in analysis.degraded_conditions])
    q = np.array([analysis.verdict(c).q_value for c in analysis.degraded_conditions])
    assert q == pytest.approx(benjamini_hochberg(p))
    assert math.isnan(analysis.verdict("clean").p_value)
    assert analysis.verdict("clean").flag is None


def test_result_independent_of_item_order_and_reproducible(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": CLEAN6},
        "noisy": {"a": [18, 22, 20, 19, 21, 25], "b": [22, 27, 19, 26, 21, 24]},
    }
    items = grid_items(errors)
    first = run(items, fast_settings, seed=11).to_dict()
    shuffled = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
    assert run(shuffled, fast_settings, seed=11).to_dict() == first
    other = run(items, fast_settings, seed=12).to_dict()
    # Intervals are analytic; the seed drives the test's reference draws (4999 of them: p
    # moves by Monte-Carlo error only, sd <= 0.0071) and the planning simulation.
    for mine, theirs in zip(other["conditions"], first["conditions"], strict=True):
        assert mine["groups"] == theirs["groups"]
        if theirs["p_value"] is not None:
            assert mine["p_value"] == pytest.approx(theirs["p_value"], abs=0.03)


def test_to_dict_shape(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": CLEAN6},
        "noisy": {"a": [19, 20, 21, 20, 19, 21], "b": [20, 21, 22, 21, 20, 22]},
    }
    data = run(grid_items(errors), fast_settings).to_dict()
    json.dumps(data, allow_nan=False)
    assert set(data) >= {"metric", "settings", "seed", "clean_condition_id", "groups"}
    assert data["totals"] == {
        "n_items": 24,
        "n_failed": 0,
        "n_conditions": 2,
        "n_groups": 2,
        "n_speakers": 12,
        "n_uneven": 0,
        "n_inconclusive": 0,
        "n_insufficient_data": 0,
        "n_even": 1,
    }
    assert [c["id"] for c in data["conditions"]] == ["clean", "noisy"]
    assert data["conditions"][0]["is_clean"] and data["conditions"][0]["flag"] is None
    assert data["conditions"][1]["flag"] == "even"


def test_clean_condition_listed_first_whatever_the_item_order(fast_settings):
    errors = {"noisy": {"a": [20] * 3}, "clean": {"a": [10] * 3}}
    assert run(grid_items(errors), fast_settings).conditions == ("clean", "noisy")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (None, "missing n_ref"),
        (lambda items: items[0].update(substitutions=-1), "expected a whole number >= 0"),
        (lambda items: items[0].update(deletions=1.5), "deletions"),
        (lambda items: items.append(dict(items[0])), "appears twice"),
        (lambda items: items[0].update(group="b"), "belongs to one group"),
    ],
)
def test_bad_items_raise_config_error(fast_settings, mutate, message):
    items = grid_items({"clean": {"a": [10] * 3}, "noisy": {"a": [20] * 3}})
    if message == "missing n_ref":
        del items[0]["n_ref"]
    else:
        mutate(items)
    with pytest.raises(ConfigError, match=message):
        run(items, fast_settings)


def test_missing_clean_condition_is_a_config_error(fast_settings):
    items = grid_items({"noisy": {"a": [20] * 3}})
    with pytest.raises(ConfigError, match="clean condition 'clean' not found.*noisy"):
        run(items, fast_settings)


def test_no_items_and_bad_seed(fast_settings):
    with pytest.raises(ConfigError, match="no items"):
        run([], fast_settings)
    with pytest.raises(ConfigError, match="seed"):
        run(grid_items({"clean": {"a": [1]}}), fast_settings, seed=-1)


def test_unknown_lookup_names_the_known_ones(fast_settings):
    analysis = run(grid_items({"clean": {"a": [1, 2, 3]}}), fast_settings)
    with pytest.raises(ConfigError, match="known: clean"):
        analysis.verdict("nope")
    with pytest.raises(ConfigError, match="known: a"):
        analysis.wer("clean", "z")


def test_worst_items_per_condition_with_text_and_clean_wer(fast_settings):
    errors = {"clean": {"a": [1, 2, 3]}, "noisy": {"a": [10, 40, 20]}}
    items = grid_items(errors)
    for item in items:
        item["reference"] = f"ref of {item['utterance_id']}"
        item["hypothesis"] = "hyp"
    forward = run(items, fast_settings).to_dict()
    backward = run(items[::-1], fast_settings).to_dict()
    assert forward == backward  # the choice does not depend on item order
    worst = forward["conditions"][1]["worst_items"]
    assert [w["utterance_id"] for w in worst] == ["a1-u0", "a2-u0", "a0-u0"]
    assert worst[0] == {
        "utterance_id": "a1-u0",
        "speaker": "a1",
        "group": "a",
        "n_ref": 100,
        "n_errors": 40,
        "wer_pct": 40.0,
        "clean_wer_pct": 2.0,
        "reference": "ref of a1-u0",
        "hypothesis": "hyp",
    }
    assert forward["conditions"][0]["worst_items"] == []  # the clean condition lists none


def test_the_clean_delta_and_the_gap_have_no_impossible_intervals(fast_settings):
    # Δ of the clean condition is 0 by definition: no zero-width "interval". U = max − min
    # is never negative, so neither is its interval's lower end, even when the order of the
    # worst and best group is unsure (two groups 1 point apart, speakers spread widely).
    errors = {
        "clean": {"a": [10, 20, 5, 15], "b": [12, 18, 6, 14]},
        "noisy": {"a": [30, 60, 15, 45], "b": [25, 65, 10, 55]},
    }
    analysis = run(grid_items(errors), fast_settings)
    clean = analysis.delta("clean", "a")
    assert clean.value == 0.0 and math.isnan(clean.ci_low) and math.isnan(clean.ci_high)
    assert clean.ci_note == "reference condition: Δ is 0 by definition"
    gap = analysis.verdict("noisy").disparity
    assert gap.value > 0
    assert gap.ci_low == 0.0 < gap.value < gap.ci_high
