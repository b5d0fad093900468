"""report.html's "Who drives the gap": every speaker's Δ as strip plots."""

from __future__ import annotations

from lastmile.report import build_summary
from lastmile.report.html import render_html
from lastmile.report.speakers import speaker_strips, speakers_html

from ._factory import write_run


def test_strip_plot_of_each_speakers_delta(tmp_path):
    summary = build_summary(write_run(tmp_path / "r", n_speakers=5, examples=False))
    cells = summary["analysis"]["conditions"][1]["groups"]
    assert [len(cell["speakers"]) for cell in cells] == [5, 5, 5]
    plot = speaker_strips(summary)
    assert plot is not None and plot.png.startswith(b"\x89PNG")
    section = speakers_html(summary)
    assert section.startswith("<section id='speakers'><h2>Who drives the gap</h2>")
    assert "data:image/png;base64," in section
    assert section in render_html(summary)
    # The worst items of each degraded condition, with the command that renders them.
    worst = summary["analysis"]["conditions"][2]["worst_items"]
    assert len(worst) == 5 and worst[0]["n_errors"] >= worst[-1]["n_errors"]
    assert f"-u {worst[0]['utterance_id']} --out listen" in section
    assert section.count("worst items</h3>") == 2


def test_no_section_without_speaker_deltas(tmp_path):
    summary = build_summary(write_run(tmp_path / "r", n_speakers=4, examples=False))
    for cond in summary["analysis"]["conditions"]:
        cond["worst_items"] = []
        for cell in cond["groups"]:
            cell["speakers"] = []
    assert speaker_strips(summary) is None and speakers_html(summary) == ""


def test_listen_commands_name_the_pack_where_the_run_recorded_it(tmp_path):
    summary = build_summary(write_run(tmp_path / "r", n_speakers=5, examples=False))
    name = summary["run"]["pack"]["path"]
    section = speakers_html(summary)
    # a shareable run records the pack's name only: the page says where to run them
    assert f"lastmile render {name} -c " in section
    assert f"in the folder that holds {name}" in section
    summary["run"]["paths"] = {"pack": "/site/packs/ward-3.yaml"}  # --absolute-paths
    section = speakers_html(summary)
    assert "lastmile render /site/packs/ward-3.yaml -c " in section
    assert "in the folder that holds" not in section
