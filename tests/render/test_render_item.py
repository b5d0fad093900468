"""render_item / write_item: one item of a pack rendered to listen to, as a run renders it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.errors import ConfigError
from lastmile.render import render_item, write_item
from lastmile.render.engine import Renderer
from lastmile.scenario.pack import item_seed_hex, load_pack
from lastmile.testing import speech_like, write_corpus, write_pack

SR = 16000
NOISY = "hum60_snr5_narrowband-handset_g711a"


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"a/u{i}.wav",
            "text": "take one capsule",
            "speaker": f"s{i}",
            "accent": "us",
            "samples": speech_like(rng, duration_s=1.5, sample_rate=SR),
        }
        for i in range(3)
    ]
    write_corpus(tmp_path, rows)
    return write_pack(
        tmp_path / "p.yaml",
        corpus={"manifest": "manifest.csv"},
        seed=9,
        conditions=[
            {
                "noise": {"type": "hum", "fundamental_hz": 60},
                "snr_db": 5,
                "device": "narrowband-handset",
                "channel": {"codec": "g711-alaw"},
            }
        ],
    )


def test_render_item_is_what_the_renderer_renders_for_a_run(pack: Path):
    example = render_item(pack, NOISY, "u1")
    loaded = load_pack(pack)
    rate = loaded.pack.render_sample_rate
    renderer = Renderer(loaded, sample_rate=rate, render_rate=rate)
    speech, _ = renderer.load_speech(pack.parent / "a/u1.wav")
    direct = renderer.render(speech, loaded.condition(NOISY), utterance_id="u1")
    np.testing.assert_array_equal(example.item.audio, direct.audio)
    assert example.item.sample_rate == direct.sample_rate == rate
    assert abs(example.item.achieved_snr_db - 5.0) < 0.05
    assert example.utterance.id == "u1" and example.notes == ()
    record = example.record
    assert (record["utterance_id"], record["condition_id"]) == ("u1", NOISY)
    assert record["item_seed"] == item_seed_hex(9, loaded.condition(NOISY).seed_id, "u1")
    assert record["params"]["noise"] and record["params"]["channel"]["codec"] == "g711-alaw"
    assert record["text"] == "take one capsule"
    again = render_item(pack, NOISY, "u1")
    np.testing.assert_array_equal(again.item.audio, example.item.audio)
    other = render_item(pack, NOISY, "u2")
    assert other.record["item_seed"] != record["item_seed"]


def test_write_item_writes_stems_only_when_asked(pack: Path, tmp_path: Path):
    example = render_item(pack, NOISY, "u0")
    plain = write_item(example, tmp_path / "plain")
    assert [p.name for p in plain] == ["mix.wav", "item.json"]
    audio, rate = sf.read(str(plain[0]), dtype="float32")
    assert rate == example.item.sample_rate
    np.testing.assert_array_equal(audio, example.item.audio)
    assert json.loads(plain[1].read_text()) == json.loads(json.dumps(example.record))
    stems = write_item(example, tmp_path / "stems", stems=True)
    assert [p.name for p in stems] == ["mix.wav", "speech.wav", "noise.wav", "item.json"]
    noise, _ = sf.read(str(stems[2]), dtype="float32")
    np.testing.assert_array_equal(noise, example.item.noise)
    clean = write_item(render_item(pack, "clean", "u0"), tmp_path / "clean", stems=True)
    assert [p.name for p in clean] == ["mix.wav", "speech.wav", "item.json"]  # no noise


def test_unknown_utterance_or_condition_is_a_config_error_naming_what_exists(pack: Path):
    with pytest.raises(ConfigError, match=r"manifest\.csv: no utterance 'zz'; e\.g\. u0, u1, u2"):
        render_item(pack, NOISY, "zz")
    with pytest.raises(ConfigError, match="no condition 'nope'"):
        render_item(pack, "nope", "u0")
