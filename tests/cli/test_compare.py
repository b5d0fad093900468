"""`lastmile compare RUN_A RUN_B` over two real runs of one tiny pack.

The corpus: 20 tones (2 groups × 5 speakers × 2 utterances), each of its own length, so a
recognizer program can tell which utterance it hears from the WAV's duration, and whether the
hum condition is on from the waveform (a 2 kHz tone's sample-to-sample changes are large; the
hum's are small). Two `command:` recognizers (real programs, run by the real engine) print
the reference minus some words: under hum, A drops 1-3 words for everybody; B drops about as
many for group "north" but 3 more for group "south". So B degrades more unevenly than A, and
A less unevenly than B. B also fails on one utterance under hum (left out of both runs).
The group names are hostile HTML.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from lastmile.analysis.compare import check_same_items, comparison_schema
from lastmile.cli import cli
from lastmile.errors import ConfigError
from lastmile.testing import tone, write_corpus, write_pack

NORTH = "north <b>&amp;</b>"
SOUTH = "<script>alert('south')</script>"
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
]
N_UTTERANCES = 20

RECOGNIZER = """
import math, sys, wave
WORDS = {words!r}
with wave.open(sys.argv[1]) as w:
    rate, n = w.getframerate(), w.getnframes()
    raw = w.readframes(n)
x = [int.from_bytes(raw[i:i + 2], "little", signed=True) for i in range(0, len(raw), 2)]
k = round((n / rate - 1.0) / 0.05)             # the utterance, from its length
energy = sum(v * v for v in x) or 1
change = sum((x[i] - x[i - 1]) ** 2 for i in range(1, len(x))) / energy
hum = change < 0.45                            # a clean 2 kHz tone gives 0.59
south = k >= 10
drop = 0
if hum:
    drop = {drop}
if {fail} and hum and k == 19:
    sys.exit("decoder crashed")
