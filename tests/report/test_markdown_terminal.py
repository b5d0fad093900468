import io
import re

import pytest
from click.testing import CliRunner
from rich.console import Console

from lastmile.cli.report import command as report_command
from lastmile.report import build_summary, print_summary, render_markdown

from ._factory import CONDITIONS, run_meta, write_run


def test_markdown_has_headline_findings_and_table(built_run):
    folder, summary = built_run
    text = (folder / "summary.md").read_text(encoding="utf-8")
    assert text == render_markdown(summary)
    assert "**2 of 2 degraded conditions are uneven across groups.**" in text
    assert "| Condition | Verdict | Gap U (95% CI) | q | caribbean | scottish | us |" in text
    row = next(line for line in text.splitlines() if line.startswith("| hum 60 Hz at 0 dB SNR |"))
    assert "❌ uneven" in row
    assert row.count("|") == 8  # 7 cells
    assert "caribbean speakers lose" in text


VERDICTS = ("uneven", "even", "inconclusive", "insufficient-data", "reference")


def _terminal(summary, width: int) -> str:
    buffer = io.StringIO()
    print_summary(summary, Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue()


def _check_layout(out: str, summary, width: int) -> None:
    """No line wider than ``width``; every verdict, condition id, group name and number whole."""
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width, max(lines, key=len)
    words = {w for line in lines for w in line.split()}
    for cond in summary["analysis"]["conditions"]:
        verdict = "reference" if cond["is_clean"] else cond["flag"]
        line = next(line for line in lines if line.startswith(cond["id"] + "  "))
        assert re.search(rf"(^|\s){re.escape(verdict)}(\s|$)", line), line
        for cell in cond["groups"]:
            for part in str(cell["group"]).split():
                assert part in words, part
            wer = cell["wer_pct"]
            if wer["value"] is not None:
                assert f"{wer['value']:.1f} ({wer['ci_low']:.1f}" in out
    # partial verdict words (the old table cut them to "Verdic", "inconc", "refere")
    for verdict in VERDICTS:
        for cut in range(4, len(verdict)):
            stub = verdict[:cut]
            assert not re.search(rf"(^|\s){re.escape(stub)}$", out, re.M), stub


@pytest.mark.parametrize("width", [80, 120])
def test_terminal_table_fits_the_width_with_whole_words(built_run, width):
    _, summary = built_run
    out = _terminal(summary, width)
    _check_layout(out, summary, width)
    lines = out.splitlines()
    # one line per condition with its verdict, gap and q; group rows carry numbers only
    line = next(line for line in lines if line.startswith("hum60_snr0  "))
    cond = next(c for c in summary["analysis"]["conditions"] if c["id"] == "hum60_snr0")
    assert f"U {cond['disparity_pts']['value']:.1f}" in line and "q " in line
    group_rows = [line for line in lines if re.match(r"^  (caribbean|scottish|us)\s+\d+\s", line)]
    assert len(group_rows) == 9  # 3 conditions × 3 groups, one line each
    assert not any("q " in row or "U " in row for row in group_rows)
    # ids as the pack wrote them, generated labels in the legend below the table
    legend = [line for line in lines if line.startswith("hum60_snr10 ") and "hum 60 Hz" in line]
    assert legend == ["hum60_snr10  hum 60 Hz at 10 dB SNR"]
    header = next(line for line in lines if "Spk" in line)
    assert "WER % (95% CI)" in header and "Δ pts (95% CI)" in header


def test_terminal_long_ids_and_group_names_fit_80_columns(tmp_path):
    long_id = "hospital-imaging-suite_snr5_narrowband-handset_g711u"
    conditions = [dict(c) for c in CONDITIONS]
    conditions[1] = {**conditions[1], "id": long_id}
    meta = run_meta(conditions=[{**c, "spec": {}} for c in conditions])
    groups = ("caribbean english (jamaica)", "scottish", "south african english speakers")
    folder = write_run(
        tmp_path / "r", meta=meta, groups=groups, examples=False, conditions=conditions
    )
    summary = build_summary(folder)
    out = _terminal(summary, 80)
    _check_layout(out, summary, 80)
    assert long_id in out  # never split


@pytest.mark.parametrize("columns", [80, 120])
def test_cli_respects_columns_off_a_terminal(built_run, columns):
    folder, summary = built_run
    result = CliRunner().invoke(
        report_command, [str(folder), "--no-html", "--no-md"], env={"COLUMNS": str(columns)}
    )
    assert result.exit_code in (0, 1), result.output
    table = result.output[: result.output.index("Wrote ")]
    _check_layout(table, summary, columns)
    longest = max(len(line) for line in table.splitlines())
    assert longest > 80 if columns == 120 else longest <= 80  # the width is used, not fixed


def test_markdown_renders_literally_without_html_entities(tmp_path):
    """summary.md through a CommonMark renderer with GitHub's tables: what a reader sees is
    the names and the backend fingerprint as written; the file holds no HTML entity."""
    import html

    from markdown_it import MarkdownIt

    fingerprint = '{"backend": "faster-whisper", "model": "tiny.en", "beam_size": 1}'
    meta = run_meta(
        backend={"spec": "faster-whisper", "name": "faster-whisper", "fingerprint": fingerprint}
    )
    groups = ("<b>r&b</b>", "a & b", "us")
    folder = write_run(tmp_path / "r", meta=meta, groups=groups, examples=False)
    md = render_markdown(build_summary(folder))
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", md, re.I), "an HTML entity"
    page = MarkdownIt("commonmark").enable("table").render(md)
    assert "<b>" not in page  # no HTML from a group name
    shown = html.unescape(re.sub(r"<[^>]+>", "", page))  # the text a reader sees
    assert fingerprint in shown
    for group in groups:
        assert group in shown, group
    header = next(line for line in page.splitlines() if "<th>" in line or "<thead>" in line)
    assert header
    assert page.count("<table>") == 3  # all tables parse as tables (cells, CIs, pairs)


def test_too_few_speakers_is_said_once_not_per_group_and_condition(tmp_path):
    folder = write_run(tmp_path / "r", n_speakers=2, examples=False)
    summary = build_summary(folder)
    flags = {c["id"]: c["flag"] for c in summary["analysis"]["conditions"]}
    assert flags == {"clean": None, "hum60_snr10": "insufficient-data",
                     "hum60_snr0": "insufficient-data"}  # fmt: skip
    said = [s for s in summary["findings"] if "no fairness verdict" in s]
    assert said == [
        "Under hum 60 Hz at 10 dB SNR and hum 60 Hz at 0 dB SNR, no fairness verdict: groups "
        "'caribbean', 'scottish' and 'us' have 2 speakers each with scored words (minimum 3)."
    ]
    out = _terminal(summary, 80)
    assert out.count("with scored words") == 1


def test_the_headline_counts_every_verdict():
    from lastmile.report.markdown import headline

    def summary(**counts):
        totals = {"n_conditions": 5, "n_uneven": 0, "n_inconclusive": 0, "n_insufficient_data": 0}
        return {"analysis": {"totals": {**totals, "n_even": 0, **counts}}}

    assert headline(summary(n_uneven=1, n_even=2, n_insufficient_data=1)) == (
        "1 of 4 degraded conditions is uneven across groups; 2 shown even, 1 "
        "insufficient-data (no verdict)"
    )
    assert headline(summary(n_inconclusive=3, n_even=1)) == (
        "no condition of 4 is shown uneven; 1 shown even, 3 inconclusive (need more speakers)"
    )
    assert headline(summary(n_even=4)) == "all 4 degraded conditions are shown even across groups"
    one = summary(n_even=1)
    one["analysis"]["totals"]["n_conditions"] = 2
    assert headline(one) == "the degraded condition is shown even across groups"
