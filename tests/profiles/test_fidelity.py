"""Fidelity figures of a profile against the recording it came from."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf

from lastmile.profiles.fidelity import asr_wer_figures, compare_profile

from .conftest import FS


def test_profile_reproduces_its_recording(known_capture, known):
    fidelity = compare_profile(known_capture.profile, known.samples, sample_rate=FS, seed=3)
    assert fidelity.lsd_db <= 1.5
    assert fidelity.tones_expected == 5 and fidelity.tones_matched == 5
    assert fidelity.max_tone_freq_err_hz <= 0.1
    assert fidelity.max_tone_level_err_db <= 1.0
    assert fidelity.events_expected == fidelity.events_matched == 1
    assert fidelity.event_period_err_pct <= 2.0
    lines = fidelity.lines()
    assert lines[0].startswith("lsd_db=") and "tones_matched=5/5" in lines
    keys = [line.split("=")[0] for line in lines]
    assert keys == [
        "lsd_db",
        "tones_matched",
        "max_tone_freq_err_hz",
        "max_tone_level_err_db",
        "events_matched",
        "event_period_err_pct",
    ]


class _FakeBackend:
    """Hears the utterance when the mix is quiet enough; records what it was given."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.batches: list[int] = []

    def transcribe(self, batch):
        self.batches.append(len(batch))
        return ["take one capsule" if float(np.std(x)) < 0.2 else "" for x in batch]


def test_asr_figures_use_the_demo_subset_at_one_snr(
    known_capture, known, tmp_path: Path, monkeypatch
):
    utts = []
    rng = np.random.default_rng(0)
    for i in range(3):
        path = tmp_path / f"u{i}.wav"
        speech = np.sin(2 * np.pi * 200 * np.arange(FS) / FS) * 0.1 * (1 + rng.uniform())
        sf.write(str(path), speech.astype(np.float32), FS)
        utts.append(SimpleNamespace(audio=path, text="take one capsule"))
    backend = _FakeBackend()
    monkeypatch.setattr("lastmile.asr.build_backend", lambda spec: backend)
    monkeypatch.setattr(
        "lastmile.corpus.load_manifest", lambda manifest: SimpleNamespace(utterances=tuple(utts))
    )
    wer_rec, wer_syn = asr_wer_figures(
        known_capture.profile, known.samples, sample_rate=FS, asr_spec="fake", snr_db=10.0
    )
    assert backend.batches == [3, 3]
    assert wer_rec == 0.0 and wer_syn == 0.0
