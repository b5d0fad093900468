"""Shared pieces of the CLI: exit codes, error translation, option decorators, progress."""

from __future__ import annotations

import errno
import functools
import io
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, TypeVar

import click

import lastmile
from lastmile.errors import AudioError, ConfigError, LastmileError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CLEAN",
    "EXIT_FLAGGED",
    "EXIT_INTERRUPTED",
    "EXIT_RUNTIME",
    "BadInput",
    "RuntimeFailure",
    "asr_option",
    "console",
    "conversion_kind",
    "debug_enabled",
    "default_workers",
    "describe_failure",
    "flush_warnings",
    "handle_errors",
    "progress_reporter",
    "quiet_option",
    "show_warnings",
    "summarize_conversions",
    "translate_error",
    "verbose_enabled",
    "verbose_option",
]

EXIT_CLEAN = 0
EXIT_FLAGGED = 1
EXIT_BAD_INPUT = 2
EXIT_RUNTIME = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(click.ClickException):
    """A user mistake: exit code 2, message without a traceback."""

    exit_code = EXIT_BAD_INPUT


class RuntimeFailure(click.ClickException):
    """Something failed while running: exit code 3."""

    exit_code = EXIT_RUNTIME


def debug_enabled() -> bool:
    """Whether tracebacks are shown: ``lastmile --debug ...`` or ``LASTMILE_DEBUG=1``."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get("lastmile.debug"):
        return True
    return os.environ.get("LASTMILE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _where(exc: BaseException) -> str:
    """Where ``exc`` was raised: the innermost frame as ``module.py:line in function``, and
    the innermost frame of lastmile's own code when that is another one."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    frames = traceback.extract_tb(tb)
    package = Path(lastmile.__file__).resolve().parent

    def ours(frame: traceback.FrameSummary) -> bool:
        return Path(frame.filename).resolve().is_relative_to(package)

    def short(frame: traceback.FrameSummary) -> str:
        path = Path(frame.filename).resolve()
        name = f"lastmile/{path.relative_to(package)}" if ours(frame) else path.name
        return f"{name}:{frame.lineno} in {frame.name}"

    text = short(frames[-1])
    own = [f for f in frames if ours(f)]
    if own and own[-1] is not frames[-1]:
        text += f", called from {short(own[-1])}"
    return text


def _path_in_traceback(exc: BaseException) -> str | None:
    """The file an OSError without a file name was about (``f.write`` and ``os.fsync`` do
    not say): an open file, or a path held by the frame that failed, innermost first."""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):
        local = frame.f_locals
        for value in local.values():
            name = getattr(value, "name", None) if isinstance(value, io.IOBase) else None
            if isinstance(name, str):
                return name
        for name in ("self", "path", "tmp", "target", "dest", "out", "filename"):
            value = local.get(name)
            if isinstance(value, PurePath):
                return str(value)
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_failure(exc: BaseException) -> str:
    """One line saying what failed and where, for an error lastmile did not expect."""
    if isinstance(exc, OSError):
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        if not paths:
            found = _path_in_traceback(exc)
            paths = [found] if found else []
        what = exc.strerror or str(exc)
        where = f" ({_where(exc)})" if _where(exc) else ""
        if paths:
            head = f"{' -> '.join(paths)}: {what} [{type(exc).__name__}]"
        else:
            head = f"{what} [{type(exc).__name__}]{where}"
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            head += (
                "; free space on that disk, then try again (a run goes on with --resume RUN_DIR)"
            )
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            head += "; choose a folder you can write to"
        return head
    message = _one_line(str(exc)) or "(no message)"
    involved = _path_in_traceback(exc)
    file_note = f"; file: {involved}" if involved else ""
    return (
        f"unexpected {type(exc).__name__}: {message} (at {_where(exc)}{file_note}); "
        "this is a bug in lastmile or a plugin: rerun with --debug for the traceback"
    )


def translate_error(exc: BaseException) -> click.exceptions.Exit | click.ClickException:
    """The click exception (and exit code) for an exception escaping a command: lastmile's
    input errors exit 2, every other failure exits 3 in one line (the traceback only with
    ``--debug``), Ctrl-C exits 130."""
    if debug_enabled() and not isinstance(exc, KeyboardInterrupt):
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    if isinstance(exc, KeyboardInterrupt):
        ctx = click.get_current_context(silent=True)
        meta = ctx.find_root().meta if ctx is not None else {}
        hint = ""
        if "lastmile.run_dir" in meta:  # a run: say how to continue it
            hint = (
                "; finished items are kept in the run folder's store: continue with "
                f"--resume {meta['lastmile.run_dir'] or 'RUN_DIR'}"
            )
        click.echo(f"lastmile: interrupted{hint}", err=True)
        return click.exceptions.Exit(EXIT_INTERRUPTED)
    if isinstance(exc, ConfigError | AudioError):
        return BadInput(str(exc))
    if isinstance(exc, LastmileError):  # BackendError, StorageError, a failed run, ...
        return RuntimeFailure(str(exc))
    return RuntimeFailure(describe_failure(exc))


