#!/usr/bin/env python3
"""Synthesize lastmile's demo corpus with espeak-ng and flite (English voices only).

Usage:
    python tools/make_demo_corpus.py [--out demo_corpus]

Writes ``OUT/manifest.csv`` (columns id,audio,text,speaker,accent,engine,voice),
``OUT/audio/*.flac`` (mono, 16 kHz, PCM_16, peak -6 dBFS, 0.15 s of silence each side)
and ``OUT/README.md``.

The voices are synthetic stand-ins for accent groups: they exercise the pipeline, they are
not measurements of real accents. Output is deterministic: the same tools and library
versions give byte-identical FLAC files.

Needs, at generation time only: espeak-ng and flite on PATH (Debian packages ``espeak-ng``
and ``flite``), numpy, soundfile and soxr.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE_HZ = 16_000
PEAK_DBFS = -6.0
PAD_S = 0.15
TRIM_THRESHOLD_DB = -40.0  # frame RMS relative to the loudest frame
FRAME_S = 0.010
SENTENCES_PER_SPEAKER = 10

# The pool every group reads. The first half is clinical-note style, the second half
# everyday / call-centre / warehouse speech. Numbers are written as words.
SENTENCES: tuple[str, ...] = (
    # clinical
    "Take one capsule twice a day with plenty of water.",
    "The patient reported mild chest pain after two days.",
    "Her blood pressure was one hundred and thirty over eighty.",
    "She is allergic to penicillin and peanuts.",
    "Please book a follow-up appointment in three weeks.",
    "The wound is healing well and there is no infection.",
    "Increase the dose to fifty milligrams at bedtime.",
    "He has no shortness of breath when he walks.",
    "The chest X-ray from this morning looks normal.",
    "We will repeat the blood tests in one week.",
    "The patient was discharged home in a stable condition.",
    "Her temperature was thirty-eight point five during the night.",
    "Check your blood sugar before every meal and at bedtime.",
    "Please avoid lifting anything heavy for six weeks.",
    "The nurse changed the dressing two days after surgery.",
    "There is some swelling around the right ankle.",
    "He has taken one aspirin every day for four years.",
    "I will refer you to the heart clinic.",
    "The pain is worse at night and better with rest.",
    "Stop the antibiotics and call us if a rash develops.",
    # everyday, call centre, warehouse
    "Thank you for calling, how can I help you today?",
    "Your order will arrive on Thursday between nine and twelve.",
    "Could you confirm the last four digits of your card?",
    "Please move the blue pallets to aisle seven.",
    "I'm sorry, the line is busy, please hold.",
    "We need twenty boxes of gloves by noon.",
    "The meeting has been moved to Friday afternoon at three.",
    "Scan each parcel and put it on the belt.",
    "The forklift in bay three needs a new battery.",
    "Please leave the keys at the front desk.",
    "The weather should clear up by this evening.",
    "Can I put you on hold for a moment?",
    "There are still fifteen orders waiting to be picked.",
    "My train was late, so I missed the first bus.",
    "Please write your phone number on the form.",
    "The refund should reach your account within five working days.",
    "Close the freezer door, the alarm has gone off twice.",
    "We open at eight and close at six.",
    "I would like to change my delivery address.",
    "Put the heavy boxes on the bottom shelf.",
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine, a voice name and its settings."""

    slug: str  # speaker id suffix, e.g. "slt" or "f2"
    engine: str  # "espeak-ng" or "flite"
    voice: str  # espeak-ng "-v" value (language+variant) or flite "-voice" value
    pitch: int | None = None  # espeak-ng -p (0-99, default 50)
    rate_wpm: int | None = None  # espeak-ng -s (words per minute, default 175)

    def describe(self) -> str:
        parts = [self.voice]
        if self.pitch is not None:
            parts.append(f"-p {self.pitch}")
        if self.rate_wpm is not None:
            parts.append(f"-s {self.rate_wpm}")
        return " ".join(parts)


def _espeak(language: str, variant: str, pitch: int, rate_wpm: int) -> Voice:
    return Voice(variant, "espeak-ng", f"{language}+{variant}", pitch, rate_wpm)


def _espeak_four(language: str) -> tuple[Voice, ...]:
    # The same four variant settings in every espeak-ng group, so groups differ by accent.
    # +f4 and +f5 were tried and dropped: Whisper tiny.en fell into repetition loops on
    # several of their utterances (WER > 100%), and +f5's breath noise costs bytes.
    return (
        _espeak(language, "m2", 45, 170),
        _espeak(language, "f2", 55, 170),
        _espeak(language, "m4", 50, 175),
        _espeak(language, "m6", 50, 170),
    )


def _flite(name: str) -> Voice:
    return Voice(name, "flite", name)


