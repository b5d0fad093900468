"""Manifests that used to load wrong without a word: malformed quoting, huge cells,
transcripts with no words; and validate listing audio problems beside metadata problems."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.corpus import (
    MAX_FIELD_CHARS,
    CorpusProblems,
    check_corpus,
    load_corpus,
    load_manifest,
    validate_corpus,
)
from lastmile.corpus import loaders as loaders_module
from lastmile.errors import ConfigError
from lastmile.testing import tone

SR = 16000
HEADER = ["id", "audio", "text", "speaker", "accent"]


def _audio(folder: Path, name: str, *, duration_s: float = 0.5) -> str:
    path = folder / "a" / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(freq_hz=440, duration_s=duration_s, sample_rate=SR), SR)
    return f"a/{name}.wav"


def _manifest(folder: Path, lines: list[str], *, suffix: str = ".csv") -> Path:
    """A manifest written line by line, as given (audio a/u1.wav ... a/u4.wav exists)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, 5):
        _audio(folder, f"u{k}")
    sep = "\t" if suffix == ".tsv" else ","
    path = folder / f"manifest{suffix}"
    path.write_text("\n".join([sep.join(HEADER), *lines]) + "\n", encoding="utf-8")
    return path


def _rows(sep: str, texts: list[str]) -> list[str]:
    return [
        sep.join([f"u{k}", f"a/u{k}.wav", text, f"s{k % 2}", "us"])
        for k, text in enumerate(texts, start=1)
    ]


def _messages(err: pytest.ExceptionInfo[CorpusProblems]) -> list[str]:
    return [str(p) for p in err.value.problems]


# --- quoting ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_stray_quote_that_merges_rows_names_them(tmp_path: Path, suffix: str):
    sep = "\t" if suffix == ".tsv" else ","
    # row 2 opens a quote that row 3 closes: the old reader made one row of lines 3-4,
    # with as many fields as the header, and loaded 3 utterances without a word
    texts = ["take one capsule", '"take two', 'then three"', "and four"]
    manifest = _manifest(tmp_path, _rows(sep, texts), suffix=suffix)
    with pytest.raises(CorpusProblems) as err:
        load_corpus(manifest)
    (message,) = _messages(err)
    assert message.startswith(f"{manifest}: row 2: lines 3–4 were read as one row")
    assert "a stray '\"' merges the rows after it" in message
    assert "set corpus.quoting: none" in message and "'\"\"'" in message
    # read literally, the quotes are text: four rows
    corpus = load_corpus(manifest, quoting="none")
    assert [u.text for u in corpus.utterances] == texts


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_quotes_that_do_not_close_a_field_are_errors_listed_together(tmp_path: Path, suffix: str):
    sep = "\t" if suffix == ".tsv" else ","
    texts = ['"Stop" she said', "fine", '"never closed', "unused"]
    lines = _rows(sep, texts)
    manifest = _manifest(tmp_path, lines[:3], suffix=suffix)  # the open quote runs to the end
    with pytest.raises(CorpusProblems) as err:
        load_corpus(manifest)
    first, last = _messages(err)
    name = "TSV" if suffix == ".tsv" else "CSV"
    assert f"row 1: line 2: malformed {name} quoting" in first
    assert "row 3: line 4: a '\"' opens a quoted field that never closes" in last
    corpus = load_corpus(manifest, quoting="none")
    assert [u.text for u in corpus.utterances] == texts[:3]


def test_properly_quoted_csv_and_tsv_fields_load(tmp_path: Path):
    texts = ["take one, then two", 'he said "stop"', 'mid "quoted" words', "plain"]
    for suffix, sep in ((".csv", ","), (".tsv", "\t")):
        folder = tmp_path / suffix[1:]
        folder.mkdir()
        path = folder / f"manifest{suffix}"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter=sep)  # how Python, pandas and Excel quote
            writer.writerow(HEADER)
            for k, text in enumerate(texts, start=1):
                writer.writerow([f"u{k}", _audio(folder, f"u{k}"), text, f"s{k % 2}", "us"])
        assert [u.text for u in load_corpus(path).utterances] == texts


def test_field_count_and_bad_quoting_values(tmp_path: Path):
    manifest = _manifest(tmp_path, [*_rows(",", ["one", "two"]), "u3,a/u3.wav,three"])
    with pytest.raises(CorpusProblems) as err:
        load_corpus(manifest)
    assert _messages(err) == [
        f"{manifest}: row 3: line 4: 3 field(s), the header has 5; a truncated line, or a "
        "field missing"
    ]
    with pytest.raises(ConfigError, match=r"corpus.quoting: expected one of csv, none, got 'x'"):
        load_corpus(manifest, quoting="x")


