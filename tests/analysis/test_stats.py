import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from lastmile.analysis import benjamini_hochberg, permutation_p_value, plan_speakers
from lastmile.analysis.inference import (
    bootstrap_heterogeneity,
    cell_inference,
    heterogeneity_test,
    pseudo_values,
    score_statistic,
    t_interval,
    welch_df,
    welch_heterogeneity,
)
from lastmile.analysis.stats import disparity


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


def test_jackknife_of_a_ratio_matches_a_direct_computation():
    # Speakers of one group: errors / words; leave-one-out pooled WERs by hand.
    errors = np.array([[2.0, 6.0], [4.0, 9.0], [1.0, 2.0], [5.0, 8.0]])
    words = np.array([[20.0, 20.0], [30.0, 30.0], [10.0, 10.0], [40.0, 40.0]])
    inf = cell_inference(errors, words, np.zeros(4, dtype=np.intp), 1, relative=False)
    loo = [(12 - e) / (100 - n) for e, n in zip(errors[:, 0], words[:, 0], strict=True)]
    expected = 3 / 4 * sum((v - np.mean(loo)) ** 2 for v in loo)
    assert inf.wer[0, 0] == pytest.approx(0.12)
    assert inf.var_wer[0, 0] == pytest.approx(expected)
    assert inf.delta[1, 0] == pytest.approx(0.25 - 0.12)
    assert list(inf.speaker_delta[:, 1]) == pytest.approx([0.2, 5 / 30 - 0.0, 0.1, 0.075])
    psi = pseudo_values(errors, words, np.zeros(4, dtype=np.intp), 1, relative=False)
    assert psi.shape == (4, 1)
    # The pseudo-values' variance / n is the jackknife variance of Δ.
    assert np.var(psi[:, 0], ddof=1) / 4 == pytest.approx(inf.var_delta[1, 0])


def test_t_interval_and_welch_df():
    low, high = t_interval(np.array(1.0), np.array(0.04), np.array(4), level=0.95)
    assert float(high) - 1.0 == pytest.approx(student_t.ppf(0.975, 4) * 0.2)
    assert float(low) == pytest.approx(2.0 - float(high))
    # Equal variances and sizes: Welch df = n_a + n_b − 2.
    assert float(welch_df(np.array(1.0), np.array(10), np.array(1.0), np.array(10))) == 18
    nan_low, _ = t_interval(np.array(1.0), np.array(np.nan), np.array(4), level=0.95)
    assert math.isnan(float(nan_low))


def test_welch_heterogeneity_two_groups_is_welch_t_squared():
    d, v, n = np.array([0.1, 0.3]), np.array([0.01, 0.02]), np.array([8, 12])
    f_stat, _, df2, p = welch_heterogeneity(d, v, n)
    t_stat = 0.2 / math.sqrt(0.03)
    assert float(f_stat) == pytest.approx(t_stat**2)
    assert float(df2) == pytest.approx(float(welch_df(v[0], n[0], v[1], n[1])))
    assert float(p) == pytest.approx(2 * student_t.sf(t_stat, float(df2)))


def test_heterogeneity_statistic_is_welchs():
    # w = 1/v: m = (0/0.01 + 0.3/0.02) / (100 + 50) = 0.1; Σ w (d − m)² = 100·0.01 + 50·0.04 = 3.
    value = score_statistic(np.array([0.0, 0.3]), np.array([0.01, 0.02]), np.array([5.0, 5.0]))
    assert float(value) == pytest.approx(3.0)
    assert float(score_statistic(np.array([0.2, 0.2]), np.array([0.1, 0.1]), np.array([5, 5]))) == 0


def test_heterogeneity_test_p_values_under_the_null_and_a_shift():
    # Two groups of unequal size and spread with the same mean (normal speakers), 50
    # conditions x 20 repeats: the share of p <= 0.1 stays near 0.1 (binomial sd 0.0095).
    rng = np.random.default_rng(11)
    shares = []
    group = np.array([0] * 20 + [1] * 6)
    for _ in range(20):
        psi = np.concatenate([rng.normal(0, 1, (20, 50)), rng.normal(0, 3, (6, 50))])
        _, p = heterogeneity_test(psi, group, 2, rng=rng)
        shares.append(np.mean(p <= 0.1))
    assert 0.07 <= float(np.mean(shares)) <= 0.13
    psi[20:] += 6.0  # a shift of 4.9 standard errors is found
    _, p = heterogeneity_test(psi, group, 2, rng=rng)
    assert np.mean(p <= 0.05) > 0.85


