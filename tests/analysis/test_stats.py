import math

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from lastmile.analysis import benjamini_hochberg, permutation_p_value, speakers_needed
from lastmile.analysis.stats import disparity, expanded_tail, percentile_interval


def test_bh_matches_hand_computation():
    # sorted: 0.01 (j=1), 0.03 (2), 0.04 (3), 0.20 (4); m p / j = 0.04, 0.06, 0.0533, 0.20;
    # running minimum from the top: 0.04, 0.0533, 0.0533, 0.20.
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan])
    q = benjamini_hochberg(p)
    assert q[:4] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert math.isnan(q[4])


def test_bh_caps_at_one_and_handles_empty():
    assert benjamini_hochberg(np.array([0.9, 0.95]))[0] == pytest.approx(0.95)
    assert benjamini_hochberg(np.array([1.0]))[0] == 1.0
    assert benjamini_hochberg(np.array([])).size == 0


def test_permutation_p_value_formula():
    # (1 + #{U* >= U}) / (1 + P): two of four permuted values reach 1.0.
    assert permutation_p_value(1.0, np.array([0.5, 1.0, 2.0, 0.9])) == pytest.approx(3 / 5)
    assert permutation_p_value(5.0, np.zeros(99)) == pytest.approx(1 / 100)
    assert permutation_p_value(1.0, np.array([np.nan, 2.0])) == pytest.approx(2 / 3)
    assert math.isnan(permutation_p_value(math.nan, np.zeros(3)))


def test_disparity_ignores_undefined_groups():
    delta = np.array([[0.1, 0.3, np.nan], [0.2, np.nan, np.nan]])
    spread, worst, best = disparity(delta)
    assert spread[0] == pytest.approx(0.2)
    assert (worst[0], best[0]) == (1, 0)
    assert math.isnan(spread[1]) and worst[1] == -1


def test_percentile_interval_matches_numpy_and_skips_nan():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(1000, 3))
    low, high = percentile_interval(draws, 0.025)
    assert low == pytest.approx(np.quantile(draws, 0.025, axis=0))
    assert high == pytest.approx(np.quantile(draws, 0.975, axis=0))
    draws[:500, 0] = np.nan
    low, _ = percentile_interval(draws, 0.025)
    assert low[0] == pytest.approx(np.quantile(draws[500:, 0], 0.025))
    low, high = percentile_interval(np.full((10, 1), np.nan), 0.025)
    assert math.isnan(low[0]) and math.isnan(high[0])


def test_expanded_tail_single_group_and_limits():
    tail = expanded_tail(0.95, variances=np.array([1.0]), n_speakers=np.array([20]))
    expected = norm.cdf(-math.sqrt(20 / 19) * student_t.ppf(0.975, 19))
    assert float(tail) == pytest.approx(expected)
    assert 0.015 < float(tail) < 0.017
    big = expanded_tail(0.95, variances=np.array([1.0]), n_speakers=np.array([100000]))
    assert float(big) == pytest.approx(0.025, abs=1e-4)
    # One speaker: no expansion possible, plain tail.
    one = expanded_tail(0.95, variances=np.array([1.0]), n_speakers=np.array([1]))
    assert float(one) == pytest.approx(0.025)


def test_expanded_tail_two_groups_uses_welch():
    v, n = np.array([1.0, 1.0]), np.array([20, 20])
    df = 38.0  # equal variances and sizes: Welch gives n_a + n_b − 2
    expected = norm.cdf(-math.sqrt(20 / 19) * student_t.ppf(0.975, df))
    assert float(expanded_tail(0.95, variances=v, n_speakers=n)) == pytest.approx(expected)


def test_speakers_needed_hand_example():
    # z = 1.95996 + 0.84162 = 2.80158; n = z² (0.03² 10 + 0.03² 10) / 0.06² = 39.24 → 40
    assert speakers_needed(0.06, 0.03, 10, 0.03, 10, alpha=0.05) == 40
    # Never fewer than the speakers already there plus one.
    assert speakers_needed(0.5, 0.01, 10, 0.01, 10, alpha=0.05) == 11
    assert speakers_needed(math.nan, 0.01, 10, 0.01, 10, alpha=0.05) is None
