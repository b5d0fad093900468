"""The statistical properties of the benchmark, on smaller simulations with fixed seeds."""

import numpy as np
import pytest

from lastmile.analysis import FairnessSettings, analyze, analyze_table
from lastmile.analysis.simulate import (
    SimulationSpec,
    logit_location,
    population_mean_wer,
    simulate_items,
    simulate_table,
)
from lastmile.analysis.validity import ci_coverage, null_flag_rate, null_truth, power


def test_logit_location_hits_the_population_wer():
    a = logit_location(0.12, 0.8)
    assert population_mean_wer(a, 0.8) == pytest.approx(0.12, abs=1e-10)


def test_simulated_pooled_wer_converges_to_the_truth():
    truth = {"clean": {"a": 0.10, "b": 0.20}, "n": {"a": 0.25, "b": 0.30}}
    spec = SimulationSpec(truth, n_speakers=3000, n_utterances=4)
    table = simulate_table(spec, rng=np.random.default_rng(1))
    for c, cond in enumerate(table.conditions):
        for g, group in enumerate(table.groups):
            rows = table.speaker_group == g
            wer = table.errors[rows, c].sum() / table.ref_words[rows, c].sum()
            assert wer == pytest.approx(truth[cond][group], abs=0.006)


def test_items_and_table_paths_agree():
    spec = SimulationSpec(null_truth("absolute"), n_speakers=5, n_utterances=3, failure_rate=0.1)
    settings = FairnessSettings(n_bootstrap=200, n_permutations=199)
    items = simulate_items(spec, rng=np.random.default_rng(5))
    from_items = analyze(items, clean_condition_id="clean", settings=settings, seed=1)
    from_table = analyze_table(
        simulate_table(spec, rng=np.random.default_rng(5)), settings=settings, seed=1
    )
    assert from_items.to_dict() == from_table.to_dict()
    assert from_items.totals.n_failed > 0


@pytest.mark.parametrize("metric", ["absolute", "relative"])
def test_null_flag_rate_at_most_alpha(metric):
    result = null_flag_rate(metric=metric, n_sims=60, seed=101, n_permutations=199, n_bootstrap=200)
    assert result.n_conditions == 240
    assert result.flag_rate <= 0.05
    assert result.p_below_alpha <= 0.10  # the permutation test itself is roughly calibrated


@pytest.mark.parametrize("metric", ["absolute", "relative"])
def test_ci_coverage_near_nominal(metric):
    result = ci_coverage(metric=metric, n_sims=80, seed=202, n_bootstrap=500)
    assert result.n_intervals == 80 * 4 * 6
    assert 0.93 <= result.coverage <= 0.97
    assert result.plain_percentile < result.coverage  # the expansion is what buys coverage


def test_power_grows_with_the_effect():
    small = power(n_sims=60, seed=303, n_permutations=199, n_bootstrap=200)
    large = power(extra_pts=15.0, n_sims=60, seed=303, n_permutations=199, n_bootstrap=200)
    assert 0.15 <= small <= 0.75
    assert large >= 0.9
