"""The `lastmile` command line: a thin face over the library, one module per command group."""

from __future__ import annotations

import importlib

import click

from lastmile import __version__

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lastmile")
def cli() -> None:
    """lastmile: does your speech recognizer get worse on your site — and worse for some
    accent groups than for others?

    \b
    Example:
      lastmile demo
      lastmile run scenarios/hospital-imaging.yaml --limit 50
    """


def _register() -> None:
    from lastmile.cli.run import demo_command, render_command, run_command
    from lastmile.cli.validate import schema_command, validate_command

    for cmd in (demo_command, run_command, validate_command, schema_command, render_command):
        cli.add_command(cmd)
    for module in ("asr", "cache", "report", "capture", "profiles", "pack"):
        mod = importlib.import_module(f"lastmile.cli.{module}")
        cli.add_command(mod.command)


_register()


def main() -> None:
    cli()
