"""What every report shows beside its numbers: why an interval is missing, every pairwise gap
with its interval, the threshold in the values' unit, the verdict word, and one folder per
listening command."""

from __future__ import annotations

import html
import io
import re
import shlex
from typing import Any

import pytest
from rich.console import Console

from lastmile.report import build_summary, print_summary, render_html, render_markdown
from lastmile.report.findings import fmt_ci
from lastmile.report.speakers import speaker_strips, speakers_html
from lastmile.report.terminal import summary_table

from ._factory import run_meta, write_run


def _terminal(summary: dict[str, Any], width: int = 100) -> str:
    buffer = io.StringIO()
    print_summary(summary, Console(file=buffer, width=width, color_system=None))
    return buffer.getvalue()


def _flat(text: str) -> str:
    """Text with its line wrapping undone (terminal notes wrap)."""
    return re.sub(r"\s+", " ", text)


def _page_text(page: str) -> str:
    """What a reader of report.html sees, one line per table row, paragraph or caption."""
    text = re.sub(r"<(tr|p|h3|caption|li)\b[^>]*>", "\n", page)
    text = re.sub(r"</t[dh]>", " | ", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def _fairness(**settings: Any) -> dict[str, Any]:
    return run_meta(fairness={"alpha": 0.05, "n_bootstrap": 300, "n_permutations": 299, **settings})


@pytest.fixture(scope="module")
def two_speakers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Groups of 2 speakers judged (min_speakers 2): numbers without intervals, with notes."""
    folder = write_run(
        tmp_path_factory.mktemp("runs") / "two",
        n_speakers=2,
        meta=_fairness(threshold_pts=5, min_speakers=2),
        examples=False,
    )
    summary = build_summary(folder)
    assert summary["analysis"]["conditions"][1]["disparity_pts"]["ci_low"] is None
    return summary


@pytest.fixture(scope="module")
def eight_speakers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = write_run(tmp_path_factory.mktemp("runs") / "eight", n_speakers=8, examples=False)
    return build_summary(folder)


def _missing(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(what, estimate) of every estimate shown with a value but no interval."""
    out = []
    for cond in summary["analysis"]["conditions"]:
        estimates = [("U", cond["disparity_pts"])] if not cond["is_clean"] else []
        for cell in cond["groups"]:
            estimates.append((f"WER {cell['group']}", cell["wer_pct"]))
            if not cond["is_clean"]:
                estimates.append((f"Δ {cell['group']}", cell["delta_pts"]))
        for what, est in estimates:
            if est["value"] is not None and est["ci_low"] is None:
                out.append((f"{cond['id']} {what}", est))
    return out


def test_terminal_says_no_interval_and_why(two_speakers):
    missing = _missing(two_speakers)
    assert len(missing) >= 9, missing  # every U, WER and Δ of 2-speaker groups
    out = _terminal(two_speakers)
    flat = _flat(out)
    for what, est in missing:
        assert est["ci_note"], what
        assert _flat(f"[1] {est['ci_note']}") in flat or _flat(f"] {est['ci_note']}") in flat
    # each number without an interval carries a mark, and each mark is explained below
    marked = re.findall(r"\(no CI (\[\d+\])\)", out)
    assert len(marked) == len(missing)
    for mark in set(marked):
        assert re.search(rf"^{re.escape(mark)} no interval: ", out, re.M), mark
    cond = two_speakers["analysis"]["conditions"][1]
    assert f"U {cond['disparity_pts']['value']:.1f} (no CI [" in out


def test_markdown_says_no_interval_and_why(two_speakers):
    md = render_markdown(two_speakers)
    unescaped = md.replace("\\[", "[").replace("\\]", "]").replace("\\'", "'")
    marked = re.findall(r"\(no CI (\[\d+\])\)", unescaped)
    # U in the main table; WER and Δ in the per-cell table; pairs in the pairs table
    n_pairs_missing = sum(
        1
        for cond in two_speakers["analysis"]["conditions"]
        for pair in cond["pairs"]
        if pair["difference_pts"]["ci_low"] is None
    )
    assert len(marked) == len(_missing(two_speakers)) + n_pairs_missing
    for _, est in _missing(two_speakers):
        assert est["ci_note"] in unescaped
    for mark in set(marked):
        assert re.search(rf"^- {re.escape(mark)} no interval: ", unescaped, re.M), mark
    # the gap column under its "(95% CI)" header never holds a bare number
    row = next(line for line in md.splitlines() if line.startswith("| hum 60 Hz at 10 dB SNR |"))
    gap = row.split("|")[3].strip()
    assert gap.startswith(
        f"{two_speakers['analysis']['conditions'][1]['disparity_pts']['value']:.1f}"
    )
    assert "no CI" in gap


def test_html_shows_the_reason_beside_each_number_without_interval(two_speakers):
    page = render_html(two_speakers)
    text = _page_text(page)
    assert not re.search(r"gap U -?[\d.]+ \(95% CI\)", text)  # the old bare label
    cond = two_speakers["analysis"]["conditions"][1]
    gap = cond["disparity_pts"]
    assert f"gap U {gap['value']:.1f} ({gap['ci_note']})" in text
    # in the tables, each value without an interval has its reason in the same cell
    for cond in two_speakers["analysis"]["conditions"]:
        for cell in cond["groups"]:
            wer = cell["wer_pct"]
            if wer["ci_low"] is None:
                cell_html = f"{wer['value']:.1f}<span class='why'>{html.escape(wer['ci_note'])}"
                assert (
                    cell_html in page.replace("&#x27;", "'").replace(html.escape("'"), "'")
                    or cell_html.replace("'", "&#x27;") in page
                ), cell["group"]


def test_html_gap_with_interval_names_its_level(eight_speakers):
    text = _page_text(render_html(eight_speakers))
    gap = eight_speakers["analysis"]["conditions"][2]["disparity_pts"]
    assert gap["ci_low"] is not None
    low, high = (f"{gap['ci_low']:.1f}", f"{gap['ci_high']:.1f}")
    assert re.search(
        rf"gap U {gap['value']:.1f} \(95% CI {re.escape(low)}(–| to ){re.escape(high)}\)", text
    )


def _pair_label(pair: dict[str, Any]) -> str:
    return f"{pair['groups'][0]} − {pair['groups'][1]}"


def test_every_pairwise_gap_with_its_interval_in_markdown_and_html(eight_speakers):
    md = render_markdown(eight_speakers)
    text = _page_text(render_html(eight_speakers))
    lines = text.splitlines()
    n = 0
    for cond in eight_speakers["analysis"]["conditions"][1:]:
        label = next(c["label"] for c in run_meta()["conditions"] if c["id"] == cond["id"])
        assert len(cond["pairs"]) == 3
        start = next(k for k, line in enumerate(lines) if line.strip().startswith(label))
        for pair in cond["pairs"]:
            diff = pair["difference_pts"]
            assert diff["ci_low"] is not None
            shown = fmt_ci(diff, signed=True)
            low, high = pair["equivalence_ci_pts"]
            within = "yes" if pair["within_margin"] else "no"
            row = f"| {label} | {_pair_label(pair)} | {shown} | "
            md_row = next(line for line in md.splitlines() if line.startswith(row))
            assert md_row.endswith(f" | {within} |")
            assert f"{low:.1f}" in md_row and f"{high:.1f}" in md_row
            # report.html: the row under this condition's heading
            html_row = next(
                line for line in lines[start:] if line.strip().startswith(_pair_label(pair))
            )
            assert shown in html_row and within in html_row.split("|")[3]
            n += 1
    assert n == 6
    assert "Within ± 5 pts" in md and "Within ± 5 pts" in text
    # the terminal stays compact and says where the pairs are
    assert "pairwise gap with its interval: summary.md and report.html" in _flat(
        _terminal(eight_speakers)
    )


def test_relative_metric_threshold_in_the_unit_of_the_values(tmp_path):
    meta = _fairness(metric="relative", threshold_rel=0.25, min_speakers=3)
    summary = build_summary(write_run(tmp_path / "rel", n_speakers=4, meta=meta, examples=False))
    assert summary["analysis"]["settings"]["threshold_rel"] == 0.25
    out = _flat(_terminal(summary))
    assert "U ≥ 25 % rel and" in out and "within ± 25 % rel." in out
    assert "0.25" not in out
    md = render_markdown(summary)
    assert "threshold 25 % rel," in md and "threshold 0.25" not in md
    assert "Within ± 25 % rel |" in md
    text = _page_text(render_html(summary))
    assert "Uneven when U ≥ 25 % rel and" in text and "within ± 25 % rel." in text
    assert "Within ± 25 % rel" in text
    # the absolute metric keeps points
    absolute = build_summary(write_run(tmp_path / "abs", n_speakers=4, examples=False))
    assert "U ≥ 5 pts and" in _flat(_terminal(absolute))
    assert "threshold 5 pts," in render_markdown(absolute)


@pytest.fixture(scope="module")
def too_few(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """2 speakers per group under the default minimum of 3: insufficient-data, a clear gap."""
    folder = write_run(tmp_path_factory.mktemp("runs") / "few", n_speakers=2, examples=False)
    summary = build_summary(folder)
    flags = [c["flag"] for c in summary["analysis"]["conditions"][1:]]
    assert flags == ["insufficient-data", "insufficient-data"]
    assert any(c["disparity_pts"]["value"] > 0 for c in summary["analysis"]["conditions"][1:])
    return summary


def test_markdown_writes_the_verdict_word(too_few):
    md = render_markdown(too_few)
    assert "❔ insufficient-data" in md
    assert "insufficient data" not in md


def _bold_groups(summary: dict[str, Any]) -> list[str]:
    """Group rows the terminal table draws in bold."""
    out = []
    for line in summary_table(summary, width=100).renderables:
        plain = line.plain
        words = plain.split()
        if (
            words
            and words[0] in summary["analysis"]["groups"]
            and any(
                span.style == "bold" and plain[span.start : span.end].strip() for span in line.spans
            )
        ):
            out.append(words[0])
    return out


def test_no_worst_group_is_marked_without_a_verdict(too_few, eight_speakers):
    # an uneven run marks its worst group in every report (the control) ...
    assert _bold_groups(eight_speakers) == ["caribbean", "caribbean"]
    assert "**" in render_markdown(eight_speakers).split("### WER")[1].split("<details>")[0]
    assert "<tr class=worst>" in render_html(eight_speakers)
    # ... an insufficient-data condition marks none
    assert _bold_groups(too_few) == []
    table = render_markdown(too_few).split("### WER")[1].split("<details>")[0]
    assert "**" not in table
    assert "class=worst" not in render_html(too_few)


def test_strip_plot_labels_a_group_with_no_scored_speakers(tmp_path):
    from lastmile.report.speakers import NO_SPEAKERS, _strip_figure

    folder = write_run(
        tmp_path / "r", n_speakers=4, failed={("hum60_snr0", "us"): 12}, examples=False
    )
    summary = build_summary(folder)
    drawn = _strip_figure(summary)
    assert drawn is not None
    fig, _, empty = drawn
    assert empty == [f"hum60_snr0 / us: {NO_SPEAKERS}"]
    panels = fig.axes[:2]  # hum60_snr10, hum60_snr0 (then the colourless rest)
    assert [t.get_text() for t in panels[0].texts] == []
    labels = [t for t in panels[1].texts if t.get_text() == NO_SPEAKERS]
    assert len(labels) == 1
    x, _ = labels[0].get_position()
    assert x == 2  # the third column: us
    assert panels[1].get_xlim()[1] > 2  # the column is on the axis
    plot = speaker_strips(summary)
    assert plot is not None and f"hum60_snr0 / us: {NO_SPEAKERS}" in plot.alt


def _commands(section: str) -> list[list[str]]:
    return [
        shlex.split(html.unescape(code))
        for code in re.findall(r"<code>(lastmile render .*?)</code>", section)
    ]


def test_each_listen_command_renders_into_its_own_folder(eight_speakers):
    commands = _commands(speakers_html(eight_speakers))
    worst = [
        (c["id"], item["utterance_id"])
        for c in eight_speakers["analysis"]["conditions"]
        for item in c.get("worst_items") or []
    ]
    assert len(commands) == len(worst) == 10
    outs = [cmd[cmd.index("--out") + 1] for cmd in commands]
    assert len(set(outs)) == len(outs)  # no command overwrites another's files
    for cmd, (cid, utt) in zip(commands, worst, strict=True):
        assert cmd[cmd.index("-c") + 1] == cid and cmd[cmd.index("-u") + 1] == utt
        assert cmd[cmd.index("--out") + 1] == f"listen/{cid}__{utt}"


def test_listen_commands_quote_and_separate_odd_ids(eight_speakers):
    import copy

    summary = copy.deepcopy(eight_speakers)
    summary["run"]["pack"]["path"] = "my packs/ward 3.yaml"
    cond = summary["analysis"]["conditions"][2]
    cond["worst_items"] = cond["worst_items"][:2]
    cond["worst_items"][0]["utterance_id"] = "a/b c"
    cond["worst_items"][1]["utterance_id"] = "a_b c"
    commands = _commands(speakers_html(summary))
    ours = [cmd for cmd in commands if cmd[cmd.index("-c") + 1] == cond["id"]]
    assert [cmd[2] for cmd in ours] == ["my packs/ward 3.yaml"] * 2
    assert [cmd[cmd.index("-u") + 1] for cmd in ours] == ["a/b c", "a_b c"]
    outs = [cmd[cmd.index("--out") + 1] for cmd in ours]
    assert len(set(outs)) == 2
    for out in outs:  # one folder under listen/, nothing outside it
        assert out.startswith("listen/") and "/" not in out[len("listen/") :]
        assert ".." not in out and " " not in out
