"""The pytest plugin in real pytest sessions (pytester) on real packs, real ASR."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

# Imported before any pytester session: pytester forgets the modules imported during a test,
# and numpy's FFT extension (which the run imports) cannot be loaded twice in one process.
import lastmile.analysis
import lastmile.report
import lastmile.run  # noqa: F401

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


# --- a recognizer that fails never yields a passing baseline ---------------------------

RECOGNIZER = """
import sys
import wave

with wave.open(sys.argv[1]) as clip:
    duration_s = clip.getnframes() / clip.getframerate()
if abs(duration_s - float(sys.argv[2])) < 0.02:
    sys.exit("cannot decode this clip")
print("her blood pressure was one hundred")
"""


@pytest.fixture
def six_utterances(pytester: pytest.Pytester) -> Path:
    """3 speakers per group, one utterance each: 12 items over clean and hum."""
    rows = demo_rows(groups=("us", "caribbean"), per_group=3)
    return demo_subset_pack(
        pytester.path / "scenarios",
        rows,
        name="six",
        seed=3,
        fairness={"n_bootstrap": 200, "n_permutations": 199, "min_speakers": 2},
        conditions=[{"noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 10}],
    )


def _recognizer(pytester: pytest.Pytester, *, fail_duration_s: float) -> str:
    """A command backend (a real program) that transcribes every clip as one fixed sentence
    and fails on clips of the given duration (0: fails on none)."""
    script = pytester.path / "asr.py"
    script.write_text(RECOGNIZER)
    return f"command:{sys.executable} {script} {{wav}} {fail_duration_s}"


@pytest.mark.timeout(240)
def test_a_dead_recognizer_writes_no_baseline(pytester: pytest.Pytester, six_utterances: Path):
    baseline = six_utterances.with_name("pack.baseline.json")
    dead = "command:/nonexistent/asr {wav}"
    for extra in ([], ["--lastmile-update-baseline"]):
        result = pytester.runpytest(
            "--lastmile", str(six_utterances), "--lastmile-asr", dead, *extra
        )
        result.assert_outcomes(failed=3)
        assert not baseline.exists()
        assert "passed" not in result.stdout.str().splitlines()[-1]


@pytest.mark.timeout(240)
def test_failed_cells_are_never_written_accepted_or_compared(
    pytester: pytest.Pytester, six_utterances: Path
):
    baseline = six_utterances.with_name("pack.baseline.json")
    # us-m4-04 (2.54 s) fails in both conditions: 2 of 12 items, one in each us cell (under
    # the 20% of failed items that fails the run itself)
    flaky = _recognizer(pytester, fail_duration_s=2.54)
    for extra in ([], ["--lastmile-update-baseline"]):
        result = pytester.runpytest(
            "--lastmile", str(six_utterances), "--lastmile-asr", flaky, *extra
        )
        result.assert_outcomes(failed=3)
        verb = "update" if extra else "write"
        result.stdout.fnmatch_lines(
            [
                f"*pack.yaml: refusing to {verb} pack.baseline.json: this run has 2 cell(s) "
                "with failed or no scored items:",
                "*clean / us: 1 of 3 items failed",
                "*hum60_snr10 / us: 1 of 3 items failed",
                "*fix the recognizer*error column of*items.csv*",
            ]
        )
        assert not baseline.exists()
    # a recognizer that decodes every clip writes the baseline, then matches it
    steady = _recognizer(pytester, fail_duration_s=0)
    pytester.runpytest("--lastmile", str(six_utterances), "--lastmile-asr", steady)
    written = json.loads(baseline.read_text())
    assert written["cells"]["clean"]["us"] == {**written["cells"]["clean"]["us"], "n_failed": 0}
    result = pytester.runpytest("--lastmile", str(six_utterances), "--lastmile-asr", steady)
    result.assert_outcomes(passed=3)
    # every speaker loses exactly 0 under it: no verdict, each reason said, and that the
    # fairness test cannot fail
    result.stdout.fnmatch_lines(
        [
            "*pack.yaml: baseline matched*1 insufficient-data*",
            "  hum60_snr10: insufficient-data: *spread is 0*",
            "  pack.yaml: no condition could be judged, so its fairness test cannot fail*",
        ]
    )
    # the flaky recognizer is not compared against it either
    result = pytester.runpytest("--lastmile", str(six_utterances), "--lastmile-asr", flaky)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*refusing to compare with pack.baseline.json*"])
    assert json.loads(baseline.read_text()) == written


@pytest.mark.timeout(240)
def test_a_baseline_with_empty_cells_is_not_accepted(
    pytester: pytest.Pytester, six_utterances: Path
):
    baseline = six_utterances.with_name("pack.baseline.json")
    steady = _recognizer(pytester, fail_duration_s=0)
    pytester.runpytest("--lastmile", str(six_utterances), "--lastmile-asr", steady)
    good = json.loads(baseline.read_text())
    # as an earlier lastmile wrote it after a dead recognizer: nulls, no item counts
    nulls = json.loads(baseline.read_text())
    for groups in nulls["cells"].values():
        for cell in groups.values():
            cell.update(wer=None, ci_low=None, ci_high=None)
            del cell["n_items"], cell["n_failed"]
    baseline.write_text(json.dumps(nulls))
    result = pytester.runpytest("--lastmile", str(six_utterances), "--lastmile-asr", steady)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*pack.baseline.json: not accepted as a baseline: it has 4 cell(s) with failed or "
            "no scored items:",
            "*clean / caribbean: no WER",
            "*--lastmile-update-baseline*or delete the file*",
        ]
    )
    # accepting a fully scored run replaces it
    result = pytester.runpytest(
        "--lastmile", str(six_utterances), "--lastmile-asr", steady, "--lastmile-update-baseline"
    )
    result.assert_outcomes(passed=3)
    assert json.loads(baseline.read_text())["cells"] == good["cells"]


def test_unusable_cells_names_each_problem():
    from lastmile.pytest_plugin import unusable_cells

    cell = {"wer": 10.0, "ci_low": 5.0, "ci_high": 15.0, "n_items": 4, "n_failed": 0}
    assert unusable_cells({"cells": {"clean": {"us": cell}}}) == []
    assert unusable_cells({"cells": {}}) == ["no condition × group cell at all"]
    assert unusable_cells(
        {
            "cells": {
                "clean": {"us": {**cell, "n_failed": 1}, "uk": {**cell, "wer": None}},
                "hum": {"us": {**cell, "n_failed": 4, "wer": None}},
            }
        }
    ) == [
        "clean / us: 1 of 4 items failed",
        "clean / uk: no WER",
        "hum / us: 4 of 4 items failed, no scored item, no WER",
    ]


# --- a baseline knows what it measured ----------------------------------------------------


@pytest.mark.timeout(240)
def test_a_changed_condition_or_backend_makes_the_baseline_stale(pytester: pytest.Pytester):
    rows = demo_rows(groups=("us", "caribbean"), per_group=2)
    fields = {
        "name": "stale",
        "seed": 3,
        "fairness": {"n_bootstrap": 200, "n_permutations": 199, "min_speakers": 2},
    }
    hum = {"id": "hum", "noise": {"type": "hum", "fundamental_hz": 60}}
    pack = demo_subset_pack(
        pytester.path / "scenarios", rows, conditions=[{**hum, "snr_db": 15}], **fields
    )
    baseline = pack.with_name("pack.baseline.json")
    steady = _recognizer(pytester, fail_duration_s=0)
    pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", steady)
    written = json.loads(baseline.read_text())
    assert written["schema_version"] == 2
    assert written["conditions"]["hum"]["snr_db"] == 15
    assert written["conditions"]["hum"]["noise"]["fundamental_hz"] == 60
    assert '"command"' in written["backend"] and "asr.py" in written["backend"]
    # the same id, another SNR: stale, not a WER comparison across different conditions
    demo_subset_pack(pytester.path / "scenarios", rows, conditions=[{**hum, "snr_db": 0}], **fields)
    result = pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", steady)
    result.assert_outcomes(passed=1, failed=2)  # clean still matches; hum and fairness stale
    result.stdout.fnmatch_lines(
        [
            "*baseline stale: condition hum changed (snr_db 15 → 0); "
            "accept with --lastmile-update-baseline",
            "*pack.yaml: baseline stale;*",
        ]
    )
    assert "WER rose" not in result.stdout.str()
    # fewer utterances (--lastmile-limit): every test is stale
    result = pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", steady,
                                "--lastmile-limit", "2")  # fmt: skip
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*baseline stale: the utterances changed (another corpus, transcripts or "
         "--lastmile-limit); accept with --lastmile-update-baseline"]
    )  # fmt: skip
    # another backend (the recognizer's command line differs): every test is stale
    other = _recognizer(pytester, fail_duration_s=99)
    result = pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", other)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*baseline stale: the backend changed (command *0* → *99*); accept with --lastmile-*"]
    )
    # accepted, the new baseline records the new spec and backend, and matches
    result = pytester.runpytest(
        "--lastmile", str(pack), "--lastmile-asr", other, "--lastmile-update-baseline"
    )
    result.assert_outcomes(passed=3)
    accepted = json.loads(baseline.read_text())
    assert accepted["conditions"]["hum"]["snr_db"] == 0 and "99" in accepted["backend"]
    result = pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", other)
    result.assert_outcomes(passed=3)


def test_a_version_1_baseline_says_what_it_lacks(pytester: pytest.Pytester, pack: Path):
    baseline = pack.with_name("pack.baseline.json")
    steady = _recognizer(pytester, fail_duration_s=0)
    pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", steady)
    data = json.loads(baseline.read_text())
    for key in ("conditions", "seed", "gaps", "metric"):
        del data[key]
    baseline.write_text(json.dumps({**data, "schema_version": 1}))
    result = pytester.runpytest("--lastmile", str(pack), "--lastmile-asr", steady)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*schema_version 1 is not 2 (written by an earlier lastmile: it does not record the "
         "conditions' specs or the backend*; regenerate it with --lastmile-update-baseline"]
    )  # fmt: skip


def _baseline(**overrides):
    cell = {"wer": 20.0, "ci_low": 15.0, "ci_high": 25.0, "n_items": 12, "n_failed": 0}
    data = {
        "schema_version": 2,
        "seed": 3,
        "backend": '{"backend": "faster-whisper", "beam_size": 1}',
        "normalizer": "default",
        "utterances": "9f2c",
        "renderer": "77ab",
        "metric": "absolute",
        "conditions": {
            "clean": {"noise": None, "snr_db": None},
            "hum": {"noise": {"type": "hum", "fundamental_hz": 60.0}, "snr_db": 10.0},
        },
        "cells": {c: {"us": dict(cell), "caribbean": dict(cell)} for c in ("clean", "hum")},
        "flags": {"clean": None, "hum": "inconclusive"},
        "gaps": {"hum": {"gap": 4.1, "q": 0.3, "worst_group": "us", "best_group": "caribbean"}},
    }
    data.update(overrides)
    return data


def test_stale_specs_name_each_changed_field():
    from lastmile.pytest_plugin import compare_to_baseline

    before = _baseline()
    specs = {"clean": before["conditions"]["clean"],
             "hum": {"noise": {"type": "hum", "fundamental_hz": 50.0}, "snr_db": 0.0}}  # fmt: skip
    problems = compare_to_baseline(before, _baseline(conditions=specs), tolerance_pts=2)
    assert problems["hum"] == [
        "baseline stale: condition hum changed (noise.fundamental_hz 60 → 50, snr_db 10 → 0); "
        "accept with --lastmile-update-baseline"
    ]
    assert "clean" not in problems and problems["fairness"] == problems["hum"]
    # the backend's parameters: the field that changed, for every test of the pack
    other = '{"backend": "faster-whisper", "beam_size": 5}'
    problems = compare_to_baseline(before, _baseline(backend=other), tolerance_pts=2)
    assert set(problems) == {"clean", "hum", "fairness"}
    assert problems["clean"] == [
        "baseline stale: the backend changed (beam_size 1 → 5); "
        "accept with --lastmile-update-baseline"
    ]
    assert compare_to_baseline(before, _baseline(), tolerance_pts=2) == {}


def test_newly_flagged_names_the_gap_q_and_groups():
    from lastmile.pytest_plugin import compare_to_baseline

    gap = {"gap": 24.3, "ci_low": 6.4, "ci_high": 42.2, "q": 0.011}
    groups = {"worst_group": "caribbean", "worst_delta": 43.8, "best_group": "us",
              "best_delta": 19.5}  # fmt: skip
    after = _baseline(flags={"clean": None, "hum": "uneven"}, gaps={"hum": {**gap, **groups}})
    problems = compare_to_baseline(_baseline(), after, tolerance_pts=2)
    text = (
        "hum: newly flagged uneven (was inconclusive): caribbean loses 43.8 WER points, us "
        "19.5; gap U 24.3 (95% CI 6.4 to 42.2), q 0.011 (baseline: gap 4.1, q 0.3)"
    )
    assert problems == {"hum": [text], "fairness": [text]}


def test_sessions_share_one_run_folder_and_old_ones_are_removed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import tempfile

    from lastmile.pytest_plugin import KEEP_SESSIONS, _release_session_root, _session_root

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    roots = []
    for i in range(KEEP_SESSIONS + 2):
        config = pytester.parseconfigure()
        root = _session_root(config)
        assert _session_root(config) == root  # one folder for every pack of a session
        (root / "pack").mkdir()
        _release_session_root(config)  # the session ended
        os.utime(root, (1000.0 + i, 1000.0 + i))
        roots.append(root)
    base = roots[0].parent
    assert base.parent == tmp_path and base.name.startswith("lastmile-pytest-")
    # the newest session's own folder, and the KEEP_SESSIONS newest ended ones
    assert sorted(base.glob("session-*")) == sorted(roots[-(KEEP_SESSIONS + 1) :])


def test_a_running_sessions_folder_is_never_removed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import tempfile

    from lastmile.pytest_plugin import KEEP_SESSIONS, _release_session_root, _session_root

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    running = _session_root(pytester.parseconfigure())  # still running: not released
    os.utime(running, (1000.0, 1000.0))  # the oldest of all
    for i in range(KEEP_SESSIONS + 2):
        config = pytester.parseconfigure()
        os.utime(_session_root(config), (2000.0 + i, 2000.0 + i))
        _release_session_root(config)
    assert running.is_dir() and (running / ".in-use").read_text() == str(os.getpid())
    # a mark left by a process that is gone (killed) does not keep a folder
    (running / ".in-use").write_text("999999999")
    _session_root(pytester.parseconfigure())
    assert not running.exists()
