import re
from pathlib import Path

import pytest

from lastmile.report import build_summary, render_html
from lastmile.report.run_folder import load_examples

from ._factory import run_meta, write_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [  # --headless is added by playwright itself (headless=True)
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_html_is_self_contained(built_run):
    folder, _ = built_run
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.IGNORECASE)
    assert "@import" not in page
    assert "<script" not in page.lower()
    pairs = page.count("<div class='pair'>")
    # one SNR plot, the heatmap, the speakers' strip plots and a spectrogram pair per example
    assert page.count('src="data:image/png;base64,') == 3 + pairs
    assert 'src="data:audio/flac;base64,' in page
    assert page.index("id='findings'") < page.index("data:image/png")  # findings come first


def test_html_escapes_text(tmp_path):
    meta = run_meta(pack={"name": "<b>x</b>", "description": "<script>alert(1)</script>",
                          "seed": 1, "path": "p"})  # fmt: skip
    folder = write_run(tmp_path / "r", meta=meta, examples=False)
    page = render_html(build_summary(folder), examples=load_examples(folder))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


def test_examples_outside_the_run_folder_are_ignored(tmp_path):
    folder = write_run(tmp_path / "r")
    index = folder / "examples" / "index.json"
    index.write_text(index.read_text().replace("examples/clean/", "../../../etc/", 1))
    paths = [ex.path for ex in load_examples(folder)]
    assert all(p.is_relative_to(folder.resolve()) for p in paths)


@pytest.mark.timeout(90)
def test_report_opens_in_headless_chromium(built_run, tmp_path):
    from playwright import sync_api

    if not CHROMIUM.exists():
        pytest.fail(f"this test needs Debian's chromium at {CHROMIUM}: apt-get install chromium")
    folder, _ = built_run
    problems: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request",
                lambda r: r.url.startswith(("data:", "file:")) or outside.append(r.url),
            )
            page.goto((folder / "report.html").resolve().as_uri())
            page.wait_for_load_state("load")
            findings = page.locator("#findings")
            assert findings.is_visible()
            assert "caribbean speakers lose" in findings.inner_text()
            images = page.locator("img")
            assert images.count() == 3 + page.locator(".spectra img").count()
            for k in range(images.count()):
                image = images.nth(k)
                image.scroll_into_view_if_needed()
                assert image.is_visible()
                assert image.evaluate("el => el.complete && el.naturalWidth > 100")
            audios = page.locator("audio")
            assert audios.count() >= 2
            first = audios.first
            first.scroll_into_view_if_needed()
            assert first.is_visible()
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('audio'))"
                ".every(a => a.readyState >= 1 && a.duration > 0.5)",
                timeout=15000,
            )
        finally:
            context.close()
    assert problems == [], problems
    assert outside == [], outside


def test_figures_are_drawn_once_per_data_and_kept_in_the_cache(built_run, tmp_path):
    import base64
    import copy

    from lastmile.report.plots import _plots_key
    from lastmile.run import TranscriptCache

    _, summary = built_run
    cache = TranscriptCache(tmp_path / "cache.sqlite")
    drawn = render_html(summary, figure_store=cache)
    assert drawn == render_html(summary)  # the same page with or without a store
    assert cache.info()["figure_sets"] == 1
    # a rerun with the same results reads the figures back instead of drawing them
    kept = cache.get_figures(_plots_key(summary))
    assert kept is not None
    marker = base64.b64encode(b"kept:1").decode()  # 6 bytes: no padding
    cache.put_figures(_plots_key(summary), kept.replace(b'"png": "', f'"png": "{marker}'.encode()))
    assert render_html(summary, figure_store=cache).count(marker) == 2
    # other results are other figures
    changed = copy.deepcopy(summary)
    changed["analysis"]["conditions"][1]["groups"][0]["wer_pct"]["value"] += 1.0
    assert _plots_key(changed) != _plots_key(summary)
    assert marker not in render_html(changed, figure_store=cache)
    assert cache.info()["figure_sets"] == 2
    assert cache.clear() == 0 and cache.info()["figure_sets"] == 0
