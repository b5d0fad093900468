"""`lastmile hunt` through the real run engine, with a real (cheap) recognizer program."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

# Imported before any pytester session (pytester forgets modules imported during a test, and
# numpy's FFT extension cannot be loaded twice in one process).
import lastmile.analysis
import lastmile.report
import lastmile.run  # noqa: F401
from lastmile.cli import cli
from lastmile.hunt.engine import HuntOptions, hunt_pack
from lastmile.scenario.pack import load_pack
from lastmile.testing import write_corpus, write_pack

from .conftest import tone_rows

pytest_plugins = ["pytester"]

BUDGET = "90"


def _hunt(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["hunt", *args], catch_exceptions=False)
    return result.exit_code, result.output


def _speakers(items_csv: Path) -> set[str]:
    with items_csv.open(newline="", encoding="utf-8") as fh:
        return {row["speaker"] for row in csv.DictReader(fh)}


@pytest.mark.timeout(300)
def test_hunt_finds_confirms_and_writes_its_folder(tone_pack: Path, tmp_path: Path):
    out = tmp_path / "h1"
    code, output = _hunt(str(tone_pack), "--budget", BUDGET, "--out", str(out), "-q")
    assert code == 1, output  # a condition confirmed uneven
    doc = json.loads((out / "hunt.json").read_text())
    assert doc["complete"] and doc["decodes"] <= int(BUDGET)
    confirmed = [f for f in doc["findings"] if f["confirmed"]]
    assert confirmed and confirmed[0]["flag"] == "uneven"
    assert confirmed[0]["params"]["noise"] in ("white", "pink")  # broadband, not hum
    assert confirmed[0]["worst_group"] in ("low", "mid") and confirmed[0]["best_group"] == "high"
    assert confirmed[0]["disparity_pts"]["value"] > 5
    # every stage is a real run: the search stages decoded discovery speakers only
    split = doc["split"]
    disc = {s for v in split["discovery"].values() for s in v}
    conf = {s for v in split["confirmation"].values() for s in v}
    assert disc and conf and not disc & conf
    stages = sorted((out / "stages").iterdir())
    assert {s.name for s in stages} >= {"search-001", "search-002", "confirm"}
    for stage in stages:
        seen = _speakers(stage / "run" / "items.csv")
        assert seen <= (conf if stage.name == "confirm" else disc), stage.name
    # the decodes the hunt counts are the distinct items (utterance x condition) it ran: a
    # clean item met again in a later stage is not decoded again (the transcript cache)
    distinct = set()
    for stage in stages:
        with (stage / "run" / "items.csv").open(newline="", encoding="utf-8") as fh:
            distinct |= {(r["condition_id"], r["utterance_id"]) for r in csv.DictReader(fh)}
    assert len(distinct) == doc["decodes"]
    assert sum(s["decoded"] for s in doc["stages"]) <= doc["decodes"]
    trace = json.loads((out / "trace.json").read_text())["trace"]
    assert len(trace) == doc["evaluations"] > 0
    html = (out / "report.html").read_text()
    assert "confirmed uneven" in html and html.count("data:image/png;base64,") >= 2
    regression = out / "tones.hunt.yaml"
    loaded = load_pack(regression)
    assert [c.id for c in loaded.conditions[1:]] == [f["id"] for f in confirmed]
    assert loaded.manifest_path == load_pack(tone_pack).manifest_path


@pytest.mark.timeout(300)
def test_same_seed_same_hunt_and_the_cache_serves_the_second(tone_pack: Path, tmp_path: Path):
    cache = tmp_path / "cache.sqlite"
    outs = []
    for name in ("a", "b"):
        outcome = hunt_pack(
            tone_pack, HuntOptions(budget=int(BUDGET), out=tmp_path / name, cache_path=cache)
        )
        outs.append(outcome)
    one, two = (json.loads((o.hunt_dir / "hunt.json").read_text()) for o in outs)
    assert outs[0].result.trace == outs[1].result.trace
    assert one["findings"] == two["findings"]
    assert sum(s["decoded"] for s in one["stages"]) == one["decodes"]  # a new cache
    assert sum(s["decoded"] for s in two["stages"]) == 0  # every item from the cache


@pytest.mark.timeout(300)
def test_resume_finishes_a_killed_hunt_and_refuses_another(tone_pack: Path, tmp_path: Path):
    out = tmp_path / "h"
    first = hunt_pack(tone_pack, HuntOptions(budget=int(BUDGET), out=out, use_cache=False))
    reference = json.loads((out / "hunt.json").read_text())
    # as if killed during the confirmation: its stage and the final files are gone
    shutil.rmtree(out / "stages" / "confirm")
    for name in ("trace.json", "report.html", "tones.hunt.yaml"):
        (out / name).unlink(missing_ok=True)
    code, output = _hunt(str(tone_pack), "--budget", BUDGET, "--resume", str(out), "--no-cache")
    assert code == 1, output
    resumed = json.loads((out / "hunt.json").read_text())
    assert resumed["findings"] == reference["findings"]
    assert json.loads((out / "trace.json").read_text())["trace"] == first.result.trace
    by_stage = {s["stage"]: s for s in resumed["stages"]}
    assert by_stage["confirm"]["decoded"] == by_stage["confirm"]["items"]  # decoded again
    assert all(s["decoded"] == 0 for k, s in by_stage.items() if k != "confirm")  # kept
    assert (out / "tones.hunt.yaml").is_file()
    # another budget is another hunt
    code, output = _hunt(str(tone_pack), "--budget", "95", "--resume", str(out))
    assert code == 2 and "budget" in output and "holds another hunt" in output
    # a new hunt into a used folder is refused
    code, output = _hunt(str(tone_pack), "--budget", BUDGET, "--out", str(out))
    assert code == 2 and "already holds a hunt" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "40"], "--budget 40 is too small for one round"),
        (["--budget", BUDGET, "--target", "nobody"], "--target 'nobody' is not a group"),
        (["--budget", "0"], "Invalid value for '--budget'"),
    ],
)
def test_bad_input_exits_2_before_anything_is_decoded(
    tone_pack: Path, tmp_path: Path, args: list[str], message: str
):
    out = tmp_path / "never"
    code, output = _hunt(str(tone_pack), *args, "--out", str(out))
    assert code == 2
    assert message in output
    assert not out.exists()


def test_a_group_too_small_to_split_exits_2(tmp_path: Path, recognizer: str):
    rows = [r for r in tone_rows(tmp_path / "c") if not r["speaker"].endswith("s3")]
    write_corpus(tmp_path / "c", rows)  # 3 speakers per group: none left to search on
    pack = write_pack(
        tmp_path / "small.yaml",
        corpus={"manifest": "c/manifest.csv"},
        asr=recognizer,
        conditions=[{"noise": "pink", "snr_db": 0}],
    )
    code, output = _hunt(str(pack), "--budget", "500", "--out", str(tmp_path / "x"))
    assert code == 2
    assert "group 'high' has 3 speaker(s), too few to split" in output


@pytest.mark.timeout(400)
def test_the_regression_pack_runs_under_the_pytest_plugin(
    tone_pack: Path, tmp_path: Path, pytester: pytest.Pytester
):
    out = tmp_path / "h"
    outcome = hunt_pack(tone_pack, HuntOptions(budget=int(BUDGET), out=out))
    assert outcome.regression_pack is not None
    ids = [c["id"] for c in yaml.safe_load(outcome.regression_pack.read_text())["conditions"]]
    args = ("--lastmile", str(outcome.regression_pack), "-p", "no:cacheprovider")
    # the first session writes the baseline (each item fails, as the plugin does without one)
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=len(ids) + 2)  # clean, each condition, fairness
    result.stdout.fnmatch_lines([f"*condition?{ids[0]}?*", f"*flagged uneven: {ids[0]}*"])
    baseline = outcome.regression_pack.with_name("tones.hunt.baseline.json")
    assert baseline.is_file()
    # the next matches it and still names the confirmed condition uneven
    again = pytester.runpytest(*args)
    again.assert_outcomes(passed=len(ids) + 2)
    again.stdout.fnmatch_lines([f"*baseline matched*flagged uneven: {ids[0]}*"])
