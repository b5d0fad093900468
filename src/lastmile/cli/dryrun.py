"""`lastmile run PACK --dry-run`: the items, audio minutes and estimated cost, nothing sent."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["print_dry_run"]


def print_dry_run(
    pack: Path,
    *,
    asr: str | None,
    limit: int | None,
    no_cache: bool,
    as_json: bool,
    conditions: tuple[str, ...] | None = None,
) -> None:
    """Print what a run of ``pack`` would send to its backend; nothing is rendered, decoded,
    sent or written."""
    from rich.markup import escape

    from lastmile.cli.common import console as make_console
    from lastmile.run.estimate import plan_audio

    plan = plan_audio(pack, asr=asr, limit=limit, use_cache=not no_cache, conditions=conditions)
    if as_json:
        click.echo(json.dumps(plan.as_dict(), indent=2))
        return
    to_send = plan.n_items - plan.n_cached
    console = make_console()
    console.print(f"Dry run of {escape(Path(plan.pack).name)} with {escape(plan.backend)}:")
    console.print(
        f"  {plan.n_items} items, {plan.n_cached} in the transcript cache, {to_send} to send"
    )
    console.print(
        f"  audio to send: {plan.audio_minutes:.2f} min ({plan.audio_s:.1f} s)", highlight=False
    )
    if plan.estimated_usd is None:
        console.print("  estimated cost: no price list for this backend")
    else:
        console.print(
            f"  estimated cost: ${plan.estimated_usd:.2f} (published list prices; "
            "the backend's documentation says which)",
            highlight=False,
        )
    console.print("Nothing was sent. Run again without --dry-run to decode.")
