from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from lastmile.audio.levels import active_speech_level, rms_dbfs
from lastmile.render.engine import Renderer
from lastmile.scenario.pack import load_pack
from lastmile.testing import speech_like, write_corpus, write_pack

SR = 16000


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    rng = np.random.default_rng(11)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"u{i}.wav",
            "text": "x",
            "speaker": "s",
            "accent": "a",
            "samples": speech_like(rng, duration_s=2.0, sample_rate=SR),
        }
        for i in range(2)
    ]
    write_corpus(tmp_path, rows)
    noise = np.random.default_rng(5).standard_normal(3 * SR).astype(np.float32) * 0.1
    import soundfile as sf

    sf.write(str(tmp_path / "site.wav"), noise, SR)
    return write_pack(
        tmp_path / "pack.yaml",
        seed=42,
        corpus={"manifest": "manifest.csv"},
        conditions=[
            {"noise": {"type": "hum", "fundamental_hz": 50}, "snr_db": [10, -5]},
            {"noise": "pink", "snr_db": 0},
            {"noise": "white", "snr_db": 20, "reverb": {"rt60_s": 0.4}},
            {"noise": {"file": "site.wav"}, "snr_db": 5},
            {
                "id": "phone",
                "noise": "white",
                "snr_db": 15,
                "device": "narrowband-handset",
                "channel": {"codec": "g711-ulaw"},
            },
            {
                "id": "loud",
                "noise": "pink",
                "snr_db": 30,
                "device": {"name": "wideband-headset", "clip_dbfs": -20},
            },
        ],
    )


def _speech(renderer: Renderer, path: Path) -> np.ndarray:
    return renderer.load_speech(path)[0]


def test_same_pack_and_seed_give_byte_identical_audio(pack: Path):
    a = Renderer(load_pack(pack), sample_rate=SR)
    b = Renderer(load_pack(pack), sample_rate=SR)
    speech = _speech(a, pack.parent / "u0.wav")
    for cond in a.loaded.conditions:
        x = a.render(speech, cond, utterance_id="u0")
        y = b.render(speech, cond, utterance_id="u0")
        assert x.audio.tobytes() == y.audio.tobytes(), cond.id
        assert x.params == y.params


def test_another_utterance_draws_another_noise(pack: Path):
    r = Renderer(load_pack(pack), sample_rate=SR)
    speech = _speech(r, pack.parent / "u0.wav")
    cond = r.loaded.condition("file-site_snr5")
    one = r.render(speech, cond, utterance_id="u0")
    two = r.render(speech, cond, utterance_id="u1")
    assert one.params["noise"] != two.params["noise"]
    assert not np.array_equal(one.noise, two.noise)


def test_achieved_snr_matches_target_for_every_noise(pack: Path):
    r = Renderer(load_pack(pack), sample_rate=SR)
    speech = _speech(r, pack.parent / "u0.wav")
    clean_level = active_speech_level(speech, sample_rate=SR).level_dbfs
    for cond in r.loaded.conditions:
        if cond.noise is None:
            continue
        item = r.render(speech, cond, utterance_id="u0")
        assert item.achieved_snr_db == pytest.approx(cond.snr_db, abs=0.05), cond.id
        # measured back from the stems: speech as mixed vs the noise as added
        gain_db = item.params["mix"]["clip_gain_db"]
        measured = clean_level + gain_db - rms_dbfs(item.noise)
        if cond.reverb is None:
            assert measured == pytest.approx(cond.snr_db, abs=0.05), cond.id


def test_noise_stem_is_before_the_device_and_channel(pack: Path):
    r = Renderer(load_pack(pack), sample_rate=SR)
    speech = _speech(r, pack.parent / "u0.wav")
    item = r.render(speech, r.loaded.condition("phone"), utterance_id="u0")
    f, p_noise = welch(item.noise, fs=SR, nperseg=1024)
    _, p_mix = welch(item.audio, fs=SR, nperseg=1024)
    band = (f > 5000) & (f < 7000)
    speech_band = (f > 500) & (f < 3000)
    # white noise stem keeps 5-7 kHz; the handset + G.711 output has lost it
    noise_ratio = 10 * np.log10(p_noise[band].mean() / p_noise[speech_band].mean())
    mix_ratio = 10 * np.log10(p_mix[band].mean() / p_mix[speech_band].mean())
    assert noise_ratio > -3
    assert mix_ratio < -30
    assert item.sample_rate == SR


def test_device_clipping_is_recorded(pack: Path):
    r = Renderer(load_pack(pack), sample_rate=SR)
    speech = _speech(r, pack.parent / "u0.wav") * 4
    item = r.render(speech, r.loaded.condition("loud"), utterance_id="u0")
    assert np.max(np.abs(item.audio)) <= 10 ** (-20 / 20) * 1.05
    assert "device" in item.params
