"""Plots and report.html as a reader sees them: conditions at a single SNR drawn as
categories, nothing clipped, 0 % points visible, spectrograms that show a hum, and the page
in Chromium at 1280 and 800 px without horizontal overflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lastmile.report import build_summary, write_reports
from lastmile.report import plots as plots_module

from ._factory import CONDITIONS, run_meta, write_run
from .test_html import CHROMIUM, CHROMIUM_FLAGS

HANDSET = "narrowband handset through G.711 mu-law at 8 kHz, clipped by its AGC"
EXTRA = [
    {"id": "pink_snr5", "label": "pink noise at 5 dB SNR", "noise_family": "pink",
     "snr_db": 5.0, "spec": {"noise": {"type": "pink"}, "snr_db": 5.0}},
    {"id": "handset_g711u", "label": HANDSET, "noise_family": "none", "snr_db": None,
     "spec": {"noise": None, "snr_db": None, "device": "narrowband-handset"}},
]  # fmt: skip


def _spec(cond: dict[str, Any]) -> dict[str, Any]:
    noise = None if cond["snr_db"] is None else {"type": "hum", "fundamental_hz": 60.0}
    return {"noise": noise, "snr_db": cond["snr_db"]}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """hum at 10 and 0 dB (a curve), pink at 5 dB only and a handset with no noise."""
    conditions = [{**c, "spec": _spec(c)} for c in CONDITIONS] + EXTRA
    folder = write_run(
        tmp_path_factory.mktemp("runs") / "mixed",
        meta=run_meta(conditions=conditions),
        conditions=conditions,
    )
    summary = build_summary(folder)
    write_reports(folder, summary=summary)
    return folder, summary


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plot functions draw (laid out, as savefig would), instead of PNGs."""
    kept: list[Any] = []

    def keep(fig: Any) -> bytes:
        kept.append(fig)
        fig.canvas.draw()
        return b""

    monkeypatch.setattr(plots_module, "_png", keep)
    return kept


def _inside(fig: Any, artist: Any) -> bool:
    box = artist.get_window_extent(fig.canvas.get_renderer())
    whole = fig.bbox
    return bool(
        box.x0 >= whole.x0 - 0.5
        and box.x1 <= whole.x1 + 0.5
        and box.y0 >= whole.y0 - 0.5
        and box.y1 <= whole.y1 + 0.5
    )


