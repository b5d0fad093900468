"""Any recognizer as a command: ``command:./my_asr --wav {wav}`` prints the transcript."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from lastmile import scratch
from lastmile.asr.base import BackendSpec
from lastmile.asr.params import CACHE_SALT_PARAM, Param, check_params
from lastmile.errors import BackendError, ConfigError

__all__ = ["CommandBackend", "file_digests", "named_files", "resolve_program"]

_PARAMS = {
    "sample_rate": Param(
        "int", "a whole number of Hz in [1000, 384000]", lambda v: 1000 <= v <= 384000
    ),
    "timeout_s": Param("number", "a number of seconds > 0", lambda v: v > 0),
    "cache_salt": CACHE_SALT_PARAM,
}

# The watchdog: a small process of its own (own session, so a Ctrl-C meant for lastmile does
# not reach it) that reads "+PGID" / "-PGID" lines from a pipe only lastmile holds. When that
# pipe closes, however lastmile ended (SIGKILL included), it kills every process group still
# listed: the command programs and anything they started. (Not PR_SET_PDEATHSIG: it needs a
# preexec_fn, which makes subprocess fork() instead of vfork(), and fork() runs OpenBLAS's
# atfork handler, which stops the BLAS threads under any other thread still using them: seen
# as a run spinning forever in exec_blas. PDEATHSIG would not reach grandchildren either.)
_WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin.buffer:
    try:
        pgid = int(line[1:])
    except ValueError:
        continue
    (groups.add if line[:1] == b"+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Watchdog:
    """The watchdog process of one backend in one process, and the pipe to it."""

    def __init__(self) -> None:
        read_fd, self.write_fd = os.pipe()  # both ends close on exec
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_fd)
        self.pid = os.getpid()
        self._closed = weakref.finalize(self, _close_watchdog, self.write_fd, self.process)

    def send(self, line: bytes) -> None:
        with contextlib.suppress(OSError):  # a watchdog gone: the group is killed anyway
            os.write(self.write_fd, line)

    def close(self) -> None:
        self._closed()


def _close_watchdog(write_fd: int, process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.close(write_fd)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@cache
def _file_digest(path: str, stamp: tuple[int, int]) -> str:
    del stamp  # part of the cache key: an edited file is hashed again
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class CommandBackend:
    """Runs a command per utterance; ``{wav}`` is replaced by a temporary 16-bit WAV path.

    The transcript is the command's standard output. Parameters go in the YAML form:
    ``asr: {name: command, argument: "./my_asr --wav {wav}", sample_rate: 8000, timeout_s: 60}``.
    With ``mode: server`` (spec string ``command-server:./my_asr``) the program starts once
    per worker and answers JSON lines instead: see :mod:`lastmile.asr.command_server`.

    The program must exist when the backend is built. The fingerprint (the transcript cache
    key) holds the command line and the content of the program and of every file the command
    line names (``asr.py``, ``--model=m.bin``); a folder's content is not read: give
    ``cache_salt`` when a model folder changes. Each command runs in a process group of its
    own; on timeout the whole group is killed, and a watchdog process kills what is left if
    lastmile itself dies, so no decode outlives the run.
    """

    name = "command"

    def __init__(
        self,
        command: str,
        *,
        sample_rate: int = 16000,
        timeout_s: float = 120.0,
        cache_salt: str | None = None,
    ):
        given: dict[str, Any] = {"sample_rate": sample_rate, "timeout_s": timeout_s}
        if cache_salt is not None:
            given["cache_salt"] = cache_salt
        params = check_params(self.name, given, _PARAMS)
        if not isinstance(command, str) or "{wav}" not in command:
            raise ConfigError(
                f"command: the command must contain '{{wav}}' where the audio path goes, "
                f"got {command!r}; e.g. command:./my_asr --wav {{wav}}"
            )
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"command: cannot split {command!r} into words: {exc}") from exc
        self.command = command
        self.words = words
        self.program = resolve_program(words[0])
        self.sample_rate: int = params["sample_rate"]
        self.timeout_s: float = params["timeout_s"]
        self.cache_salt: str | None = params.get("cache_salt")
        self._watchdog: _Watchdog | None = None
        self._lock = threading.Lock()
        self._running: set[int] = set()

    @classmethod
    def check(cls) -> str | None:
        return None

    @classmethod
    def describe(cls) -> str:
        return (
            "any program: command:./my_asr --wav {wav} (started per item) or "
            "command-server:./my_asr (started once, answers JSON lines)"
        )

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> Any:
        """The backend of ``spec``; ``mode: server`` (or ``command-server:``) builds a
        :class:`~lastmile.asr.command_server.CommandServerBackend`: the program starts once
        and answers JSON lines."""
        params = dict(spec.params)
        mode = params.pop("mode", "per-item")
        if mode == "server":
            from lastmile.asr.command_server import CommandServerBackend

            return CommandServerBackend.from_spec(
                BackendSpec(name=spec.name, argument=spec.argument, params=params)
            )
        if mode != "per-item":
            raise ConfigError(
                f"command: mode: expected 'per-item' (start the program for every item, the "
                f"default) or 'server' (start it once; it answers JSON lines), got {mode!r}"
            )
        checked = check_params(cls.name, params, _PARAMS)
        return cls(spec.argument or "", **checked)

    def named_files(self) -> list[Path]:
        """The program and every existing file the command line names, as a word or after
        an ``=`` (``--model=m.bin``): what the fingerprint hashes."""
        return named_files(self.program, self.words)

    def fingerprint(self) -> str:
        files = file_digests(self.named_files())
        return json.dumps(
            {
                "backend": self.name,
                "command": self.command,
                "files": files,
                "sample_rate": self.sample_rate,
                "wav": "pcm16",
                **({"cache_salt": self.cache_salt} if self.cache_salt is not None else {}),
            },
            sort_keys=True,
        )

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        out = []
        with tempfile.TemporaryDirectory(prefix="lastmile-cmd-", dir=scratch.current()) as tmp:
            for index, audio in enumerate(batch):
                wav = Path(tmp) / f"item{index}.wav"
                sf.write(str(wav), np.clip(audio, -1, 1), self.sample_rate, subtype="PCM_16")
                argv = [part.replace("{wav}", str(wav)) for part in self.words]
                out.append(self._run(argv, Path(tmp) / f"item{index}"))
        return out

    def cancel(self) -> None:
        """Kill every command still running, with whatever it started: the decodes in
        flight fail at once (the run engine calls this when it gives up on a decode)."""
        with self._lock:
            running = set(self._running)
        for pgid in running:
            _kill_group(pgid)

    def close(self) -> None:
        """:meth:`cancel`, then stop the watchdog (a later decode starts a new one)."""
        self.cancel()
        with self._lock:
            watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.close()

    def _watch(self) -> _Watchdog:
        with self._lock:
            if self._watchdog is None or self._watchdog.pid != os.getpid():
                self._watchdog = _Watchdog()  # one per process: a fork gets its own
            return self._watchdog

    def _run(self, argv: list[str], stem: Path) -> str:
        """Run one command. Its output goes to files, not pipes, so that a child it leaves
        behind holding them cannot keep lastmile waiting; its process group is killed when
        it exits, times out or is interrupted."""
        watchdog = self._watch()
        out_path, err_path = stem.with_suffix(".out"), stem.with_suffix(".err")
        with out_path.open("wb") as out, err_path.open("wb") as err:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own process group, led by it
                    env=scratch.program_env(),
                )
            except OSError as exc:
                raise BackendError(f"command: cannot start {argv[0]}: {exc}") from exc
        watchdog.send(b"+%d\n" % proc.pid)
        with self._lock:
            self._running.add(proc.pid)
        timed_out = False
        try:
            proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # on time-out, on Ctrl-C, and whatever it left running
            proc.wait()
            with self._lock:
                self._running.discard(proc.pid)
            watchdog.send(b"-%d\n" % proc.pid)
        if timed_out:
            raise BackendError(
                f"command: timed out after {self.timeout_s:g} s (its process group was "
                f"killed): {self.command}"
            )
        if proc.returncode != 0:
            text = err_path.read_bytes().decode("utf-8", "replace").strip()[:300]
            how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else "exit status"
            code = "" if proc.returncode < 0 else f" {proc.returncode}"
            raise BackendError(f"command: {how}{code}: {text or '(no error output)'}")
        return out_path.read_bytes().decode("utf-8", "replace").strip()


def named_files(program: Path, words: Sequence[str]) -> list[Path]:
    """``program`` and every existing file ``words[1:]`` name, as a word or after an ``=``
    (``--model=m.bin``); words holding ``{wav}`` are skipped."""
    found = [program.resolve()]
    for word in words[1:]:
        if "{wav}" in word:
            continue
        for text in (word, word.partition("=")[2]):
            if text and Path(text).is_file() and Path(text).resolve() not in found:
                found.append(Path(text).resolve())
    return found


def file_digests(paths: Sequence[Path]) -> dict[str, str]:
    """Each file's content digest (re-read when its size or modification time changes)."""
    files = {}
    for path in paths:
        stat = path.stat()
        files[str(path)] = _file_digest(str(path), (stat.st_mtime_ns, stat.st_size))
    return files


def resolve_program(program: str) -> Path:
    """The program's file: a path (with a slash) as given, a bare name on PATH; ConfigError
    when it is missing or not executable."""
    if "/" in program or os.sep in program:
        path = Path(program)
        if not path.is_file():
            raise ConfigError(
                f"command: program {program} not found (relative paths are taken from the "
                "pack's folder in a pack, from the current folder on the command line)"
            )
    else:
        found = shutil.which(program)
        if found is None:
            raise ConfigError(f"command: program '{program}' not found on PATH")
        path = Path(found)
    if not os.access(path, os.X_OK):
        raise ConfigError(f"command: program {path} is not executable; run chmod +x {path}")
    return path.absolute()
