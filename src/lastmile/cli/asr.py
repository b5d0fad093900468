"""`lastmile asr list`."""

from __future__ import annotations

import click

__all__ = ["command"]


@click.group("asr")
def command() -> None:
    """ASR backends (entry-point group lastmile.asr)."""


@command.command("list")
def list_command() -> None:
    """Show installed backends and whether they can run here.

    \b
    Example:
      lastmile asr list
    """
    from rich.table import Table
    from rich.text import Text

    from lastmile.asr import available_backends
    from lastmile.cli.common import console

    table = Table("backend", "usable", "details", "entry point")
    for info in available_backends():  # Text: "pip install 'lastmile[x]'" is not markup
        cells = (info.name, "yes" if info.usable else "no", info.detail, info.target)
        table.add_row(*(Text(str(cell)) for cell in cells))
    console().print(table)
