"""The pytest plugin in real pytest sessions (pytester) on real packs, real ASR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import demo_rows, demo_subset_pack

pytest_plugins = ["pytester"]


@pytest.fixture
def pack(pytester: pytest.Pytester) -> Path:
    rows = demo_rows(groups=("us", "caribbean"), per_group=1)
    return demo_subset_pack(
        pytester.path / "scenarios",
        rows,
        name="mini",
        seed=3,
        fairness={"n_bootstrap": 200, "n_permutations": 199, "min_speakers": 2},
        conditions=[{"noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 0}],
    )


def test_packs_collect_as_condition_and_fairness_items(pytester: pytest.Pytester, pack: Path):
    result = pytester.runpytest("--lastmile", "--collect-only", "-q", str(pack))
    result.stdout.fnmatch_lines(
        ["*pack.yaml::condition?clean?", "*pack.yaml::condition?hum60_snr0?", "*::fairness"]
    )
    # without --lastmile (and no ini) packs are not collected
    result = pytester.runpytest("--collect-only", "-q", str(pack))
    assert "condition[" not in result.stdout.str()


def test_baseline_lifecycle(pytester: pytest.Pytester, pack: Path):
    baseline = pack.with_name("pack.baseline.json")
    obtained = pack.with_name("pack.obtained.json")
    # 1. no baseline: it is written and every item fails saying so
    result = pytester.runpytest("--lastmile", str(pack), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*no baseline for pack.yaml: wrote pack.baseline.json*"])
    result.stdout.fnmatch_lines(["*lastmile*", "*pack.yaml: baseline written*"])
    assert baseline.is_file()
    # 2. same results (from the transcript cache): passes
    result = pytester.runpytest("--lastmile", str(pack))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*pack.yaml: baseline matched*"])
    # 3. a baseline with a much lower WER: the condition fails naming group, before, after
    data = json.loads(baseline.read_text())
    for group in data["cells"]["hum60_snr0"].values():
        group["wer"] = -50.0
    baseline.write_text(json.dumps(data))
    result = pytester.runpytest("--lastmile", str(pack))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*hum60_snr0 / caribbean: WER rose from -50.0% to *"])
    assert obtained.is_file()
    # 4. accept the change
    result = pytester.runpytest("--lastmile", str(pack), "--lastmile-update-baseline")
    result.assert_outcomes(passed=3)
    assert json.loads(baseline.read_text())["cells"]["hum60_snr0"]["us"]["wer"] >= 0


def test_ini_options_and_fixture(pytester: pytest.Pytester, pack: Path):
    pytester.makeini(
        f"""
        [pytest]
        lastmile_packs = scenarios/*.yaml
        lastmile_limit = 1
        lastmile_workers = 1
        lastmile_out = {pytester.path / "runs"}
        """
    )
    pytester.makepyfile(
        test_prog=f"""
        def test_programmatic(lastmile_run):
            result = lastmile_run({str(pack)!r}, limit=2)
            assert result.n_items == 4
            assert result.summary["analysis"]["conditions"][0]["id"] == "clean"
        """
    )
    result = pytester.runpytest("scenarios/pack.yaml", "test_prog.py")
    # the pack items fail (no baseline yet), the fixture test passes
    result.assert_outcomes(passed=1, failed=3)
    assert (pytester.path / "runs" / "pack").is_dir()
    with (pytester.path / "runs" / "pack" / "items.csv").open() as fh:
        assert len(fh.readlines()) == 1 + 2  # header + 1 utterance × 2 conditions
    result = pytester.runpytest("-m", "lastmile", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*condition?hum60_snr0?*"])