# accent group id -> its speakers (exactly four each).
GROUPS: tuple[tuple[str, tuple[Voice, ...]], ...] = (
    ("us", (_flite("slt"), _flite("rms"), _flite("kal16"), _espeak("en-us", "m4", 50, 175))),
    ("us-nyc", _espeak_four("en-us-nyc")),
    ("gb-rp", _espeak_four("en-gb-x-rp")),
    ("scottish", (_flite("awb"), *_espeak_four("en-gb-scotland")[:3])),
    ("gb-lancaster", _espeak_four("en-gb-x-gbclan")),
    ("gb-west-midlands", _espeak_four("en-gb-x-gbcwmd")),
    ("caribbean", _espeak_four("en-029")),
)


@dataclass(frozen=True)
class Item:
    id: str
    audio: str
    text: str
    speaker: str
    accent: str
    engine: str
    voice: str
    source: Voice


def plan_items() -> list[Item]:
    """Every group reads the whole pool; speaker slot k of group g reads sentence s
    when (s + g) % n_speakers == k, so each speaker gets half clinical, half everyday
    sentences and the same sentence falls to different slots in different groups."""
    items: list[Item] = []
    for group_index, (accent, voices) in enumerate(GROUPS):
        n_speakers = len(voices)
        if n_speakers * SENTENCES_PER_SPEAKER != len(SENTENCES):
            raise SystemExit(
                f"group {accent!r}: {n_speakers} speakers x {SENTENCES_PER_SPEAKER} sentences "
                f"must cover the pool of {len(SENTENCES)} sentences"
            )
        for slot, voice in enumerate(voices):
            speaker = f"{accent}-{voice.slug}"
            for s, text in enumerate(SENTENCES):
                if (s + group_index) % n_speakers != slot:
                    continue
                utt_id = f"{speaker}-{s + 1:02d}"
                items.append(
                    Item(
                        id=utt_id,
                        audio=f"audio/{utt_id}.flac",
                        text=text,
                        speaker=speaker,
                        accent=accent,
                        engine=voice.engine,
                        voice=voice.describe(),
                        source=voice,
                    )
                )
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate utterance ids in the plan")
    return sorted(items, key=lambda item: item.id)


def synthesize(voice: Voice, text: str, wav_path: Path) -> None:
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.voice, "-w", str(wav_path)]
        if voice.pitch is not None:
            cmd += ["-p", str(voice.pitch)]
        if voice.rate_wpm is not None:
            cmd += ["-s", str(voice.rate_wpm)]
        cmd += ["--", text]
    elif voice.engine == "flite":
        cmd = ["flite", "-voice", voice.voice, "-t", text, "-o", str(wav_path)]
    else:
        raise SystemExit(f"unknown engine {voice.engine!r}")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def condition(audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Resample to 16 kHz (soxr VHQ), keep PAD_S of silence each side, peak to PEAK_DBFS.

    audio: float64, shape (n,). Returns float64, shape (m,), at SAMPLE_RATE_HZ.
    """
    if sample_rate != SAMPLE_RATE_HZ:
        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE_HZ, quality="VHQ")
    frame = round(FRAME_S * SAMPLE_RATE_HZ)
    n_frames = len(audio) // frame
    if n_frames == 0:
        raise ValueError("synthesized audio is shorter than one frame")
    frames = audio[: n_frames * frame].reshape(n_frames, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    level_db = 20 * np.log10(np.maximum(rms, 1e-12))
    active = np.flatnonzero(level_db >= level_db.max() + TRIM_THRESHOLD_DB)
    start, stop = active[0] * frame, (active[-1] + 1) * frame
    pad = round(PAD_S * SAMPLE_RATE_HZ)
    speech = audio[start:stop]
    # Pad with zeros rather than keep the engine's own lead-in (flite has almost none).
    out = np.concatenate([np.zeros(pad), speech, np.zeros(pad)])
    peak = np.max(np.abs(out))
    return out * (10 ** (PEAK_DBFS / 20) / peak)


def tool_versions() -> dict[str, str]:
    espeak = subprocess.run(
        ["espeak-ng", "--version"], check=True, capture_output=True, text=True
    ).stdout
    # flite --version prints its banner and exits 1.
    flite = subprocess.run(["flite", "--version"], check=False, capture_output=True, text=True)
    flite_version = next(
        (
            line.split("flite-")[1].split()[0]
            for line in (flite.stdout + flite.stderr).splitlines()
            if "version: flite-" in line
        ),
        "unknown",
    )
    return {
        "espeak-ng": espeak.split("text-to-speech:")[-1].split()[0],
        "flite": flite_version,
        "libsndfile": sf.__libsndfile_version__,
        "soxr": soxr.__version__,
    }


def write_readme(out: Path, items: list[Item], versions: dict[str, str]) -> None:
    rows = []
    for accent, voices in GROUPS:
        for voice in voices:
            rows.append(
                f"| `{accent}` | `{accent}-{voice.slug}` | {voice.engine} | `{voice.describe()}` |"
            )
    n_speakers = len({item.speaker for item in items})
    text = f"""# lastmile demo corpus (synthetic)

**These are synthetic voices.** Every file here was produced by a text-to-speech program
(espeak-ng or flite). The accent groups are stand-ins that give the pipeline something to
chew on: groups that a recognizer handles differently well. They are **not** recordings of
people and **not** measurements of how any real accent is recognized. Do not quote numbers
computed on this corpus as facts about accents.

## Contents

- `manifest.csv`: columns `id,audio,text,speaker,accent,engine,voice`; `audio` is relative
  to the manifest; rows sorted by `id`.
- `audio/*.flac`: {len(items)} utterances, mono, 16 kHz, 16-bit PCM FLAC, peak normalized to
  {PEAK_DBFS:.0f} dBFS, leading and trailing silence trimmed to {PAD_S} s.
- {len(GROUPS)} accent groups, {n_speakers} speakers, {SENTENCES_PER_SPEAKER} sentences each.

Every group reads the same pool of {len(SENTENCES)} English sentences (half clinical-note
style, half everyday / call-centre / warehouse speech, numbers written as words). Within a
group the four speakers split the pool, ten sentences each; the split is rotated by group, so
one sentence falls to different speaker slots in different groups. The number at the end of
an utterance id is the sentence's position in the pool (`us-slt-01` and `caribbean-f2-01`
read the same sentence).

