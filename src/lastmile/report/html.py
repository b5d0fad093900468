"""report.html: one self-contained page (inline CSS, PNG and audio as data URIs, no script,
nothing fetched from elsewhere). Every piece of text is escaped with :func:`html.escape`."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lastmile.report.findings import (
    FAILED_LEGEND,
    FAILED_MARK,
    condition_info,
    failed_cells,
    failed_note,
    fmt_ci,
    fmt_range,
    latency_sentence,
)
from lastmile.report.intervals import (
    NoteMarks,
    marks_worst,
    pair_rows,
    threshold_text,
    why_no_interval,
)
from lastmile.report.markdown import headline
from lastmile.report.mitigation import mitigation_html
from lastmile.report.plots import (
    PLOTS_VERSION,
    FigureStore,
    Plot,
    report_plots,
    spectrogram_pair,
)
from lastmile.report.run_folder import Example
from lastmile.report.speakers import speakers_html

__all__ = ["MAX_AUDIO_BYTES", "MAX_AUDIO_TOTAL_BYTES", "render_html"]

MAX_AUDIO_BYTES = 4_000_000
"""An example larger than this is not embedded (the page stays light)."""
MAX_AUDIO_TOTAL_BYTES = 30_000_000
"""Embedded audio stops at this total."""
EXAMPLES_PER_CONDITION = 3

_MIME = {".flac": "audio/flac", ".wav": "audio/wav", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}

_CSS = """
:root { --fg:#1d1f23; --muted:#5c6370; --line:#d9dce1; --bg:#ffffff; --soft:#f5f6f8; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; max-width: 1100px; padding: 1.5rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
  border-bottom: 1px solid var(--line); padding-bottom: .3rem; } h3 { font-size: 1.05rem; }
.muted { color: var(--muted); } .banner { padding: .6rem .9rem; border-radius: 6px;
  font-weight: 600; margin: .8rem 0; }
