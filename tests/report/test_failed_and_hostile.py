"""Cells with failed items are marked in every report; names from the corpus and the pack
(groups, condition labels) are shown literally in every report and never crash or inject."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lastmile.report import build_summary, print_summary, write_reports
from lastmile.report import plots as plots_module

from ._factory import run_meta, write_run

US_HUM0 = ("hum60_snr0", "us")
SCOTTISH_CLEAN = ("clean", "scottish")


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """2 of the 12 items of hum60_snr0/us failed, and all 12 of clean/scottish."""
    folder = write_run(
        tmp_path_factory.mktemp("runs") / "failed",
        failed={US_HUM0: 2, SCOTTISH_CLEAN: 12},
        examples=False,
    )
    summary = build_summary(folder)
    write_reports(folder, summary=summary)
    return folder, summary


def _terminal(summary: dict[str, Any]) -> str:
    buffer = io.StringIO()
    print_summary(summary, Console(file=buffer, width=100, color_system=None))
    return buffer.getvalue()


def test_summary_json_names_the_failed_cells(failed_run):
    folder, _ = failed_run
    on_disk = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    cells = {
        (c["id"], cell["group"]): cell
        for c in on_disk["analysis"]["conditions"]
        for cell in c["groups"]
    }
    assert cells[US_HUM0]["n_failed"] == 2 and cells[US_HUM0]["n_items"] == 12
    assert cells[SCOTTISH_CLEAN]["n_failed"] == 12
    assert cells[SCOTTISH_CLEAN]["wer_pct"]["value"] is None  # nothing scored: no WER
    sentence = next(s for s in on_disk["findings"] if "left out of WER" in s)
    assert "14 of 108 items failed" in sentence
    assert "hum 60 Hz at 0 dB SNR / us (2 of 12 failed)" in sentence
    assert "clean / scottish (all 12 failed)" in sentence
    assert "in 2 cells marked †" in sentence


def test_terminal_marks_the_failed_cells_beside_their_wer(failed_run, built_run):
    _, summary = failed_run
    out = _terminal(summary)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    # the mark sits on the line right under the cell's WER, in the WER column
    row = next(k for k, line in enumerate(lines) if re.search(r"^\s+us\s+4\s+31\.7", line))
    assert lines[row + 1].strip() == "† 2 of 12 failed"
    assert lines[row + 1].index("†") >= lines[row].index("31.7")
    assert "† all 12 failed" in out
    assert out.count("† items of this cell failed") == 1  # the legend
    assert "†" not in _terminal(built_run[1])  # nothing failed, nothing marked


def test_markdown_and_html_mark_the_failed_cells(failed_run, built_run):
    folder, _ = failed_run
    md = (folder / "summary.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| hum 60 Hz at 0 dB SNR |"))
    assert row.endswith("† 2 of 12 failed |")
    clean_row = next(line for line in md.splitlines() if line.startswith("| clean |"))
    assert "n/a † all 12 failed" in clean_row
    assert "† items of this cell failed" in md
    assert "| hum 60 Hz at 0 dB SNR | us | 4 | 12 (2) |" in md
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<span class='failed'>† 2 of 12 failed</span>" in page
    assert "<span class='failed'>† all 12 failed</span>" in page
    assert "† items of this cell failed" in page
    # a run with no failures carries no mark and no legend
    ok_folder, _ = built_run
    for name in ("summary.md", "report.html"):
        assert "†" not in (ok_folder / name).read_text(encoding="utf-8")


# --- names that mean something to matplotlib, rich, HTML or Markdown --------------------

HOSTILE_GROUPS = (r"$\undefinedmacro{x}$", "[bold]red[/bold]", "<script>alert(1)</script>|a|b")
HOSTILE_LABEL = r"hum $\frac{1}{$ | [link](x) <b>loud</b> *at* 0 dB SNR"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    conditions = [dict(c) for c in run_meta()["conditions"]]
    conditions[2]["label"] = HOSTILE_LABEL
    folder = write_run(
        tmp_path_factory.mktemp("runs") / "hostile",
        meta=run_meta(conditions=conditions, group_by="$acc$ [i]"),
        groups=HOSTILE_GROUPS,
        failed={("hum60_snr0", HOSTILE_GROUPS[2]): 1},
        examples=False,
    )
    summary = build_summary(folder)
    write_reports(folder, summary=summary)  # report.html draws both plots: no mathtext error
    return folder, summary


def test_unescaped_names_would_break_matplotlib():
    """The hazard is real: drawn as given, the first group name fails to draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.1, 0.5, HOSTILE_GROUPS[0])
    with pytest.raises(ValueError):
        fig.canvas.draw()


