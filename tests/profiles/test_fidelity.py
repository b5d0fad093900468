"""Fidelity figures of a profile against the recording it came from."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.capture.fidelity import asr_wer_figures, compare_profile

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


def test_asr_figures_pair_the_same_utterances_over_repeats(known_capture, known):
    # the real default backend on two demo utterances, each mixed twice with new draws
    def figures(repeats: int = 1):
        return asr_wer_figures(
            known_capture.profile,
            known.samples,
            sample_rate=FS,
            asr_spec="faster-whisper",
            snr_db=20.0,
            n_utterances=2,
            repeats=repeats,
        )

    once = figures()
    twice = figures(repeats=2)
    assert once.n_items == 2 and twice.n_items == 4
    assert twice.n_words == 2 * once.n_words > 0
    for wer in (once, twice):
        assert 0.0 <= wer.wer_recording < 0.8 and 0.0 <= wer.wer_synth < 0.8
        assert np.isfinite(wer.diff_se) and wer.diff_se >= 0.0
    lines = dict(line.split("=", 1) for line in twice.lines())
    assert float(lines["wer_diff"]) == pytest.approx(
        twice.wer_synth - twice.wer_recording, abs=1e-4
    )
    assert lines["wer_items"] == "4"
    # the same seed draws the same mixes: the figures repeat exactly
    assert figures() == once
