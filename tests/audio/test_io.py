from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.audio import read_audio, write_audio
from lastmile.errors import AudioError


def test_float_wav_writes_are_byte_identical_across_seconds(tmp_path: Path):
    # libsndfile stamps float WAVs with the time of writing unless told not to
    x = (np.random.default_rng(0).standard_normal(800) * 0.1).astype(np.float32)
    a = write_audio(tmp_path / "a.wav", x, sample_rate=16000)
    time.sleep(1.1)
    b = write_audio(tmp_path / "b.wav", x, sample_rate=16000)
    assert a.read_bytes() == b.read_bytes()
    back, rate = sf.read(str(b), dtype="float32")
    assert rate == 16000 and np.array_equal(back, x)


def test_read_downmixes_and_resamples_loudly(tmp_path: Path):
    stereo = np.stack([np.full(4410, 0.2), np.full(4410, 0.4)], axis=1).astype(np.float32)
    sf.write(str(tmp_path / "s.wav"), stereo, 44100)
    loaded = read_audio(tmp_path / "s.wav", sample_rate=16000)
    assert loaded.sample_rate == 16000
    assert loaded.samples.ndim == 1 and abs(loaded.samples.size - 1600) <= 1
    assert any("downmixed 2 channels" in n for n in loaded.notes)
    assert any("resampled 44100 Hz to 16000 Hz" in n for n in loaded.notes)


def test_unreadable_and_nonfinite_audio_name_the_file(tmp_path: Path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVE")
    with pytest.raises(AudioError, match="bad.wav: cannot be read as audio"):
        read_audio(tmp_path / "bad.wav")
    with pytest.raises(AudioError, match="gone.wav: file not found"):
        read_audio(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match="NaN or infinite"):
        write_audio(tmp_path / "n.wav", np.array([0.0, np.nan], dtype=np.float32), sample_rate=8000)
