"""`lastmile report RUN_DIR`: rebuild every report of a run folder without decoding again."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lastmile.cli.common import EXIT_CLEAN, EXIT_FLAGGED, handle_errors
from lastmile.cli.common import console as make_console

__all__ = ["command"]


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--html/--no-html",
    "html",
    default=True,
    show_default=True,
    help="Write report.html (self-contained: plots and audio inside).",
)
@click.option(
    "--md/--no-md",
    "md",
    default=True,
    show_default=True,
    help="Write summary.md (for CI job summaries).",
)
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of the table.")
@handle_errors
def command(run_dir: Path, html: bool, md: bool, as_json: bool) -> None:
    """Rebuild summary.json, summary.md and report.html of RUN_DIR from its run.json and
    items.csv (no audio is decoded again), and print the condition × group table.

    Exit 0 when no condition is uneven, 1 when one is, 2 for an incomplete or unreadable run
    folder.

    \b
    Example:
      lastmile report lastmile-runs/hospital-imaging-20240611-101500
      lastmile report RUN_DIR --no-html --json > summary.json
    """

    from lastmile.report import build_summary, print_summary, write_reports

    summary = build_summary(run_dir)
    written = write_reports(run_dir, summary=summary, html=html, md=md)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        console = make_console()
        print_summary(summary, console)
        console.print("Wrote " + ", ".join(str(p) for p in written), markup=False)
    flags = [c.get("flag") for c in summary["analysis"]["conditions"]]
    click.get_current_context().exit(EXIT_FLAGGED if "uneven" in flags else EXIT_CLEAN)
