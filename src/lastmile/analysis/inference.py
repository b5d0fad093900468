"""Speaker-cluster standard errors, t intervals, the heterogeneity test, equivalence.

Every group's pooled WER W = ΣE / ΣN and its degradation Δ are smooth functions of the group's
per-speaker sums, so their sampling variance across speakers is estimated by the delete-one-
speaker jackknife (the speaker is the cluster: all of a speaker's utterances, in every
condition, leave together, so Δ's clean and degraded parts stay paired). Intervals are
Student t with the speakers' degrees of freedom (n − 1 for one group; Welch–Satterthwaite for a
difference of two groups). The test of "the groups degrade alike" is Welch's heterogeneity
statistic over the groups' Δ, each weighted by its own jackknife variance, referred to a
parametric bootstrap of the groups' means and variances (:func:`bootstrap_heterogeneity`), so
groups that differ in clean WER, spread or size do not inflate it, and neither do many small
groups (Welch's F, :func:`welch_heterogeneity`, did; it is kept for comparison).

Shapes: ``errors``/``words`` are (S, C) speaker × condition sums (the clean condition in column
0); ``speaker_group`` is (S,) group indices; results per cell are (C, G).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import f as f_dist
from scipy.stats import t as student_t

__all__ = [
    "MIN_SPEAKERS_FOR_INTERVAL",
    "N_REFERENCE_DRAWS",
    "STATISTICS",
    "CellInference",
    "bootstrap_heterogeneity",
    "cell_inference",
    "group_means",
    "heterogeneity_test",
    "pseudo_values",
    "score_statistic",
    "t_interval",
    "welch_df",
    "welch_heterogeneity",
]

MIN_SPEAKERS_FOR_INTERVAL = 3
"""Fewest speakers per group for an interval: with 2, the relative Δ's interval covered 0.92
in the validity simulation (benchmarks/stats_validity.py), so none is shown."""


@dataclass(frozen=True, eq=False)
class CellInference:
    """Estimates and jackknife variances per cell, shape (C, G) (fractions).

    ``n_wer``: speakers with scored words in the cell; ``n_delta``: speakers with scored words
    in the cell or the clean cell of their group (the clusters of Δ). ``var_*`` is ``nan``
    where fewer than two clusters exist; ``jack_undefined`` counts speakers whose removal
    leaves Δ undefined (relative metric: the rest of the group has a clean WER of 0).
    ``speaker_delta`` (S, C) is each speaker's own Δ (``nan`` when undefined).
    """

    wer: np.ndarray
    delta: np.ndarray
    var_wer: np.ndarray
    var_delta: np.ndarray
    n_wer: np.ndarray
    n_delta: np.ndarray
    jack_undefined: np.ndarray
    speaker_delta: np.ndarray


def _degrade(wer: np.ndarray, clean: np.ndarray, relative: bool) -> np.ndarray:
    if not relative:
        return wer - clean
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clean > 0, wer / np.where(clean > 0, clean, 1.0) - 1.0, np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _jackknife_var(
    leave_out: np.ndarray, member: np.ndarray, group_index: np.ndarray, n: np.ndarray, n_groups: int
) -> np.ndarray:
    """(n − 1)/n Σ_s (θ_(−s) − mean)² over the member speakers of each group.

    ``leave_out`` (S, C) holds θ with speaker s removed from its group, ``member`` (S, C) marks
    the speakers that count as clusters there; ``n`` (C, G) their number. Returns (C, G):
    ``nan`` for a group with fewer than two members or an undefined θ_(−s) (only that group:
    the sums over groups are products with a one-hot matrix, where a ``nan`` would reach every
    group, since nan · 0 is nan).
    """
    finite = member & np.isfinite(leave_out)
    values = np.where(finite, leave_out, 0.0)
    onehot = np.zeros((group_index.size, n_groups))
    onehot[np.arange(group_index.size), group_index] = 1.0
    undefined = ((member & ~finite).astype(np.float64).T @ onehot) > 0  # (C, G)
    total = values.T @ onehot  # (C, G)
    safe_n = np.where(n > 0, n, 1)
    mean = total / safe_n
    dev = np.where(finite, leave_out - mean.T[group_index], 0.0)
    squares = (dev**2).T @ onehot
    return np.where((n >= 2) & ~undefined, (n - 1) / safe_n * squares, np.nan)


def cell_inference(
    errors: np.ndarray,
    words: np.ndarray,
    speaker_group: np.ndarray,
    n_groups: int,
    *,
    relative: bool,
) -> CellInference:
    """Pooled WER and Δ per cell with delete-one-speaker jackknife variances."""
    onehot = np.zeros((speaker_group.size, n_groups))
    onehot[np.arange(speaker_group.size), speaker_group] = 1.0
    e_sum, n_sum = errors.T @ onehot, words.T @ onehot  # (C, G)
    wer = _ratio(e_sum, n_sum)
    delta = _degrade(wer, wer[:1], relative)
    # Leave-one-out sums for each speaker's own group, (S, C).
    e_loo = e_sum.T[speaker_group] - errors
    n_loo = n_sum.T[speaker_group] - words
    wer_loo = _ratio(e_loo, n_loo)
    delta_loo = _degrade(wer_loo, wer_loo[:, :1], relative)
    has_words = words > 0
    in_delta = has_words | has_words[:, :1]
    n_wer = (has_words.astype(np.float64).T @ onehot).astype(np.int64)
    n_delta = (in_delta.astype(np.float64).T @ onehot).astype(np.int64)
    undefined = in_delta & ~np.isfinite(delta_loo)
    jack_undefined = (undefined.astype(np.float64).T @ onehot).astype(np.int64)
    var_wer = _jackknife_var(wer_loo, has_words, speaker_group, n_wer, n_groups)
    var_delta = _jackknife_var(delta_loo, in_delta, speaker_group, n_delta, n_groups)
    var_delta = np.where(jack_undefined > 0, np.nan, var_delta)
    own = _ratio(errors, words)
    speaker_delta = _degrade(own, own[:, :1], relative)
    speaker_delta = np.where(has_words & has_words[:, :1], speaker_delta, np.nan)
    return CellInference(
        wer=wer,
        delta=delta,
        var_wer=var_wer,
        var_delta=var_delta,
        n_wer=n_wer,
        n_delta=n_delta,
        jack_undefined=jack_undefined,
        speaker_delta=speaker_delta,
    )


def t_interval(
    value: np.ndarray, variance: np.ndarray, df: np.ndarray, *, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """``value ± t_{df, (1+level)/2} · sqrt(variance)``, ``nan`` where undefined or df < 1."""
    ok = np.isfinite(value) & np.isfinite(variance) & (df >= 1)
    with np.errstate(invalid="ignore"):
        half = student_t.ppf(0.5 + level / 2.0, np.where(ok, df, 1.0)) * np.sqrt(
            np.where(ok, variance, 0.0)
        )
    return np.where(ok, value - half, np.nan), np.where(ok, value + half, np.nan)


def welch_df(var_a: np.ndarray, n_a: np.ndarray, var_b: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """Welch–Satterthwaite degrees of freedom of a difference of two independent estimates."""
    with np.errstate(invalid="ignore", divide="ignore"):
        num = (var_a + var_b) ** 2
        den = var_a**2 / np.maximum(n_a - 1, 1) + var_b**2 / np.maximum(n_b - 1, 1)
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def welch_heterogeneity(
    delta: np.ndarray, variance: np.ndarray, n: np.ndarray, *, cap_df: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Welch's (1951) heteroscedastic ANOVA of the groups' Δ along the last axis.

    With weights w_g = 1/var_g, the weighted mean m = Σ w Δ / Σ w and
    Λ = Σ (1 − w_g/Σw)² / (n_g − 1): F = [Σ w (Δ − m)² / (k − 1)] / [1 + 2(k − 2)Λ/(k² − 1)],
    referred to F(k − 1, (k² − 1)/(3Λ)). For two groups it is Welch's t test squared.
    ``cap_df`` caps the second degrees of freedom at what a balanced design of the smallest
    group's size would have, k (k + 1)(n_min − 1) / (3 (k − 1)) (2 (n_min − 1) for 3 groups).
    Welch's df trusts a small group's variance estimate as much as a large one's; when the
    small group's speakers are also the most varied and skewed (higher-WER speakers lose more
    points), its variance is underestimated exactly when its Δ is off, and the uncapped test
    flagged 17 % of null packs with groups of 10/10/3 speakers (capped: 2.6 %). Even capped,
    it rejected up to 9 % of null conditions (family-wise 16.5 %) with 8 groups of 4 speakers,
    so the analysis now uses :func:`bootstrap_heterogeneity`; this stays for comparison.
    Returns ``(F, df1, df2, p)``; ``nan`` where a group's variance is undefined or zero, or
    fewer than two groups are given.
    """
    delta = np.asarray(delta, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    k = delta.shape[-1]
    ok = (
        np.isfinite(delta).all(axis=-1)
        & np.isfinite(variance).all(axis=-1)
        & (variance > 0).all(axis=-1)
        & (n >= 2).all(axis=-1)
        & (k >= 2)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        w = 1.0 / np.where(ok[..., None], variance, 1.0)
        total = w.sum(axis=-1)
        mean = (w * np.where(ok[..., None], delta, 0.0)).sum(axis=-1) / total
        q = (w * (np.where(ok[..., None], delta, 0.0) - mean[..., None]) ** 2).sum(axis=-1)
        lam = ((1.0 - w / total[..., None]) ** 2 / np.maximum(n - 1, 1)).sum(axis=-1)
        f_stat = (q / (k - 1)) / (1.0 + 2.0 * (k - 2) * lam / (k * k - 1))
        df2 = (k * k - 1) / (3.0 * lam)
        if cap_df:
            # No more than a balanced design whose groups all had the smallest group's size
            # (equal weights): k (k + 1) (n_min − 1) / (3 (k − 1)).
            n_min = np.min(np.where(ok[..., None], n, 2), axis=-1)
            df2 = np.minimum(df2, k * (k + 1) * (n_min - 1.0) / (3.0 * (k - 1)))
        p = f_dist.sf(f_stat, k - 1, df2)
    nan = np.nan
    df1 = np.full(f_stat.shape, float(k - 1))
    return (
        np.where(ok, f_stat, nan),
        np.where(ok, df1, nan),
        np.where(ok, df2, nan),
        np.where(ok, p, nan),
    )


def pseudo_values(
    errors: np.ndarray,
    words: np.ndarray,
    speaker_group: np.ndarray,
    n_groups: int,
    *,
    relative: bool,
) -> np.ndarray:
    """Jackknife pseudo-values of Δ per speaker and degraded condition, shape (S, C − 1).

    ψ_s = n θ − (n − 1) θ_(−s) over the n speakers of s's group: their mean is the jackknife
    estimate of the group's Δ and their variance / n its jackknife variance, so a group's Δ
    becomes a mean of speaker-level values that tests can resample. ``nan`` where undefined.
    """
    onehot = np.zeros((speaker_group.size, n_groups))
    onehot[np.arange(speaker_group.size), speaker_group] = 1.0
    e_sum, n_sum = errors.T @ onehot, words.T @ onehot
    wer = _ratio(e_sum, n_sum)
    delta = _degrade(wer, wer[:1], relative)  # (C, G)
    wer_loo = _ratio(e_sum.T[speaker_group] - errors, n_sum.T[speaker_group] - words)
    delta_loo = _degrade(wer_loo, wer_loo[:, :1], relative)  # (S, C)
    n = onehot.sum(axis=0)[speaker_group][:, None]
    return (n * delta.T[speaker_group] - (n - 1.0) * delta_loo)[:, 1:]


def score_statistic(mean: np.ndarray, var: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Welch's heterogeneity statistic Σ_g w_g (d_g − m)², w_g = 1 / v_g, over the last axis.

    m is the precision-weighted mean of the d_g. A variance of 0 (a resample that drew one
    speaker n times) is floored at 1e-3 of the largest variance, so the statistic stays finite.
    ``n`` is accepted for a uniform signature (the bootstrap calibrates small groups).
    """
    del n
    floor = 1e-3 * np.max(var, axis=-1, keepdims=True) + 1e-18
    w = 1.0 / np.maximum(var, floor)
    m = (w * mean).sum(axis=-1, keepdims=True) / w.sum(axis=-1, keepdims=True)
    return (w * (mean - m) ** 2).sum(axis=-1)


def _score(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Σ_g w_g (d_g − m)², w_g = 1 / v_g, m the precision-weighted mean (last axis)."""
    w = 1.0 / var
    m = (w * mean).sum(axis=-1, keepdims=True) / w.sum(axis=-1, keepdims=True)
    return (w * (mean - m) ** 2).sum(axis=-1)


def _max_gap(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """The largest studentized pairwise gap max_{a<b} |d_a − d_b| / sqrt(v_a + v_b)."""
    a, b = np.triu_indices(mean.shape[-1], 1)
    return (np.abs(mean[..., a] - mean[..., b]) / np.sqrt(var[..., a] + var[..., b])).max(axis=-1)


STATISTICS = {"max": _max_gap, "score": _score}
N_REFERENCE_DRAWS = 4999


def bootstrap_heterogeneity(
    delta: np.ndarray,
    variance: np.ndarray,
    n: np.ndarray,
    *,
    rng: np.random.Generator,
    statistic: str = "score",
    n_draws: int = N_REFERENCE_DRAWS,
) -> tuple[np.ndarray, np.ndarray]:
    """A parametric-bootstrap test (Krishnamoorthy, Lu & Mathew 2007) that the groups' Δ agree.

    ``delta``, ``variance``: (K, G) group means and variances of the mean; ``n``: (G,) group
    sizes. The observed statistic (``"score"``: Welch's Σ w (Δ − m)², which uses every group;
    ``"max"``: the largest studentized pairwise gap, Games–Howell style, kept for the
    benchmark's comparison) is referred to its distribution when every
    group has the same Δ and normal speakers: a group's mean is drawn as N(0, v_g) and its
    variance as v_g · χ²_ν / ν, the statistic recomputed from the drawn pair, ``n_draws``
    times; p = (1 + #{T* ≥ T}) / (1 + n_draws). This carries the small-sample law of every
    estimated variance into the reference distribution, where Welch's F approximates it by
    one F with fitted degrees of freedom, which rejected 6–9 % of true nulls at p ≤ 0.05 with
    6–8 groups of 4–6 speakers (benchmarks/README.md, ``stats_validity.py``).

    ν = n_min − 1 for every group, the analogue of the cap on Welch's degrees of freedom: no
    group's spread is trusted more than the smallest group's. A small group whose speakers are
    also the most varied and skewed has its spread underestimated exactly when its Δ is off;
    with ν = n_g − 1 the test flagged 8 % (groups 30/10/5) and 20 % (10/10/3) of null packs.
    The same standardized draws serve every row (condition). Returns ``(T, p)``, each (K,);
    ``nan`` where a group's Δ or variance is undefined or not positive, a group has fewer than
    two speakers, or fewer than two groups are given.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {sorted(STATISTICS)}, got {statistic!r}")
    fn = STATISTICS[statistic]
    delta = np.asarray(delta, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    sizes = np.asarray(n, dtype=np.float64)
    n_rows, k = delta.shape
    stat = np.full(n_rows, np.nan)
    p = np.full(n_rows, np.nan)
    if k < 2 or float(sizes.min()) < 2:
        return stat, p
    ok = np.isfinite(delta).all(axis=1) & np.isfinite(variance).all(axis=1)
    ok &= (np.where(np.isfinite(variance), variance, 0.0) > 0).all(axis=1)
    if not ok.any():
        return stat, p
    nu = float(sizes.min()) - 1.0
    z = rng.standard_normal((n_draws, k))
    spread = rng.chisquare(nu, size=(n_draws, k)) / nu
    rows = np.flatnonzero(ok)
    stat[rows] = fn(delta[rows], variance[rows])
    chunk = max(1, 2_000_000 // (n_draws * k))
    for start in range(0, rows.size, chunk):
        r = rows[start : start + chunk]
        v = variance[r][:, None, :]  # (R, 1, G)
        drawn = fn(z * np.sqrt(v), v * spread)  # (R, B)
        p[r] = (1.0 + (drawn >= stat[r][:, None]).sum(axis=1)) / (1.0 + n_draws)
    return stat, p


def group_means(
    psi: np.ndarray, speaker_group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group the mean of its speakers' pseudo-values and its variance / n: (K, G) each,
    and the group sizes (G,). ``nan`` for a group of fewer than two speakers."""
    k = psi.shape[1]
    means = np.full((k, n_groups), np.nan)
    variances = np.full((k, n_groups), np.nan)
    sizes = np.zeros(n_groups)
    for g in range(n_groups):
        rows = psi[speaker_group == g]
        sizes[g] = rows.shape[0]
        if rows.shape[0] >= 2:
            means[:, g] = rows.mean(axis=0)
            variances[:, g] = rows.var(axis=0, ddof=1) / rows.shape[0]
    return means, variances, sizes


def heterogeneity_test(
    psi: np.ndarray,
    speaker_group: np.ndarray,
    n_groups: int,
    *,
    rng: np.random.Generator,
    statistic: str = "score",
) -> tuple[np.ndarray, np.ndarray]:
    """Do the groups' Δ differ? A parametric-bootstrap test over the speakers' pseudo-values.

    ``psi`` (S, K): pseudo-values (:func:`pseudo_values`) of K conditions; a group's Δ is
    their mean and its variance their variance / n (the jackknife's), so each group is judged
    against its own spread and size. The statistic (by default Welch's Σ w (Δ − m)² over all
    groups) is calibrated by :func:`bootstrap_heterogeneity` from ``rng``. Measured on
    the synthetic null packs of ``benchmarks/stats_validity.py`` (figures in
    benchmarks/README.md). Returns ``(T (K,), p (K,))``; ``nan`` where a pseudo-value is
    undefined or a group has fewer than two speakers.
    """
    means, variances, sizes = group_means(psi, speaker_group, n_groups)
    return bootstrap_heterogeneity(means, variances, sizes, rng=rng, statistic=statistic)
