"""Test factories: tiny generated audio, corpora and packs (used by our tests and by users'
tests of their own packs). Everything is deterministic from an explicit generator."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

__all__ = ["modulated_noise", "speech_like", "tone", "write_corpus", "write_pack"]


def tone(
    *, freq_hz: float, duration_s: float, sample_rate: int, level_dbfs: float = -20.0
) -> np.ndarray:
    """A sine at ``level_dbfs`` RMS (float32, shape (n,))."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    amp = np.sqrt(2.0) * 10 ** (level_dbfs / 20)
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def modulated_noise(
    rng: np.random.Generator,
    *,
    duration_s: float,
    sample_rate: int,
    depth_db: float = 6.0,
    mod_band_hz: tuple[float, float] = (2.0, 8.0),
    level_dbfs: float = -40.0,
) -> np.ndarray:
    """Band-passed (100-6000 Hz) noise whose level in dB is a Gaussian process of standard
    deviation ``depth_db``, band-passed to ``mod_band_hz`` (syllabic-rate swells of babble
    without speech); ``level_dbfs`` RMS (float64, shape (n,))."""
    from scipy.signal import butter, sosfilt

    n = int(round(duration_s * sample_rate))
    rate = 100.0
    g = rng.standard_normal(int(duration_s * rate) + 200)
    g = sosfilt(butter(2, mod_band_hz, btype="band", fs=rate, output="sos"), g)[200:]
    g *= depth_db / np.std(g)
    level_db = np.interp(np.arange(n) / sample_rate, np.arange(g.size) / rate, g)
    top = min(6000.0, 0.45 * sample_rate)
    x = sosfilt(
        butter(2, [100.0, top], btype="band", fs=sample_rate, output="sos"), rng.standard_normal(n)
    )
    y = x * 10 ** (level_db / 20)
    return y * 10 ** (level_dbfs / 20) / np.sqrt(np.mean(y**2))


def speech_like(
    rng: np.random.Generator, *, duration_s: float, sample_rate: int, level_dbfs: float = -26.0
) -> np.ndarray:
    """Syllable-rate (4 Hz) modulated, low-pass coloured noise with pauses: speech-like
    envelope statistics for level and mixing tests (not intelligible)."""
    from scipy.signal import butter, sosfilt

    n = int(round(duration_s * sample_rate))
    x = rng.standard_normal(n)
    x = sosfilt(butter(2, [150, 3500], btype="band", fs=sample_rate, output="sos"), x)
    t = np.arange(n) / sample_rate
    env = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi)), 0, None) ** 2
    gate = (np.sin(2 * np.pi * 0.5 * t) > -0.3).astype(float)
    y = x * env * gate
    active = np.abs(y) > 0
    rms = np.sqrt(np.mean(y[active] ** 2)) if active.any() else 1.0
    return (y / rms * 10 ** (level_dbfs / 20)).astype(np.float32)


def write_corpus(
    folder: Path,
    rows: Sequence[dict[str, Any]],
    *,
    sample_rate: int = 16000,
    name: str = "manifest.csv",
) -> Path:
    """Write ``rows`` as a CSV manifest; a row's ``samples`` (an array) becomes its audio
    file ``audio`` (relative to the manifest). Returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for row in rows:
        for key in row:
            if key != "samples" and key not in fields:
                fields.append(key)
    for row in rows:
        if "samples" in row:
            path = folder / row["audio"]
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), row["samples"], row.get("sample_rate", sample_rate))
    manifest = folder / name
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    return manifest


def write_pack(path: Path, **fields: Any) -> Path:
    """Write a pack YAML with ``fields`` (name defaults to the file stem)."""
    data = {"name": path.stem, **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
