from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
import soundfile as sf

from lastmile.corpus import (
    FORMATS,
    CorpusProblems,
    Problem,
    detect_format,
    load_corpus,
    load_kaldi,
)
from lastmile.errors import ConfigError
from lastmile.scenario.pack import CorpusRef, load_pack
from lastmile.testing import tone, write_corpus, write_pack

SR = 8000


def _wav(path: Path, freq_hz: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(freq_hz=freq_hz, duration_s=0.1, sample_rate=SR), SR)
    return path


def _problems(err: pytest.ExceptionInfo[CorpusProblems]) -> list[Problem]:
    return err.value.problems


def _find(problems: list[Problem], file_end: str, row: int | None, field: str | None) -> Problem:
    hits = [p for p in problems if p.file.endswith(file_end) and p.row == row and p.field == field]
    assert hits, f"no problem at {file_end}:{row}:{field} in {[str(p) for p in problems]}"
    return hits[0]


# --- Kaldi -----------------------------------------------------------------------------


def _kaldi(root: Path, **files: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _wav(root / "wavs/a1.wav")
    _wav(root / "wavs/b1.wav")
    contents = {
        "wav.scp": f"a1 wavs/a1.wav\nb1 {root / 'wavs/b1.wav'}\n",
        "text": "a1 take one capsule\nb1 twice a day\n",
        "utt2spk": "a1 spk-a\nb1 spk-b\n",
        "spk2accent": "spk-a scottish\nspk-b welsh\n",
        "spk2gender": "spk-a f\nspk-b m\n",
        **files,
    }
    for name, text in contents.items():
        if text is not None:
            (root / name).write_text(text)
    return root


def test_kaldi_data_dir_loads_relative_and_absolute_paths(tmp_path: Path):
    root = _kaldi(tmp_path / "data")
    corpus = load_corpus(root)
    assert [u.id for u in corpus.utterances] == ["a1", "b1"]
    a1, b1 = corpus.utterances
    assert a1.audio == root / "wavs/a1.wav" and b1.audio == root / "wavs/b1.wav"
    assert (a1.text, a1.speaker, a1.group) == ("take one capsule", "spk-a", "scottish")
    assert b1.group == "welsh" and b1.attribute("gender") == "m"
    assert corpus.manifest == root and corpus.group_by == "accent"


def test_kaldi_group_per_utterance_and_other_group_by(tmp_path: Path):
    root = _kaldi(tmp_path / "data")
    (root / "spk2accent").unlink()
    (root / "utt2region").write_text("a1 north\nb1 south\n")
    corpus = load_kaldi(root, group_by="region")
    assert [u.group for u in corpus.utterances] == ["north", "south"]
    assert load_kaldi(root, group_by="gender").groups == ["f", "m"]


def test_kaldi_every_problem_with_file_line_and_field(tmp_path: Path):
    root = _kaldi(
        tmp_path / "data",
        **{
            "wav.scp": "a1 wavs/a1.wav\nb1 sox wavs/b1.sph -t wav - |\nc1 wavs/missing.wav\n"
            "d1 raw.ark:1234\n",
            "text": "a1\nb1 twice a day\nc1 hello\nd1 hi\nzz not in wav.scp\n",
            "utt2spk": "a1 spk-a\nb1 spk-b\nc1 spk-c\n",
        },
    )
    with pytest.raises(CorpusProblems) as err:
        load_corpus(root)
    problems = _problems(err)
    piped = _find(problems, "wav.scp", 2, "path")
    assert "piped command" in piped.message and "> wavs/b1.wav" in piped.message
    assert "not found" in _find(problems, "wav.scp", 3, "path").message
    assert "archive" in _find(problems, "wav.scp", 4, "path").message
    assert "empty" in _find(problems, "text", 1, "transcript").message
    assert "not in wav.scp" in _find(problems, "text", 5, "utterance").message
    assert "'d1'" in _find(problems, "utt2spk", None, "speaker").message
    assert "'spk-c'" in _find(problems, "spk2accent", None, "accent").message
    assert len(problems) == 7


def test_kaldi_missing_files_and_segments_are_refused(tmp_path: Path):
    root = _kaldi(tmp_path / "data", text=None, spk2accent=None)
    (root / "text").unlink(missing_ok=True)
    (root / "segments").write_text("a1 rec1 0.0 1.5\n")
    with pytest.raises(CorpusProblems) as err:
        load_kaldi(root)
    problems = _problems(err)
    assert "missing" in _find(problems, "data/text", None, None).message
    assert "cut each segment" in _find(problems, "segments", None, None).message
    assert "spk2accent" in _find(problems, "spk2accent", None, "accent").message
    with pytest.raises(ConfigError, match="cannot be mapped in the kaldi format"):
        load_kaldi(_kaldi(tmp_path / "ok"), columns={"speaker": "x"})


# --- NeMo ------------------------------------------------------------------------------


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_nemo_manifest_with_mapped_keys(tmp_path: Path):
    _wav(tmp_path / "wav/u1.wav")
    _wav(tmp_path / "wav/u2.wav")
    rows = [
        {"audio_filepath": "wav/u1.wav", "text": "hello there", "duration": 0.1, "spk": "p1",
         "region": "north", "lang": "en"},
        {"audio_filepath": str(tmp_path / "wav/u2.wav"), "text": "good day", "duration": 0.1,
         "spk": "p2", "region": "south", "lang": "en"},
    ]  # fmt: skip
    manifest = _jsonl(tmp_path / "train_manifest.json", rows)
    assert detect_format(manifest) == "nemo"
    corpus = load_corpus(manifest, columns={"speaker": "spk"}, group_by="region")
    u1, u2 = corpus.utterances
    assert (u1.id, u1.audio, u1.speaker, u1.group) == ("u1", tmp_path / "wav/u1.wav", "p1", "north")
    assert u2.audio == tmp_path / "wav/u2.wav" and u2.text == "good day"
    assert u1.attribute("lang") == "en" and u1.attribute("duration") == "0.1"


def test_nemo_problems(tmp_path: Path):
    _wav(tmp_path / "a.wav")
    base = {"audio_filepath": "a.wav", "text": "hi", "duration": 0.1, "speaker": "s",
            "accent": "us"}  # fmt: skip
    rows = [
        base,
        {**base, "text": ""},  # empty transcript, and a duplicate id
        {**base, "audio_filepath": "gone.wav"},
        {**base, "audio_filepath": "b.wav", "duration": -1},
        {**base, "audio_filepath": "c.wav", "offset": 2.5},
    ]
    with pytest.raises(CorpusProblems) as err:
        load_corpus(_jsonl(tmp_path / "m.jsonl", rows))
    problems = _problems(err)
    assert "empty" in _find(problems, "m.jsonl", 2, "text").message
    assert "duplicate id 'a'" in _find(problems, "m.jsonl", 2, "audio_filepath").message
    assert "not found" in _find(problems, "m.jsonl", 3, "audio_filepath").message
    assert "positive" in _find(problems, "m.jsonl", 4, "duration").message
    assert "trim 2.5" in _find(problems, "m.jsonl", 5, "offset").message
    assert len(problems) == 5
    with pytest.raises(CorpusProblems, match=r"'accent' is missing.*\{accent: <your key>\}"):
        load_corpus(_jsonl(tmp_path / "n.json", [{k: v for k, v in base.items() if k != "accent"}]))


# --- Common Voice ----------------------------------------------------------------------

CV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\n"


def test_commonvoice_tsv(tmp_path: Path):
    _wav(tmp_path / "clips/cv_1.wav")
    _wav(tmp_path / "clips/cv_2.wav")
    (tmp_path / "validated.tsv").write_text(
        CV_HEADER
        + 'c1\tcv_1.wav\t"Quoted," she said.\t2\t0\ttwenties\tfemale\tScottish English\ten\n'
        + "c2\tcv_2.wav\tGood day.\t3\t0\t\tmale\tWelsh English\ten\n"
    )
    assert detect_format(tmp_path / "validated.tsv") == "commonvoice"
    corpus = load_corpus(tmp_path / "validated.tsv")
    u1, u2 = corpus.utterances
    assert (u1.id, u1.audio, u1.speaker) == ("cv_1", tmp_path / "clips/cv_1.wav", "c1")
    assert u1.text == '"Quoted," she said.'  # read verbatim: Common Voice does not quote
    assert (u1.group, u2.group) == ("Scottish English", "Welsh English")
    assert u2.attribute("gender") == "male"
    assert load_corpus(tmp_path / "validated.tsv", group_by="gender").groups == ["female", "male"]


def test_commonvoice_problems(tmp_path: Path):
    _wav(tmp_path / "clips/cv_1.wav")
    (tmp_path / "test.tsv").write_text(
        "client_id\tpath\tsentence\taccent\n"  # older releases: `accent`
        "c1\tcv_1.wav\tHello.\t\n"
        "c2\tcv_2.wav\tThere.\tus\n"
        "c3\tcv_1.wav\t\tus\n"
    )
    with pytest.raises(CorpusProblems) as err:
        load_corpus(tmp_path / "test.tsv", format="commonvoice")
    problems = _problems(err)
    empty_accent = _find(problems, "test.tsv", 1, "accent")
    assert "Common Voice leaves accent empty" in empty_accent.message
    assert "clips/" in _find(problems, "test.tsv", 2, "path").message
    assert "empty" in _find(problems, "test.tsv", 3, "sentence").message
    assert "duplicate id 'cv_1'" in _find(problems, "test.tsv", 3, "path").message
    assert len(problems) == 4


# --- folder of wav+txt -----------------------------------------------------------------


def _folder(root: Path) -> Path:
    for rel, text in {
        "spk1/a.wav": "take one capsule",
        "spk1/day2/a.wav": "twice\na day\n",
        "spk2/b.flac": "with water",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), tone(freq_hz=300, duration_s=0.1, sample_rate=SR), SR)
        path.with_suffix(".txt").write_text(text)
    (root / ".hidden").mkdir()
    (root / ".hidden/x.txt").write_text("ignored")
    (root / "speakers.csv").write_text("speaker,accent,site\nspk1,scottish,ward3\nspk2,welsh,\n")
    return root


