from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lastmile.errors import ConfigError
from lastmile.resources import shipped_dir
from lastmile.scenario.pack import (
    CLEAN_ID,
    item_seed_hex,
    item_seed_sequence,
    load_pack,
    pack_json_schema,
)
from lastmile.testing import write_pack

CORPUS = {"manifest": "manifest.csv"}


def test_shipped_packs_load_and_start_with_clean():
    for path in sorted(shipped_dir("scenarios").glob("*.yaml")):
        loaded = load_pack(path)
        assert loaded.conditions[0].id == CLEAN_ID
        ids = [c.id for c in loaded.conditions]
        assert len(ids) == len(set(ids)), path


def test_list_values_expand_with_stable_readable_ids(tmp_path: Path):
    pack = write_pack(
        tmp_path / "p.yaml",
        corpus=CORPUS,
        conditions=[
            {"noise": {"type": "hum", "fundamental_hz": 50}, "snr_db": [20, 10, -5]},
            {"id": "phone", "device": "narrowband-handset", "channel": {"codec": "g711-alaw"}},
            {"id": "office", "noise": "pink", "snr_db": [10, 5]},
        ],
        grid={"noise": ["white", {"profile": "ward3"}], "snr_db": [0], "device": [None, "headset"]},
    )
    ids = [c.id for c in load_pack(pack).conditions]
    assert ids == [
        "clean",
        "hum50_snr20",
        "hum50_snr10",
        "hum50_snrm5",
        "phone",
        "office_snr10",
        "office_snr5",
        "white_snr0",
        "white_snr0_headset",
        "ward3_snr0",
        "ward3_snr0_headset",
    ]
    # the same pack gives the same ids and specs every time
    again = load_pack(pack).conditions
    assert [c.spec() for c in again] == [c.spec() for c in load_pack(pack).conditions]


def test_unknown_key_names_file_and_field(tmp_path: Path):
    pack = write_pack(
        tmp_path / "bad.yaml",
        corpus=CORPUS,
        conditions=[{"noise": "pink", "snr_db": 5}, {"noise": "pink", "snr": 5}],
    )
    with pytest.raises(ConfigError) as err:
        load_pack(pack)
    text = str(err.value)
    assert "bad.yaml" in text
    assert "conditions[1].snr" in text
    assert "unknown key" in text


def test_snr_out_of_range_names_field_and_range(tmp_path: Path):
    pack = write_pack(
        tmp_path / "snr.yaml", corpus=CORPUS, conditions=[{"noise": "pink", "snr_db": [10, 99]}]
    )
    with pytest.raises(ConfigError, match=r"snr.yaml: conditions\[0\]\.snr_db.*\[-10, 60\]"):
        load_pack(pack)


def test_wrong_type_names_field(tmp_path: Path):
    pack = write_pack(
        tmp_path / "t.yaml", corpus=CORPUS, conditions=[{"noise": "pink", "snr_db": "loud"}]
    )
    with pytest.raises(ConfigError, match=r"conditions\[0\]\.snr_db.*'loud'"):
        load_pack(pack)


def test_noise_without_snr_and_bad_noise_param(tmp_path: Path):
    pack = write_pack(tmp_path / "n.yaml", corpus=CORPUS, conditions=[{"noise": "pink"}])
    with pytest.raises(ConfigError, match="without snr_db"):
        load_pack(pack)
    pack = write_pack(
        tmp_path / "h.yaml",
        corpus=CORPUS,
        conditions=[{"noise": {"type": "hum", "fundamental_hz": -1}, "snr_db": 5}],
    )
    with pytest.raises(ConfigError, match=r"conditions\[0\]\.noise\.fundamental_hz"):
        load_pack(pack)


def test_missing_required_and_bad_yaml(tmp_path: Path):
    pack = write_pack(tmp_path / "m.yaml", conditions=[])
    with pytest.raises(ConfigError, match="m.yaml: corpus: required"):
        load_pack(pack)
    bad = tmp_path / "y.yaml"
    bad.write_text("name: x\ncorpus: [unclosed\n")
    with pytest.raises(ConfigError, match=r"y.yaml: line \d+"):
        load_pack(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_pack(tmp_path / "absent.yaml")


def test_explicit_clean_duplicate_is_refused(tmp_path: Path):
    pack = write_pack(
        tmp_path / "d.yaml",
        corpus=CORPUS,
        conditions=[
            {"id": "a", "noise": "pink", "snr_db": 5},
            {"id": "a", "noise": "white", "snr_db": 5},
        ],
    )
    with pytest.raises(ConfigError, match="share the id 'a'"):
        load_pack(pack)


def test_fairness_settings_are_validated(tmp_path: Path):
    pack = write_pack(tmp_path / "f.yaml", corpus=CORPUS, fairness={"alpha": 2})
    with pytest.raises(ConfigError, match=r"fairness\.alpha"):
        load_pack(pack)


def test_item_seeds_follow_design():
    import hashlib

    digest = hashlib.sha256(b"7/hum60_snr10/utt1").hexdigest()
    assert item_seed_hex(7, "hum60_snr10", "utt1") == digest
    a = np.random.default_rng(item_seed_sequence(7, "hum60_snr10", "utt1")).random(4)
    b = np.random.default_rng(item_seed_sequence(7, "hum60_snr10", "utt1")).random(4)
    c = np.random.default_rng(item_seed_sequence(7, "hum60_snr10", "utt2")).random(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_json_schema_rejects_unknown_keys():
    schema = pack_json_schema()
    assert schema["additionalProperties"] is False
    assert {"name", "corpus", "conditions", "grid", "fairness"} <= set(schema["properties"])
