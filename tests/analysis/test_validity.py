"""The statistical properties of the benchmark, on small simulations with fixed seeds.

Bounds allow for Monte-Carlo error: n intervals at true coverage 0.95 have sd sqrt(.95·.05/n).
"""

import numpy as np
import pytest

from lastmile.analysis import FairnessSettings, analyze_table
from lastmile.analysis.synthetic import MEAN_WORDS, GroupSpec, SyntheticRun, synthetic_table
from lastmile.analysis.validity import (
    coverage,
    many_groups_null,
    null_uneven_rate,
    power_study,
    shortcut_null,
    verdict_shares,
)


def test_synthetic_pooled_wer_converges_to_the_truth():
    run = SyntheticRun(
        {"a": GroupSpec(3000, [0.10, 0.25], 0.5), "b": GroupSpec(3000, [0.20, 0.30], 0.9)},
        n_utterances=4,
    )
    table = synthetic_table(run, rng=np.random.default_rng(1))
    for c, truth in enumerate(([0.10, 0.20], [0.25, 0.30])):
        for g in range(2):
            rows = table.speaker_group == g
            wer = table.errors[rows, c].sum() / table.ref_words[rows, c].sum()
            assert wer == pytest.approx(truth[g], abs=0.006)
    assert table.ref_words.mean() / 4 == pytest.approx(MEAN_WORDS, rel=0.02)


def test_synthetic_runs_are_rougher_than_binomial():
    # Beta-binomial errors and insertion bursts: speaker WERs vary more than binomial noise.
    run = SyntheticRun({"a": GroupSpec(400, [0.15], 0.0)}, n_utterances=10, sd_utterance=0.0)
    table = synthetic_table(run, rng=np.random.default_rng(2))
    wer = table.errors[:, 0] / table.ref_words[:, 0]
    binomial_sd = np.sqrt(0.15 * 0.85 / table.ref_words[:, 0].mean())
    assert wer.std() > 1.2 * binomial_sd


@pytest.mark.timeout(60)
@pytest.mark.parametrize("n_speakers", [3, 10])
def test_interval_coverage_near_nominal(n_speakers):
    result = coverage(n_speakers=n_speakers, n_sims=40, seed=202)
    assert result.shown == 1.0
    # 40 runs: 600 WER, 480 Δ and 480 pair intervals (sd about 0.01 each, but clustered).
    for value in (result.wer, result.delta, result.pairs):
        assert 0.91 <= value <= 0.985


@pytest.mark.timeout(60)
@pytest.mark.parametrize("metric", ["absolute", "relative"])
def test_null_pack_with_equal_group_sizes_rarely_flags(metric):
    result = null_uneven_rate(metric=metric, sizes=(10, 10, 10), n_sims=40, seed=101)
    # 40 packs of 10 conditions; the benchmark measures the rate on more packs.
    assert result.familywise_uneven <= 0.1
    assert result.p_below_alpha <= 0.09


@pytest.mark.timeout(60)
def test_null_pack_with_a_small_varied_group_rarely_flags():
    # Group c: 3 speakers, the highest clean WER and the widest spread. Uncapped Welch
    # degrees of freedom flagged about 17 % of such packs; capped, about 2 % (benchmark).
    result = null_uneven_rate(sizes=(10, 10, 3), n_sims=40, seed=101)
    assert result.familywise_uneven <= 0.075
    assert result.p_below_alpha <= 0.075


@pytest.mark.timeout(60)
def test_a_gap_at_the_margin_is_not_called_even_and_large_gaps_are_found():
    at_margin = verdict_shares(gap=0.05, n_speakers=30, n_sims=30, seed=7, n_bootstrap=200)
    assert at_margin.even <= 0.1
    large = verdict_shares(
        gap=0.30, n_speakers=10, n_utterances=20, n_sims=30, seed=8, n_bootstrap=200
    )
    assert large.uneven >= 0.6
    alike = verdict_shares(
        gap=0.0, n_speakers=30, n_utterances=20, n_sims=30, seed=9, n_bootstrap=200
    )
    assert alike.even >= 0.3 and alike.uneven <= 0.1


def test_table_and_items_give_the_same_analysis():
    from lastmile.analysis import analyze

    run = SyntheticRun({"a": GroupSpec(4, [0.1, 0.2]), "b": GroupSpec(3, [0.15, 0.3])})
    table = synthetic_table(run, rng=np.random.default_rng(3))
    items = []
    for s, speaker in enumerate(table.speakers):
        for c, cond in enumerate(table.conditions):
            items.append(
                {
                    "condition_id": cond,
                    "utterance_id": f"{speaker}-all",
                    # one item standing for the speaker's utterances
                    "speaker": speaker,
                    "group": table.groups[table.speaker_group[s]],
                    "n_ref": int(table.ref_words[s, c]),
                    "substitutions": int(table.errors[s, c]),
                    "deletions": 0,
                    "insertions": 0,
                    "error": None,
                }
            )
    settings = FairnessSettings(n_bootstrap=200)
    direct = analyze_table(table, settings=settings, seed=4).to_dict()
    from_items = analyze(items, clean_condition_id="clean", settings=settings, seed=4).to_dict()
    # Only the item counts differ (one item per speaker here, 10 utterances in the table), and
    # a synthetic table has no items to list as the worst.
    from_items["totals"]["n_items"] = direct["totals"]["n_items"]
    for mine, theirs in zip(from_items["conditions"], direct["conditions"], strict=True):
        mine["n_items"] = theirs["n_items"]
        assert theirs.pop("worst_items") == []
        assert len(mine.pop("worst_items")) == (0 if mine["is_clean"] else 5)
        for cell_a, cell_b in zip(mine["groups"], theirs["groups"], strict=True):
            cell_a["n_items"] = cell_b["n_items"]
    assert from_items == direct


@pytest.mark.timeout(60)
def test_many_small_groups_at_high_wer_hold_the_level():
    # 8 groups of 4 speakers at about 40 % WER: Welch's F rejected about 9 % of these null
    # conditions at p <= 0.05; the bootstrap about 4.5 % (benchmark, 200 packs).
    result = many_groups_null(n_groups=8, n_speakers=4, level="high", n_sims=25, seed=5)
    assert result.p_below_alpha <= 0.08  # 250 conditions: sd about 0.014
    assert result.familywise_uneven <= 0.16


@pytest.mark.timeout(60)
def test_power_study_oracle_bounds_the_tests():
    study = power_study(n_sims=40, seed=4)
    assert study.oracle >= study.uneven
    assert study.oracle >= study.welch_f
    assert 0.02 < study.contrast_sd < 0.06  # about 3.5 points with 10 speakers
    assert study.oracle == pytest.approx(study.oracle_formula, abs=0.2)


@pytest.mark.timeout(60)
def test_shortcuts_to_more_power_flag_null_packs():
    # Treating estimated standard errors as known (chi-square reference) or averaging a
    # group's variance over conditions gains power only by false flags: with a group of 3
    # speakers the chi-square reference flagged 44 % of null packs, the analysis 0.6 %
    # (benchmark, 1000 packs).
    rates = shortcut_null(sizes=(10, 10, 3), n_sims=40, seed=6)
    assert rates["uneven"] <= 0.1
    assert rates["chi2_reference"] >= 0.2
    assert rates["pooled_variance"] > rates["uneven"]
