from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.corpus import CorpusProblems, load_manifest, validate_corpus
from lastmile.testing import tone, write_corpus

SR = 16000


def _row(i: int, **over):
    row = {
        "id": f"u{i}",
        "audio": f"a/u{i}.wav",
        "text": "take one capsule",
        "speaker": f"s{i % 2}",
        "accent": "us",
        "samples": tone(freq_hz=440, duration_s=0.5, sample_rate=SR),
    }
    row.update(over)
    return row


def test_csv_loads_with_relative_paths_and_attributes(tmp_path: Path):
    manifest = write_corpus(tmp_path, [_row(1, site="a"), _row(2, site="b")])
    corpus = load_manifest(manifest)
    assert [u.id for u in corpus.utterances] == ["u1", "u2"]
    assert corpus.utterances[0].audio == tmp_path / "a/u1.wav"
    assert corpus.utterances[0].group == "us"
    assert corpus.utterances[1].attribute("site") == "b"


def test_column_mapping_tsv_and_jsonl(tmp_path: Path):
    sf.write(str(tmp_path / "x.wav"), tone(freq_hz=300, duration_s=0.5, sample_rate=SR), SR)
    (tmp_path / "m.tsv").write_text(
        "utt\tpath\tsentence\twho\tregion\nk1\tx.wav\thi there\tp1\tnorth\n"
    )
    corpus = load_manifest(
        tmp_path / "m.tsv",
        columns={"id": "utt", "audio": "path", "text": "sentence", "speaker": "who"},
        group_by="region",
    )
    assert corpus.utterances[0].group == "north"
    rows = [{"id": "j1", "audio": "x.wav", "text": "hello", "speaker": "p", "accent": "gb"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert load_manifest(tmp_path / "m.jsonl").utterances[0].id == "j1"


def test_every_problem_is_listed_with_row_and_field(tmp_path: Path):
    rows = [_row(1), _row(2, text=""), _row(3, id="u1"), _row(4, speaker="")]
    manifest = write_corpus(tmp_path, rows)
    (tmp_path / "a/u1.wav").unlink()
    with pytest.raises(CorpusProblems) as err:
        load_manifest(manifest)
    text = str(err.value)
    assert "row 1: audio" in text and "not found" in text
    assert "row 2: text: empty" in text
    assert "row 3: id: duplicate id 'u1'" in text
    assert "row 4: speaker: empty" in text
    assert len(err.value.problems) == 4


def test_missing_column_says_how_to_map_it(tmp_path: Path):
    manifest = write_corpus(tmp_path, [{k: v for k, v in _row(1).items() if k != "accent"}])
    with pytest.raises(CorpusProblems, match="corpus.columns"):
        load_manifest(manifest)


def test_validate_finds_corrupt_silent_short_stereo_and_rate(tmp_path: Path):
    rows = [_row(i) for i in range(1, 6)]
    rows[1]["samples"] = np.zeros(SR, dtype=np.float32)
    rows[2]["samples"] = tone(freq_hz=440, duration_s=0.1, sample_rate=SR)
    rows[3]["samples"] = np.stack([rows[3]["samples"]] * 2, axis=1)
    rows[4]["sample_rate"] = 8000
    manifest = write_corpus(tmp_path, rows)
    (tmp_path / "a/u1.wav").write_bytes(b"RIFF not really a wav")
    problems = validate_corpus(load_manifest(manifest), sample_rate=SR)
    text = "\n".join(str(p) for p in problems)
    assert "u1" in text and "corrupt" in text
    assert "u2" in text and "silent" in text
    assert "u3" in text and "0.10 s long" in text
    assert "u4" in text and "downmixed" in text
    assert "u5" in text and "resampled to 16000" in text
    severities = {p.message.split(":")[0]: p.severity for p in problems}
    assert any(s == "warning" for s in severities.values())
