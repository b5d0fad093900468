"""Vectorized speaker-cluster bootstrap and group-label permutation over count matrices.

Both work on a (speaker × k) value matrix ``values`` (e.g. errors and reference words of every
condition side by side) and return group sums of shape ``(draws, k, G)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_group_sums", "group_sums", "permutation_group_sums"]

# Below this many multiply-adds numpy's own einsum loop beats a BLAS call, whose thread
# start-up costs milliseconds on a busy machine; above it BLAS wins by far.
_BLAS_MIN_WORK = 4_000_000


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a (m, n) @ b (n, k)`` as float64, through BLAS only when the product is large."""
    if a.shape[0] * a.shape[1] * b.shape[1] < _BLAS_MIN_WORK:
        return np.einsum("mn,nk->mk", a, b, dtype=np.float64, casting="unsafe")
    return a.astype(np.float64, copy=False) @ b


def group_sums(values: np.ndarray, speaker_group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum ``values`` (S, k) over the speakers of each group → shape (k, G)."""
    onehot = np.zeros((speaker_group.size, n_groups))
    onehot[np.arange(speaker_group.size), speaker_group] = 1.0
    return _dot(values.T, onehot)


def bootstrap_group_sums(
    values: np.ndarray,
    speaker_group: np.ndarray,
    n_groups: int,
    *,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Speaker-cluster bootstrap: resample speakers with replacement within each group.

    A draw is an integer weight per speaker (multinomial counts, the group's size in total);
    the weighted sums are matrix products ``weights (B, n_g) @ values (n_g, k)``. Every
    column of ``values`` sees the same draw, so statistics across conditions stay paired.
    Returns shape ``(n_draws, k, G)``.
    """
    out = np.zeros((n_draws, values.shape[1], n_groups))
    offsets = np.arange(n_draws)[:, None]
    for g in range(n_groups):
        members = np.flatnonzero(speaker_group == g)
        n = members.size
        if n == 0:
            continue
        picks = rng.integers(0, n, size=(n_draws, n)) + offsets * n
        weights = np.bincount(picks.ravel(), minlength=n_draws * n).reshape(n_draws, n)
        out[:, :, g] = _dot(weights, values[members])
    return out


def permutation_group_sums(
    values: np.ndarray,
    speaker_group: np.ndarray,
    n_groups: int,
    *,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Group sums after permuting group labels across speakers (group sizes kept).

    A speaker's items move together (the rows of ``values`` are speakers). Returns shape
    ``(n_draws, k, G)``.
    """
    labels = np.tile(speaker_group.astype(np.int32), (n_draws, 1))
    labels = rng.permuted(labels, axis=1)
    out = np.empty((n_draws, values.shape[1], n_groups))
    for g in range(n_groups):
        out[:, :, g] = _dot((labels == g).astype(np.float64), values)
    return out