.banner.uneven { background:#fde8e8; color:#8a1c1c; } .banner.inconclusive { background:#fff4d6;
  color:#7a5600; } .banner.even { background:#e5f6ea; color:#1d5e33; }
.banner.insufficient-data { background:#f1e6fa; color:#5b2a86; }
ul.findings li { margin: .35rem 0; font-size: 1.05rem; }
.flag { display:inline-block; padding:0 .45rem; border-radius: 4px; font-size:.85rem;
  font-weight:600; } .flag.uneven { background:#fde8e8; color:#8a1c1c; }
.flag.inconclusive { background:#fff4d6; color:#7a5600; } .flag.even { background:#e5f6ea;
  color:#1d5e33; } .flag.insufficient-data { background:#f1e6fa; color:#5b2a86; }
.flag.reference { background: var(--soft); color: var(--muted); }
.plots { display:grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 4px; } figcaption { font-size: .85rem; color: var(--muted); }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.worst td { font-weight: 600; } .failed { color:#8a1c1c; font-weight:600; }
.pair { display:grid; grid-template-columns: 1fr 1fr; gap: .8rem; background: var(--soft);
  padding: .7rem; border-radius: 6px; margin-bottom: .8rem; }
.pair audio { width: 100%; } .pair .spectra { grid-column: 1 / -1; }
.scroll { overflow-x: auto; max-width: 100%; } .pair p { margin: .25rem 0; font-size: .9rem; }
.pair .who { font-weight: 600; } code { font-size: .85rem; word-break: break-all; }
dl.meta { display:grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
.why { display:block; white-space: normal; font-size: .78rem; font-weight: 400;
  color: var(--muted); text-align: left; max-width: 20rem; }
table.pairs { font-size: .85rem; } table.pairs caption { text-align: left; color: var(--muted);
  caption-side: top; padding-bottom: .2rem; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(plot.alt)}">'
        f"<figcaption>{_e(plot.title)}</figcaption></figure>"
    )


def _flag(flag: str | None) -> str:
    name = flag or "reference"
    return f'<span class="flag {_e(name)}">{_e(name)}</span>'


class _AudioBudget:
    """Embeds audio files as data URIs until the total budget is spent."""

    def __init__(self) -> None:
        self.used = 0
        self.skipped: list[str] = []

    def tag(self, path: Path) -> str:
        """An ``<audio controls>`` element with the file as a data URI, or a note."""
        mime = _MIME.get(path.suffix.lower())
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        if mime is None or size < 0 or size > MAX_AUDIO_BYTES:
            self.skipped.append(path.name)
            return '<p class="muted">(audio not embedded)</p>'
        if self.used + size > MAX_AUDIO_TOTAL_BYTES:
            self.skipped.append(path.name)
            return '<p class="muted">(audio not embedded: the page is full)</p>'
        self.used += size
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<audio controls preload="metadata" src="data:{mime};base64,{data}"></audio>'


def _spectra(clean: Example, degraded: Example, store: FigureStore | None) -> Plot | None:
    """Clean and degraded spectrograms of one example side by side, from ``store`` when
    drawn from the same audio before; ``None`` when the audio cannot be read."""
    import soundfile as sf

    try:
        blobs = [clean.path.read_bytes(), degraded.path.read_bytes()]
    except OSError:
        return None
    titles = ("clean", degraded.condition_id)
    digest = hashlib.sha256(f"spectra/{PLOTS_VERSION}/{json.dumps(titles)}".encode())
    for blob in blobs:
        digest.update(hashlib.sha256(blob).digest())
    key = digest.hexdigest()
    if store is not None and (kept := store.get_figures(key)) is not None:
        row = json.loads(kept)
        return Plot(row["title"], row["alt"], base64.b64decode(row["png"]))
    try:
        (a, rate_a), (b, rate_b) = (sf.read(ex.path, dtype="float32") for ex in (clean, degraded))
    except (OSError, RuntimeError, sf.LibsndfileError):
        return None
    a = a.mean(axis=1) if a.ndim > 1 else a
    b = b.mean(axis=1) if b.ndim > 1 else b
    if a.size < 64 or b.size < 64:
        return None
    plot = spectrogram_pair(
        a, b, clean_sample_rate=rate_a, degraded_sample_rate=rate_b, titles=titles
    )
    if store is not None:
        row = {"title": plot.title, "alt": plot.alt, "png": base64.b64encode(plot.png).decode()}
        store.put_figures(key, json.dumps(row).encode())
    return plot


def _listen_section(
    summary: Mapping[str, Any],
    examples: Sequence[Example],
    labels: Mapping[str, str],
    store: FigureStore | None = None,
) -> str:
    analysis = summary["analysis"]
    degraded = [c for c in analysis["conditions"] if not c["is_clean"]]
    chosen = sorted(
        (c for c in degraded if c["flag"] in ("uneven", "inconclusive")),
        key=lambda c: (c["flag"] != "uneven", -(c["disparity_pts"]["value"] or 0.0)),
    )
    intro = (
        "Rendered examples of the flagged conditions, clean and degraded side by side, "
        "with their spectrograms (log frequency: a hum's harmonics are the lines at the "
        "bottom, a handset's band edges the cut-offs)."
    )
    if not chosen:
        judged = [c for c in degraded if c["disparity_pts"]["value"] is not None]
        if judged:
            chosen = [max(judged, key=lambda c: c["disparity_pts"]["value"])]
            intro = "No condition is flagged; here is the one with the largest gap between groups."
    parts = ["<section id='listen'><h2>Listen</h2>", f"<p class='muted'>{_e(intro)}</p>"]
    if not examples:
        parts.append(
            "<p class='muted'>This run folder has no audio examples "
            "(examples/index.json).</p></section>"
        )
        return "".join(parts)
    clean_id = analysis["clean_condition_id"]
    clean_by_utt = {ex.utterance_id: ex for ex in examples if ex.condition_id == clean_id}
    budget = _AudioBudget()
    for cond in chosen:
        mine = [ex for ex in examples if ex.condition_id == cond["id"]]
        order = {cond["worst_group"]: 0, cond["best_group"]: 1}
        mine.sort(key=lambda ex: order.get(ex.group, 2))
        parts.append(f"<h3>{_e(labels.get(cond['id'], cond['id']))} {_flag(cond['flag'])}</h3>")
        if not mine:
            parts.append("<p class='muted'>No example was rendered for this condition.</p>")
        for ex in mine[:EXAMPLES_PER_CONDITION]:
            clean = clean_by_utt.get(ex.utterance_id)
            who = f"{ex.group} · speaker {ex.speaker} · {ex.utterance_id}"
            parts.append(f"<p class='who'>{_e(who)}</p><div class='pair'>")
            if clean is not None:
                parts.append(
                    "<div><p><strong>Clean</strong></p>"
                    f"{budget.tag(clean.path)}"
                    f"<p><span class='muted'>Reference:</span> {_e(clean.reference)}</p>"
                    f"<p><span class='muted'>Recognized:</span> {_e(clean.hypothesis)}</p></div>"
                )
            else:
                parts.append(
                    "<div><p class='muted'>No clean rendering of this utterance.</p></div>"
                )
            parts.append(
                f"<div><p><strong>{_e(labels.get(ex.condition_id, ex.condition_id))}</strong></p>"
                f"{budget.tag(ex.path)}"
                f"<p><span class='muted'>Reference:</span> {_e(ex.reference)}</p>"
                f"<p><span class='muted'>Recognized:</span> {_e(ex.hypothesis)}</p></div>"
            )
            spectra = None if clean is None else _spectra(clean, ex, store)
            if spectra is not None:
                parts.append(f"<div class='spectra'>{_img(spectra)}</div>")
            parts.append("</div>")
    if budget.skipped:
        parts.append(
            f"<p class='muted'>{len(budget.skipped)} example(s) too large to embed; "
            "listen to them in the run folder's examples/.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _estimate(estimate: Mapping[str, Any] | None, *, signed: bool = False) -> str:
    """An estimate as table-cell HTML: ``14.2 (9.1–19.0)``, or the value with the reason it
    has no interval written beneath it."""
    why = why_no_interval(estimate)
    if why is None:
        return _e(fmt_ci(estimate, signed=signed))
    return f"{_e(fmt_ci(estimate, signed=signed))}<span class='why'>{_e(why)}</span>"


def _gap_text(estimate: Mapping[str, Any], level: str) -> str:
    """``gap U 5.6 (95% CI 1.0–9.0)``, or ``gap U 2.3 (no interval: <why>)``."""
    why = why_no_interval(estimate)
    if why is None:
        interval = fmt_range(estimate["ci_low"], estimate["ci_high"])
        return f"gap U {estimate['value']:.1f} ({level} CI {interval})"
    return f"gap U {fmt_ci(estimate)} ({why})"


def _pairs_table(cond: Mapping[str, Any], analysis: Mapping[str, Any]) -> str:
    """Every pairwise gap Δ(a) − Δ(b) of a degraded condition with its interval, the
    (1 − 2α) interval the ``even`` verdict rests on and whether it lies within ± the
    threshold ('' when the condition has no pairs)."""
    settings = analysis["settings"]
    level = f"{settings['ci_level'] * 100:g}%"
    eq_level = f"{(1 - 2 * settings['alpha']) * 100:g}%"
    unit = "pts" if analysis["metric"] == "absolute" else "% rel."
    pairs = {(str(p["groups"][0]), str(p["groups"][1])): p for p in cond.get("pairs") or []}
    rows = pair_rows(cond, NoteMarks())
    if cond["is_clean"] or not rows:
        return ""
    parts = [
        "<div class='scroll'><table class='pairs'><caption>Pairwise gaps between groups"
        "</caption><thead><tr><th>Pair a − b</th>"
        f"<th class='num'>Δ(a) − Δ(b) {unit} ({level} CI)</th>"
        f"<th class='num'>{eq_level} interval</th>"
        f"<th>Within ± {_e(threshold_text(analysis))}</th></tr></thead><tbody>"
    ]
    for row in rows:
        gap = _estimate(pairs[(row.first, row.second)]["difference_pts"], signed=True)
        parts.append(
            f"<tr><td>{_e(row.first)} − {_e(row.second)}</td><td class='num'>{gap}</td>"
            f"<td class='num'>{_e(row.equivalence)}</td><td>{_e(row.within)}</td></tr>"
        )
    parts.append("</tbody></table></div>")
    return "".join(parts)


def _conditions_section(summary: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    analysis = summary["analysis"]
    settings = analysis["settings"]
    level = f"{settings['ci_level'] * 100:g}%"
    unit = "pts" if analysis["metric"] == "absolute" else "% rel."
    threshold = threshold_text(analysis)
    parts = [
        "<section id='conditions'><h2>Conditions</h2>",
        f"<p class='muted'>{_e(_rule(settings, threshold))}</p>",
    ]
    for cond in analysis["conditions"]:
        label = labels.get(cond["id"], cond["id"])
        parts.append(f"<h3>{_e(label)} {_flag(cond['flag'])}</h3>")
        if not cond["is_clean"]:
            bits = [_gap_text(cond["disparity_pts"], level)]
            if cond["p_value"] is not None:
                bits.append(f"p = {cond['p_value']:.3g}, q = {cond['q_value']:.3g}")
            bits.append(str(cond["note"]))
            parts.append(f"<p class='muted'>id {_e(cond['id'])} · {_e(' · '.join(bits))}</p>")
        parts.append(
            "<div class='scroll'><table><thead><tr><th>Group</th><th class='num'>Speakers</th>"
            "<th class='num'>Items (failed)</th><th class='num'>Ref. words</th>"
            "<th class='num'>S / D / I</th>"
            f"<th class='num'>WER % ({level} CI)</th><th class='num'>Δ {unit} ({level} CI)</th>"
            "</tr></thead><tbody>"
        )
        for cell in cond["groups"]:
            worst = marks_worst(cond, cell["group"])
            delta = "—" if cond["is_clean"] else _estimate(cell["delta_pts"], signed=True)
            note = failed_note(cell)
            failed = f" <span class='failed'>{_e(FAILED_MARK)} {_e(note)}</span>" if note else ""
            parts.append(
                f"<tr{' class=worst' if worst else ''}><td>{_e(cell['group'])}</td>"
                f"<td class='num'>{cell['n_speakers']}</td>"
                f"<td class='num'>{cell['n_items']} ({cell['n_failed']})</td>"
                f"<td class='num'>{cell['n_ref_words']}</td>"
                f"<td class='num'>{cell['substitutions']} / {cell['deletions']} / "
                f"{cell['insertions']}</td>"
                f"<td class='num'>{_estimate(cell['wer_pct'])}{failed}</td>"
                f"<td class='num'>{delta}</td></tr>"
            )
        parts.append("</tbody></table></div>")
        parts.append(_pairs_table(cond, analysis))
    if failed_cells(summary):
        parts.append(f"<p class='failed'>{_e(FAILED_LEGEND)}.</p>")
    parts.append("</section>")
    return "".join(parts)


def _rule(settings: Mapping[str, Any], threshold: str) -> str:
    """The verdict rule in words, the threshold in the unit of the values."""
    return (
        f"U = largest minus smallest Δ across groups. Uneven when U ≥ {threshold} and "
        f"q ≤ {settings['alpha']:g} (Welch's statistic of equal Δ, parametric bootstrap, "
        f"Benjamini–Hochberg); even when every pairwise gap's "
        f"{(1 - 2 * settings['alpha']) * 100:g}% interval lies within ± {threshold}."
    )


def _meta_section(summary: Mapping[str, Any]) -> str:
    run = summary.get("run", {})
    analysis = summary["analysis"]
    pack = run.get("pack") or {}
    backend = run.get("backend") or {}
    corpus = run.get("corpus") or {}
    spec = backend.get("spec")
    rows = [
        ("Pack", pack.get("name")),
        ("Pack file", pack.get("path")),
        ("Seed", pack.get("seed")),
        ("Backend", backend.get("name")),
        ("Backend spec", spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)),
        ("Backend fingerprint", backend.get("fingerprint")),
        ("Normalizer", run.get("normalizer")),
        ("Grouped by", run.get("group_by")),
        ("Corpus", corpus.get("manifest")),
        ("Utterances", corpus.get("n_utterances")),
        ("Metric", analysis["metric"]),
        ("Threshold", threshold_text(analysis)),
        (
            "Fairness settings (as the pack gives them)",
            json.dumps(analysis["settings"], sort_keys=True),
        ),
        ("Started", run.get("started_at")),
        ("Finished", run.get("finished_at")),
        ("Complete", run.get("complete")),
        ("Latency", latency_sentence(summary["latency"]) if summary.get("latency") else None),
        ("Report by", f"lastmile {summary.get('generated_by', {}).get('lastmile', '?')}"),
    ]
    parts = ["<section id='run'><h2>Run</h2><dl class='meta'>"]
    for key, value in rows:
        if value is None:
            continue
        parts.append(f"<dt>{_e(key)}</dt><dd><code>{_e(value)}</code></dd>")
    parts.append("</dl>")
    versions = run.get("versions") or {}
    if versions:
        parts.append("<h3>Package versions</h3><table><tbody>")
        for name, version in versions.items():
            parts.append(f"<tr><td>{_e(name)}</td><td>{_e(version)}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "".join(parts)


def render_html(
    summary: Mapping[str, Any],
    *,
    examples: Sequence[Example] = (),
    figure_store: FigureStore | None = None,
) -> str:
    """report.html's text: findings first, then WER-vs-SNR plots and the Δ heatmap,
    audio examples of the flagged conditions, per-condition tables and the run metadata.

    ``examples`` are embedded as base64 data URIs (at most ``MAX_AUDIO_BYTES`` each and
    ``MAX_AUDIO_TOTAL_BYTES`` in all). Figures drawn from the same data before are taken
    from ``figure_store`` (see :func:`lastmile.report.plots.report_plots`).
    """
    run = summary.get("run", {})
    analysis = summary["analysis"]
    labels = {cid: info["label"] for cid, info in condition_info(run).items()}
    pack = run.get("pack") or {}
    totals = analysis["totals"]
    state = (
        "uneven"
        if totals["n_uneven"]
        else "inconclusive"
        if totals["n_inconclusive"]
        else "insufficient-data"
        if totals["n_insufficient_data"]
        else "even"
    )
    title = f"lastmile report: {pack.get('name', 'run')}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(pack.get('name', 'lastmile run'))}</h1>",
    ]
    if pack.get("description"):
        parts.append(f"<p class='muted'>{_e(pack['description'])}</p>")
    parts.append(f"<div class='banner {state}'>{_e(headline(summary))}.</div></header>")
    parts.append("<section id='findings'><h2>Findings</h2><ul class='findings'>")
    parts += [f"<li>{_e(sentence)}</li>" for sentence in summary.get("findings", [])]
    parts.append("</ul></section>")
    curves, heat = report_plots(summary, store=figure_store)
    parts.append("<section id='plots'><h2>WER by condition</h2>")
    if curves:
        parts.append("<div class='plots'>" + "".join(_img(p) for p in curves) + "</div>")
    else:
        parts.append("<p class='muted'>No degraded condition in this run to plot.</p>")
    parts.append("</section>")
    if heat is not None:
        parts.append(f"<section id='heatmap'><h2>Degradation by group</h2>{_img(heat)}</section>")
    parts.append(speakers_html(summary))
    parts.append(_listen_section(summary, examples, labels, figure_store))
    parts.append(_conditions_section(summary, labels))
    parts.append(mitigation_html(summary))
    parts.append(_meta_section(summary))
    parts.append("</body></html>\n")
    return "".join(parts)
