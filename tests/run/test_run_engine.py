"""The run engine with the real default backend: workers, cache, resume, failures."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lastmile.run import RunOptions, TranscriptCache, run_pack

from helpers import demo_rows, demo_subset_pack

VOLATILE = {"decode_s", "cached"}


def _items(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "items.csv").open() as fh:
        return [{k: v for k, v in row.items() if k not in VOLATILE} for row in csv.DictReader(fh)]


def _analysis(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["analysis"]


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = demo_rows(groups=("us", "caribbean", "gb-rp"), per_group=2)
    return demo_subset_pack(
        tmp_path_factory.mktemp("pack"),
        rows,
        seed=11,
        fairness={"n_bootstrap": 200, "n_permutations": 199},
        conditions=[{"noise": "pink", "snr_db": 5}],
        run={"max_failed_share": 0.5},  # the failure tests fail every noisy item
    )


def test_one_and_two_workers_give_identical_results_and_cache_hits(
    pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cache = tmp_path / "cache.sqlite"
    one = run_pack(pack, RunOptions(out=tmp_path / "w1", workers=1, use_cache=False))
    # the plan is made a few utterances at a time; chunks of 1 must give the same run
    monkeypatch.setattr("lastmile.run.engine._PLAN_CHUNK", 1)
    two = run_pack(pack, RunOptions(out=tmp_path / "w2", workers=2, cache_path=cache))
    assert one.n_items == two.n_items == 12
    assert one.n_failed == two.n_failed == 0
    assert _items(one.run_dir) == _items(two.run_dir)
    assert _analysis(one.run_dir) == _analysis(two.run_dir)
    assert two.n_cached == 0
    figure_sets = TranscriptCache(cache).info()["figure_sets"]
    assert figure_sets >= 1  # the report's figures and each example's spectrograms
    # a warm rerun: every item from the cache, nothing decoded, same results
    warm = run_pack(pack, RunOptions(out=tmp_path / "warm", workers=2, cache_path=cache))
    assert warm.n_cached == 12
    assert warm.backend_s == 0.0
    assert _items(warm.run_dir) == _items(one.run_dir)
    assert TranscriptCache(cache).info()["entries"] == 12
    # same results: the warm run's report figures came from the cache, not drawn again
    assert TranscriptCache(cache).info()["figure_sets"] == figure_sets
    pngs = [
        re.findall(r"data:image/png;base64,[^\"']+", (run.run_dir / "report.html").read_text())
        for run in (two, warm)
    ]
    assert pngs[0] and pngs[0] == pngs[1]


def test_killed_run_resumes_with_nothing_lost_or_counted_twice(
    pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    reference = run_pack(pack, RunOptions(out=tmp_path / "ref", workers=1, use_cache=False))
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lastmile.cli",
            "run",
            str(pack),
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-cache",
            "-q",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = out / "store.sqlite"
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(store) as conn:
                    done = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 4:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 4 <= done < 12
    assert not (out / "summary.json").exists()
    # resumed with the plan made 4 utterances at a time (the killed run planned all 6 at once)
    monkeypatch.setattr("lastmile.run.engine._PLAN_CHUNK", 4)
    resumed = run_pack(pack, RunOptions(resume=out, workers=1, use_cache=False))
    items = _items(resumed.run_dir)
    assert len(items) == 12
    assert len({r["item_id"] for r in items}) == 12
    assert items == _items(reference.run_dir)
    assert _analysis(resumed.run_dir) == _analysis(reference.run_dir)


def test_backend_failure_on_one_item_is_retried_then_recorded(pack: Path, tmp_path: Path):
    # A real program as the backend: it fails on the noisy items, and counts its calls.
    script = tmp_path / "flaky_asr.py"
    calls = tmp_path / "calls.txt"
    script.write_text(
        textwrap.dedent(f"""
        import sys, numpy as np, soundfile as sf
        audio, rate = sf.read(sys.argv[1])
        with open({str(calls)!r}, "a") as fh:
            fh.write("x")
        # the demo utterances start with ~0.15 s of silence; pink noise at 5 dB fills it
        lead = audio[: int(0.04 * rate)]
        if np.sqrt(np.mean(lead ** 2)) > 1e-3:
            sys.exit("simulated decoder crash")
        print("take one capsule twice a day")
    """)
    )
    spec = {"name": "command", "argument": f"{sys.executable} {script} {{wav}}"}
    result = run_pack(
        pack, RunOptions(asr=spec, out=tmp_path / "flaky", workers=1, use_cache=False, retries=2)
    )
    rows = _items(result.run_dir)
    failed = [r for r in rows if r["error"]]
    ok = [r for r in rows if not r["error"]]
    assert {r["condition_id"] for r in failed} == {"pink_snr5"}
    assert len(failed) == 6 and len(ok) == 6
    assert "simulated decoder crash" in failed[0]["error"]
    assert result.n_failed == 6
    # per utterance: one batch call of 2 items, then the noisy item alone 1 + 2 retries
    # and the clean item alone once
    assert len(calls.read_text()) == 6 * (2 + 3 + 1)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["analysis"]["totals"]["n_failed"] == 6


class _HangsOnNoise:
    """An in-process backend that hangs on noisy audio (as a stuck decoder would)."""

    name = "hangs-on-noise"
    sample_rate = 16000

    def fingerprint(self) -> str:
        return "hangs-on-noise/1"

    def transcribe(self, batch):
        import numpy as np

        out = []
        for audio in batch:
            if np.sqrt(np.mean(audio[:640] ** 2)) > 1e-3:
                time.sleep(2.0)
            out.append("take one capsule twice a day")
        return out


def test_item_timeout_is_retried_then_recorded(pack: Path, tmp_path: Path):
    result = run_pack(
        pack,
        RunOptions(
            out=tmp_path / "slow",
            workers=1,
            use_cache=False,
            retries=1,
            item_timeout_s=0.3,
            examples_per_condition=0,
        ),
        backend=_HangsOnNoise(),
    )
    rows = _items(result.run_dir)
    failed = [r for r in rows if r["error"]]
    assert {r["condition_id"] for r in failed} == {"pink_snr5"}
    assert all("longer than 0.3 s per item" in r["error"] for r in failed)
    assert result.n_failed == 6


def test_a_broken_utterance_is_recorded_and_the_rest_finishes(tmp_path: Path):
    rows = demo_rows(groups=("us",), per_group=3)
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"fLaC but not really")
    rows[1] = {**rows[1], "audio": str(broken)}
    pack = demo_subset_pack(
        tmp_path / "p", rows, fairness={"min_speakers": 2}, run={"max_failed_share": 0.5}
    )
    result = run_pack(pack, RunOptions(out=tmp_path / "run", workers=1, use_cache=False))
    items = _items(result.run_dir)
    assert len(items) == 3
    bad = [r for r in items if r["error"]]
    assert [r["utterance_id"] for r in bad] == [rows[1]["id"]]
    assert "broken.flac" in bad[0]["error"]
    assert result.n_failed == 1
    assert all(r["hypothesis"] for r in items if not r["error"])


CRASHY = '''
import os
import numpy as np


class Crashy:
    """A plugin backend whose native code "segfaults" on noisy audio."""

    name = "crashy"
    sample_rate = 16000

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def fingerprint(self):
        return "crashy/1"

    def transcribe(self, batch):
        for audio in batch:
            if np.sqrt(np.mean(audio[:640] ** 2)) > 1e-3:
                os._exit(139)
        return ["take one capsule twice a day"] * len(batch)
'''


def test_a_worker_that_dies_is_replaced_and_its_item_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # a real plugin, registered through the lastmile.asr entry-point group
    site = tmp_path / "site"
    (site / "crashy_asr-0.1.dist-info").mkdir(parents=True)
    (site / "crashy_asr.py").write_text(CRASHY)
    (site / "crashy_asr-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crashy-asr\nVersion: 0.1\n"
    )
    (site / "crashy_asr-0.1.dist-info" / "entry_points.txt").write_text(
        "[lastmile.asr]\ncrashy = crashy_asr:Crashy\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    rows = demo_rows(groups=("us",), per_group=2)
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": 5}],
        run={"max_failed_share": 0.5},
    )
    result = run_pack(
        pack,
        RunOptions(
            asr="crashy",
            out=tmp_path / "run",
            workers=2,
            use_cache=False,
            retries=0,
            examples_per_condition=0,
        ),
    )
    items = _items(result.run_dir)
    assert len(items) == 4
    failed = {r["item_id"]: r["error"] for r in items if r["error"]}
    assert set(failed) == {f"{r['id']}__pink_snr5" for r in rows}
    assert all("worker process died" in e for e in failed.values())
    assert all(r["hypothesis"] for r in items if r["condition_id"] == "clean")


def test_a_cache_hit_is_scored_against_the_current_transcript(tmp_path: Path):
    rows = demo_rows(groups=("us",), per_group=2)
    cache = tmp_path / "cache.sqlite"
    pack = demo_subset_pack(tmp_path / "p", rows, fairness={"min_speakers": 2})
    first = run_pack(pack, RunOptions(out=tmp_path / "a", workers=1, cache_path=cache))
    # fix a "typo" in the manifest: the audio is the same, the reference is not
    manifest = pack.parent / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(rows[0]["text"], "completely other words"))
    second = run_pack(pack, RunOptions(out=tmp_path / "b", workers=1, cache_path=cache))
    assert second.n_cached == 2
    before = {r["utterance_id"]: r for r in _items(first.run_dir)}
    after = {r["utterance_id"]: r for r in _items(second.run_dir)}
    changed = rows[0]["id"]
    assert after[changed]["hypothesis_raw"] == before[changed]["hypothesis_raw"]
    assert after[changed]["reference"] == "completely other words"
    assert int(after[changed]["n_ref"]) == 3
    assert after[rows[1]["id"]] == {**before[rows[1]["id"]]}


def test_workers_that_die_before_any_item_stop_the_run_with_the_fix(tmp_path: Path):
    # a script that calls run_pack without the __main__ guard: every worker process imports
    # it again and dies before it can decode anything
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    pack = demo_subset_pack(tmp_path / "p", rows, conditions=[{"noise": "pink", "snr_db": 5}])
    out = tmp_path / "run"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from lastmile.run import RunOptions, run_pack\n"
        f"run_pack({str(pack)!r}, RunOptions(out={str(out)!r}, workers=2, retries=0, "
        "use_cache=False, examples_per_condition=0))\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    assert "BackendError" in proc.stderr
    assert 'put the call under `if __name__ == "__main__":`' in proc.stderr
    # nothing was recorded as failed: a resumed (guarded) run tries every item again
    with sqlite3.connect(out / "store.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