def test_common_voice_keeps_reading_quotes_literally(tmp_path: Path):
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(str(clips / "c1.mp3.wav"), tone(freq_hz=300, duration_s=0.5, sample_rate=SR), SR)
    sf.write(str(clips / "c2.wav"), tone(freq_hz=300, duration_s=0.5, sample_rate=SR), SR)
    (tmp_path / "test.tsv").write_text(
        "client_id\tpath\tsentence\taccents\n"
        'spk1\tc1.mp3.wav\t"Hello," she said.\tUS\n'
        'spk2\tc2.wav\tA "quoted\tUS\n',
        encoding="utf-8",
    )
    corpus = load_corpus(tmp_path / "test.tsv")
    assert [u.text for u in corpus.utterances] == ['"Hello," she said.', 'A "quoted']
    with pytest.raises(CorpusProblems, match="malformed TSV quoting"):
        load_corpus(tmp_path / "test.tsv", quoting="csv")


def test_quoting_is_refused_where_there_is_no_csv(tmp_path: Path):
    (tmp_path / "m.jsonl").write_text('{"id": "u1"}\n')
    with pytest.raises(ConfigError, match="corpus.quoting applies to CSV and TSV files"):
        load_corpus(tmp_path / "m.jsonl", quoting="none")


# --- large cells -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_200_kb_cell_loads(tmp_path: Path, suffix: str):
    sep = "\t" if suffix == ".tsv" else ","
    long_text = " ".join(["word"] * 40_000)  # 200 KB: over csv's default 128 KiB limit
    assert len(long_text) > csv.field_size_limit()
    before = csv.field_size_limit()
    manifest = _manifest(tmp_path, _rows(sep, ["short", long_text]), suffix=suffix)
    corpus = load_corpus(manifest)
    assert corpus.utterances[1].text == long_text
    assert csv.field_size_limit() == before  # the process-wide limit is put back


