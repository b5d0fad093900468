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

from lastmile.analysis.synthetic import (
    GroupSpec,
    SyntheticRun,
    synthetic_items,
    synthetic_table,
)
from lastmile.cli import cli

COLUMNS = [
    "condition_id", "utterance_id", "speaker", "group", "n_ref", "substitutions",
    "deletions", "insertions", "error",
]  # fmt: skip


def write_pilot(
    folder: Path,
    *,
    n_speakers: int,
    seed: int = 0,
    utterances: int = 0,
    sizes: dict[str, int] | None = None,
    failed: bool = False,
    degraded: int = 1,
    fail_cell: tuple[str, str] | None = None,
    fairness: dict[str, object] | None = None,
) -> Path:
    """A run folder (run.json + items.csv) of a synthetic pilot.

    ``utterances=0``: one item per speaker and condition holding the speaker's sums (no
    utterance structure); otherwise that many utterances per speaker, item by item, the same
    utterances under every condition. ``sizes`` overrides speakers per group; ``failed``
    marks every item failed, ``fail_cell`` (group, condition) the items of one cell.
    ``degraded``: degraded conditions c01, c02, … (each 8 points worse than the last);
    ``fairness``: the pack's fairness settings (default ``threshold_pts: 5``).
    """
    run = SyntheticRun(
        {
            g: GroupSpec(
                (sizes or {}).get(g, n_speakers), [w + 0.08 * k for k in range(degraded + 1)], 0.6
            )
            for g, w in zip("abc", (0.08, 0.12, 0.2), strict=True)
        },
        n_utterances=utterances or 10,
    )
    rng = np.random.default_rng(seed)
    if utterances:
        items = synthetic_items(run, rng=rng)
    else:
        table = synthetic_table(run, rng=rng)
        items = [
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
            for s, speaker in enumerate(table.speakers)
            for c, cond in enumerate(table.conditions)
        ]
    folder.mkdir(parents=True)
    meta = {
        "schema_version": 1,
        "pack": {"name": "pilot", "seed": 1},
        "backend": {"name": "fake"},
        "clean_condition_id": "clean",
        "conditions": [{"id": c} for c in run.conditions()],
        "fairness": fairness or {"threshold_pts": 5},
    }
    (folder / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    with (folder / "items.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for item in items:
            cell = (item["group"], item["condition_id"])
            bad = failed or cell == fail_cell
            writer.writerow(dict(item, error="decoder crashed" if bad else ""))
    return folder


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["power", *args], catch_exceptions=False)
    return result.exit_code, result.output


def invoke_apart(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr apart (``--json`` output stays parseable on exit 2)."""
    result = CliRunner().invoke(cli, ["power", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


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


@pytest.mark.timeout(60)
def test_pilot_with_utterances_gives_a_table_of_utterances_per_speaker(tmp_path):
    folder = write_pilot(tmp_path / "pilot", n_speakers=20, utterances=6)
    code, out = invoke(str(folder), "--json")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert row["pilot_utterances_per_speaker"] == 6
    grid = [c["utterances_per_speaker"] for c in row["utterances"]]
    assert grid == [3, 6, 12, 24]
    speakers = [c["speakers_per_group"] for c in row["utterances"]]
    assert all(isinstance(n, int) for n in speakers)
    assert speakers == sorted(speakers, reverse=True) and speakers[0] > speakers[-1]
    assert row["speakers_per_group"] == speakers[1]  # the pilot's own 6 utterances
    assert row["utterances"][2]["utterances_per_group"] == speakers[2] * 12
    floor = row["unlimited_utterances_speakers_per_group"]
    assert isinstance(floor, int) and floor <= speakers[-1]
    assert row["gap_group"] in ("a", "b", "c") and row["variance_unit"] == "WER points"
    for part in row["variance"]:
        assert part["speakers"] == 20 and part["utterances_per_speaker"] == 6
        assert 0 < part["within_sd"] <= part["total_sd"] or part["between_truncated"]
        assert part["between_sd"] ** 2 == pytest.approx(
            max(part["total_sd"] ** 2 - part["within_sd"] ** 2, 0.0), abs=1e-2
        )
    assert str(floor) in row["limit"] and "utterances per speaker" in row["limit"]
    assert "nan" not in out.lower()
    code, text = invoke(str(folder))
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith(f"c01: {speakers[1]} speakers per group to detect a gap of 5 points")
    assert lines[1].split() == ["utterances", "per", "speaker", "3", "6*", "12", "24", "unlimited"]
    # groups b and c have τ² truncated at 0 in this pilot: with unlimited utterances their
    # speakers would not differ at all, so the unlimited column is a lower bound only
    assert row["unlimited_is_lower_bound"] is True
    assert lines[2].split()[3:] == [*map(str, speakers), f"≥{floor}"]
    assert lines[4].strip() == row["limit"]


@pytest.mark.timeout(60)
def test_utterances_option_chooses_the_grid(tmp_path):
    folder = write_pilot(tmp_path / "pilot", n_speakers=12, utterances=4)
    code, out = invoke(str(folder), "--utterances", "2,8", "--utterances", "16", "--json")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert [c["utterances_per_speaker"] for c in row["utterances"]] == [2, 4, 8, 16]
    code, out = invoke(str(folder), "--utterances", "0,x")
    assert code == 2 and "--utterances" in out and "got '0'" in out


def test_assumed_within_spread_plans_utterances():
    def table(*args: str) -> dict[int, int]:
        code, out = invoke("--assume-sd-pts", "8", "--conditions", "1", "--json", *args)
        assert code == 0
        (row,) = json.loads(out)["rows"]
        return {c["utterances_per_speaker"]: c["speakers_per_group"] for c in row["utterances"]}

    noise = table("--assume-within-sd-pts", "8")
    speakers = table("--assume-within-sd-pts", "0")
    half = table("--assume-within-sd-pts", "5.66", "--assume-utterances", "20")
    assert list(noise) == [5, 10, 20, 40] and list(half) == [10, 20, 40, 80]
    assert noise[10] == speakers[10]  # the same spread at the assumed 10 utterances
    assert noise[40] <= 0.4 * noise[10]  # all utterance noise: 4x utterances, ~1/4 speakers
    assert speakers[5] == speakers[10] == speakers[40]  # none: utterances do not help
    assert half[80] < half[20] < half[10]  # half the variance from utterances, at 20 each
    assert table() == {10: table()[10]}  # no within part given: the assumed 10 only


def test_assumed_mode_usage_errors_exit_2(tmp_path):
    code, out = invoke("--assume-sd-pts", "5", "--assume-within-sd-pts", "6")
    assert code == 2 and "exceeds --assume-sd-pts 5" in out
    code, out = invoke("--assume-sd-pts", "5", "--utterances", "10,20")
    assert code == 2 and "needs --assume-within-sd-pts" in out
    folder = write_pilot(tmp_path / "pilot", n_speakers=4, utterances=2)
    code, out = invoke(str(folder), "--assume-within-sd-pts", "3")
    assert code == 2 and "go with --assume-sd-pts" in out


def test_pilots_that_cannot_be_planned_say_why(tmp_path):
    # Adapted (acceptance pass of issue 12): nothing plannable exited 0 (now 2, with a line
    # saying why), and the reasons counted speakers scored in clean *or* the condition.
    one = write_pilot(tmp_path / "one", n_speakers=6, utterances=3, sizes={"b": 1})
    code, out, err = invoke_apart(str(one))
    assert code == 2
    assert out.strip() == (
        "c01: cannot plan: group 'b' has 1 speaker with scored items in both the clean "
        "condition and c01 (a group's spread needs 2 or more speakers with a defined Δ; see "
        "the errors in items.csv, or add speakers)"
    )
    assert "nothing could be planned: none of the 1 degraded condition of" in err
    failed = write_pilot(tmp_path / "failed", n_speakers=6, utterances=3, failed=True)
    code, out, err = invoke_apart(str(failed), "--json")
    assert code == 2 and "nan" not in out.lower()
    (row,) = json.loads(out)["rows"]
    assert row["speakers_per_group"] is None and row["pilot_speakers"] == [0, 0, 0]
    assert row["plannable"] is False
    assert "all 18 items of group 'a' in c01 failed" in row["problem"]
    assert "each condition's reason, and its fix, is in its row (problem)" in err
    single = write_pilot(tmp_path / "single", n_speakers=8)  # one item per speaker
    code, out = invoke(str(single), "--json")
    (row,) = json.loads(out)["rows"]
    assert code == 0 and isinstance(row["speakers_per_group"], int)
    assert [c["utterances_per_speaker"] for c in row["utterances"]] == [1]
    assert "no speaker has 2 or more scored utterances" in row["limit"]


@pytest.mark.timeout(60)
def test_some_conditions_planned_exit_0_and_give_the_others_reasons(tmp_path):
    # Before: the reason counted speakers scored in clean *or* the condition ("group 'b' has
    # 8 speakers with scored items") though all of b's items in c02 failed.
    folder = write_pilot(
        tmp_path / "pilot", n_speakers=8, utterances=4, degraded=2, fail_cell=("b", "c02")
    )
    code, out, err = invoke_apart(str(folder))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("c01: ") and "speakers per group to detect a gap of 5" in lines[0]
    assert lines[-1] == (
        "c02: cannot plan: all 32 items of group 'b' in c02 failed, so its Δ in c02 is "
        "undefined (see the errors in items.csv, then resume the run)"
    )
    code, out, err = invoke_apart(str(folder), "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert [r["plannable"] for r in rows] == [True, False]
    assert isinstance(rows[0]["speakers_per_group"], int)


@pytest.mark.timeout(60)
def test_gap_is_in_the_unit_of_the_pilots_metric(tmp_path):
    # A relative pack: --gap 0.5 is a relative gap of 0.5 (as threshold_rel: 0.5), not 0.5
    # points (read as 0.005 before, which answered ">500 speakers").
    folder = write_pilot(
        tmp_path / "pilot", n_speakers=20, utterances=6,
        fairness={"metric": "relative", "threshold_rel": 0.5},
    )  # fmt: skip
    rows = {}
    for args in ((), ("--gap", "0.5"), ("--gap", "0.25")):
        code, out = invoke(str(folder), "--json", *args)
        assert code == 0
        (rows[args],) = json.loads(out)["rows"]
    same, given, smaller = rows[()], rows[("--gap", "0.5")], rows[("--gap", "0.25")]
    assert given["unit"] == "relative" and given["gap"] == 0.5 and given["gap_pts"] is None
    assert isinstance(given["speakers_per_group"], int)
    assert given["speakers_per_group"] == same["speakers_per_group"]  # the pack's 0.5
    assert smaller["gap"] == 0.25
    assert (smaller["speakers_per_group"] or 10**9) > given["speakers_per_group"]
    code, text = invoke(str(folder), "--gap", "0.5")
    assert code == 0 and "to detect a gap of 0.5 relative change (50 points on the" in text
    code, text = invoke(str(folder), "--goal", "even", "--margin", "0.5")
    assert code == 0 and "to show even within ± 0.5 relative change" in text
    code, text = invoke("--help")
    assert "relative gap under the pilot's metric relative (0.5 = 50 %" in " ".join(text.split())
    # a percentage typed as the fraction is refused, as a pack's threshold_rel is
    code, text = invoke(str(folder), "--gap", "50")
    assert code == 2 and "would be 5000 %" in text and "did you mean 0.5?" in text


def test_options_that_do_not_apply_are_refused_or_honoured(tmp_path):
    folder = write_pilot(tmp_path / "pilot", n_speakers=6)
    code, out = invoke(str(folder), "--groups", "4")  # exited 0, --groups ignored
    assert code == 2 and "--groups goes with --assume-sd-pts; a pilot RUN_DIR plans" in out
    code, out = invoke(str(folder), "--goal", "even", "--gap", "10")  # exited 0, ignored
    assert code == 2 and "--gap is the gap --goal detect looks for" in out
    assert "give --margin" in out
    code, out = invoke("--assume-sd-pts", "8", "--margin", "10")
    assert code == 2 and "--margin goes with --goal even" in out
    # --margin (goal even) is honoured: a wider margin needs fewer speakers.
    needs = {}
    for margin in ("5", "10"):
        code, out = invoke("--assume-sd-pts", "8", "--goal", "even", "--margin", margin,
                           "--conditions", "1", "--json")  # fmt: skip
        assert code == 0
        (row,) = json.loads(out)["rows"]
        assert row["margin"] == float(margin) and row["gap"] is None
        needs[margin] = row["speakers_per_group"]
    assert needs["10"] < needs["5"]
    code, out = invoke("--assume-sd-pts", "8", "--goal", "even", "--margin", "10")
    assert code == 0 and "to show even within ± 10 points" in out


def test_default_grid_reaches_the_utterances_where_the_plan_is_feasible():
    # Utterance sampling is nearly all of the spread at 2 utterances per speaker: at 1-8 no
    # design of 500 speakers or fewer reaches 80 %; unlimited utterances need few. Before,
    # the table stopped at 8 (">500" everywhere) next to a small "unlimited".
    args = ("--assume-sd-pts", "60", "--assume-within-sd-pts", "59.5", "--assume-utterances",
            "2", "--gap", "5", "--conditions", "1")  # fmt: skip
    code, out = invoke(*args, "--json")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    at = {c["utterances_per_speaker"]: c["speakers_per_group"] for c in row["utterances"]}
    assert all(at[m] is None for m in (1, 2, 4, 8))
    reach = row["feasible_from_utterances_per_speaker"]
    assert isinstance(reach, int) and reach > 8 and list(at) == [1, 2, 4, 8, reach]
    assert isinstance(at[reach], int) and at[reach] <= 500
    assert isinstance(row["unlimited_utterances_speakers_per_group"], int)
    code, text = invoke(*args)
    assert code == 0
    lines = text.splitlines()
    assert lines[1].split()[-2:] == [str(reach), "unlimited"]
    assert lines[4].startswith(f"  the plan becomes feasible from {reach} utterances per speaker")


@pytest.mark.timeout(60)
def test_the_unlimited_column_is_a_plain_number_when_every_groups_spread_is_estimated(tmp_path):
    folder = write_pilot(tmp_path / "pilot", n_speakers=20, utterances=6, seed=5)
    code, out = invoke(str(folder), "--json")
    assert code == 0
    (row,) = json.loads(out)["rows"]
    assert not any(part["between_truncated"] for part in row["variance"])
    floor = row["unlimited_utterances_speakers_per_group"]
    assert isinstance(floor, int) and row["unlimited_is_lower_bound"] is False
    assert f"down to {floor} per group at the least" in row["limit"]
    code, text = invoke(str(folder))
    assert text.splitlines()[2].split()[-1] == str(floor)
