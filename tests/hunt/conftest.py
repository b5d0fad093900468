"""Fixtures of the hunt tests: a tone corpus and a cheap real recognizer program.

The recognizer (a ``command:`` backend, a real program) prints the sentence every reference
holds, with one word dropped per 700 zero crossings of the clip (so longer clips lose more).
A low tone (groups ``low`` and ``mid``) is heard whole when clean and loses words as
broadband noise raises its zero crossings; a high tone (group ``high``) loses several words
even clean, so its degradation is smaller. Broadband noise at low SNR is therefore uneven;
hum and high SNRs are not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lastmile.testing import tone, write_corpus, write_pack

SENTENCE = "one two three four five six seven eight"

RECOGNIZER = """
import sys
import wave
from array import array

with wave.open(sys.argv[1]) as clip:
    samples = array("h", clip.readframes(clip.getnframes()))
crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
words = "one two three four five six seven eight".split()
drop = min(len(words), crossings // 700)
print(" ".join(words[: len(words) - drop]))
"""


def tone_rows(folder: Path, *, speakers: int = 4, utts: int = 2) -> list[dict]:
    rows = []
    for group, base_hz in (("low", 150.0), ("high", 1900.0), ("mid", 170.0)):
        for s in range(speakers):
            freq = base_hz * (1.0 + 0.08 * s)
            for u in range(utts):
                level = -20.0 - 3.0 * u
                rows.append(
                    {
                        "id": f"{group}-s{s}-u{u}",
                        "audio": f"audio/{group}-s{s}-u{u}.wav",
                        "text": SENTENCE,
                        "speaker": f"{group}-s{s}",
                        "accent": group,
                        "samples": tone(
                            freq_hz=freq,
                            duration_s=0.5 + 0.1 * s + 0.05 * u,
                            sample_rate=16000,
                            level_dbfs=level,
                        ),
                    }
                )
    return rows


@pytest.fixture
def recognizer(tmp_path: Path) -> str:
    script = tmp_path / "zcr_asr.py"
    script.write_text(RECOGNIZER)
    return f"command:{sys.executable} {script} {{wav}}"


@pytest.fixture
def tone_pack(tmp_path: Path, recognizer: str) -> Path:
    """3 groups × 4 speakers × 2 utterances, a hunt space of white/pink/hum × SNR."""
    write_corpus(tmp_path / "corpus", tone_rows(tmp_path / "corpus"))
    return write_pack(
        tmp_path / "tones.yaml",
        seed=7,
        corpus={"manifest": "corpus/manifest.csv"},
        asr=recognizer,
        normalizer="basic",
        fairness={"threshold_pts": 5, "min_speakers": 3},
        conditions=[{"noise": "pink", "snr_db": [20, 0]}],
        hunt={
            "snr_db": [-5, 25],
            "snr_step_db": 5,
            "noise": ["white", "pink", {"type": "hum"}],
            "hum_fundamental_hz": [50, 200],
            "hum_steps_per_octave": 1,
            "hum_harmonics": ["falling"],
            "top": 2,
        },
    )
