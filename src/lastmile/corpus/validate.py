"""Check every utterance's audio and metadata, listing all problems at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from lastmile.corpus.loaders import Problem
from lastmile.corpus.model import Corpus

__all__ = ["MIN_DURATION_S", "validate_corpus"]

MIN_DURATION_S = 0.3


def validate_corpus(corpus: Corpus, *, sample_rate: int | None = None) -> list[Problem]:
    """Every problem with the corpus's audio (unreadable, empty, too short, silent, stereo,
    another rate) and its metadata (one speaker per group). Stereo and another rate are
    warnings in the sense that they are fixed on load, but are listed so they are said loudly.
    """
    problems: list[Problem] = []
    file = str(corpus.manifest)
    for row, utt in enumerate(corpus.utterances, start=1):
        where = f"{Path(utt.audio).name} (id {utt.id})"
        try:
            info = sf.info(str(utt.audio))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            problems.append(
                Problem(file, row, "audio", f"{where}: unreadable or corrupt audio ({exc})")
            )
            continue
        if info.frames == 0:
            problems.append(Problem(file, row, "audio", f"{where}: the audio is empty"))
            continue
        try:
            data, _ = sf.read(str(utt.audio), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            problems.append(Problem(file, row, "audio", f"{where}: corrupt audio ({exc})"))
            continue
        if not np.all(np.isfinite(data)):
            problems.append(Problem(file, row, "audio", f"{where}: NaN or infinite samples"))
            continue
        if float(np.max(np.abs(data))) < 1e-5:
            problems.append(
                Problem(file, row, "audio", f"{where}: the audio is silent (peak below -100 dBFS)")
            )
            continue
        if info.frames / info.samplerate < MIN_DURATION_S:
            problems.append(
                Problem(
                    file,
                    row,
                    "audio",
                    f"{where}: only {info.frames / info.samplerate:.2f} s long; "
                    f"at least {MIN_DURATION_S} s needed",
                )
            )
        if info.channels > 1:
            problems.append(
                Problem(
                    file,
                    row,
                    "audio",
                    f"{where}: {info.channels} channels; it will be downmixed to mono "
                    "(convert it yourself to silence this)",
                    severity="warning",
                )
            )
        if sample_rate is not None and info.samplerate != sample_rate:
            problems.append(
                Problem(
                    file,
                    row,
                    "audio",
                    f"{where}: {info.samplerate} Hz; it will be resampled to {sample_rate} Hz",
                    severity="warning",
                )
            )
    return problems
