"""`lastmile compare RUN_A RUN_B`: two runs of one pack side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lastmile.cli.common import EXIT_CLEAN, EXIT_FLAGGED, handle_errors
from lastmile.cli.common import console as make_console

__all__ = ["command"]


@click.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the comparison as a self-contained HTML page to this file.",
)
@click.option(
    "--allow-normalizer-change",
    is_flag=True,
    help="Compare runs scored with different text normalizers (refused by default: their WERs "
    "are not comparable).",
)
@handle_errors
def command(
    run_a: Path, run_b: Path, as_json: bool, html_path: Path | None, allow_normalizer_change: bool
) -> None:
    """Compare RUN_B with RUN_A: two run folders of the same pack (same conditions, seed and
    corpus) with different recognizers, or two versions of one. Per condition and group: WER
    and Δ of each, the change B − A with a paired speaker-level interval, and whether B
    degrades more or less unevenly across groups than A.

    Items that failed in either run are left out of both. Runs of different items (seed,
    conditions or corpus differ) are refused, and so are different normalizers unless
    --allow-normalizer-change.

    Exit 0 when B is not significantly more uneven than A under any condition, 1 when it is
    under some condition, 2 for bad input (runs that differ, an incomplete run folder), 3 for
    a runtime failure.

    \b
    Example:
      lastmile run pack.yaml --asr faster-whisper --out runs/whisper
      lastmile run pack.yaml --asr 'command:./vendor_b.sh {wav}' --out runs/vendor-b
      lastmile compare runs/whisper runs/vendor-b --html compare.html
    """
    from lastmile.analysis.compare import compare_runs
    from lastmile.report.compare import comparison_html, comparison_lines
    from lastmile.run.files import write_text_atomic

    if html_path is not None and not html_path.parent.is_dir():
        raise click.BadParameter(
            f"folder {html_path.parent} does not exist; create it or choose another path",
            param_hint="--html",
        )
    comparison = compare_runs(run_a, run_b, allow_normalizer_change=allow_normalizer_change)
    data = comparison.to_dict()
    if html_path is not None:
        write_text_atomic(html_path, comparison_html(data))
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        console = make_console()
        for line in comparison_lines(data):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if html_path is not None:
            console.print(f"Wrote {html_path}", markup=False, highlight=False)
    click.get_current_context().exit(EXIT_FLAGGED if comparison.more_uneven else EXIT_CLEAN)