def test_folder_of_wav_and_txt(tmp_path: Path):
    root = _folder(tmp_path / "corpus")
    assert detect_format(root) == "folder"
    corpus = load_corpus(root)
    assert [u.id for u in corpus.utterances] == ["spk1/a", "spk1/day2/a", "spk2/b"]
    assert corpus.utterances[1].text == "twice a day"
    assert [u.speaker for u in corpus.utterances] == ["spk1", "spk1", "spk2"]
    assert corpus.groups == ["scottish", "welsh"]
    assert corpus.utterances[0].attribute("site") == "ward3"
    renamed = root / "speakers.csv"
    renamed.write_text("who,region\nspk1,north\nspk2,south\n")
    corpus = load_corpus(root, columns={"speaker": "who", "region": "region"}, group_by="region")
    assert corpus.groups == ["north", "south"]


def test_folder_problems(tmp_path: Path):
    root = _folder(tmp_path / "corpus")
    (root / "spk2/b.txt").write_text("  \n")
    (root / "spk1/a.txt").unlink()
    (root / "spk1/lost.txt").write_text("audio went missing")
    _wav(root / "spk3/c.wav")
    (root / "spk3/c.txt").write_text("hello")
    _wav(root / "top.wav")
    (root / "top.txt").write_text("no speaker folder")
    with pytest.raises(CorpusProblems) as err:
        load_corpus(root)
    problems = _problems(err)
    assert "empty" in _find(problems, "spk2/b.txt", None, "transcript").message
    assert "a.txt" in _find(problems, "spk1/a.wav", None, "transcript").message
    assert "without audio" in _find(problems, "spk1/lost.txt", None, "audio").message
    assert "'spk3'" in _find(problems, "speakers.csv", None, "speaker").message
    assert "folder named after" in _find(problems, "top.wav", None, "speaker").message
    assert len(problems) == 5