print(" ".join(WORDS[drop:]))
"""
DROP_A = "1 + k % 3"
DROP_B = "1 + (k + 1) % 3 + (3 if south else 0)"


def _invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders ``a`` and ``b`` of one pack, and ``seed2`` of the pack with another seed."""
    folder = tmp_path_factory.mktemp("compare")
    rows = []
    for k in range(N_UTTERANCES):
        group = NORTH if k < 10 else SOUTH
        rows.append(
            {
                "id": f"u{k:02d}",
                "audio": f"u{k:02d}.wav",
                "text": " ".join(WORDS),
                "speaker": f"s{k // 2}",
                "accent": group,
                "samples": tone(freq_hz=2000.0, duration_s=1.0 + 0.05 * k, sample_rate=16000),
            }
        )
    write_corpus(folder, rows)
    for name, drop, fail in (("a", DROP_A, False), ("b", DROP_B, True)):
        (folder / f"asr_{name}.py").write_text(RECOGNIZER.format(words=WORDS, drop=drop, fail=fail))
    fields = {
        "corpus": {"manifest": "manifest.csv"},
        "fairness": {"min_speakers": 3},
        "conditions": [
            {"id": "hum", "noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 0},
        ],
    }
    pack = write_pack(folder / "pack.yaml", seed=1, **fields)
    other = write_pack(folder / "other.yaml", seed=2, **fields)
    out = {}
    for name, pack_path, asr in (("a", pack, "a"), ("b", pack, "b"), ("seed2", other, "a")):
        spec = f"command:{sys.executable} -I {folder / f'asr_{asr}.py'} {{wav}}"
        out[name] = folder / f"run-{name}"
        result = _invoke(
            "run", pack_path, "--asr", spec, "--out", out[name], "-j", "2", "-q", "--no-cache"
        )
        assert result.exit_code in (0, 1), result.output
    return out


@pytest.mark.timeout(300)
def test_b_that_drops_words_for_one_group_under_hum_is_more_uneven(runs, tmp_path):
    page = tmp_path / "compare.html"
    result = _invoke("compare", runs["a"], runs["b"], "--json", "--html", page)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, comparison_schema())
    hum = next(c for c in data["conditions"] if c["condition_id"] == "hum")
    assert hum["verdict"] == "more-uneven"
    assert data["more_uneven"] == ["hum"]
    assert hum["q_value"] <= 0.05
    assert hum["disparity_b_pts"] > hum["disparity_a_pts"]
    south = next(g for g in hum["groups"] if g["group"] == SOUTH)
    north = next(g for g in hum["groups"] if g["group"] == NORTH)
    # South: B drops about 3 more words of 10 than A; its interval excludes 0, north's holds it.
    assert south["delta_change_pts"]["ci_low"] > 0
    assert 20 < south["delta_change_pts"]["value"] < 40
    assert north["delta_change_pts"]["ci_low"] < 0 < north["delta_change_pts"]["ci_high"]
    # B failed on one south utterance under hum: left out of both runs and counted.
    assert data["run_b"]["n_failed"] == 1 and data["run_a"]["n_failed"] == 0
    assert data["n_excluded"] == 1 and data["n_items"] == 2 * N_UTTERANCES
    assert south["n_excluded"] == 1 and north["n_excluded"] == 0
    # Clean: both recognizers are perfect.
    clean = next(c for c in data["conditions"] if c["is_clean"])
    assert all(g["wer_a_pct"]["value"] == 0 == g["wer_b_pct"]["value"] for g in clean["groups"])
    # The HTML page: names escaped, a plot, nothing fetched.
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(&#x27;south&#x27;)" in text
    assert "north &lt;b&gt;&amp;amp;&lt;/b&gt;" in text
    assert "data:image/png;base64," in text
    assert "http://" not in text and "https://" not in text and 'src="http' not in text


@pytest.mark.timeout(300)
def test_the_other_way_round_a_is_less_uneven_and_exits_0(runs):
    result = _invoke("compare", runs["b"], runs["a"])
    assert result.exit_code == 0, result.output
    assert "[less-uneven]" in result.stdout
    assert "left out of both" in result.stdout
    data = json.loads(_invoke("compare", runs["b"], runs["a"], "--json").stdout)
    assert data["less_uneven"] == ["hum"] and data["more_uneven"] == []


@pytest.mark.timeout(300)
def test_runs_of_another_seed_are_refused(runs):
    result = _invoke("compare", runs["a"], runs["seed2"])
    assert result.exit_code == 2
    assert "not runs of the same items: seed differ" in result.stderr


@pytest.mark.timeout(300)
def test_a_run_compared_with_itself_or_an_incomplete_run_is_refused(runs, tmp_path):
    result = _invoke("compare", runs["a"], runs["a"])
    assert result.exit_code == 2 and "same folder" in result.stderr
    short = tmp_path / "short"
    shutil.copytree(runs["b"], short)
    lines = (short / "items.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (short / "items.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    result = _invoke("compare", runs["a"], short)
    assert result.exit_code == 2
    assert "lacks 1 item(s)" in result.stderr and "--resume" in result.stderr


def test_an_html_path_in_a_missing_folder_is_bad_input(runs, tmp_path):
    page = tmp_path / "missing" / "compare.html"
    result = _invoke("compare", runs["a"], runs["b"], "--html", page)
    assert result.exit_code == 2
    assert "--html" in result.stderr and "does not exist" in result.stderr
    assert not page.parent.exists()


def _with_failures(run: Path, dest: Path, failed: set[tuple[str, str]]) -> Path:
    """A copy of ``run`` in which the items ``(condition_id, utterance_id)`` failed."""
    shutil.copytree(run, dest)
    with (dest / "items.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], list(reader)
    for row in rows:
        if (row["condition_id"], row["utterance_id"]) in failed:
            row["error"] = "BackendError: command: exit status 1: decoder crashed"
    with (dest / "items.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return dest


@pytest.mark.timeout(300)
def test_items_failed_in_either_run_are_left_out_of_both_and_counted(runs, tmp_path):
    # B failed on u19 under hum; A now fails there too and on u00 under hum.
    a = _with_failures(runs["a"], tmp_path / "a", {("hum", "u19"), ("hum", "u00")})
    result = _invoke("compare", a, runs["b"], "--json")
    data = json.loads(result.stdout)
    assert (data["run_a"]["n_failed"], data["run_b"]["n_failed"]) == (2, 1)
    assert (data["n_excluded"], data["n_failed_both"]) == (2, 1)
    hum = next(c for c in data["conditions"] if c["condition_id"] == "hum")
    left = {g["group"]: g["n_excluded"] for g in hum["groups"]}
    assert left == {NORTH: 1, SOUTH: 1}
    assert "2 of 40 items failed in one run or both (A 2, B 1)" in " ".join(data["findings"])


def _renormalized(run: Path, dest: Path) -> Path:
    """A copy of ``run`` whose run.json says it was scored with another normalizer."""
    shutil.copytree(run, dest)
    meta = json.loads((dest / "run.json").read_text(encoding="utf-8"))
    meta["normalizer"] = "none"
    meta["identity"]["parts"]["normalizer"] = "0" * 64
    (dest / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return dest


@pytest.mark.timeout(300)
def test_another_normalizer_is_refused_unless_allowed(runs, tmp_path):
    other = _renormalized(runs["b"], tmp_path / "renorm")
    result = _invoke("compare", runs["a"], other)
    assert result.exit_code == 2
    assert "different normalizers" in result.stderr
    assert "--allow-normalizer-change" in result.stderr
    result = _invoke("compare", runs["a"], other, "--allow-normalizer-change", "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["normalizer_changed"] is True
    assert any("different normalizers" in n for n in data["notes"])


def test_identity_check_names_every_part_that_differs(runs):
    meta = json.loads((runs["a"] / "run.json").read_text(encoding="utf-8"))
    other = json.loads(json.dumps(meta))
    for part in ("conditions", "utterances", "backend"):
        other["identity"]["parts"][part] = "f" * 64
    with pytest.raises(ConfigError) as err:
        check_same_items(meta, other, path_a=runs["a"], path_b=runs["b"])
    text = str(err.value)
    assert "same items: conditions (" in text and "; corpus (" in text
    assert "backend" not in text  # a different backend is the point
    del other["identity"]
    with pytest.raises(ConfigError, match="no identity"):
        check_same_items(meta, other, path_a=runs["a"], path_b=runs["b"])