## How it was made

`python tools/make_demo_corpus.py --out demo_corpus` (offline, deterministic: running it
twice gives byte-identical files with the same tool versions). Each sentence is synthesized
to WAV, resampled to 16 kHz with soxr (VHQ), trimmed to the speech (10 ms frames within
{-TRIM_THRESHOLD_DB:.0f} dB of the loudest) plus {PAD_S} s of silence each side, peak
normalized and written with soundfile.

Only English voices are used, no mbrola voices. espeak-ng speakers are voice variants
(`+m2`, `+f2`, `+m4`, `+m6`) with pitch (`-p`) and rate (`-s`, words per minute) settings;
the same four settings are used in every espeak-ng group.

| accent | speaker | engine | voice |
|---|---|---|---|
{chr(10).join(rows)}

Clean-speech WER per group: `python tools/measure_demo_corpus.py` (faster-whisper,
Whisper tiny.en). The sentences are short (about nine words) to keep the corpus under
15 MB, which gives the recognizer little context, so clean WERs are higher than on longer
read speech.

Tool versions used: {", ".join(f"{k} {v}" for k, v in versions.items())}.

## License

The audio files are output generated by two programs: espeak-ng (GPL-3.0-or-later,
<https://github.com/espeak-ng/espeak-ng>) and CMU flite (BSD-like license,
<http://cmuflite.org>; the slt, rms, kal16 and awb voices ship under the same terms). The
files contain generated speech only, no code or data of either program. The sentences, the
manifest and this README were written for lastmile and are under the project's license
(MIT).

## Bringing real recordings instead

Point a scenario pack at your own manifest: a CSV (or TSV / JSONL) with the columns
`id,audio,text,speaker,accent`, `audio` relative to the manifest file, one row per
utterance, several speakers per accent group (the analysis resamples speakers, so a group of
one speaker never gets a flag). For example:

```csv
id,audio,text,speaker,accent
ward3-0001,audio/ward3-0001.wav,Take one capsule twice a day.,spk07,scottish
```

```yaml
corpus:
  manifest: my_recordings/manifest.csv
group_by: accent
```
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo_corpus"), help="output folder")
    args = parser.parse_args(argv)

    missing = [tool for tool in ("espeak-ng", "flite") if shutil.which(tool) is None]
    if missing:
        print(
            f"error: {', '.join(missing)} not found on PATH; install it, e.g. "
            f"`apt-get install {' '.join(missing)}`",
            file=sys.stderr,
        )
        return 2

    out: Path = args.out
    audio_dir = out / "audio"
    items = plan_items()
    audio_dir.mkdir(parents=True, exist_ok=True)
    stale = sorted(audio_dir.glob("*.flac"))
    if stale:
        print(f"removing {len(stale)} existing files from {audio_dir}", file=sys.stderr)
        for path in stale:
            path.unlink()
    keep = out / ".keep"
    if keep.exists():
        keep.unlink()

    with tempfile.TemporaryDirectory(prefix="lastmile-demo-") as tmp:
        wav_path = Path(tmp) / "utt.wav"
        for i, item in enumerate(items, 1):
            synthesize(item.source, item.text, wav_path)
            audio, sample_rate = sf.read(wav_path, dtype="float64", always_2d=True)
            audio = condition(audio.mean(axis=1), sample_rate=sample_rate)
            sf.write(
                out / item.audio,
                audio.astype(np.float32),
                SAMPLE_RATE_HZ,
                format="FLAC",
                subtype="PCM_16",
                compression_level=1.0,
            )
            if i % 40 == 0 or i == len(items):
                print(f"{i}/{len(items)} utterances", file=sys.stderr)

    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "audio", "text", "speaker", "accent", "engine", "voice"])
        for item in items:
            writer.writerow(
                [item.id, item.audio, item.text, item.speaker, item.accent, item.engine, item.voice]
            )
    write_readme(out, items, tool_versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
