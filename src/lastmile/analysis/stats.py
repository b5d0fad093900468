"""Small statistical helpers: pooled ratios, Δ, disparity, p-values, BH q-values."""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "benjamini_hochberg",
    "degradation",
    "disparity",
    "permutation_p_value",
    "pooled_ratio",
]


def pooled_ratio(errors: np.ndarray, ref_words: np.ndarray) -> np.ndarray:
    """Σ errors / Σ N elementwise (arrays already summed); ``nan`` where ΣN = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref_words > 0, errors / np.where(ref_words > 0, ref_words, 1.0), np.nan)


def degradation(wer: np.ndarray, *, clean_index: int, relative: bool) -> np.ndarray:
    """Δ from the clean condition along axis -2 (conditions) of ``wer`` (..., C, G).

    Absolute: WER − WER_clean. Relative: WER / WER_clean − 1, ``nan`` where WER_clean = 0.
    """
    clean = wer[..., clean_index : clean_index + 1, :]
    if not relative:
        return wer - clean
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(clean > 0, wer / np.where(clean > 0, clean, 1.0) - 1.0, np.nan)


def disparity(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U = max − min over the last axis (groups), ignoring ``nan``; needs two finite groups.

    Returns ``(U, argmax, argmin)``; U is ``nan`` (and the indices -1) where fewer than two
    groups have a finite Δ.
    """
    finite = np.isfinite(delta)
    enough = finite.sum(axis=-1) >= 2
    high = np.where(finite, delta, -np.inf)
    low = np.where(finite, delta, np.inf)
    worst = np.argmax(high, axis=-1)
    best = np.argmin(low, axis=-1)
    with np.errstate(invalid="ignore"):
        spread = np.max(high, axis=-1) - np.min(low, axis=-1)
    spread = np.where(enough, spread, np.nan)
    return spread, np.where(enough, worst, -1), np.where(enough, best, -1)


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """p = (1 + #{U* ≥ U}) / (1 + P) over P permuted statistics (``nan`` ones count as below).

    A relative tolerance of 1e-9 treats U* equal to U up to rounding as ≥ U (so the identity
    permutation always counts). ``nan`` if ``observed`` is undefined.
    """
    if not math.isfinite(observed):
        return math.nan
    tolerance = 1e-9 * max(1.0, abs(observed))
    with np.errstate(invalid="ignore"):
        hits = int(np.count_nonzero(permuted >= observed - tolerance))
    return (1 + hits) / (1 + permuted.size)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values of a 1-D array of p-values; ``nan`` entries are left out.

    q_(i) = min_{j ≥ i} m · p_(j) / j over the m finite p-values sorted ascending, capped at 1.
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[order] = np.minimum(ranked, 1.0)
    return q