def test_a_cell_over_the_limit_is_an_error_naming_the_row(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(loaders_module, "MAX_FIELD_CHARS", 150_000)
    long_text = "x" * 200_000
    manifest = _manifest(tmp_path, _rows(",", ["short", long_text, "after"]))
    with pytest.raises(CorpusProblems) as err:
        load_corpus(manifest)
    (message,) = _messages(err)
    assert message.startswith(f"{manifest}: row 2: line 3: a field longer than 150,000 ")
    assert MAX_FIELD_CHARS >= 16 * 1024 * 1024


# --- transcripts with no words ---------------------------------------------------------


def test_a_transcript_with_no_words_is_an_error_naming_the_row(tmp_path: Path):
    manifest = _manifest(tmp_path, _rows(",", ["take one capsule", "...", "?!", "twice a day"]))
    with pytest.raises(CorpusProblems) as err:
        load_manifest(manifest)
    assert _messages(err) == [
        f"{manifest}: row {row}: text: {text!r} has no words after the 'default' normalizer, "
        "so it cannot be scored; write the words spoken, or remove the row"
        for row, text in ((2, "..."), (3, "?!"))
    ]
    # the check follows the pack's normalizer: "none" keeps punctuation as words ...
    assert len(load_corpus(manifest, normalizer="none")) == 4
    # ... and "whisper" drops fillers
    fillers = _manifest(tmp_path / "f", _rows(",", ["um uh", "hello"]))
    assert len(load_corpus(fillers)) == 2
    with pytest.raises(CorpusProblems, match="'um uh' has no words after the 'whisper'"):
        load_corpus(fillers, normalizer="whisper")


def test_no_word_transcripts_in_kaldi_and_common_voice(tmp_path: Path):
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    _audio(kaldi, "k1")
    _audio(kaldi, "k2")
    (kaldi / "wav.scp").write_text("k1 a/k1.wav\nk2 a/k2.wav\n")
    (kaldi / "text").write_text("k1 hello there\nk2 …\n")
    (kaldi / "utt2spk").write_text("k1 s1\nk2 s2\n")
    (kaldi / "spk2accent").write_text("s1 us\ns2 uk\n")
    with pytest.raises(CorpusProblems) as err:
        load_corpus(kaldi)
    (problem,) = err.value.problems
    assert (Path(problem.file).name, problem.row, problem.field) == ("text", 2, "transcript")
    assert "'…' has no words" in problem.message


# --- validate: every problem at once ---------------------------------------------------


def test_audio_problems_are_listed_beside_metadata_problems(tmp_path: Path):
    manifest = _manifest(tmp_path, _rows(",", ["take one", "", "take three", "take four"]))
    text = manifest.read_text().replace("u3,a/u3.wav", "u1,a/u3.wav")  # a duplicate id
    manifest.write_text(text)
    (tmp_path / "a/u1.wav").write_bytes(b"RIFF not really a wav")  # corrupt, on a good row
    sf.write(str(tmp_path / "a/u3.wav"), np.zeros(SR, dtype=np.float32), SR)  # silent
    sf.write(str(tmp_path / "a/u2.wav"), tone(freq_hz=440, duration_s=0.5, sample_rate=8000), 8000)
    corpus, problems = check_corpus(manifest, sample_rate=SR)
    assert corpus is None
    found = {(p.row, p.field): p for p in problems}
    assert "row 2: text: empty" in str(found[(2, "text")])
    assert "duplicate id 'u1'" in str(found[(3, "id")])
    assert "u1.wav (id u1): unreadable or corrupt audio" in str(found[(1, "audio")])
    assert "u3.wav (id u1): the audio is silent" in str(found[(3, "audio")])  # the duplicate's
    assert found[(2, "audio")].severity == "warning"  # 8000 Hz: resampled, said loudly
    assert len(problems) == 5
    # a clean manifest: the corpus and no problem
    clean = _manifest(tmp_path / "clean", _rows(",", ["one", "two", "three", "four"]))
    corpus, problems = check_corpus(clean, sample_rate=SR)
    assert corpus is not None and len(corpus) == 4 and problems == []


def test_validate_corpus_names_rows_where_the_loader_read_them(tmp_path: Path):
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    _audio(kaldi, "k1")
    _audio(kaldi, "k2", duration_s=0.1)
    (kaldi / "wav.scp").write_text("k1 a/k1.wav\n\nk2 a/k2.wav\n")
    (kaldi / "text").write_text("k1 hello there\nk2 good day\n")
    (kaldi / "utt2spk").write_text("k1 s1\nk2 s2\n")
    (kaldi / "spk2accent").write_text("s1 us\ns2 uk\n")
    (problem,) = validate_corpus(load_corpus(kaldi), sample_rate=SR)
    assert (Path(problem.file).name, problem.row) == ("wav.scp", 3)
    assert "only 0.10 s long" in problem.message


# --- the pack's settings reach the loader: validate and the run plan ------------------


def _validate(pack: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from lastmile.cli import cli

    result = CliRunner().invoke(cli, ["validate", str(pack)], catch_exceptions=False)
    return result.exit_code, result.output


def test_pack_quoting_and_normalizer_reach_validate_and_the_plan(tmp_path: Path):
    from lastmile.run.plan import load_pack_corpus
    from lastmile.scenario.pack import load_pack
    from lastmile.testing import write_pack

    texts = ['"stop" she said', "take two", "...", "take four"]
    manifest = _manifest(tmp_path, _rows("\t", texts), suffix=".tsv")
    pack = write_pack(tmp_path / "pack.yaml", corpus={"manifest": manifest.name})
    code, out = _validate(pack)
    assert code == 2
    assert "row 1: line 2: malformed TSV quoting" in out
    assert "set corpus.quoting: none" in out
    literal = write_pack(
        tmp_path / "literal.yaml", corpus={"manifest": manifest.name, "quoting": "none"}
    )
    code, out = _validate(literal)
    assert code == 2
    assert "row 3: text: '...' has no words after the 'default' normalizer" in out
    assert "malformed" not in out
    with pytest.raises(CorpusProblems, match="'...' has no words"):
        load_pack_corpus(load_pack(literal))
    scored_as_is = write_pack(
        tmp_path / "asis.yaml",
        corpus={"manifest": manifest.name, "quoting": "none"},
        normalizer="none",
    )
    assert [u.text for u in load_pack_corpus(load_pack(scored_as_is)).utterances] == texts
    code, out = _validate(scored_as_is)
    assert code == 0, out
    assert "4 utterances" in out


def test_validate_lists_a_corrupt_file_beside_an_empty_transcript_and_a_duplicate(
    tmp_path: Path,
):
    from lastmile.testing import write_pack

    manifest = _manifest(tmp_path, _rows(",", ["take one", "", "take three", "take four"]))
    manifest.write_text(manifest.read_text().replace("u3,a/u3.wav", "u1,a/u3.wav"))
    (tmp_path / "a/u4.wav").write_bytes(b"RIFF truncated")
    code, out = _validate(write_pack(tmp_path / "pack.yaml", corpus={"manifest": manifest.name}))
    assert code == 2
    assert "row 2: text: empty" in out
    assert "row 3: id: duplicate id 'u1'" in out
    assert "row 4: audio: u4.wav (id u4): unreadable or corrupt audio" in out
