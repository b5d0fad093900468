"""A recognizer as a persistent program: ``command-server:python adapter.py``.

The program starts once per worker, loads its model once, and speaks JSON lines:

* it prints ``{"ready": true}`` on standard output when it can take requests (optionally
  ``{"ready": true, "sample_rate": 8000}``: a rate other than the backend's is refused);
* lastmile writes one request per line on its standard input, ``{"id": "7", "wav": PATH}``
  (``PATH`` a WAV file at the backend's ``sample_rate``, mono, 16-bit or float);
* the program answers each request with one line, ``{"id": "7", "text": "..."}``, or
  ``{"id": "7", "error": "why"}`` when it cannot decode that file.

Anything else it wants to say goes to standard error (kept in a log file, so it never blocks
the pipe; its last lines are quoted when the program fails). See ``examples/backends/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf

from lastmile import scratch
from lastmile.asr.base import BackendSpec
from lastmile.asr.command import (
    _kill_group,
    _Watchdog,
    file_digests,
    named_files,
    resolve_program,
)
from lastmile.asr.params import CACHE_SALT_PARAM, Param, check_params
from lastmile.errors import BackendError, ConfigError, FatalBackendError

__all__ = ["PROTOCOL_VERSION", "CommandServerBackend"]

PROTOCOL_VERSION = 1
_SUBTYPES = {"pcm16": "PCM_16", "float32": "FLOAT"}

_PARAMS = {
    "sample_rate": Param(
        "int", "a whole number of Hz in [1000, 384000]", lambda v: 1000 <= v <= 384000
    ),
    "timeout_s": Param("number", "a number of seconds > 0 (per item)", lambda v: v > 0),
    "start_timeout_s": Param(
        "number", "a number of seconds > 0 (to print the ready line)", lambda v: v > 0
    ),
    "max_restarts": Param(
        "int", "a whole number in [0, 100] (restarts in a row)", lambda v: 0 <= v <= 100
    ),
    "sample_format": Param("str", "pcm16 or float32", lambda v: v in _SUBTYPES),
    "cache_salt": CACHE_SALT_PARAM,
}

_EOF = None  # what the reader thread queues when the program's standard output closes
_LOG_LIMIT_BYTES = 8 << 20  # the program's standard error kept, at most (then emptied)
_FIX = (
    "the program must print exactly one JSON object per line on standard output: "
    '{"ready": true} once, then {"id": ID, "text": TEXT} or {"id": ID, "error": WHY} '
    "per request (logs go to standard error)"
)


class _Restart(Exception):
    """The program is out of step or gone: the item fails and the program is restarted."""


class _Server:
    """One running program: its process (leader of its own process group), a thread that
    queues its standard output lines, and its standard error in a log file."""

    def __init__(self, argv: list[str], log_path: Path, watchdog: _Watchdog) -> None:
        self.log_path = log_path
        self.watchdog = watchdog
        with log_path.open("ab") as log:
            try:
                self.process = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,  # its own process group, led by it
                    env=scratch.program_env(),
                )
            except OSError as exc:
                raise ConfigError(f"command-server: cannot start {argv[0]}: {exc}") from exc
        watchdog.send(b"+%d\n" % self.process.pid)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        stdout = self.process.stdout
        if stdout is None:  # pragma: no cover - PIPE always gives one
            raise BackendError("command-server: no pipe to the program")
        threading.Thread(
            target=_read_lines, args=(stdout, self.lines), name="lastmile-cmd-server", daemon=True
        ).start()
        self._finalizer = weakref.finalize(self, _stop, self.process, watchdog)

    def send(self, line: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None:  # pragma: no cover
            raise _Restart("no pipe to the program")
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise _Restart(f"it closed its standard input ({exc})") from exc

    def next_line(self, timeout_s: float) -> bytes | None:
        """The next line, ``None`` when standard output closed; ``queue.Empty`` on timeout."""
        return self.lines.get(timeout=timeout_s)

    def exit_note(self) -> str:
        """How the program ended (waiting briefly for it) and the last lines of its log."""
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            how = "closed its standard output"
        elif code < 0:
            how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        return f"{how}; {self.log_tail()}"

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            text = ""
        lines = text.splitlines()[-5:]
        return "its last standard error: " + (" | ".join(lines)[-400:] if lines else "(none)")

    def trim_log(self) -> None:
        """Empty the log once it passes ``_LOG_LIMIT_BYTES``: the program writes to it in append
        mode, so its next lines go to the (new) end, and a chatty program cannot fill the
        disk over a long run."""
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > _LOG_LIMIT_BYTES:
                os.truncate(self.log_path, 0)

    def stop(self) -> None:
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def _read_lines(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            lines.put(line)
    lines.put(_EOF)


def _stop(process: subprocess.Popen[bytes], watchdog: _Watchdog) -> None:
    """Kill the program's process group (it and whatever it started) and reap it."""
    _kill_group(process.pid)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    watchdog.send(b"-%d\n" % process.pid)


