"""Group sums of (speaker × k) count matrices, through BLAS only when the product is large."""

from __future__ import annotations

import numpy as np

__all__ = ["group_sums"]

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
