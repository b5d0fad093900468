"""No process outlives its run: workers, the fork server and the resource tracker die with
a killed run, and a timed-out decode does not keep the run alive."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from plugin_backends import HANGS, SLOW, install_plugin

from lastmile.run import RunOptions, run_pack

from helpers import demo_rows, demo_subset_pack


def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` (pid → start time), from /proc."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out[child] = starts[child]
                todo.append(child)
    return out


def _alive(procs: dict[int, int]) -> list[str]:
    """Those of ``procs`` still running (a zombie has died; the same pid with another start
    time is another process)."""
    out = []
    for pid, start in procs.items():
        stat = _proc_stat(pid)
        if stat is not None and stat[2] == start and stat[1] != "Z":
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                cmd = "?"
            out.append(f"{pid}: {cmd[:120]}")
    return out


def _wait_gone(procs: dict[int, int], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := _alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _stored(store: Path) -> int:
    try:
        with sqlite3.connect(store) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("how", "code"),
    [("kill -9 of the run", None), ("Ctrl-C (SIGINT to the process group)", 130)],
)
def test_a_killed_two_worker_run_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, code: int | None
):
    install_plugin(tmp_path / "site", monkeypatch, "slow", SLOW.replace("SLOW_S", "0.4"), "Slow")
    rows = demo_rows(groups=("us", "gb-rp"), per_group=3)
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": 10}, {"noise": "white", "snr_db": 10}],
    )
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lastmile.cli", "run", str(pack), "--asr", "slow"]
    cmd += ["--workers", "2", "--no-cache", "-q", "--out", str(out)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # Ctrl-C's default action even where the tests run with SIGINT ignored (a background
        # job of a non-interactive shell), which the run would otherwise inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if _stored(out / "store.sqlite") >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        below = _descendants(proc.pid)
        # the fork server, the resource tracker and two workers at least
        assert len(below) >= 4, below
        if code is None:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        returncode = proc.wait(timeout=30)
        assert _stored(out / "store.sqlite") < 18, "the run finished before it was stopped"
        if code is not None:
            assert returncode == code
        left = _wait_gone(below, 5.0)
        assert not left, f"still running 5 s after {how}: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_timed_out_decode_does_not_keep_the_run_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
):
    # the backend hangs for 60 s on noisy audio; with --item-timeout 0.5 each such item is
    # given up on (the batch once, then alone 1 + 2 retries)
    install_plugin(tmp_path / "site", monkeypatch, "hangs", HANGS, "Hangs")
    rows = demo_rows(groups=("us", "gb-rp"), per_group=1)
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": 5}],
        run={"max_failed_share": 0.5},
    )
    cmd = [sys.executable, "-m", "lastmile.cli", "run", str(pack), "--asr", "hangs"]
    cmd += ["--workers", str(workers), "--no-cache", "-q", "--out", str(tmp_path / "run")]
    cmd += ["--item-timeout", "0.5"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode in (0, 1), proc.stderr
    assert "2 failed" in proc.stdout
    # 2 noisy items: a batch of 2 (1 s), then 3 tries of 0.5 s each, plus starting up
    assert took < 30, f"the run took {took:.1f} s to exit"


class _Cancellable:
    """An in-process backend that hangs on noisy audio until its call is cancelled."""

    name = "cancellable"
    sample_rate = 16000

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.cancels = 0

    def fingerprint(self) -> str:
        return "cancellable/1"

    def cancel(self) -> None:
        self.cancels += 1
        self.cancelled.set()

    def transcribe(self, batch):
        if any(np.sqrt(np.mean(a[:640] ** 2)) > 1e-3 for a in batch):
            self.cancelled.clear()
            if self.cancelled.wait(60.0):
                raise RuntimeError("cancelled")
        return ["take one capsule twice a day"] * len(batch)


def test_a_timed_out_call_is_cancelled_and_its_thread_ends(tmp_path: Path):
    rows = demo_rows(groups=("us", "gb-rp"), per_group=1)
    pack = demo_subset_pack(
        tmp_path / "p",
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": 5}],
        run={"max_failed_share": 0.5},
    )
    backend = _Cancellable()
    t0 = time.monotonic()
    result = run_pack(
        pack,
        RunOptions(out=tmp_path / "run", use_cache=False, retries=1, item_timeout_s=0.3),
        backend=backend,
    )
    assert result.n_failed == 2
    # per noisy item: the batch of 2, then 1 + 1 retry alone: 3 calls given up on
    assert backend.cancels == 6
    assert time.monotonic() - t0 < 20
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(
        t.name == "lastmile-decode" for t in threading.enumerate()
    ):
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name == "lastmile-decode"]
