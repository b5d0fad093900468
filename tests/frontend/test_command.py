"""The customer's own enhancement program: real processes, no shell, nothing left running."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from lastmile.frontend import CommandSpec, build_stage
from lastmile.frontend.command import FrontEndCommandError

RATE = 16000
HALVE = """
import sys, soundfile as sf
x, sr = sf.read(sys.argv[1], dtype="float32")
sf.write(sys.argv[2], x * 0.5, sr, subtype="FLOAT")
"""
HANG = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
time.sleep(60)
"""


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _audio() -> np.ndarray:
    t = np.arange(RATE) / RATE
    return (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is not running
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_command_runs_the_program_on_a_wav_and_reads_its_output(tmp_path: Path) -> None:
    spec = CommandSpec(
        type="command", argv=[sys.executable, _script(tmp_path, "halve.py", HALVE), "{in}", "{out}"]
    )
    x = _audio()
    out = build_stage(spec).apply(x, sample_rate=RATE)
    np.testing.assert_array_equal(out, x * np.float32(0.5))  # float WAV: exact
    assert build_stage(spec).apply(x, sample_rate=RATE).tobytes() == out.tobytes()


def test_command_without_placeholders_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"\{out\}"):
        CommandSpec(type="command", argv=["denoise", "{in}"])


def test_a_failing_program_is_a_clear_error_with_its_stderr(tmp_path: Path) -> None:
    fail = _script(tmp_path, "fail.py", "import sys; sys.stderr.write('no licence'); sys.exit(3)")
    stage = build_stage(CommandSpec(type="command", argv=[sys.executable, fail, "{in}", "{out}"]))
    with pytest.raises(FrontEndCommandError, match="exit status 3: no licence"):
        stage.apply(_audio(), sample_rate=RATE)
    quiet = _script(tmp_path, "quiet.py", "pass")
    stage = build_stage(CommandSpec(type="command", argv=[sys.executable, quiet, "{in}", "{out}"]))
    with pytest.raises(FrontEndCommandError, match="wrote no"):
        stage.apply(_audio(), sample_rate=RATE)
    missing = build_stage(CommandSpec(type="command", argv=["./no-such-program", "{in}", "{out}"]))
    with pytest.raises(FrontEndCommandError, match="cannot start"):
        missing.apply(_audio(), sample_rate=RATE)


@pytest.mark.timeout(30)
def test_a_hanging_program_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    pids = tmp_path / "pids.txt"
    hang = _script(tmp_path, "hang.py", HANG)
    stage = build_stage(
        CommandSpec(
            type="command", argv=[sys.executable, hang, str(pids), "{in}", "{out}"], timeout_s=2
        )
    )
    started = time.monotonic()
    with pytest.raises(FrontEndCommandError, match="timed out after 2 s"):
        stage.apply(_audio(), sample_rate=RATE)
    assert time.monotonic() - started < 10
    program, child = (int(v) for v in pids.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(program) or _alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(program) and not _alive(child)


def test_a_relative_program_is_relative_to_the_pack_folder(tmp_path: Path) -> None:
    prog = tmp_path / "bin" / "halve"
    prog.parent.mkdir()
    prog.write_text(f"#!{sys.executable}\n{HALVE}")
    prog.chmod(0o755)
    spec = CommandSpec(type="command", argv=["bin/halve", "{in}", "{out}"])
    out = build_stage(spec, base_dir=tmp_path).apply(_audio(), sample_rate=RATE)
    assert float(np.max(np.abs(out))) == pytest.approx(0.05, rel=1e-3)
