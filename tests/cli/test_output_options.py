"""Output that reads well on an ordinary corpus: audio conversions said once per kind with
counts (--verbose lists the files), --limit warns when it thins a group below min_speakers,
and --conditions runs a subset of the pack's conditions."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from click.testing import CliRunner

from lastmile.cli import cli
from lastmile.testing import write_pack

from helpers import demo_rows

RECOGNIZER = 'print("her blood pressure was one hundred")\n'


@pytest.fixture(scope="module")
def stereo_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 demo utterances (3 speakers in each of 2 groups) as 44.1 kHz stereo WAV files, a
    pack with a hum and a pink condition, and a command recognizer (a real program)."""
    folder = tmp_path_factory.mktemp("stereo")
    rows = []
    for row in demo_rows(groups=("us", "caribbean"), per_group=3):
        mono, rate = sf.read(row["audio"], dtype="float32")
        wide = soxr.resample(mono, rate, 44100)
        name = Path(row["audio"]).stem + ".wav"
        sf.write(folder / name, np.stack([wide, 0.8 * wide], axis=1), 44100)
        rows.append({**row, "audio": name})
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "asr.py").write_text(RECOGNIZER)
    return write_pack(
        folder / "pack.yaml",
        corpus={"manifest": "manifest.csv"},
        asr=f"command:{sys.executable} {folder / 'asr.py'} {{wav}}",
        fairness={"n_bootstrap": 200, "n_permutations": 199, "min_speakers": 3},
        conditions=[
            {"id": "hum", "noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 10},
            {"id": "pink", "noise": {"type": "pink"}, "snr_db": 5},
        ],
    )


def _invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


SUMMARY = "warning: 6 files downmixed from stereo, 6 resampled from 44.1 kHz to 16 kHz; " \
    "--verbose lists them"  # fmt: skip


def test_validate_says_conversions_once_per_kind(stereo_pack: Path):
    result = _invoke("validate", stereo_pack)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines == [SUMMARY]
    verbose = _invoke("validate", stereo_pack, "--verbose").stderr.splitlines()
    assert len(verbose) == 12  # each file: one downmix, one resample line
    assert sum("downmixed to mono" in line for line in verbose) == 6
    assert sum("resampled to 16000 Hz" in line for line in verbose) == 6


@pytest.mark.timeout(120)
def test_run_says_conversions_once_per_kind_and_verbose_lists_each_file_once(
    stereo_pack: Path, tmp_path: Path
):
    result = _invoke("run", stereo_pack, "--out", tmp_path / "a", "-j", "1", "-q", "--no-cache")
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if "warning" in line] == [SUMMARY]
    # the conversions come before the results
    assert result.output.index("6 files downmixed") < result.output.index("Condition / group")
    result = _invoke(
        "run", stereo_pack, "--out", tmp_path / "b", "-j", "1", "-q", "--no-cache", "--verbose"
    )
    lines = [line for line in result.stderr.splitlines() if "warning" in line]
    downmixed = [line for line in lines if "downmixed 2 channels to mono" in line]
    resampled = [line for line in lines if "resampled 44100 Hz to 16000 Hz" in line]
    assert len(downmixed) == len(set(downmixed)) == 6  # once per file, not per item
    assert len(resampled) == len(set(resampled)) == 6
    assert len(lines) == 12


@pytest.mark.timeout(120)
def test_limit_warns_when_it_thins_a_group_below_min_speakers(stereo_pack, tmp_path):
    result = _invoke("run", stereo_pack, "--out", tmp_path / "r", "--limit", "4", "-q", "-j", "1")
    assert result.exit_code == 0, result.output
    assert (
        "warning: --limit 4 leaves caribbean and us with 2 speakers each, fewer than "
        "min_speakers 3: those groups' verdicts can only be insufficient-data; --limit 6 or "
        "more keeps 3 per group"
    ) in result.stderr
    result = _invoke("run", stereo_pack, "--out", tmp_path / "s", "--limit", "6", "-q", "-j", "1")
    assert "--limit" not in result.stderr


@pytest.mark.timeout(120)
def test_conditions_runs_a_subset(stereo_pack: Path, tmp_path: Path):
    run_dir = tmp_path / "sub"
    result = _invoke("run", stereo_pack, "--out", run_dir, "--conditions", "pink", "-q")
    assert result.exit_code == 0, result.output
    with (run_dir / "items.csv").open(newline="", encoding="utf-8") as fh:
        ids = sorted({row["condition_id"] for row in csv.DictReader(fh)})
    assert ids == ["clean", "pink"]  # clean always
    assert re.search(r"^pink  ", result.output, re.M) and not re.search(
        r"^hum  ", result.output, re.M
    )
    # repeatable and comma-separated; a different subset is another run
    again = _invoke("run", stereo_pack, "--resume", run_dir, "--conditions", "pink,hum", "-q")
    assert again.exit_code == 2
    assert "conditions changed: (none) → hum" in again.output
    both = _invoke(
        "run", stereo_pack, "--out", tmp_path / "both", "--conditions", "pink",
        "--conditions", "hum,clean", "-q",
    )  # fmt: skip
    assert both.exit_code == 0, both.output
    with (tmp_path / "both" / "items.csv").open(newline="", encoding="utf-8") as fh:
        assert sorted({row["condition_id"] for row in csv.DictReader(fh)}) == [
            "clean", "hum", "pink"
        ]  # fmt: skip


def test_an_unknown_condition_is_bad_input_naming_the_known_ids(stereo_pack, tmp_path):
    result = _invoke("run", stereo_pack, "--out", tmp_path / "x", "--conditions", "hum,nope")
    assert result.exit_code == 2
    assert "--conditions: no condition 'nope'; the pack's conditions are: clean, hum, pink" in (
        result.output
    )
    assert not (tmp_path / "x" / "items.csv").exists()


def test_a_dry_run_counts_only_the_chosen_conditions(stereo_pack: Path):
    import json

    every = _invoke("run", stereo_pack, "--dry-run", "--json")
    subset = _invoke("run", stereo_pack, "--dry-run", "--json", "--conditions", "pink")
    assert every.exit_code == subset.exit_code == 0, subset.output
    assert json.loads(every.stdout)["items"] == 6 * 3
    assert json.loads(subset.stdout)["items"] == 6 * 2  # clean and pink