# --- dispatch and packs ----------------------------------------------------------------


def test_auto_detection_and_explicit_format_checks(tmp_path: Path):
    manifest = write_corpus(
        tmp_path,
        [{"id": "u1", "audio": "u1.wav", "text": "hi", "speaker": "s", "accent": "us",
          "samples": tone(freq_hz=200, duration_s=0.1, sample_rate=SR)}],
        sample_rate=SR,
    )  # fmt: skip
    assert detect_format(manifest) == "csv"
    assert detect_format(_kaldi(tmp_path / "k")) == "kaldi"
    assert load_corpus(manifest, format="csv").utterances[0].id == "u1"
    with pytest.raises(ConfigError, match="ends in '.csv'"):
        load_corpus(manifest, format="tsv")
    with pytest.raises(ConfigError, match="reads a folder"):
        load_corpus(manifest, format="kaldi")
    with pytest.raises(ConfigError, match="expected one of auto, csv"):
        load_corpus(manifest, format="sphinx")
    with pytest.raises(ConfigError, match="not found"):
        load_corpus(tmp_path / "nope.csv")


def test_pack_format_field_reaches_the_loader(tmp_path: Path):
    from lastmile.run.plan import load_pack_corpus

    _kaldi(tmp_path / "data")
    pack = write_pack(
        tmp_path / "p.yaml", corpus={"manifest": "data", "format": "kaldi"}, conditions=[]
    )
    loaded = load_pack(pack)
    assert loaded.pack.corpus.format == "kaldi"
    assert get_args(CorpusRef.model_fields["format"].annotation) == FORMATS
    assert [u.id for u in load_pack_corpus(loaded).utterances] == ["a1", "b1"]
    bad = write_pack(tmp_path / "q.yaml", corpus={"manifest": "data", "format": "sphinx"})
    with pytest.raises(ConfigError, match="format"):
        load_pack(bad)
