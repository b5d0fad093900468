"""What the remote backends (``openai``, ``aws-transcribe``) share: the per-item outcome of
``transcribe_detailed``, the items of a batch decoded concurrently, and the WAV they send."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf

__all__ = ["Outcome", "decode_each", "wav_bytes"]


@dataclass(frozen=True)
class Outcome:
    """One item of ``transcribe_detailed``: its transcript or its error (one item's failure
    does not fail the others), the request's latency and the retries it took."""

    text: str | None
    error: str | None
    latency_s: float | None
    retries: int


def decode_each(
    n_items: int, one: Callable[[int], Outcome], *, concurrency: int, name: str
) -> list[Outcome]:
    """``one(i)`` for every item, up to ``concurrency`` at a time on threads named after the
    backend (``name``), in item order."""
    workers = min(concurrency, n_items)
    if workers <= 1:
        return [one(i) for i in range(n_items)]
    with ThreadPoolExecutor(workers, thread_name_prefix=f"lastmile-{name}") as pool:
        return list(pool.map(one, range(n_items)))


def wav_bytes(audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> bytes:
    """``audio`` as a WAV file's bytes; clipped to [-1, 1] for 16-bit PCM."""
    buf = io.BytesIO()
    samples = np.clip(audio, -1.0, 1.0) if subtype == "PCM_16" else audio
    sf.write(buf, samples, sample_rate, format="WAV", subtype=subtype)
    return buf.getvalue()