class CommandServerBackend:
    """``command-server:python adapter.py`` or, in a pack,
    ``asr: {name: command, argument: "python adapter.py", mode: server}``.

    The program starts when the backend is built (so ``lastmile validate --asr`` starts it
    too) and must print ``{"ready": true}`` within ``start_timeout_s`` (default 300 s); one
    that exits or stays silent is a ConfigError naming its exit status and its last standard
    error lines. Each item must be answered within ``timeout_s`` (default 120 s).

    An item fails, with an error naming the backend, the request and the fix, when the
    program answers ``{"error": ...}``, answers a text that is not a string, answers a line
    that is not a JSON object or carries another id, times out, or dies. In the last three
    cases its process group is killed and it is started again for the next item; after
    ``max_restarts`` restarts in a row with no answer in between (default 3) the run stops
    (:class:`FatalBackendError`): a program that cannot stay up fails every item the same way.
    Retries of an input that already failed since the last answer do not count, so one
    utterance that crashes the program (retried, and under every condition) is recorded as
    failed items while the run goes on.

    Nothing it starts outlives lastmile: the program leads a process group of its own, killed
    on timeout, on :meth:`cancel` / :meth:`close`, and by the command backend's watchdog
    process when lastmile exits or is killed. The cache key holds the command line, the
    content of the program and every file the command line names (``adapter.py``,
    ``--model=m.bin``; a folder's content is not read: set ``cache_salt`` when it changes),
    the sample rate and format, and the mode.
    """

    name = "command-server"

    def __init__(
        self,
        command: str,
        *,
        sample_rate: int = 16000,
        timeout_s: float = 120.0,
        start_timeout_s: float = 300.0,
        max_restarts: int = 3,
        sample_format: str = "pcm16",
        cache_salt: str | None = None,
    ) -> None:
        given: dict[str, Any] = {
            "sample_rate": sample_rate,
            "timeout_s": timeout_s,
            "start_timeout_s": start_timeout_s,
            "max_restarts": max_restarts,
            "sample_format": sample_format,
        }
        if cache_salt is not None:
            given["cache_salt"] = cache_salt
        params = check_params(self.name, given, _PARAMS)
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(
                "command-server: expected the program to start, e.g. "
                f"command-server:python adapter.py, got {command!r}"
            )
        if "{wav}" in command:
            raise ConfigError(
                f"command-server: {command!r}: in server mode each request line carries the "
                "WAV path; remove '{wav}' from the command line (or use command: to start the "
                "program once per item)"
            )
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(
                f"command-server: cannot split {command!r} into words: {exc}"
            ) from exc
        self.command = command
        self.words = words
        self.program = resolve_program(words[0])
        self.sample_rate: int = params["sample_rate"]
        self.timeout_s: float = params["timeout_s"]
        self.start_timeout_s: float = params["start_timeout_s"]
        self.max_restarts: int = params["max_restarts"]
        self.sample_format: str = params["sample_format"]
        self.cache_salt: str | None = params.get("cache_salt")
        self._lock = threading.Lock()  # one request at a time
        self._state_lock = threading.Lock()
        self._server: _Server | None = None
        self._watchdog: _Watchdog | None = None
        self._pid = os.getpid()
        self._failures_in_row = 0  # different inputs failed since the last answer
        self._failed_inputs: set[str] = set()
        self._next_id = 0
        self._tmp = tempfile.mkdtemp(prefix="lastmile-cmd-server-", dir=scratch.current())
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.restarts = 0  # restarts so far (a program that died, timed out or lost step)
        self._server = self._start()

    @classmethod
    def check(cls) -> str | None:
        return None

    @classmethod
    def describe(cls) -> str:
        return "a persistent program speaking JSON lines: command-server:python adapter.py"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> CommandServerBackend:
        params = check_params(cls.name, spec.params, _PARAMS)
        return cls(spec.argument or "", **params)

    def fingerprint(self) -> str:
        return json.dumps(
            {
                "backend": "command",
                "mode": "server",
                "protocol": PROTOCOL_VERSION,
                "command": self.command,
                "files": file_digests(named_files(self.program, self.words)),
                "sample_rate": self.sample_rate,
                "wav": self.sample_format,
                **({"cache_salt": self.cache_salt} if self.cache_salt is not None else {}),
            },
            sort_keys=True,
        )

    # -- the program's life ----------------------------------------------------------------

    def _watch(self) -> _Watchdog:
        if self._watchdog is None or self._watchdog.pid != os.getpid():
            self._watchdog = _Watchdog()  # one per process: a fork gets its own
        return self._watchdog

    def _start(self) -> _Server:
        """Start the program and wait for its ready line; ConfigError when it exits, stays
        silent or says something else first."""
        argv = [str(self.program), *self.words[1:]]
        server = _Server(argv, Path(self._tmp) / "stderr.log", self._watch())
        shown = f"command-server: {self.command}"
        try:
            line = server.next_line(self.start_timeout_s)
        except queue.Empty:
            server.stop()
            raise ConfigError(
                f"{shown}: no ready line within {self.start_timeout_s:g} s (its process group "
                f'was killed); the program must print {{"ready": true}} on standard output '
                f"once it has loaded its model (or raise start_timeout_s); {server.log_tail()}"
            ) from None
        if line is _EOF:
            note = server.exit_note()
            server.stop()
            raise ConfigError(
                f"{shown}: the program {note}; it must stay running and print "
                '{"ready": true}; run the command by hand to see why it stops'
            )
        try:
            ready = json.loads(line)
        except ValueError:
            ready = None
        if not isinstance(ready, dict) or ready.get("ready") is not True:
            server.stop()
            raise ConfigError(
                f'{shown}: expected {{"ready": true}} as the first line on standard output, '
                f"got {_shown(line)}; {_FIX}"
            )
        said = ready.get("sample_rate")
        if said is not None and said != self.sample_rate:
            server.stop()
            raise ConfigError(
                f"{shown}: the program reads audio at {said!r} Hz (its ready line says so) but "
                f"the backend sends {self.sample_rate} Hz; set sample_rate: {said!r} in the spec"
            )
        return server

    def _ensure(self) -> _Server:
        """The running program of this process, restarted when it is gone."""
        with self._state_lock:
            server = self._server
            if server is not None and self._pid == os.getpid() and server.alive:
                return server
            if self._pid != os.getpid():  # a forked copy: the parent's program is not ours
                self._pid, server = os.getpid(), None
            if server is not None:
                server.stop()
            self._server = None
            self.restarts += 1
        try:
            started = self._start()
        except ConfigError as exc:
            raise BackendError(f"restarting failed: {exc}") from exc
        with self._state_lock:
            self._server = started
        return started

    def _lose(self, server: _Server) -> None:
        """Kill ``server`` (out of step, timed out); the next item starts a new one."""
        server.stop()
        with self._state_lock:
            if self._server is server:
                self._server = None

    def cancel(self) -> None:
        """Kill the program and whatever it started: a decode in flight fails at once (the
        run engine calls this when it gives up on a decode); the next item restarts it."""
        with self._state_lock:
            server = self._server
        if server is not None and self._pid == os.getpid():
            server.stop()

    def close(self) -> None:
        """Stop the program, the watchdog and remove the temporary folder."""
        self.cancel()
        with self._state_lock:
            self._server = None
            watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog.pid == os.getpid():
            watchdog.close()
        self._cleanup()

    # -- decoding ----------------------------------------------------------------------------

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        return [self._one(audio) for audio in batch]

    def _one(self, audio: np.ndarray) -> str:
        with self._lock:
            if self._failures_in_row > self.max_restarts:
                raise FatalBackendError(
                    f"command-server: {self.command}: the program failed on "
                    f"{self._failures_in_row} different items in a row (restarted "
                    f"{self.max_restarts} times) without answering; "
                    "the run stops. Run the command by hand and send it a request line to see "
                    "why (or raise max_restarts)"
                )
            self._next_id += 1
            request_id = str(self._next_id)
            if not self._cleanup.alive:  # closed, now used again: a new folder
                self._tmp = tempfile.mkdtemp(prefix="lastmile-cmd-server-", dir=scratch.current())
                self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, True)
            wav = Path(self._tmp) / f"request-{request_id}.wav"
            subtype = _SUBTYPES[self.sample_format]
            data = np.clip(audio, -1, 1) if subtype == "PCM_16" else audio
            sf.write(str(wav), data, self.sample_rate, subtype=subtype)
            digest = hashlib.blake2b(np.ascontiguousarray(data).tobytes(), digest_size=16)
            try:
                text = self._ask(request_id, wav, digest.hexdigest())
            finally:
                wav.unlink(missing_ok=True)
            return text

    def _failed(self, digest: str) -> None:
        """The program failed on this input: a failure in a row unless it is a retry of an
        input that already failed since the last answer (one item that crashes the program
        is recorded as failed; a program that fails on every item stops the run)."""
        if digest not in self._failed_inputs:
            self._failed_inputs.add(digest)
            self._failures_in_row += 1

    def _ask(self, request_id: str, wav: Path, digest: str) -> str:
        shown = f"command-server: request {request_id}"
        try:
            server = self._ensure()
        except BackendError as exc:
            self._failed(digest)
            raise BackendError(f"{shown}: {exc}") from None
        line = json.dumps({"id": request_id, "wav": str(wav)}).encode() + b"\n"
        try:
            server.send(line)
            answer = self._answer(server, request_id)
        except _Restart as exc:
            self._failed(digest)
            self._lose(server)
            raise BackendError(
                f"{shown}: {exc} (the program is restarted for the next item)"
            ) from None
        self._failures_in_row = 0
        self._failed_inputs.clear()
        server.trim_log()
        if "error" in answer:
            raise BackendError(f"{shown}: the program could not decode it: {answer['error']}")
        text = answer.get("text")
        if not isinstance(text, str):
            raise BackendError(
                f'{shown}: "text" must be a string, got {text!r}; {_FIX}'
                if "text" in answer
                else f'{shown}: the answer has neither "text" nor "error": {answer!r}; {_FIX}'
            )
        return text.strip()

    def _answer(self, server: _Server, request_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        try:
            line = server.next_line(max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise _Restart(
                f"no answer within {self.timeout_s:g} s (timeout_s); its process group was killed"
            ) from None
        if line is _EOF:
            raise _Restart(f"the program {server.exit_note()}")
        try:
            answer = json.loads(line)
        except ValueError:
            raise _Restart(
                f"the program answered a line that is not JSON: {_shown(line)}; {_FIX}"
            ) from None
        if not isinstance(answer, dict):
            raise _Restart(f"the answer is not a JSON object: {_shown(line)}; {_FIX}")
        if "id" not in answer:
            raise _Restart(f'the answer has no "id": {_shown(line)}; {_FIX}')
        if str(answer["id"]) != request_id:
            raise _Restart(
                f"the answer carries id {answer['id']!r}, expected {request_id!r}: {_shown(line)}"
                "; answer each request with its own id, in order"
            )
        return answer


def _shown(line: bytes | None) -> str:
    text = (line or b"").decode("utf-8", "replace").strip()
    return repr(text if len(text) <= 200 else text[:200] + "...")
