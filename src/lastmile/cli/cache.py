"""`lastmile cache info | clear`: both work on a damaged cache."""

from __future__ import annotations

import json

import click

from lastmile.cli.common import handle_errors

__all__ = ["command"]


@click.group("cache")
def command() -> None:
    """The transcript cache (SQLite under the user cache folder)."""


@command.command("info")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def info_command(as_json: bool) -> None:
    """Where the cache is, whether it is usable, how many transcripts and report figure sets
    it holds, its size, and any damaged cache files set aside earlier. Reads only: a damaged
    cache is reported (state: damaged), not changed.

    \b
    Example:
      lastmile cache info
    """
    from lastmile.run.store import inspect_cache

    info = inspect_cache()
    if as_json:
        click.echo(json.dumps(info))
        return
    lines = [
        f"path={info['path']}",
        f"state={info['state']}",
        f"entries={info['entries']}",
        f"backends={info['backends']}",
        f"figure_sets={info['figure_sets']}",
        f"bytes={info['bytes']}",
    ]
    if info["set_aside"]:
        lines.append(
            f"set_aside={len(info['set_aside'])} damaged file(s), {info['set_aside_bytes']} "
            "bytes (lastmile cache clear removes them)"
        )
    click.echo("\n".join(lines))
    if info["state"].startswith(("damaged", "unreadable")):
        click.echo(
            "the next run moves the damaged cache aside and starts a fresh one; "
            "`lastmile cache clear` does it now",
            err=True,
        )


@command.command("clear")
@handle_errors
def clear_command() -> None:
    """Delete every cached transcript and report figure; a damaged cache, and damaged files
    set aside earlier, are removed too.

    \b
    Example:
      lastmile cache clear
    """
    from lastmile.run.store import TranscriptCache, inspect_cache

    cache = TranscriptCache()  # a damaged cache is moved aside here (and said)
    try:
        damaged = len(inspect_cache(cache.path)["set_aside"])
        n = cache.clear()
    finally:
        cache.close()
    text = f"removed {n} cached transcript(s)"
    if damaged:
        text += f" and {damaged} damaged cache file(s) set aside"
    click.echo(text)
