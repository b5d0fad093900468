"""`lastmile cache info | clear`."""

from __future__ import annotations

import json

import click

__all__ = ["command"]


@click.group("cache")
def command() -> None:
    """The transcript cache (SQLite under the user cache folder)."""


@command.command("info")
@click.option("--json", "as_json", is_flag=True)
def info_command(as_json: bool) -> None:
    """Where the cache is, how many transcripts and report figure sets it holds, its size.

    \b
    Example:
      lastmile cache info
    """
    from lastmile.run import TranscriptCache

    info = TranscriptCache().info()
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(
        f"path={info['path']}\nentries={info['entries']}\nbackends={info['backends']}\n"
        f"figure_sets={info['figure_sets']}\nbytes={info['bytes']}"
    )


@command.command("clear")
def clear_command() -> None:
    """Delete every cached transcript and report figure.

    \b
    Example:
      lastmile cache clear
    """
    from lastmile.run import TranscriptCache

    n = TranscriptCache().clear()
    click.echo(f"removed {n} cached transcript(s)")
