"""Check every utterance's audio and metadata, listing all problems at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from lastmile.corpus.formats import load_corpus
from lastmile.corpus.loaders import AudioRef, CorpusProblems, Problem, transcript_problem
from lastmile.corpus.model import Corpus

__all__ = ["MIN_DURATION_S", "audio_problems", "check_corpus", "validate_corpus"]

MIN_DURATION_S = 0.3


def validate_corpus(
    corpus: Corpus, *, sample_rate: int | None = None, normalizer: str | None = None
) -> list[Problem]:
    """Every problem with the corpus's audio (unreadable, empty, too short, silent, stereo,
    another rate) and, with the pack's ``normalizer``, transcripts with no words after it.
    Stereo and another rate are warnings in the sense that they are fixed on load, but are
    listed so they are said loudly.
    """
    problems: list[Problem] = []
    refs = []
    for index, utt in enumerate(corpus.utterances):
        file, row = corpus.origin(index)
        empty = transcript_problem(utt.text, normalizer, file=file, row=row, field="text")
        if empty is not None:
            problems.append(empty)
        refs.append(AudioRef(file, row, utt.id, utt.audio))
    return problems + audio_problems(refs, sample_rate=sample_rate)


def check_corpus(
    source: str | Path,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    normalizer: str | None = "default",
    quoting: str | None = None,
    sample_rate: int | None = None,
) -> tuple[Corpus | None, list[Problem]]:
    """Load the corpus and check it: every problem at once, metadata and audio alike.

    When the manifest has problems (an empty transcript, a duplicate id, ...) the audio
    files its entries name are checked all the same, so a corrupt file is listed beside
    them. Returns the corpus (None when it could not be loaded) and the problems (warnings
    included; see :attr:`Problem.severity`). Errors that stop reading at all (a missing
    manifest, a bad format) raise as :func:`load_corpus` does.
    """
    try:
        corpus = load_corpus(
            source,
            format=format,
            columns=columns,
            group_by=group_by,
            check_audio=True,
            normalizer=normalizer,
            quoting=quoting,
        )
    except CorpusProblems as exc:
        return None, [*exc.problems, *audio_problems(exc.audio, sample_rate=sample_rate)]
    return corpus, validate_corpus(corpus, sample_rate=sample_rate, normalizer=normalizer)


def audio_problems(refs: Iterable[AudioRef], *, sample_rate: int | None = None) -> list[Problem]:
    """Problems with the contents of each audio file: unreadable, empty, non-finite, silent,
    too short (errors); several channels, another rate than ``sample_rate`` (warnings)."""
    problems: list[Problem] = []
    for ref in refs:
        file, row = ref.file, ref.row
        where = f"{Path(ref.path).name} (id {ref.id})"
        try:
            info = sf.info(str(ref.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            problems.append(
                Problem(file, row, "audio", f"{where}: unreadable or corrupt audio ({exc})")
            )
            continue
        if info.frames == 0:
            problems.append(Problem(file, row, "audio", f"{where}: the audio is empty"))
            continue
        try:
            data, _ = sf.read(str(ref.path), dtype="float32", always_2d=True)
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
