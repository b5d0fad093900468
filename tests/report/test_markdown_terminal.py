import io
import re

from rich.console import Console

from lastmile.report import print_summary, render_markdown


def test_markdown_has_headline_findings_and_table(built_run):
    folder, summary = built_run
    text = (folder / "summary.md").read_text(encoding="utf-8")
    assert text == render_markdown(summary)
    assert "**1 of 2 degraded conditions are uneven across groups.**" in text
    assert "| Condition | Verdict | Gap U (95% CI) | q | caribbean | scottish | us |" in text
    row = next(line for line in text.splitlines() if line.startswith("| hum 60 Hz at 0 dB SNR |"))
    assert "❌ uneven" in row
    assert row.count("|") == 8  # 7 cells
    assert "caribbean speakers lose" in text


def test_terminal_table_fits_100_columns(built_run):
    _, summary = built_run
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
    print_summary(summary, console)
    out = buffer.getvalue()
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    # Numbers never wrap: every WER and Δ cell appears whole on one line.
    cell = summary["analysis"]["conditions"][2]["groups"][0]
    wer = cell["wer_pct"]
    assert re.search(rf"{wer['value']:.1f} \({wer['ci_low']:.1f}–{wer['ci_high']:.1f}\)", out)
    header = next(line for line in lines if "Condition" in line)
    assert "WER % (95% CI)" in header and "Verdict" in header
    table_rows = [line for line in lines if re.search(r"\b(caribbean|scottish|us)\s+4\s", line)]
    assert len(table_rows) == 9  # 3 conditions × 3 groups, one line each
    assert "uneven" in out and "reference" in out
