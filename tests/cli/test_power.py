"""`lastmile power`: speakers per group needed, from a pilot run folder or assumed spread."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_table
from lastmile.cli import cli

COLUMNS = [
    "condition_id", "utterance_id", "speaker", "group", "n_ref", "substitutions",
    "deletions", "insertions", "error",
]  # fmt: skip


def write_pilot(folder: Path, *, n_speakers: int, seed: int = 0) -> Path:
    """A run folder (run.json + items.csv) whose items are synthetic speakers' sums."""
    run = SyntheticRun(
        {
            g: GroupSpec(n_speakers, [w, w + 0.08], 0.6)
            for g, w in zip("abc", (0.08, 0.12, 0.2), strict=True)
        },
        n_utterances=10,
    )
    table = synthetic_table(run, rng=np.random.default_rng(seed))
    folder.mkdir(parents=True)
    meta = {
        "schema_version": 1,
        "pack": {"name": "pilot", "seed": 1},
        "backend": {"name": "fake"},
        "clean_condition_id": "clean",
        "conditions": [{"id": c} for c in table.conditions],
        "fairness": {"threshold_pts": 5},
    }
    (folder / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    with (folder / "items.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for s, speaker in enumerate(table.speakers):
            for c, cond in enumerate(table.conditions):
                writer.writerow(
                    {
                        "condition_id": cond,
                        "utterance_id": f"{speaker}-all",
                        "speaker": speaker,
                        "group": table.groups[table.speaker_group[s]],
                        "n_ref": int(table.ref_words[s, c]),
                        "substitutions": int(table.errors[s, c]),
                        "deletions": 0,
                        "insertions": 0,
                        "error": "",
                    }
                )
    return folder


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["power", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_assumed_spread_matches_normal_theory():
    code, out = invoke("--assume-sd-pts", "8", "--gap", "10", "--groups", "2", "--conditions", "1",
                       "--json")  # fmt: skip
    assert code == 0
    (row,) = json.loads(out)["rows"]
    # Two groups, one test at α = 0.05: n = (z_.975 + z_.8)² · 2 · 8² / 10² ≈ 10.0; the grid
    # rounds up to a tried size and the simulation (400 runs) adds Monte-Carlo error.
    expected = (norm.ppf(0.975) + norm.ppf(0.8)) ** 2 * 2 * 64 / 100
    assert math.isclose(expected, 10.05, abs_tol=0.05)
    assert 8 <= row["speakers_per_group"] <= 15


def test_more_conditions_and_smaller_gaps_need_more_speakers():
    needs = {}
    for gap, conditions in (("10", "1"), ("10", "20"), ("5", "20")):
        _, out = invoke("--assume-sd-pts", "8", "--gap", gap, "--conditions", conditions, "--json")
        needs[(gap, conditions)] = json.loads(out)["rows"][0]["speakers_per_group"]
    assert needs[("10", "1")] < needs[("10", "20")] < needs[("5", "20")]


@pytest.mark.timeout(60)
def test_pilot_run_folder_gives_a_row_per_degraded_condition(tmp_path):
    folder = write_pilot(tmp_path / "pilot", n_speakers=8)
    code, out = invoke(str(folder), "--json")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert row["condition"] == "c01" and row["pilot_speakers"] == [8, 8, 8]
    assert row["gap_pts"] == 5  # the pack's threshold
    assert isinstance(row["speakers_per_group"], int) and row["speakers_per_group"] > 8
    code, text = invoke(str(folder), "--goal", "even")
    assert code == 0 and "speakers per group to show even within ± 5 points" in text


def test_usage_errors_exit_2(tmp_path):
    code, out = invoke()
    assert code == 2 and "give a pilot RUN_DIR or --assume-sd-pts" in out
    code, out = invoke(str(tmp_path / "missing"))
    assert code == 2 and "not a folder" in out
