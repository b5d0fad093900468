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


def test_inconclusive_carries_speakers_needed(fast_settings):
    # c's Δ is driven by one of its three speakers: every relabelling reproduces U, so p = 1.
    errors = {
        "clean": {"a": [10] * 3, "b": [10] * 3, "c": [10] * 3},
        "noisy": {"a": [20] * 3, "b": [20] * 3, "c": [20, 20, 50]},
    }
    verdict = run(grid_items(errors), fast_settings).verdict("noisy")
    assert verdict.disparity.value == pytest.approx(0.10)
    assert verdict.p_value == pytest.approx(1.0)
    assert verdict.flag == "inconclusive"
    assert isinstance(verdict.speakers_needed, int)
    assert verdict.speakers_needed > 3
    assert "speakers per group" in verdict.note


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


def test_below_min_speakers_is_insufficient(fast_settings):
    errors = {
        "clean": {"a": CLEAN6, "b": [10, 10]},
        "noisy": {"a": [20] * 6, "b": [60, 60]},
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
    assert cell["wer_pct"] == {"value": None, "ci_low": None, "ci_high": None}
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
    verdict = run(grid_items(errors), settings).verdict("noisy")
    assert verdict.flag == "insufficient-data"
    assert "clean WER is 0" in verdict.note


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
        "noisy": {"a": [18, 22, 20, 19, 21, 25], "b": [28, 31, 25, 30, 35, 29]},
    }
    items = grid_items(errors)
    first = run(items, fast_settings, seed=11).to_dict()
    shuffled = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
    assert run(shuffled, fast_settings, seed=11).to_dict() == first
    other = run(items, fast_settings, seed=12).to_dict()
    assert (
        other["conditions"][1]["groups"][0]["delta_pts"]
        != (first["conditions"][1]["groups"][0]["delta_pts"])
    )


def test_to_dict_shape(fast_settings):
    errors = {"clean": {"a": CLEAN6, "b": CLEAN6}, "noisy": {"a": [20] * 6, "b": [21] * 6}}
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
