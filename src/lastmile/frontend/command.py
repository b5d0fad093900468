"""The customer's own enhancement program: ``argv`` with ``{in}``/``{out}`` WAV paths.

No shell: ``argv`` is run as given. The input is written as a mono 32-bit float WAV in a
private temporary folder; the program writes ``{out}`` there (mono, same rate). The program
runs in its own process group, which is killed when it exits, times out or lastmile is
interrupted; on Linux it also dies if lastmile does (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from lastmile import scratch
from lastmile.audio import validate_audio, write_audio
from lastmile.errors import AudioError
from lastmile.frontend.specs import CommandSpec

__all__ = ["Command", "FrontEndCommandError"]

_PR_SET_PDEATHSIG = 1


class FrontEndCommandError(AudioError):
    """The enhancement program failed, timed out or wrote no usable audio."""


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    fn: Callable[..., int] = libc.prctl
    return fn


_PRCTL = _prctl()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _resolve(argv: list[str], base_dir: Path | None) -> list[str]:
    program = argv[0]
    if base_dir is not None and not os.path.isabs(program) and "/" in program:
        program = str((base_dir / program).resolve())
    return [program, *argv[1:]]


class Command:
    """Runs ``argv`` once per utterance (see the module docstring)."""

    name = "command"

    def __init__(self, spec: CommandSpec, *, base_dir: Path | None = None):
        self.spec = spec
        self.argv = _resolve(list(spec.argv), base_dir)

    def describe(self) -> dict[str, Any]:
        digest = ""
        program = Path(self.argv[0])
        if program.is_file():
            digest = hashlib.sha256(program.read_bytes()).hexdigest()[:16]
        return {
            "type": "command",
            "argv": list(self.spec.argv),
            "timeout_s": self.spec.timeout_s,
            "program_sha256": digest,
        }

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """``audio`` (shape ``(n,)``, float32) through the program; its output, any length."""
        audio = validate_audio(audio, source="frontend command input")
        shown = " ".join(self.spec.argv)
        with tempfile.TemporaryDirectory(prefix="lastmile-frontend-", dir=scratch.current()) as tmp:
            folder = Path(tmp)
            src, dst = folder / "in.wav", folder / "out.wav"
            write_audio(src, audio, sample_rate=sample_rate)
            argv = [w.replace("{in}", str(src)).replace("{out}", str(dst)) for w in self.argv]
            parent = os.getpid()

            def in_child() -> None:  # between fork and exec: nothing that imports or locks
                if _PRCTL is not None:
                    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
                    if os.getppid() != parent:
                        os.kill(os.getpid(), signal.SIGKILL)

            err_path = folder / "stderr.txt"
            with err_path.open("wb") as err:
                try:
                    proc = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        cwd=folder,
                        start_new_session=True,
                        preexec_fn=in_child,
                        env=scratch.program_env(),
                    )
                except OSError as exc:
                    raise FrontEndCommandError(
                        f"frontend command: cannot start {argv[0]!r} ({exc}); check the "
                        "program path (relative to the pack file) and that it is executable"
                    ) from exc
            timed_out = False
            try:
                proc.wait(timeout=self.spec.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)  # whatever it started goes with it
                proc.wait()
            tail = err_path.read_text(errors="replace").strip()[-300:]
            if timed_out:
                raise FrontEndCommandError(
                    f"frontend command: {shown}: timed out after {self.spec.timeout_s:g} s and "
                    "was killed (with its process group); raise timeout_s or fix the program"
                )
            if proc.returncode != 0:
                raise FrontEndCommandError(
                    f"frontend command: {shown}: exit status {proc.returncode}"
                    + (f": {tail}" if tail else "")
                )
            if not dst.is_file():
                raise FrontEndCommandError(
                    f"frontend command: {shown}: exited 0 but wrote no {{out}} file; it must "
                    "write a WAV to the path given for {out}"
                )
            try:
                data, rate = sf.read(str(dst), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                raise FrontEndCommandError(
                    f"frontend command: {shown}: its {{out}} file is not readable audio ({exc})"
                ) from exc
        if data.shape[1] != 1 or int(rate) != int(sample_rate):
            raise FrontEndCommandError(
                f"frontend command: {shown}: wrote {data.shape[1]} channel(s) at {rate} Hz; "
                f"expected mono at {sample_rate} Hz (the rate of its input)"
            )
        return validate_audio(
            np.ascontiguousarray(data[:, 0]), source=f"frontend command {shown} output"
        )
