"""Writing summary.json, summary.md and report.html into a run folder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lastmile.report.html import render_html
from lastmile.report.markdown import render_markdown
from lastmile.report.plots import FigureStore
from lastmile.report.run_folder import load_examples
from lastmile.report.summary import build_summary
from lastmile.run.files import write_text_atomic

__all__ = ["write_reports"]


def write_reports(
    run_dir: str | Path,
    *,
    summary: Mapping[str, Any] | None = None,
    html: bool = True,
    md: bool = True,
    figure_store: FigureStore | None = None,
) -> list[Path]:
    """Write ``summary.json`` (always), ``summary.md`` and ``report.html`` into ``run_dir``.

    ``summary`` defaults to :func:`lastmile.report.build_summary` of ``run_dir``. Figures
    already drawn from the same data are taken from ``figure_store`` (the run engine passes
    its transcript cache). Returns the paths written, in that order.
    """
    folder = Path(run_dir)
    data = dict(summary) if summary is not None else build_summary(folder)
    written = [
        write_text_atomic(
            folder / "summary.json",
            json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        )
    ]
    if md:
        written.append(write_text_atomic(folder / "summary.md", render_markdown(data)))
    if html:
        page = render_html(data, examples=load_examples(folder), figure_store=figure_store)
        written.append(write_text_atomic(folder / "report.html", page))
    return written
