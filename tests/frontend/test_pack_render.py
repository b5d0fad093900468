"""The pack's ``frontend:`` axis: ids, validation, same seeds, the chain in the render."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lastmile.corpus import Utterance
from lastmile.errors import ConfigError
from lastmile.render.engine import Renderer
from lastmile.run.plan import iter_plan
from lastmile.scenario.pack import load_pack, pack_json_schema
from lastmile.testing import speech_like, write_corpus, write_pack

from ._signals import band_power_db

SR = 16000
CHAINS = {
    "notch60": [{"type": "notch", "profile": "hospital-imaging-suite"}],
    "hp": [{"type": "highpass", "cutoff_hz": 120}],
}


def _pack(tmp_path: Path, **fields: object) -> Path:
    rng = np.random.default_rng(3)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"u{i}.wav",
            "text": "x",
            "speaker": f"s{i}",
            "accent": "a",
            "samples": speech_like(rng, duration_s=2.0, sample_rate=SR),
        }
        for i in range(2)
    ]
    write_corpus(tmp_path, rows)
    fields.setdefault(
        "conditions",
        [
            {"noise": {"profile": "hospital-imaging-suite"}, "snr_db": [10, 5]},
            {"noise": "pink", "snr_db": 5, "channel": {"codec": "g711-ulaw"}},
        ],
    )
    return write_pack(tmp_path / "pack.yaml", seed=9, corpus={"manifest": "manifest.csv"}, **fields)


def test_every_condition_runs_without_and_with_each_chain(tmp_path: Path) -> None:
    loaded = load_pack(_pack(tmp_path, frontend=CHAINS))
    ids = [c.id for c in loaded.conditions]
    assert ids == [
        "clean",
        "clean+notch60",
        "clean+hp",
        "hospital-imaging-suite_snr10",
        "hospital-imaging-suite_snr10+notch60",
        "hospital-imaging-suite_snr10+hp",
        "hospital-imaging-suite_snr5",
        "hospital-imaging-suite_snr5+notch60",
        "hospital-imaging-suite_snr5+hp",
        "pink_snr5_g711u",
        "pink_snr5_g711u+notch60",
        "pink_snr5_g711u+hp",
    ]
    twin = loaded.condition("hospital-imaging-suite_snr5+notch60")
    assert twin.frontend == "notch60" and twin.seed_id == "hospital-imaging-suite_snr5"
    assert twin.spec()["frontend"] == "notch60"
    assert "frontend" not in loaded.condition("hospital-imaging-suite_snr5").spec()
    assert not loaded.condition("clean+hp").is_clean and loaded.condition("clean").is_clean
    assert twin.label.endswith("through front end notch60")


def test_frontend_section_is_validated_with_field_paths(tmp_path: Path) -> None:
    bad = {
        "n": [{"type": "notch", "freqs_hz": [60], "wdth_hz": 3}],
    }
    with pytest.raises(ConfigError, match=r"frontend\.n\[0\]\.wdth_hz: unknown key"):
        load_pack(_pack(tmp_path, frontend=bad))
    with pytest.raises(ConfigError, match="frontend.*empty"):
        load_pack(_pack(tmp_path, frontend={"n": []}))
    with pytest.raises(ConfigError, match="chain name"):
        load_pack(_pack(tmp_path, frontend={"a+b": [{"type": "rnnoise"}]}))
    with pytest.raises(ConfigError, match="frontend"):
        load_pack(_pack(tmp_path, frontend={"n": [{"type": "wiener"}]}))
    props = pack_json_schema()["properties"]["frontend"]
    assert "same items and seeds" in props["description"]


def test_twins_share_item_seeds_and_noise_draws_and_differ_by_the_chain(tmp_path: Path) -> None:
    loaded = load_pack(_pack(tmp_path, frontend=CHAINS))
    renderer = Renderer(loaded, sample_rate=SR)
    utt = Utterance(id="u0", audio=tmp_path / "u0.wav", text="x", speaker="s0", group="a")
    keys = {c.id: renderer.condition_key(c) for c in loaded.conditions}
    plan = {
        p.condition.id: p
        for p in iter_plan(loaded, [utt], condition_keys=keys, audio_digest=lambda u: "d")
    }
    base, twin = plan["hospital-imaging-suite_snr5"], plan["hospital-imaging-suite_snr5+notch60"]
    assert base.item_seed == twin.item_seed
    assert base.cache_key != twin.cache_key
    assert len({p.cache_key for p in plan.values()}) == len(plan)

    speech, _ = renderer.load_speech(utt.audio)
    plain = renderer.render(speech, base.condition, utterance_id="u0")
    notched = renderer.render(speech, twin.condition, utterance_id="u0")
    assert plain.params["noise"] == notched.params["noise"]  # the same draws
    assert plain.noise is not None and notched.noise is not None
    assert plain.noise.tobytes() == notched.noise.tobytes()
    assert "frontend" not in plain.params
    assert notched.params["frontend"]["name"] == "notch60"
    assert notched.params["frontend"]["stages"][0]["freqs_hz"][0] == pytest.approx(60.002)
    # the chain is applied to what the ASR hears: the hum is gone there (broadband noise
    # and speech in the same 4 Hz remain)
    drop = band_power_db(plain.audio, 58, 62) - band_power_db(notched.audio, 58, 62)
    assert drop > 20
    again = renderer.render(speech, twin.condition, utterance_id="u0")
    assert again.audio.tobytes() == notched.audio.tobytes()


def test_clean_runs_through_the_chain_and_after_the_channel(tmp_path: Path) -> None:
    loaded = load_pack(_pack(tmp_path, frontend=CHAINS))
    renderer = Renderer(loaded, sample_rate=SR)
    speech, _ = renderer.load_speech(tmp_path / "u0.wav")
    clean = renderer.render(speech, loaded.condition("clean"), utterance_id="u0")
    hp = renderer.render(speech, loaded.condition("clean+hp"), utterance_id="u0")
    assert clean.audio.shape == hp.audio.shape
    assert band_power_db(clean.audio, 20, 60) - band_power_db(hp.audio, 20, 60) > 15
    assert hp.params["frontend"]["stages"] == [{"type": "highpass", "cutoff_hz": 120.0, "order": 4}]
    # after the G.711 channel (8 kHz): the chain runs at the channel's rate
    phone = renderer.render(speech, loaded.condition("pink_snr5_g711u+hp"), utterance_id="u0")
    assert phone.sample_rate == SR and phone.params["channel"]


def test_a_missing_profile_in_a_chain_fails_before_the_run(tmp_path: Path) -> None:
    chains = {"n": [{"type": "notch", "profile": "nowhere"}]}
    loaded = load_pack(_pack(tmp_path, frontend=chains))
    renderer = Renderer(loaded, sample_rate=SR)
    with pytest.raises(ConfigError, match=r"frontend\.n\[0\].*'nowhere'.*not found"):
        renderer.validate_condition(loaded.condition("clean+n"))


def test_a_notch_above_the_channels_nyquist_fails_before_the_run(tmp_path: Path) -> None:
    chains = {"n5k": [{"type": "notch", "freqs_hz": [5000]}]}
    loaded = load_pack(_pack(tmp_path, frontend=chains))
    renderer = Renderer(loaded, sample_rate=SR)
    renderer.validate_condition(loaded.condition("hospital-imaging-suite_snr5+n5k"))  # 16 kHz
    assert renderer.frontend_rate(loaded.condition("pink_snr5_g711u+n5k")) == 8000
    with pytest.raises(ConfigError, match=r"frontend\.n5k\[0\] at 8000 Hz.*half the sample rate"):
        renderer.validate_condition(loaded.condition("pink_snr5_g711u+n5k"))
