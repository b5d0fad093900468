"""The `lastmile` command line: a thin face over the library, one module per command group.

Exit codes, for every command: 0 clean, 1 a condition flagged uneven (or a regression), 2 bad
input or usage, 3 a runtime failure (one line naming what failed and where; the traceback with
``--debug`` or ``LASTMILE_DEBUG=1``), 130 interrupted. The group translates whatever escapes a
command (:func:`lastmile.cli.common.translate_error`), so no command needs to do it itself.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from lastmile import __version__
from lastmile.cli.common import EXIT_INTERRUPTED, flush_warnings, show_warnings, translate_error

__all__ = ["cli", "main"]


class LastmileGroup(click.Group):
    """A click group whose commands, and their subcommands, exit with lastmile's codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            raise translate_error(exc) from exc


@click.group(
    cls=LastmileGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="lastmile")
@click.option(
    "--debug",
    is_flag=True,
    envvar="LASTMILE_DEBUG",
    help="Show the traceback of a failure (also LASTMILE_DEBUG=1).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """lastmile: does your speech recognizer get worse on your site — and worse for some
    accent groups than for others?

    Exit codes: 0 clean, 1 a condition flagged uneven, 2 bad input or usage, 3 runtime
    failure, 130 interrupted.

    \b
    Example:
      lastmile demo
      lastmile run scenarios/hospital-imaging.yaml --limit 50
    """
    ctx.meta["lastmile.debug"] = debug
    show_warnings()
    ctx.call_on_close(flush_warnings)  # audio conversions counted by kind, said at the end


def _register() -> None:
    from lastmile.cli.run import demo_command, render_command, run_command
    from lastmile.cli.validate import schema_command, validate_command

    for cmd in (demo_command, run_command, validate_command, schema_command, render_command):
        cli.add_command(cmd)
    modules = ("asr", "cache", "report", "capture", "profiles", "pack", "init", "power", "compare")
    for module in (*modules, "hunt"):
        mod = importlib.import_module(f"lastmile.cli.{module}")
        cli.add_command(mod.command)


_register()


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:  # outside a command (while starting up)
        click.echo("lastmile: interrupted", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
