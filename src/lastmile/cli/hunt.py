"""`lastmile hunt PACK --budget N`: find the conditions that hurt one group most, confirmed on
speakers the search never saw."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lastmile.cli.common import (
    EXIT_FLAGGED,
    asr_option,
    default_workers,
    handle_errors,
    quiet_option,
)

__all__ = ["command"]


@click.command("hunt")
@click.argument("pack", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    required=True,
    help="Decodes (utterance × condition) the hunt may spend, search and confirmation together.",
)
@click.option(
    "--target",
    metavar="GROUP",
    default=None,
    help="Search for the largest gap of this group's degradation to the other groups' mean "
    "(default: the largest disparity between any two groups).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1, max=50),
    default=None,
    help="Candidates re-run on the confirmation speakers (default: the pack's hunt.top, 3).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The hunt folder (default lastmile-hunts/NAME-TIMESTAMP).",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Continue the hunt in this folder (decoded items are kept; same options required).",
)
@asr_option
@click.option(
    "--no-cache", is_flag=True, help="Decode everything; do not use the transcript cache."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes per stage (default: the number of cores here).",
)
@click.option("--json", "as_json", is_flag=True, help="Print hunt.json's findings as JSON.")
@quiet_option
@handle_errors
def command(
    pack: Path,
    budget: int,
    target: str | None,
    top: int | None,
    out: Path | None,
    resume: Path | None,
    asr: str | None,
    no_cache: bool,
    workers: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Search the pack's `hunt:` space for the conditions with the largest disparity between
    groups (or the largest gap for --target) on half of every group's speakers, then re-run
    the best --top on the other half; only those verdicts (Benjamini–Hochberg across the top)
    are findings. Writes hunt.json, trace.json, report.html and PACK.hunt.yaml (a regression
    pack of the confirmed conditions) into the hunt folder.

    Exit codes: 0 nothing confirmed, 1 a condition confirmed uneven, 2 bad input, 3 failure.

    \b
    Example:
      lastmile hunt scenarios/demo.yaml --budget 1500 --out hunt-demo
      lastmile hunt scenarios/demo.yaml --budget 1500 --target scottish --top 2
    """
    from lastmile.hunt.engine import HuntOptions, hunt_pack

    if out is not None and resume is not None:
        raise click.UsageError("give --out or --resume, not both")

    def step(text: str) -> None:
        if not quiet:
            click.echo(f"hunt: {text}", err=True)

    outcome = hunt_pack(
        pack,
        HuntOptions(
            budget=budget,
            target=target,
            top=top,
            out=out,
            resume=resume,
            asr=asr,
            use_cache=not no_cache,
            workers=workers or default_workers(),
        ),
        on_step=step,
    )
    result = outcome.result
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in result.findings], indent=2))
    else:
        click.echo(
            f"{result.decodes} decodes ({result.search_decodes} searching, "
            f"{len(result.trace)} evaluations); confirmed on held-out speakers:"
        )
        if not result.confirmed:
            click.echo("  none")
        for f in result.findings:
            d = f.disparity_pts
            ci = (
                f"[{d['ci_low']:.1f}, {d['ci_high']:.1f}]"
                if d.get("ci_low") is not None and d.get("ci_high") is not None
                else "(no interval)"
            )
            value = "–" if d.get("value") is None else f"{d['value']:.1f}"
            click.echo(
                f"  {'*' if f.confirmed else ' '} {f.condition['id']}: {f.flag}, gap {value} "
                f"pts {ci}, {f.worst_group} vs {f.best_group}"
            )
        for note in result.notes:
            click.echo(f"  note: {note}")
        click.echo(f"Hunt folder: {outcome.hunt_dir} (report.html)")
    if result.confirmed:
        raise SystemExit(EXIT_FLAGGED)