def test_literal_text_draws_like_text_without_mathtext():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    for name in (*HOSTILE_GROUPS, "$x^2$", r"a\$b", "cost: $5"):
        ours = fig.text(0.1, 0.5, plots_module._literal(name))
        plain = fig.text(0.1, 0.2, name, parse_math=False)
        assert ours.get_window_extent(renderer).width == pytest.approx(
            plain.get_window_extent(renderer).width
        ), name


def test_plots_show_names_literally(hostile_run, monkeypatch):
    _, summary = hostile_run
    figures: list[Any] = []

    def keep(fig: Any) -> bytes:
        figures.append(fig)
        fig.canvas.draw()  # every text is laid out, as savefig would
        return b""

    monkeypatch.setattr(plots_module, "_png", keep)
    curves = plots_module.snr_curves(summary)
    heat = plots_module.delta_heatmap(summary)
    assert len(curves) == 1 and heat is not None
    curve_fig, heat_fig = figures
    legend = curve_fig.axes[0].get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert sorted(summary["analysis"]["groups"]) == sorted(HOSTILE_GROUPS)
    assert names == [plots_module._literal(g) for g in summary["analysis"]["groups"]]
    assert legend.get_title().get_text() == r"\$acc\$ [i]"
    ticks = [t.get_text() for t in heat_fig.axes[0].get_xticklabels()]
    assert ticks == names
    cell_texts = [t.get_text() for t in heat_fig.axes[0].texts]
    assert sum(t.endswith("†") for t in cell_texts) == 1  # the one cell with a failed item


def test_every_heatmap_row_says_its_verdict(hostile_run, monkeypatch):
    _, summary = hostile_run
    summary = json.loads(json.dumps(summary))
    degraded = [c for c in summary["analysis"]["conditions"] if not c["is_clean"]]
    verdicts = ["insufficient-data", "even", "uneven", "inconclusive"]
    for cond, flag in zip(degraded, verdicts * len(degraded), strict=False):
        cond["flag"] = flag
    figures: list[Any] = []
    monkeypatch.setattr(plots_module, "_png", lambda fig: figures.append(fig) or b"")
    plots_module.delta_heatmap(summary)
    rows = [t.get_text() for t in figures[0].axes[0].get_yticklabels()]
    assert [r.rsplit("  ", 1)[1] for r in rows] == [f"[{c['flag']}]" for c in degraded]


def test_legend_keeps_a_group_whose_name_starts_with_an_underscore(tmp_path, monkeypatch):
    folder = write_run(tmp_path / "r", groups=("_internal", "us", "uk"), examples=False)
    figures: list[Any] = []
    monkeypatch.setattr(plots_module, "_png", lambda fig: figures.append(fig) or b"")
    plots_module.snr_curves(build_summary(folder))
    names = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert sorted(names) == ["_internal", "uk", "us"]


def test_terminal_shows_names_literally(hostile_run):
    _, summary = hostile_run
    buffer = io.StringIO()
    print_summary(summary, Console(file=buffer, width=160, color_system=None))
    out = buffer.getvalue()
    assert "[bold]red[/bold]" in out  # rich markup not interpreted
    assert r"$\undefinedmacro{x}$" in out
    assert "<script>alert(1)</script>|a|b" in out


def test_markdown_shows_names_literally(hostile_run):
    folder, _ = hostile_run
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "<b>" not in md
    assert r"\<script\>alert(1)\</script\>\|a\|b" in md
    assert r"\$\\undefinedmacro{x}\$" in md  # no math, no stray backslash eaten
    assert r"\[bold\]red\[/bold\]" in md
    assert r"\[link\](x)" in md and r"\*at\*" in md
    unescaped_pipe = re.compile(r"(?<!\\)\|")
    header = next(line for line in md.splitlines() if line.startswith("| Condition | Verdict"))
    rows = [line for line in md.splitlines() if line.startswith("| ") and "SNR" in line]
    assert rows
    n_cells = len(unescaped_pipe.findall(header))
    assert n_cells == 4 + len(HOSTILE_GROUPS) + 1
    table = md[md.index(header) : md.index("<details>")]
    for line in table.splitlines():
        if line.startswith("| "):
            assert len(unescaped_pipe.findall(line)) == n_cells, line


def test_html_shows_names_literally(hostile_run):
    folder, _ = hostile_run
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<b>loud" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;|a|b" in page
    assert "[bold]red[/bold]" in page
    assert "&lt;b&gt;loud&lt;/b&gt;" in page


def test_plots_ignore_a_usetex_matplotlibrc(hostile_run):
    """A user's matplotlibrc with text.usetex would hand names to LaTeX; plots never do."""
    from matplotlib import rc_context

    _, summary = hostile_run
    with rc_context({"text.usetex": True}):
        assert plots_module.delta_heatmap(summary) is not None
        assert len(plots_module.snr_curves(summary)) == 1
