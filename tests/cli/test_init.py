"""`lastmile init`: detect the corpus, count speakers per group, write a starter pack that
loads, validates and uses the site's profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner

from lastmile.cli import cli
from lastmile.errors import ConfigError
from lastmile.resources import shipped_dir
from lastmile.scenario.pack import load_pack
from lastmile.scenario.starter import survey_corpus
from lastmile.testing import speech_like, write_corpus

SR = 16000


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _corpus(folder: Path, speakers: dict[str, str], *, per_speaker: int = 1) -> Path:
    """A CSV corpus whose columns have other usual names (utt_id, path, sentence, spk)."""
    rng = np.random.default_rng(11)
    rows = [
        {
            "utt_id": f"{spk}-{i}",
            "audio": f"wav/{spk}-{i}.wav",
            "sentence": "the quick brown fox",
            "spk": spk,
            "region": group,
            "gender": "f",
            "samples": speech_like(rng, duration_s=0.5, sample_rate=SR),
        }
        for spk, group in speakers.items()
        for i in range(per_speaker)
    ]
    manifest = write_corpus(folder, rows, name="list.csv")
    text = manifest.read_text().replace("audio,", "path,", 1)  # the audio column is `path`
    manifest.write_text(text)
    return manifest


SPEAKERS = {"n1": "north", "n2": "north", "n3": "north", "s1": "south"}


def test_survey_maps_columns_picks_the_group_and_counts_speakers(tmp_path: Path):
    survey = survey_corpus(_corpus(tmp_path / "data", SPEAKERS, per_speaker=2))
    assert survey.format == "csv"
    assert survey.columns == {"id": "utt_id", "audio": "path", "text": "sentence", "speaker": "spk"}
    assert survey.group_by == "region" and survey.group_candidates == ("region", "gender")
    assert [(g.name, g.speakers, g.utterances, g.speakers_short) for g in survey.groups] == [
        ("north", 3, 6, 0),
        ("south", 1, 2, 2),
    ]
    assert survey.speakers == 4 and survey.utterances == 8 and survey.min_speakers == 3


def test_init_writes_a_commented_pack_that_validates(tmp_path: Path, monkeypatch):
    manifest = _corpus(tmp_path / "data", SPEAKERS)
    site = tmp_path / "site"
    (site / "noise_profiles").mkdir(parents=True)
    for name in ("icu-monitors", "headset"):  # the site's own noise and device profiles
        text = (shipped_dir("noise_profiles") / f"{name}.yaml").read_text()
        (site / "noise_profiles" / f"ward-{name}.yaml").write_text(
            text.replace(f"name: {name}", f"name: ward-{name}")
        )
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = _run("init", str(manifest), "--out", "site/ward.yaml")
    assert code == 0, stderr
    assert "groups by 'region': 2 (other possible group columns: gender)" in stdout
    assert "south" in stdout and "needs 2 more speakers" in stdout
    assert "1 of 2 groups have fewer than min_speakers = 3" in stderr
    pack = site / "ward.yaml"
    text = pack.read_text()
    assert text.startswith("# Starter scenario pack written by `lastmile init`")
    assert "below min_speakers now: south needs 2 more" in text
    assert "# - noise: {profile: vehicle-cabin}" in text  # shipped, as a comment
    raw = yaml.safe_load(text)
    assert raw["corpus"] == {
        "manifest": "../data/list.csv",  # relative to the pack file
        "columns": {"id": "utt_id", "audio": "path", "text": "sentence", "speaker": "spk"},
    }
    loaded = load_pack(pack)
    ids = [c.id for c in loaded.conditions]
    assert "ward-icu-monitors_snr20" in ids and "ward-headset" in ids and "handset-g711" in ids
    code, stdout, stderr = _run("validate", str(pack))
    assert code == 0, stderr
    assert "4 utterances, 4 speakers, 2 groups" in stdout


def test_init_keeps_an_existing_file_without_force(tmp_path: Path, monkeypatch):
    manifest = _corpus(tmp_path / "data", SPEAKERS)
    monkeypatch.chdir(tmp_path)
    Path("site.yaml").write_text("mine\n")
    code, _, stderr = _run("init", str(manifest))
    assert code == 2 and "site.yaml: already exists" in stderr and "--force" in stderr
    assert Path("site.yaml").read_text() == "mine\n"
    code, _, _ = _run("init", str(manifest), "--force")
    assert code == 0 and load_pack("site.yaml").pack.group_by == "region"


def test_init_finds_the_corpus_in_the_current_folder(tmp_path: Path, monkeypatch):
    _corpus(tmp_path, SPEAKERS)
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = _run("init", "--group-by", "gender", "--name", "clinic")
    assert code == 0 and "list.csv (csv): 4 utterances" in stdout
    loaded = load_pack("site.yaml")
    assert loaded.pack.name == "clinic" and loaded.pack.group_by == "gender"
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    Path("site.yaml").unlink()
    code, _, stderr = _run("init")
    assert code == 2 and "cannot tell which corpus to use (list.csv, other.csv)" in stderr


def test_a_kaldi_dir_is_detected_by_the_loaders(tmp_path: Path):
    data = tmp_path / "kaldi"
    data.mkdir()
    speakers = {"a": "scottish", "b": "scottish", "c": "welsh"}
    wav, text, utt2spk = [], [], []
    for spk in speakers:
        path = data / f"{spk}.wav"
        sf.write(str(path), np.zeros(SR // 4, dtype=np.float32) + 0.01, SR)
        wav.append(f"{spk}-1 {path}")
        text.append(f"{spk}-1 hello there")
        utt2spk.append(f"{spk}-1 {spk}")
    (data / "wav.scp").write_text("\n".join(wav) + "\n")
    (data / "text").write_text("\n".join(text) + "\n")
    (data / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    (data / "spk2accent").write_text("".join(f"{s} {g}\n" for s, g in speakers.items()))
    survey = survey_corpus(data)
    assert survey.format == "kaldi" and survey.group_by == "accent" and survey.columns == {}
    assert [(g.name, g.speakers_short) for g in survey.groups] == [("scottish", 1), ("welsh", 2)]


def test_no_group_column_or_missing_column_says_what_to_pass(tmp_path: Path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,audio,text,speaker\nu1,a.wav,hi,s1\n")
    with pytest.raises(ConfigError, match=r"no group column found .*--group-by COLUMN"):
        survey_corpus(manifest)
    manifest.write_text("id,audio,text,who,accent\nu1,a.wav,hi,s1,x\n")
    with pytest.raises(ConfigError, match=r"no speaker column .*--column speaker=YOUR_COLUMN"):
        survey_corpus(manifest)
    survey = survey_corpus(manifest, columns={"speaker": "who"})
    assert survey.columns == {"speaker": "who"} and survey.groups[0].speakers_short == 2


def test_a_single_group_is_warned_about_with_the_column_to_try(tmp_path: Path):
    north = {"n1": "north", "n2": "north", "n3": "north"}
    manifest = _corpus(tmp_path / "data", north)
    code, _, err = _run("init", str(manifest), "--out", str(tmp_path / "one.yaml"))
    assert code == 0 and (tmp_path / "one.yaml").is_file()
    assert "warning: 'region' puts every speaker in one group ('north')" in err
    assert "insufficient-data" in err and "--group-by gender" in err
    # two groups: no such warning
    _, _, err = _run(
        "init", str(_corpus(tmp_path / "two", SPEAKERS)), "--out", str(tmp_path / "two.yaml")
    )
    assert "puts every speaker in one group" not in err
