"""The paired comparison of two runs: a worked example by hand, simulated coverage of the paired
intervals, the test's false-verdict rate under no difference, and its direction.

Bounds allow for Monte-Carlo error: n intervals at true coverage 0.95 have sd sqrt(.95·.05/n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import chi2
from scipy.stats import t as student_t

from lastmile.analysis.compare import compare_tables, paired_change
from lastmile.analysis.counts import CountTable, count_table
from lastmile.analysis.inference import t_interval
from lastmile.analysis.settings import FairnessSettings
from lastmile.analysis.synthetic import MEAN_WORDS, _location
from lastmile.errors import ConfigError

# -- a worked example by hand ----------------------------------------------------------------


def _items(noisy: dict[str, tuple[int, ...]], clean: int = 1) -> list[dict[str, object]]:
    """Three speakers per group, one 10-word utterance each in clean and in noisy."""
    out: list[dict[str, object]] = []
    for group, errors in noisy.items():
        for k, e in enumerate(errors):
            speaker = f"{group}{k}"
            for cond, n_err in (("clean", clean), ("noisy", e)):
                out.append(
                    {
                        "condition_id": cond,
                        "utterance_id": f"{speaker}-u",
                        "speaker": speaker,
                        "group": group,
                        "n_ref": 10,
                        "substitutions": n_err,
                        "deletions": 0,
                        "insertions": 0,
                        "error": None,
                    }
                )
    return out


def test_paired_change_worked_by_hand():
    # Group x: A makes 2, 3, 4 errors of 10 under noise, B 3, 5, 7; both 1 of 10 clean.
    # Δ_A = 0.3 − 0.1 = 0.2, Δ_B = 0.5 − 0.1 = 0.4, change 0.2. Leaving out x0, x1, x2:
    # A (3+4)/20, (2+4)/20, (2+3)/20 → Δ 0.25, 0.20, 0.15; B (5+7)/20, (3+7)/20, (3+5)/20 →
    # Δ 0.50, 0.40, 0.30; changes 0.25, 0.20, 0.15 around 0.20: jackknife variance
    # (2/3)(0.05² + 0 + 0.05²) = 1/300, half-width t(0.975, 2) · sqrt(1/300).
    # Group y: A 2, 2, 3 and B 2, 3, 3: change 1/30, per-speaker changes 0, .1, 0.
    a = count_table(_items({"x": (2, 3, 4), "y": (2, 2, 3)}), clean_condition_id="clean")
    b = count_table(_items({"x": (3, 5, 7), "y": (2, 3, 3)}), clean_condition_id="clean")
    conditions, _, analysis_b = compare_tables(a, b, settings=FairnessSettings())
    noisy = conditions[1]
    x, y = noisy.group("x"), noisy.group("y")
    half_x = student_t.ppf(0.975, 2) * math.sqrt(1 / 300)
    assert x.delta_a.value == pytest.approx(0.2) and x.delta_b.value == pytest.approx(0.4)
    assert x.delta_change.value == pytest.approx(0.2)
    assert x.delta_change.ci_low == pytest.approx(0.2 - half_x)
    assert x.delta_change.ci_high == pytest.approx(0.2 + half_x)
    # y: the per-speaker changes 0, 0.1, 0 have sd 0.0577, se 0.0333.
    var_y = np.var([0.0, 0.1, 0.0], ddof=1) / 3
    half_y = student_t.ppf(0.975, 2) * math.sqrt(var_y)
    assert y.delta_change.value == pytest.approx(1 / 30)
    assert y.delta_change.ci_high == pytest.approx(1 / 30 + half_y)
    # Equal word counts: the WER change's interval is the same paired t interval.
    assert x.wer_change.ci_low == pytest.approx(x.delta_change.ci_low)
    # The test: the studentized gap t of the two groups' changes, referred to its parametric
    # bootstrap law: (mean gap)² ~ (v_x + v_y) χ²_1 and each variance v · χ²_2 / 2
    # (n_min − 1 = 2), so p = E[P(χ²_1 ≥ t² (a X_x + (1 − a) X_y) / 2)], a = v_x / (v_x + v_y),
    # averaged over a grid here; the test's 4999 draws give it within 4 Monte-Carlo sd (0.004 each).
    t_stat = (0.2 - 1 / 30) / math.sqrt(1 / 300 + var_y)
    share = (1 / 300) / (1 / 300 + var_y)
    x = chi2.ppf((np.arange(800) + 0.5) / 800, 2)  # quantile midpoints: error ~1e-4
    exact = float(np.mean(chi2.sf(t_stat**2 * (share * x[:, None] + (1 - share) * x) / 2, 1)))
    assert noisy.p_value == pytest.approx(exact, abs=0.016)
    assert noisy.verdict == "no-difference"  # p = 0.08 with 3 speakers per group
    # U: x's Δ minus y's (A: 7/30 − 1/10; B: 8/30 − 1/10)
    assert noisy.disparity_a == pytest.approx(0.2 - (7 / 30 - 0.1))
    assert noisy.disparity_b == pytest.approx(0.4 - (8 / 30 - 0.1))
    # each run's own analysis is there too
    assert analysis_b.cell("noisy", "x").wer.value == pytest.approx(0.5)
    assert conditions[0].verdict is None and conditions[0].is_clean


def test_paired_change_of_the_relative_metric_worked_by_hand():
    # Relative Δ = WER / clean WER − 1 with clean WER 0.1 in every leave-one-out: group x's
    # Δ_A = 2, Δ_B = 4; the leave-one-out changes are 10 × the absolute ones: 2.5, 2.0, 1.5,
    # jackknife variance (2/3)(0.5² + 0 + 0.5²) = 1/3.
    a = count_table(_items({"x": (2, 3, 4), "y": (2, 2, 3)}), clean_condition_id="clean")
    b = count_table(_items({"x": (3, 5, 7), "y": (2, 3, 3)}), clean_condition_id="clean")
    change = paired_change(a, b, relative=True)
    assert change.delta[1, 0] == pytest.approx(2.0)
    assert change.var_delta[1, 0] == pytest.approx(1 / 3)
    settings = FairnessSettings(metric="relative")
    noisy = compare_tables(a, b, settings=settings)[0][1]
    half = student_t.ppf(0.975, 2) * math.sqrt(1 / 3)
    assert noisy.group("x").delta_change.ci_low == pytest.approx(2.0 - half)
    assert noisy.group("x").delta_a.value == pytest.approx(2.0)


def test_tables_of_other_items_are_refused():
    a = count_table(_items({"x": (2, 3, 4), "y": (2, 2, 3)}), clean_condition_id="clean")
    b = count_table(_items({"x": (2, 3, 4), "z": (2, 2, 3)}), clean_condition_id="clean")
    with pytest.raises(ConfigError, match="groups differ"):
        compare_tables(a, b, settings=FairnessSettings())


def test_fewer_paired_speakers_than_the_minimum_is_insufficient_data():
    a = count_table(_items({"x": (2, 3, 4), "y": (2, 2, 3)}), clean_condition_id="clean")
    b = count_table(_items({"x": (3, 5, 7), "y": (2, 3, 3)}), clean_condition_id="clean")
    conditions, _, _ = compare_tables(a, b, settings=FairnessSettings(min_speakers=4))
    assert conditions[1].verdict == "insufficient-data"
    assert "3 paired speakers (minimum 4)" in conditions[1].note


# -- simulation: paired runs with a known truth ------------------------------------------------

SD_UTTERANCE, SD_RUN_CONDITION, RHO = 0.6, 0.3, 0.05
BURST_RATE, BURST_MEAN = 0.02, 4.0


def _paired_tables(
    truth: np.ndarray, n_speakers: int, rng: np.random.Generator, *, n_utterances: int = 6
) -> tuple[CountTable, CountTable]:
    """Two runs (A, B) of the same utterances: ``truth`` (2, C, G) is each run's population
    pooled WER. Speaker and utterance effects (logit) are shared by both runs (the pairing);
    each run adds its own speaker × condition effect; beta-binomial errors and insertion
    bursts as in :mod:`lastmile.analysis.synthetic`. Groups differ in speaker spread."""
    _, n_cond, n_groups = truth.shape
    sd_speaker = np.linspace(0.4, 0.9, n_groups)
    burst = BURST_RATE * BURST_MEAN / MEAN_WORDS
    kappa = (1 - RHO) / RHO
    sd_e = np.array([0.0] + [SD_RUN_CONDITION] * (n_cond - 1))
    words_all, errors_all = [], [[], []]
    for g in range(n_groups):
        n = n_speakers
        b = rng.normal(0.0, sd_speaker[g], size=(n, 1, 1))
        v = rng.normal(0.0, SD_UTTERANCE, size=(n, n_utterances, 1))
        words = np.broadcast_to(
            1 + rng.poisson(MEAN_WORDS - 1.0, size=(n, n_utterances, 1)), (n, n_utterances, n_cond)
        )
        sd_total = np.sqrt(sd_speaker[g] ** 2 + SD_UTTERANCE**2 + sd_e**2)
        for k in range(2):
            loc = np.array(
                [_location(truth[k, c, g] - burst, sd_total[c], where="sim") for c in range(n_cond)]
            )
            e = rng.normal(0.0, 1.0, size=(n, 1, n_cond)) * sd_e
            p = expit(loc + b + v + e)
            q = rng.beta(p * kappa, (1 - p) * kappa)
            bursts = (rng.random(p.shape) < BURST_RATE) * (
                1 + rng.poisson(BURST_MEAN - 1.0, size=p.shape)
            )
            errors_all[k].append((rng.binomial(words, q) + bursts).sum(axis=1))
        words_all.append(words.sum(axis=1))
    words_sum = np.concatenate(words_all).astype(np.float64)
    speaker_group = np.repeat(np.arange(n_groups), n_speakers).astype(np.intp)
    conditions = ("clean", *(f"c{k}" for k in range(1, n_cond)))
    groups = tuple(f"g{k}" for k in range(n_groups))
    speakers = tuple(f"s{k:03d}" for k in range(speaker_group.size))
    zeros = np.zeros_like(words_sum)
    tables = []
    for k in range(2):
        errors = np.concatenate(errors_all[k]).astype(np.float64)
        tables.append(
            CountTable(
                conditions,
                groups,
                speakers,
                speaker_group,
                words_sum,
                errors,
                zeros,
                zeros,
                np.full(words_sum.shape, n_utterances, dtype=np.int64),
                np.zeros(words_sum.shape, dtype=np.int64),
            )
        )
    return tables[0], tables[1]


# Run A and B per condition (clean, degraded) and group: B is better on clean speech, and its
# degradation is 4 points worse for g0 and 8 points worse for g1.
TRUTH = np.array([[[0.08, 0.15], [0.20, 0.30]], [[0.06, 0.12], [0.22, 0.35]]])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n_speakers", [5, 10])
def test_paired_intervals_cover_the_truth(n_speakers):
    rng = np.random.default_rng(7 + n_speakers)
    true_delta = (TRUTH[1] - TRUTH[1][:1]) - (TRUTH[0] - TRUTH[0][:1])
    true_wer = TRUTH[1] - TRUTH[0]
    hits_delta, hits_wer = [], []
    n_sims = 300
    for _ in range(n_sims):
        a, b = _paired_tables(TRUTH, n_speakers, rng)
        change = paired_change(a, b, relative=False)
        low, high = t_interval(change.delta, change.var_delta, change.n_delta - 1, level=0.95)
        hits_delta.append(((low <= true_delta) & (true_delta <= high))[1])
        low, high = t_interval(change.wer, change.var_wer, change.n_wer - 1, level=0.95)
        hits_wer.append((low <= true_wer) & (true_wer <= high))
    # Δ change: 600 intervals (2 groups), sd 0.009; WER change: 1200 (clean and degraded).
    delta_cover = float(np.mean(hits_delta))
    wer_cover = float(np.mean(hits_wer))
    assert 0.93 - 2 * 0.009 <= delta_cover <= 0.97 + 2 * 0.009, delta_cover
    assert 0.93 - 2 * 0.0063 <= wer_cover <= 0.97 + 2 * 0.0063, wer_cover


@pytest.mark.timeout(120)
def test_no_difference_between_groups_rarely_gives_a_verdict():
    # B degrades every group by the same 4 extra points: the groups' change does not differ.
    truth = np.array([[[0.08, 0.15], [0.20, 0.30]], [[0.06, 0.12], [0.22, 0.31]]])
    rng = np.random.default_rng(11)
    verdicts = []
    for _ in range(200):
        a, b = _paired_tables(truth, 5, rng)
        conditions, _, _ = compare_tables(a, b, settings=FairnessSettings())
        verdicts.append(conditions[1].verdict)
    wrong = sum(v in ("more-uneven", "less-uneven", "changed") for v in verdicts) / len(verdicts)
    # α = 0.05; 200 packs: sd 0.015.
    assert wrong <= 0.05 + 2 * 0.016, wrong
    assert verdicts.count("insufficient-data") == 0


@pytest.mark.timeout(120)
def test_a_widened_gap_is_found_in_the_right_direction():
    # B adds 25 points to g1's degradation only: more uneven; swapped, less uneven. Never the
    # wrong way round (deciding by the sign of U_B − U_A alone got 1 of 40 backwards at
    # +15 points). Measured: 78 % more-uneven at 10 speakers per group (60 packs).
    truth = np.array([[[0.08, 0.15], [0.20, 0.27]], [[0.08, 0.15], [0.21, 0.53]]])
    rng = np.random.default_rng(12)
    forward, backward = [], []
    for _ in range(40):
        a, b = _paired_tables(truth, 10, rng)
        forward.append(compare_tables(a, b, settings=FairnessSettings())[0][1].verdict)
        backward.append(compare_tables(b, a, settings=FairnessSettings())[0][1].verdict)
    assert forward.count("more-uneven") >= 26, forward
    assert backward.count("less-uneven") == forward.count("more-uneven")
    assert "less-uneven" not in forward and "more-uneven" not in backward


def test_groups_that_swap_places_are_changed_not_more_uneven():
    # A: g0 loses 15 points more than g1; B: g1 loses 15 points more than g0. The groups'
    # change differs (the test sees it) but the gap is as wide as before.
    truth = np.array([[[0.10, 0.10], [0.35, 0.20]], [[0.10, 0.10], [0.20, 0.35]]])
    rng = np.random.default_rng(13)
    verdicts = [
        compare_tables(*_paired_tables(truth, 10, rng), settings=FairnessSettings())[0][1].verdict
        for _ in range(40)
    ]
    assert verdicts.count("changed") >= 30, verdicts
    assert verdicts.count("more-uneven") + verdicts.count("less-uneven") <= 4, verdicts