def test_a_single_snr_is_a_category_not_a_curve(mixed_run, figures):
    _, summary = mixed_run
    curves = plots_module.snr_curves(summary)
    assert [p.title for p in curves] == ["hum 60 Hz"]
    ticks = [float(t.get_text()) for t in figures[0].axes[0].get_xticklabels()]
    assert ticks == [0.0, 10.0]  # the SNRs run, not the groups' offsets around them
    points = plots_module.condition_points(summary)
    assert len(points) == 1
    ax = figures[1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["clean", "pink_snr5", "handset_g711u"]
    # one point per group and condition, at the condition's category (no fake SNR)
    xs = sorted(x for line in ax.lines for x in line.get_xdata() if line.get_marker() == "o")
    assert len(xs) == 3 * 3
    assert all(abs(x - round(x)) < 0.4 for x in xs)


def test_titles_and_labels_are_not_clipped(mixed_run, figures):
    _, summary = mixed_run
    long = dict(summary)
    long["run"] = {
        **summary["run"],
        "conditions": [
            {**c, "label": "hum 60 Hz from the MRI chiller on the third floor " * 2 + c["label"]}
            for c in summary["run"]["conditions"]
        ],
    }
    plots_module.snr_curves(long)
    plots_module.condition_points(long)
    plots_module.delta_heatmap(long)
    assert len(figures) == 3
    for fig in figures:
        ax = fig.axes[0]
        texts = [ax.title, *ax.get_yticklabels(), *ax.get_xticklabels()]
        for text in texts:
            if text.get_text():
                assert _inside(fig, text), text.get_text()


def test_a_0_percent_wer_point_shows_whole(mixed_run, figures):
    _, summary = mixed_run
    zero = {**summary, "analysis": {**summary["analysis"]}}
    conditions = []
    for cond in summary["analysis"]["conditions"]:
        groups = [
            {**cell, "wer_pct": {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0, "ci_note": None}}
            for cell in cond["groups"]
        ]
        conditions.append({**cond, "groups": groups})
    zero["analysis"]["conditions"] = conditions
    plots_module.snr_curves(zero)
    plots_module.condition_points(zero)
    for fig in figures:
        ax = fig.axes[0]
        bottom, top = ax.get_ylim()
        assert bottom < 0 < top
        # a marker of 4-5 pt at y=0 lies wholly above the axes' bottom edge
        marker_px = 5 * fig.dpi / 72
        y0 = ax.transData.transform((0, 0))[1]
        assert y0 - ax.bbox.y0 >= marker_px / 2
        assert min(ax.get_yticks()) >= 0  # no negative WER tick


def test_spectrograms_show_the_hum_the_clean_lacks(figures):
    rate = 16000
    t = np.arange(int(1.0 * rate)) / rate
    speechlike = 0.2 * np.sin(2 * np.pi * 1000 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    hum = sum(0.1 / k * np.sin(2 * np.pi * 60 * k * t) for k in (1, 2, 3))
    plot = plots_module.spectrogram_pair(
        speechlike, speechlike + hum, clean_sample_rate=rate, degraded_sample_rate=rate,
        titles=("clean", "hum60_snr0"),
    )  # fmt: skip
    assert plot.title == "Spectrograms: clean and hum60_snr0"
    fig = figures[0]
    clean_ax, hum_ax = fig.axes[:2]
    assert hum_ax.get_yscale() == "log" and hum_ax.get_ylim()[0] <= 50

    def level(ax: Any, freq_hz: float) -> float:
        mesh = ax.collections[0]
        values = np.asarray(mesh.get_array()).reshape(mesh._coordinates.shape[0] - 1, -1)
        freqs = mesh._coordinates[:-1, 0, 1]
        row = int(np.argmin(np.abs(freqs - freq_hz)))
        return float(np.median(values[row]))

    for harmonic in (60, 120, 180):  # 64 ms windows resolve the hum's harmonics...
        assert level(hum_ax, harmonic) > level(hum_ax, harmonic + 30) + 12
        assert level(hum_ax, harmonic) > level(clean_ax, harmonic) + 30  # ...absent when clean
    assert _inside(fig, clean_ax.title) and _inside(fig, hum_ax.title)


def test_the_page_embeds_a_spectrogram_per_example(mixed_run):
    folder, _ = mixed_run
    page = (folder / "report.html").read_text(encoding="utf-8")
    pairs = page.count("<div class='pair'>")
    assert pairs >= 2
    assert page.count("<div class='spectra'><figure><img src=\"data:image/png;base64,") == pairs
    plots = page[page.index("id='plots'") : page.index("id='heatmap'")]
    assert plots.count("data:image/png") == 2  # the hum curve and the categories


@pytest.mark.timeout(120)
@pytest.mark.parametrize("width", [1280, 800])
def test_the_page_fits_1280_and_800_px(mixed_run, tmp_path, width):
    from playwright import sync_api

    if not CHROMIUM.exists():
        pytest.fail(f"this test needs Debian's chromium at {CHROMIUM}: apt-get install chromium")
    folder, _ = mixed_run
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": 1000},
        )
        try:
            page = context.new_page()
            page.goto((folder / "report.html").resolve().as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(tmp_path / f"report-{width}.png"), full_page=True)
            sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert sizes[0] <= sizes[1], sizes
            overflowing = page.evaluate(
                """() => Array.from(document.querySelectorAll('body *'))
                   .filter(el => !el.closest('.scroll'))
                   .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
                   .map(el => el.tagName + '.' + el.className)"""
            )
            assert overflowing == []
            images = page.evaluate(
                "() => Array.from(document.images).map(i => [i.complete, i.naturalWidth,"
                " i.getBoundingClientRect().width])"
            )
            assert len(images) >= 5
            for complete, natural, shown in images:
                assert complete and natural > 100 and 0 < shown <= width
        finally:
            context.close()
    assert (tmp_path / f"report-{width}.png").stat().st_size > 10_000


def test_groups_sit_close_around_the_snr_they_were_run_at(tmp_path, figures):
    groups = tuple(f"group-{k}" for k in range(7))
    folder = write_run(tmp_path / "r", groups=groups, n_speakers=3, examples=False)
    plots_module.snr_curves(build_summary(folder))
    ax = figures[0].axes[0]
    xs = [x for line in ax.lines for x in line.get_xdata() if line.get_marker() == "o"]
    assert len(xs) == 7 * 2
    for snr in (0.0, 10.0):  # within a fifth of the 10 dB step: 1 dB either side
        near = [x for x in xs if abs(x - snr) < 5]
        assert len(near) == 7 and max(abs(x - snr) for x in near) <= 1.0 + 1e-9


def test_a_point_without_interval_is_drawn_open_with_no_bar(tmp_path, figures):
    """Groups of 2 speakers have no WER interval: their points are open markers, no error bar
    of zero height stands for an interval, and the title says what open means."""
    meta = run_meta(fairness={"threshold_pts": 5, "min_speakers": 2, "n_bootstrap": 200})
    conditions = [{**c, "spec": _spec(c)} for c in CONDITIONS] + EXTRA
    meta["conditions"] = conditions
    folder = write_run(
        tmp_path / "r", n_speakers=2, meta=meta, conditions=conditions, examples=False
    )
    summary = build_summary(folder)
    assert all(
        cell["wer_pct"]["ci_low"] is None and cell["wer_pct"]["ci_note"]
        for cond in summary["analysis"]["conditions"]
        for cell in cond["groups"]
    )
    curves = plots_module.snr_curves(summary)
    points = plots_module.condition_points(summary)
    assert len(curves) == 1 and len(points) == 1
    for fig, n_points in zip(figures, (3 * 2, 3 * 3), strict=True):
        ax = fig.axes[0]
        assert plots_module.NO_INTERVAL in ax.get_title()
        assert not ax.containers  # no error bars at all
        marked = [line for line in ax.lines if line.get_marker() == "o"]
        assert sum(len(line.get_xdata()) for line in marked) == n_points
        assert all(line.get_markerfacecolor() == "white" for line in marked)
        assert ax.get_legend() is not None


def test_points_with_intervals_keep_their_bars(mixed_run, figures):
    _, summary = mixed_run
    plots_module.snr_curves(summary)
    ax = figures[0].axes[0]
    assert plots_module.NO_INTERVAL not in ax.get_title()
    bars = [c for c in ax.containers if c.has_yerr]
    assert len(bars) == 3  # one per group
    for container in bars:
        for segment in container.lines[2][0].get_segments():
            assert segment[1][1] > segment[0][1]  # an interval, not a zero-height bar
