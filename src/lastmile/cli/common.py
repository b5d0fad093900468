"""Shared pieces of the CLI: exit codes, error translation, option decorators, progress."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lastmile.errors import AudioError, BackendError, ConfigError, LastmileError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CLEAN",
    "EXIT_FLAGGED",
    "EXIT_RUNTIME",
    "BadInput",
    "RuntimeFailure",
    "asr_option",
    "console",
    "default_workers",
    "handle_errors",
    "progress_reporter",
    "quiet_option",
]

EXIT_CLEAN = 0
EXIT_FLAGGED = 1
EXIT_BAD_INPUT = 2
EXIT_RUNTIME = 3

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(click.ClickException):
    """A user mistake: exit code 2, message without a traceback."""

    exit_code = EXIT_BAD_INPUT


class RuntimeFailure(click.ClickException):
    """Something failed while running: exit code 3."""

    exit_code = EXIT_RUNTIME


def handle_errors(func: F) -> F:
    """Turn lastmile's own errors into click errors with the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, AudioError) as exc:
            raise BadInput(str(exc)) from exc
        except BackendError as exc:
            raise RuntimeFailure(str(exc)) from exc
        except LastmileError as exc:
            raise RuntimeFailure(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def console() -> Any:
    """A rich console for standard output: the terminal's width, or 100 columns when the
    output is not a terminal (rich would otherwise assume 80 and wrap the tables)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=100)


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
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn(f"[bold]{label}"),
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
