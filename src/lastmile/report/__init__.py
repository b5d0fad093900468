"""Reports of a run folder: summary.json, summary.md, report.html and the terminal table."""

from lastmile.report.findings import findings
from lastmile.report.html import render_html
from lastmile.report.markdown import render_markdown
from lastmile.report.run_folder import RUN_SCHEMA_VERSION, Example, RunFolder, load_run
from lastmile.report.summary import (
    SUMMARY_SCHEMA_VERSION,
    build_summary,
    summarize,
    summary_schema,
)
from lastmile.report.terminal import print_summary, summary_table
from lastmile.report.write import write_reports

__all__ = [
    "RUN_SCHEMA_VERSION",
    "SUMMARY_SCHEMA_VERSION",
    "Example",
    "RunFolder",
    "build_summary",
    "findings",
    "load_run",
    "print_summary",
    "render_html",
    "render_markdown",
    "summarize",
    "summary_schema",
    "summary_table",
    "write_reports",
]
