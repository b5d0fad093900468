"""The command backend: its cache key covers the files it runs, and nothing it starts outlives
a decode, a timeout or lastmile itself."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from lastmile.asr import build_backend
from lastmile.cli import cli
from lastmile.errors import BackendError, ConfigError

from helpers import demo_rows, demo_subset_pack

SILENCE = np.zeros(1600, dtype=np.float32)


def _processes_with(token: str) -> list[int]:
    """Live processes whose command line contains ``token`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_until_none(token: str, within_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _spawner(tmp_path: Path, token: str, *, background_only: bool = False) -> Path:
    """A script that starts two ``sleep`` children (their command line carries ``token``),
    touches the file named by its second argument, then waits for them (or, with
    ``background_only``, prints a transcript and exits, leaving them behind)."""
    script = tmp_path / "spawn.sh"
    tail = "echo left-behind\n" if background_only else "wait\necho done\n"
    script.write_text(f'#!/bin/sh\nsleep 300.{token} &\nsleep 300.{token} &\ntouch "$2"\n' + tail)
    script.chmod(0o755)
    return script


def _token() -> str:
    return str(uuid.uuid4().int % 10**9)


def test_a_timed_out_command_dies_with_everything_it_started(tmp_path: Path):
    token = _token()
    script = _spawner(tmp_path, token)
    started = tmp_path / "started"
    backend = build_backend(
        {"name": "command", "argument": f"{script} {{wav}} {started}", "timeout_s": 1}
    )
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="timed out after 1 s"):
        backend.transcribe([SILENCE])
    assert time.monotonic() - t0 < 10  # not the 300 s its children would sleep
    assert started.exists()  # the children were running
    assert _wait_until_none(token) == []


def test_children_left_behind_by_a_finished_command_are_killed(tmp_path: Path):
    token = _token()
    script = _spawner(tmp_path, token, background_only=True)
    backend = build_backend(f"command:{script} {{wav}} {tmp_path / 'started'}")
    t0 = time.monotonic()
    # the children keep the command's output open; lastmile still returns at once
    assert backend.transcribe([SILENCE]) == ["left-behind"]
    assert time.monotonic() - t0 < 10
    assert _wait_until_none(token) == []


def test_cancel_kills_a_decode_in_flight(tmp_path: Path):
    import threading

    token = _token()
    script = _spawner(tmp_path, token)
    started = tmp_path / "started"
    backend = build_backend(f"command:{script} {{wav}} {started}")
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            backend.transcribe([SILENCE])
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=decode)
    worker.start()
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_processes_with(token)) == 2
    backend.cancel()  # what the run engine does when --item-timeout gives up on a decode
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], BackendError), errors
    assert "killed by signal 9" in str(errors[0])
    assert _wait_until_none(token) == []


PARENT = """
import sys
import numpy as np
from lastmile.asr import build_backend
backend = build_backend({"name": "command", "argument": sys.argv[1], "timeout_s": 600})
backend.transcribe([np.zeros(1600, dtype=np.float32)])
"""


def test_a_killed_lastmile_leaves_no_command_children(tmp_path: Path):
    token = _token()
    script = _spawner(tmp_path, token)
    started = tmp_path / "started"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, f"{script} {{wav}} {started}"])
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            assert parent.poll() is None, "the parent ended before its command started"
            time.sleep(0.05)
        assert started.exists()
        assert len(_processes_with(token)) == 2  # the two children, alive
        os.kill(parent.pid, signal.SIGKILL)  # no handler, no atexit: the watchdog's case
        parent.wait(timeout=10)
        assert _wait_until_none(token) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_fingerprint_covers_the_program_and_every_file_the_command_names(tmp_path: Path):
    script = tmp_path / "asr.py"
    model = tmp_path / "model.txt"
    script.write_text("print('v1')\n")
    model.write_text("weights 1\n")
    spec = f"command:{sys.executable} {script} --model={model} {{wav}}"
    first = build_backend(spec).fingerprint()
    assert build_backend(spec).fingerprint() == first  # stable while nothing changes
    script.write_text("print('v2')\n")  # an edited script: another cache key
    second = build_backend(spec).fingerprint()
    assert second != first
    model.write_text("weights 2\n")  # a file named after '=': another cache key
    assert build_backend(spec).fingerprint() not in (first, second)
    exe = tmp_path / "asr.sh"  # the program itself
    exe.write_text("#!/bin/sh\necho one\n")
    exe.chmod(0o755)
    before = build_backend(f"command:{exe} {{wav}}").fingerprint()
    exe.write_text("#!/bin/sh\necho two\n")
    assert build_backend(f"command:{exe} {{wav}}").fingerprint() != before


def test_editing_the_script_is_not_answered_from_the_cache(tmp_path: Path):
    """The measured bug: the key hashed only the interpreter, so 48 of 48 came from cache."""
    rows = demo_rows(groups=("us",), per_group=2)
    script = tmp_path / "asr.py"
    script.write_text("print('first version')\n")
    pack = demo_subset_pack(
        tmp_path / "pack",
        rows,
        asr={"name": "command", "argument": f"{sys.executable} {script} {{wav}}"},
        fairness={"min_speakers": 2},
    )
    runner = CliRunner()
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    first = runner.invoke(cli, ["run", str(pack), "--out", str(out_a), "-j", "1"])
    assert first.exit_code in (0, 1), first.output
    script.write_text("print('second version')\n")
    second = runner.invoke(cli, ["run", str(pack), "--out", str(out_b), "-j", "1"])
    assert second.exit_code in (0, 1), second.output
    assert "0 from cache" in second.output
    with (out_b / "items.csv").open() as fh:
        hyps = {r["hypothesis_raw"] for r in csv.DictReader(fh)}
    assert hyps == {"second version"}


def test_command_backend_is_transparent(tmp_path: Path):
    """On the clean condition the program reads exactly the corpus file's samples: what
    lastmile records equals the program's own output on the corpus file."""
    rows = demo_rows(groups=("us",), per_group=2)
    script = tmp_path / "digest.py"
    script.write_text(
        "import hashlib, sys\nimport soundfile as sf\n"
        "x, rate = sf.read(sys.argv[1], dtype='int16')\n"
        "print(rate, len(x), hashlib.sha256(x.tobytes()).hexdigest())\n"
    )
    pack = demo_subset_pack(
        tmp_path / "pack",
        rows,
        asr={"name": "command", "argument": f"{sys.executable} {script} {{wav}}"},
        fairness={"min_speakers": 2},
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(pack), "--out", str(out), "-j", "1", "-q"])
    assert result.exit_code in (0, 1), result.output
    with (out / "items.csv").open() as fh:
        recorded = {r["utterance_id"]: r["hypothesis_raw"] for r in csv.DictReader(fh)}
    for row in rows:
        direct = subprocess.run(
            [sys.executable, str(script), row["audio"]], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert recorded[row["id"]] == direct
        assert direct.split()[0] == "16000" and sf.info(row["audio"]).subtype == "PCM_16"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "command", "argument": "/nonexistent/asr {wav}"}, "program /nonexistent/asr"),
        ({"name": "command", "argument": "no-such-asr-program {wav}"}, "not found on PATH"),
        ({"name": "command", "argument": "cat {wav}", "sample_rate": 0}, "sample_rate"),
        ({"name": "command", "argument": "cat {wav}", "sample_rate": "8k"}, "got '8k'"),
        ({"name": "command", "argument": "cat {wav}", "timeout_s": -1}, "timeout_s"),
        ({"name": "command", "argument": "cat {wav}", "retries": 2}, "unknown parameter"),
        ({"name": "command", "argument": "cat 'x {wav}"}, "cannot split"),
        ({"name": "command", "argument": "cat"}, "must contain '{wav}'"),
    ],
)
def test_a_command_backend_that_cannot_run_fails_when_built(spec, message):
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        build_backend(spec)


def test_a_program_that_is_not_executable_is_refused(tmp_path: Path):
    script = tmp_path / "asr.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(ConfigError, match="not executable; run chmod"):
        build_backend(f"command:{script} {{wav}}")


@pytest.mark.timeout(180)
def test_item_timeout_in_a_real_run_leaves_nothing_running(tmp_path: Path):
    """Measured before: with --item-timeout 2 the run printed its summary, then took 118 s
    more to exit while the timed-out decodes went on."""
    token = _token()
    script = _spawner(tmp_path, token)
    rows = demo_rows(groups=("us",), per_group=2)
    pack = demo_subset_pack(
        tmp_path / "pack",
        rows,
        asr={"name": "command", "argument": f"{script} {{wav}} {tmp_path / 'started'}"},
        fairness={"min_speakers": 2},
    )
    t0 = time.monotonic()
    run = ["run", str(pack), "--out", str(tmp_path / "run"), "-j", "1", "-q", "--no-cache"]
    done = subprocess.run(
        [sys.executable, "-m", "lastmile.cli", *run, "--item-timeout", "1"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    elapsed = time.monotonic() - t0
    assert done.returncode == 3, done.stderr  # every item failed: a runtime failure
    assert "timed out" in done.stderr or "longer than 1 s" in done.stderr, done.stderr
    assert elapsed < 90, elapsed  # the children would sleep 300 s
    assert _wait_until_none(token) == []