def test_plan_speakers_more_for_smaller_gaps():
    rng = np.random.default_rng(5)
    residuals = [rng.normal(0, 0.05, 10), rng.normal(0, 0.05, 10), rng.normal(0, 0.08, 10)]
    residuals = [r - r.mean() for r in residuals]
    kw = {"margin": 0.05, "alpha": 0.05, "n_tests": 1, "n_sims": 300}
    big = plan_speakers(residuals, goal="detect", gap=0.10, rng=rng, **kw)
    small = plan_speakers(residuals, goal="detect", gap=0.04, rng=rng, **kw)
    assert big.speakers is not None and small.speakers is not None
    assert small.speakers > big.speakers
    assert big.power_by_size[-1][1] >= 0.8
    # Normal theory for the widest group's gap alone: n ≈ (z + z_p)² (σ_c² + σ_a²) / D² ≈ 6-8.
    assert 3 <= big.speakers <= 15
    even = plan_speakers(residuals, goal="even", gap=0.0, rng=rng, **kw)
    assert even.speakers is not None and even.power_by_size[-1][1] >= 0.8
    assert (
        plan_speakers([residuals[0][:1], residuals[1]], goal="even", gap=0, rng=rng, **kw).speakers
        is None
    )


def test_bootstrap_test_of_two_equal_groups_is_the_pooled_t_test():
    # Two groups of n with equal variances v: the reference law of t² = (d_a − d_b)² / 2v is
    # (Z_a − Z_b)² / (X_a/ν + X_b/ν) = t²_{2ν} exactly (ν = n − 1), so p is the pooled t test's.
    n, v = 6, 0.01
    gaps = np.array([0.0, 0.1, 0.2, 0.3])
    delta = np.stack([np.zeros(4), gaps], axis=1)
    variance = np.full((4, 2), v)
    for statistic in ("max", "score"):
        _, p = bootstrap_heterogeneity(
            delta, variance, np.array([n, n]), rng=np.random.default_rng(3), statistic=statistic
        )
        expected = 2 * student_t.sf(gaps / math.sqrt(2 * v), 2 * (n - 1))
        # 4999 draws: Monte-Carlo sd at most 0.0071.
        assert p == pytest.approx(expected, abs=0.025)
    assert p[0] == 1.0  # no gap: every drawn statistic is at least 0


def test_bootstrap_test_is_deterministic_and_undefined_where_it_should_be():
    rng = np.random.default_rng(0)
    delta, variance = rng.normal(size=(3, 4)), rng.uniform(0.5, 1.0, size=(3, 4))
    n = np.array([5, 5, 4, 9])
    first = bootstrap_heterogeneity(delta, variance, n, rng=np.random.default_rng(7))
    again = bootstrap_heterogeneity(delta, variance, n, rng=np.random.default_rng(7))
    assert np.array_equal(first[1], again[1])
    variance[1, 2] = 0.0  # every speaker of a group alike: the spread is unknown
    delta[2, 0] = np.nan
    t_stat, p = bootstrap_heterogeneity(delta, variance, n, rng=np.random.default_rng(7))
    assert np.isfinite(p[0]) and np.isnan(p[1:]).all() and np.isnan(t_stat[1:]).all()
    _, p = bootstrap_heterogeneity(delta, variance, np.array([5, 1, 4, 9]), rng=rng)
    assert np.isnan(p).all()  # a group of one speaker


def test_bootstrap_test_draws_every_variance_with_the_smallest_groups_df():
    # A large group (30) and a small one (4): the reference draws both spreads with 3 df,
    # so the p-value is that of the two-group law with ν = 3 for both (integrated here).
    from scipy.stats import chi2

    v_a, v_b, t_obs = 0.002, 0.004, 3.0
    delta = np.array([[0.0, t_obs * math.sqrt(v_a + v_b)]])
    variance = np.array([[v_a, v_b]])
    _, p = bootstrap_heterogeneity(delta, variance, np.array([30, 4]), rng=np.random.default_rng(1))
    share = v_a / (v_a + v_b)
    # E over X_a, X_b ~ χ²_3 on a midpoint grid of their quantiles (error ~1e-4).
    x = chi2.ppf((np.arange(800) + 0.5) / 800, 3)
    exact = float(np.mean(chi2.sf(t_obs**2 * (share * x[:, None] + (1 - share) * x) / 3, 1)))
    assert float(p[0]) == pytest.approx(exact, abs=0.012)  # 4 Monte-Carlo sd
    _, p_large = bootstrap_heterogeneity(
        delta, variance, np.array([30, 30]), rng=np.random.default_rng(1)
    )
    assert float(p_large[0]) < float(p[0]) - 0.01  # trusting both spreads gives smaller p
