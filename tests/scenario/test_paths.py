"""One rule for every path in a pack: relative to the pack file; profiles in
PACK_DIR/noise_profiles, then the shipped ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lastmile.errors import ConfigError
from lastmile.render.engine import Renderer
from lastmile.resources import shipped_dir
from lastmile.scenario.pack import load_pack
from lastmile.testing import write_pack

CORPUS = {"manifest": "corpus.csv"}


def test_a_command_program_is_relative_to_the_pack_file(tmp_path: Path, monkeypatch):
    from lastmile.asr import build_backend

    packs = tmp_path / "site" / "packs"
    tools = tmp_path / "site" / "tools"
    tools.mkdir(parents=True)
    script = tools / "recognize.sh"
    script.write_text('#!/bin/sh\ntest -s "$2" && echo "heard $(basename $2)"\n')
    script.chmod(0o755)
    pack = write_pack(
        packs / "p.yaml", corpus=CORPUS, asr="command:../tools/recognize.sh --wav {wav}"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder plays no part
    loaded = load_pack(pack)
    assert loaded.pack.asr == f"command:{script} --wav {{wav}}"
    backend = build_backend(loaded.pack.asr)
    assert backend.transcribe([np.zeros(1600, dtype=np.float32)]) == ["heard item0.wav"]


def test_command_mapping_bare_names_and_absolute_paths(tmp_path: Path):
    pack = write_pack(
        tmp_path / "p.yaml",
        corpus=CORPUS,
        asr={"name": "command", "argument": "bin/asr {wav}", "sample_rate": 8000},
    )
    assert load_pack(pack).pack.asr == {
        "name": "command",
        "argument": f"{tmp_path / 'bin' / 'asr'} {{wav}}",
        "sample_rate": 8000,
    }
    for spec in ("command:whisper-cli {wav}", "command:/opt/asr/run {wav}", "faster-whisper"):
        write_pack(tmp_path / "p.yaml", corpus=CORPUS, asr=spec)
        assert load_pack(tmp_path / "p.yaml").pack.asr == spec


def _renderer(pack: Path) -> Renderer:
    return Renderer(load_pack(pack), sample_rate=16000)


def test_profiles_come_from_noise_profiles_beside_the_pack_then_shipped(tmp_path: Path):
    site = tmp_path / "site"
    (site / "noise_profiles").mkdir(parents=True)
    shutil.copy(
        shipped_dir("noise_profiles") / "icu-monitors.yaml",
        site / "noise_profiles" / "ward-3.yaml",
    )
    text = (site / "noise_profiles" / "ward-3.yaml").read_text()
    (site / "noise_profiles" / "ward-3.yaml").write_text(
        text.replace("name: icu-monitors", "name: ward-3")
    )
    pack = write_pack(
        site / "p.yaml",
        corpus=CORPUS,
        conditions=[
            {"noise": {"profile": "ward-3"}, "snr_db": 10},
            {"noise": {"profile": "vehicle-cabin"}, "snr_db": 10},
        ],
    )
    renderer = _renderer(pack)
    for cond in renderer.loaded.conditions:
        renderer.validate_condition(cond)
    assert renderer.noise_generator(renderer.loaded.condition("ward-3_snr10")).name == "ward-3"


def test_the_not_found_message_states_the_rule_and_lists_only_profiles(tmp_path: Path):
    site = tmp_path / "site"
    write_pack(site / "other-pack.yaml", corpus=CORPUS)  # a pack is not a profile
    shutil.copy(shipped_dir("noise_profiles") / "icu-monitors.yaml", site / "beside.yaml")
    pack = write_pack(
        site / "p.yaml", corpus=CORPUS, conditions=[{"noise": {"profile": "beside"}, "snr_db": 5}]
    )
    renderer = _renderer(pack)
    with pytest.raises(ConfigError) as err:
        renderer.validate_condition(renderer.loaded.conditions[1])
    message = str(err.value)
    assert "noise_profiles/ beside the pack file, then in the shipped profiles" in message
    known = message.split("known profiles: ")[1]
    assert "icu-monitors" in known and "vehicle-cabin" in known
    assert "other-pack" not in known and "p," not in known and "beside" not in known


def test_a_missing_noise_file_is_said_to_be_relative_to_the_pack(tmp_path: Path):
    pack = write_pack(
        tmp_path / "packs" / "p.yaml",
        corpus=CORPUS,
        conditions=[{"noise": {"file": "noise/ward.flac"}, "snr_db": 5}],
    )
    renderer = _renderer(pack)
    with pytest.raises(ConfigError) as err:
        renderer.validate_condition(renderer.loaded.conditions[1])
    message = str(err.value)
    assert "relative to the pack file" in message and "manifest" not in message
    assert str(tmp_path / "packs" / "noise" / "ward.flac") in message
