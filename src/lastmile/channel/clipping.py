"""Hard clipping at a level in dBFS: the last stage of a device (AGC, then clipping) and of a
channel (band limit, codec, then clipping)."""

from __future__ import annotations

import math

import numpy as np

from lastmile.errors import ConfigError

__all__ = ["clip_at"]


def clip_at(samples: np.ndarray, *, clip_dbfs: float) -> tuple[np.ndarray, float]:
    """Hard-clip ``samples`` at ``clip_dbfs`` (re full scale 1.0).

    Returns the clipped audio (float32) and the fraction of samples that were beyond the
    clipping level.
    """
    if not math.isfinite(clip_dbfs) or clip_dbfs > 0.0:
        raise ConfigError(f"clipping: clip_dbfs must be a finite level ≤ 0 dBFS, got {clip_dbfs}")
    limit = 10.0 ** (clip_dbfs / 20.0)
    beyond = np.abs(samples) > limit
    clipped = np.clip(samples, -limit, limit).astype(np.float32)
    return clipped, float(np.mean(beyond))