def handle_errors(func: F) -> F:
    """Turn what escapes a command into the right exit code and message (see
    :func:`translate_error`); the ``lastmile`` group does the same for every command."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            raise translate_error(exc) from exc

    return wrapper  # type: ignore[return-value]


_DOWNMIX = re.compile(r"downmixed (\d+) channels to mono")
_RESAMPLE = re.compile(r"resampled (\d+) Hz to (\d+) Hz")


def conversion_kind(note: str) -> str:
    """What a conversion note did, without the file: ``downmixed from stereo``,
    ``resampled from 44.1 kHz to 16 kHz``; the note itself when it is another kind."""
    if m := _DOWNMIX.search(note):
        n = int(m.group(1))
        return "downmixed from stereo" if n == 2 else f"downmixed from {n} channels"
    if m := _RESAMPLE.search(note):
        return f"resampled from {int(m.group(1)) / 1000:g} kHz to {int(m.group(2)) / 1000:g} kHz"
    return note


def summarize_conversions(files_by_kind: dict[str, set[str]]) -> str:
    """``47 files downmixed from stereo, 47 resampled from 44.1 kHz to 16 kHz``."""
    parts = []
    for k, (kind, files) in enumerate(files_by_kind.items()):
        noun = ("file" if len(files) == 1 else "files") if k == 0 else ""
        parts.append(" ".join(p for p in (str(len(files)), noun, kind) if p))
    return ", ".join(parts)


def verbose_enabled() -> bool:
    """Whether every file is listed instead of counts per kind: ``--verbose``, or a command
    without that option (which could not ask for the list)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return True
    meta = ctx.find_root().meta
    return bool(meta.get("lastmile.verbose") or not meta.get("lastmile.counts"))


class _EchoHandler(logging.Handler):
    """lastmile's log warnings on standard error as ``warning: ...`` (through click, so
    they reach whatever standard error is at the time). Audio conversions (records carrying
    ``lastmile_conversion``) are said once per file and kind: listed with ``--verbose``,
    otherwise counted and said in one line by :func:`flush_warnings`."""

    def __init__(self, level: int) -> None:
        super().__init__(level=level)
        self.seen: set[str] = set()
        self.pending: dict[str, set[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            note = getattr(record, "lastmile_conversion", None)
            if note is None:
                click.echo(f"{record.levelname.lower()}: {record.getMessage()}", err=True)
                return
            text = record.getMessage()
            if text in self.seen:
                return
            self.seen.add(text)
            if verbose_enabled():
                click.echo(f"warning: {text}", err=True)
            else:
                where = text[: -len(note)].rstrip(": ") if text.endswith(note) else text
                self.pending.setdefault(conversion_kind(str(note)), set()).add(where)
        except Exception:
            self.handleError(record)

    def flush_pending(self) -> None:
        if self.pending:
            line = summarize_conversions(self.pending)
            self.pending = {}
            click.echo(f"warning: {line}; --verbose lists them", err=True)


def show_warnings() -> None:
    """Show the ``lastmile`` logger's warnings on standard error (one handler per process;
    each command starts with nothing said or counted)."""
    logger = logging.getLogger("lastmile")
    for handler in logger.handlers:
        if isinstance(handler, _EchoHandler):
            handler.seen, handler.pending = set(), {}
            return
    logger.addHandler(_EchoHandler(level=logging.WARNING))


def flush_warnings() -> None:
    """Say the audio conversions counted so far, one line for all their kinds."""
    for handler in logging.getLogger("lastmile").handlers:
        if isinstance(handler, _EchoHandler):
            handler.flush_pending()


def console() -> Any:
    """A rich console for standard output: the terminal's width; off a terminal the width
    ``COLUMNS`` gives (at least 40), else 100 columns (rich would otherwise assume 80)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(emoji=False)
    columns = os.environ.get("COLUMNS", "").strip()
    width = int(columns) if columns.isdigit() and int(columns) >= 40 else 100
    return Console(width=width, emoji=False)


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def asr_option(func: F) -> F:
    return click.option(
        "--asr",
        "asr",
        default=None,
        metavar="SPEC",
        help="ASR backend spec, overriding the pack's: faster-whisper, "
        "'faster-whisper:/models/x?beam_size=5', pocketsphinx, 'command:./my_asr --wav {wav}'.",
    )(func)


def verbose_option(func: F) -> F:
    """``--verbose``: list every file an audio conversion or warning concerns."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        meta = ctx.find_root().meta
        meta["lastmile.counts"] = True  # this command can list: count unless asked to
        if value:
            meta["lastmile.verbose"] = True
        return value

    return click.option(
        "--verbose",
        "-v",
        is_flag=True,
        expose_value=False,
        callback=remember,
        is_eager=True,
        help="List every file a warning concerns (by default: one line per kind, with counts).",
    )(func)


def quiet_option(func: F) -> F:
    return click.option("--quiet", "-q", is_flag=True, help="No progress output.")(func)


def progress_reporter(
    *, quiet: bool, label: str
) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """A progress callback and a closer: a rich bar on a terminal, plain lines otherwise."""
    if quiet:
        return (lambda _p: None), (lambda: None)
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn(f"[bold]{escape(label)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} items/s"),
            TextColumn("cached {task.fields[cached]} failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        bar.start()
        task_id = bar.add_task(label, total=None, rate=0.0, cached=0, failed=0)

        def update(p: Any) -> None:
            rate = (p.done - p.cached) / p.elapsed_s if p.elapsed_s > 0 else 0.0
            bar.update(
                task_id,
                total=p.total,
                completed=p.done,
                rate=rate,
                cached=p.cached,
                failed=p.failed,
            )

        return update, bar.stop

    state = {"last": -1.0}

    def plain(p: Any) -> None:
        if p.done == p.total or p.elapsed_s - state["last"] >= 10.0:
            state["last"] = p.elapsed_s
            click.echo(
                f"{label}: {p.done}/{p.total} items, {p.cached} cached, {p.failed} failed, "
                f"{p.elapsed_s:.0f} s",
                err=True,
            )

    return plain, (lambda: None)
