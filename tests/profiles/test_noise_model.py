"""The profile files: YAML round trip, strict schema, clear errors, atomic writes, shipped files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from lastmile.errors import ConfigError
from lastmile.profiles.device_model import load_device_profile
from lastmile.profiles.noise_model import (
    NoiseProfile,
    ProfileNotFoundError,
    find_profile_file,
    list_profile_files,
    load_noise_profile,
    profile_search_dirs,
    save_noise_profile,
)
from lastmile.profiles.schemas import schema_texts
from lastmile.resources import shipped_dir

SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "lastmile" / "schemas"
SHIPPED_NOISE = (
    "hospital-imaging-suite",
    "icu-monitors",
    "warehouse-conveyor",
    "call-centre-open-plan",
    "vehicle-cabin",
)
SHIPPED_DEVICES = ("handset-narrowband", "headset", "conference-speakerphone")


def test_yaml_round_trip_is_exact(known_capture, tmp_path: Path):
    path = save_noise_profile(known_capture.profile, tmp_path / "site.yaml")
    text = path.read_text()
    assert text.startswith("# lastmile noise profile (schema_version 1).")
    assert "schema_version: 1" in text and "kind: noise" in text
    assert load_noise_profile(path) == known_capture.profile
    assert load_noise_profile("site", search_dirs=[tmp_path]) == known_capture.profile


def _write(tmp_path: Path, data: dict, name: str = "bad") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_keys_are_rejected_naming_file_and_field(known_capture, tmp_path: Path):
    data = known_capture.profile.model_dump(mode="json")
    data["broadband"]["colour"] = "pink"
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_noise_profile(path)
    message = str(err.value)
    assert str(path) in message and "broadband.colour" in message and "unknown key" in message


def test_unsupported_schema_version_says_how_to_fix(known_capture, tmp_path: Path):
    data = known_capture.profile.model_dump(mode="json")
    data["schema_version"] = 2
    path = _write(tmp_path, data)
    with pytest.raises(
        ConfigError,
        match=r"bad\.yaml: schema_version: unsupported version 2.*"
        r"upgrade lastmile",
    ):
        load_noise_profile(path)
    del data["schema_version"]
    with pytest.raises(ConfigError, match="schema_version: missing"):
        load_noise_profile(_write(tmp_path, data))


def test_bad_values_and_wrong_kind(known_capture, tmp_path: Path):
    data = known_capture.profile.model_dump(mode="json")
    data["events"][0]["period_s"] = -1
    with pytest.raises(ConfigError, match=r"events\.0\.period_s"):
        load_noise_profile(_write(tmp_path, data))
    with pytest.raises(ConfigError, match="kind: expected 'device', got 'noise'"):
        load_device_profile(_write(tmp_path, known_capture.profile.model_dump(mode="json")))
    (tmp_path / "junk.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_noise_profile(tmp_path / "junk.yaml")


def test_missing_profile_lists_what_exists(tmp_path: Path):
    (tmp_path / "ward-3.yaml").write_text("kind: noise\n")
    with pytest.raises(ProfileNotFoundError, match=r"'ward3'.*known profiles: ward-3") as err:
        find_profile_file("ward3", [tmp_path])
    assert isinstance(err.value, LookupError) and isinstance(err.value, ConfigError)


def test_search_order_pack_folder_first(known_capture, tmp_path: Path):
    pack = tmp_path / "pack"
    save_noise_profile(
        known_capture.profile.model_copy(update={"name": "icu-monitors"}),
        pack / "noise_profiles" / "icu-monitors.yaml",
    )
    dirs = profile_search_dirs(base_dir=pack)
    assert dirs[0] == pack / "noise_profiles" and dirs[-1] == shipped_dir("noise_profiles")
    assert find_profile_file("icu-monitors", dirs).parent == pack / "noise_profiles"
    assert find_profile_file("vehicle-cabin", dirs).parent == shipped_dir("noise_profiles")
    names = [p.stem for p in list_profile_files(dirs)]
    assert names.count("icu-monitors") == 1


def test_a_failed_write_leaves_the_old_file_and_no_debris(known_capture, tmp_path, monkeypatch):
    path = save_noise_profile(known_capture.profile, tmp_path / "site.yaml")
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    changed = known_capture.profile.model_copy(update={"description": "changed"})
    with pytest.raises(OSError, match="disk full"):
        save_noise_profile(changed, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]


def test_shipped_schema_files_are_current():
    for name, text in schema_texts().items():
        assert (SCHEMAS / name).read_text() == text, f"regenerate {name}: tools/make_profiles.py"
    schema = json.loads(schema_texts()["noise_profile.schema.json"])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["schema_version"]["const"] == 1


def test_shipped_profiles_load_are_small_and_documented():
    folder = shipped_dir("noise_profiles")
    readme = (folder / "README.md").read_text()
    for name in SHIPPED_NOISE:
        profile = load_noise_profile(name, search_dirs=[folder])
        assert isinstance(profile, NoiseProfile) and not profile.source.speech_detected
        assert profile.source.clip_file is None
        assert (folder / f"{name}.yaml").stat().st_size < 16_000
        assert name in readme
    for name in SHIPPED_DEVICES:
        device = load_device_profile(name, search_dirs=[folder])
        assert device.method == "sweep"
        assert (folder / f"{name}.yaml").stat().st_size < 16_000
        assert name in readme
    assert "simulat" in readme.lower()
