"""The hunt's report.html: confirmed findings with intervals, the split, and the search
trace as plots of the objective over the space (self-contained: inline CSS and PNG)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lastmile.report.html import _CSS, _e, _flag, _img
from lastmile.report.plots import Plot, _drawn_plainly, _figure, _literal, _png

__all__ = ["hunt_plots", "render_hunt_html"]


def _points(trace: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The last (highest-fidelity) record of every candidate with a defined score."""
    last: dict[str, Mapping[str, Any]] = {}
    for rec in trace:
        if rec.get("score_pts") is not None:
            last[str(rec["id"])] = rec
    return list(last.values())


@_drawn_plainly
def _progress(trace: Sequence[Mapping[str, Any]], full_level: int) -> Plot | None:
    xs, ys, best = [], [], -math.inf
    for rec in trace:
        if rec.get("utterances_per_speaker") == full_level and rec.get("score_pts") is not None:
            best = max(best, float(rec["score_pts"]))
            xs.append(rec["decodes_so_far"])
            ys.append(best)
    if not xs:
        return None
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    ax.step(xs, ys, where="post", color="#1f77b4")
    ax.set_xlabel("decodes spent on the discovery speakers")
    ax.set_ylabel("best objective so far (points)")
    ax.set_title("Search progress (candidates on every discovery utterance)")
    ax.grid(alpha=0.3)
    return Plot(
        "Search progress",
        "Best objective among fully evaluated candidates against decodes spent",
        _png(fig),
    )


@_drawn_plainly
def _by_snr(points: Sequence[Mapping[str, Any]]) -> Plot | None:
    if not points:
        return None
    from matplotlib import colormaps

    noises = sorted({str(p["params"]["noise"]) for p in points})
    cmap = colormaps["tab10"]
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    for k, noise in enumerate(noises):
        sel = [p for p in points if str(p["params"]["noise"]) == noise]
        ax.scatter(
            [p["params"]["snr_db"] for p in sel],
            [p["score_pts"] for p in sel],
            s=[10 + 8 * p["utterances_per_speaker"] for p in sel],
            color=cmap(k % cmap.N),
            alpha=0.7,
            label=_literal(noise),
        )
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("objective on discovery speakers (points)")
    ax.set_title("Objective over SNR by noise source (larger: more utterances)")
    ax.legend(fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    return Plot(
        "Objective over SNR by noise source",
        "Scatter of every candidate's objective against its SNR, one colour per noise source",
        _png(fig),
    )


@_drawn_plainly
def _hum_map(points: Sequence[Mapping[str, Any]]) -> Plot | None:
    hum = [p for p in points if p["params"].get("fundamental_hz") is not None]
    if len(hum) < 2:
        return None
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    sc = ax.scatter(
        [p["params"]["fundamental_hz"] for p in hum],
        [p["params"]["snr_db"] for p in hum],
        c=[p["score_pts"] for p in hum],
        cmap="viridis",
        s=40,
    )
    ax.set_xscale("log")
    ax.set_xlabel("hum fundamental (Hz)")
    ax.set_ylabel("SNR (dB)")
    ax.set_title("Hum candidates: objective over fundamental and SNR")
    fig.colorbar(sc, ax=ax, label="objective (points)")
    return Plot(
        "Hum: objective over fundamental and SNR",
        "Hum candidates placed by fundamental and SNR, coloured by objective",
        _png(fig),
    )


def hunt_plots(trace: Sequence[Mapping[str, Any]]) -> list[Plot]:
    """Plots of the search trace: progress, objective over SNR, hum fundamental × SNR."""
    if not trace:
        return []
    full = max(int(rec["utterances_per_speaker"]) for rec in trace)
    points = _points(trace)
    plots = [_progress(trace, full), _by_snr(points), _hum_map(points)]
    return [p for p in plots if p is not None]


def _pts(value: Any) -> str:
    return "–" if value is None else f"{float(value):.1f}"


def _ci(est: Mapping[str, Any]) -> str:
    if est.get("ci_low") is None or est.get("ci_high") is None:
        return _e(est.get("ci_note") or "no interval")
    return f"[{float(est['ci_low']):.1f}, {float(est['ci_high']):.1f}]"


def render_hunt_html(document: Mapping[str, Any], trace: Sequence[Mapping[str, Any]]) -> str:
    """report.html of a hunt folder from hunt.json's content and the trace."""
    findings = document.get("findings", [])
    confirmed = [f for f in findings if f.get("confirmed")]
    banner = (
        f'<div class="banner uneven">{len(confirmed)} condition(s) confirmed uneven on '
        "speakers the search never saw</div>"
        if confirmed
        else '<div class="banner even">No candidate was confirmed on the held-out speakers</div>'
    )
    rows = []
    for f in findings:
        q = "–" if f["q_value"] is None else f"{f['q_value']:.3g}"
        rows.append(
            "<tr>"
            f"<td class='num'>{f['rank']}</td><td><code>{_e(f['id'])}</code></td>"
            f"<td>{_flag(f['flag'])}</td>"
            f"<td class='num'>{_pts(f['search_score_pts'])}</td>"
            f"<td class='num'>{_pts(f['disparity_pts'].get('value'))}</td>"
            f"<td class='num'>{_ci(f['disparity_pts'])}</td>"
            f"<td>{_e(f.get('worst_group') or '–')} vs {_e(f.get('best_group') or '–')}</td>"
            f"<td class='num'>{q}</td>"
            f"<td class='muted'>{_e(f['note'])}</td></tr>"
        )
    table = (
        "<div class='scroll'><table><tr><th class='num'>search rank</th><th>condition</th>"
        "<th>verdict</th><th class='num'>search objective (pts)</th>"
        "<th class='num'>confirmed gap (pts)</th><th class='num'>95% interval</th>"
        "<th>worst vs best group</th><th class='num'>q (BH across the top)</th><th>note</th>"
        "</tr>" + "".join(rows) + "</table></div>"
    )
    split = document.get("split", {})
    split_rows = "".join(
        f"<tr><td>{_e(g)}</td><td>{_e(', '.join(split['discovery'].get(g, [])))}</td>"
        f"<td>{_e(', '.join(split['confirmation'].get(g, [])))}</td></tr>"
        for g in sorted(split.get("confirmation", {}))
    )
    plots = "".join(_img(p) for p in hunt_plots(trace))
    notes = "".join(f"<li>{_e(n)}</li>" for n in document.get("notes", []))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>lastmile hunt: {_e(document.get('name', ''))}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>lastmile hunt: {_e(document.get('name', ''))}</h1>"
        f"<p class='muted'>Objective: {_e(document.get('objective', ''))}. "
        f"{document.get('decodes', 0)} decodes of a budget of {document.get('budget', 0)} "
        f"({document.get('search_decodes', 0)} on the search, "
        f"{len(trace)} evaluations); the space holds "
        f"{document.get('space', {}).get('grid_points', 0)} points at its resolution.</p>"
        f"{banner}<h2>Findings (confirmation speakers)</h2>{table}"
        f"<h2>Search trace (discovery speakers)</h2><div class='plots'>{plots}</div>"
        "<h2>Speakers</h2><table><tr><th>group</th><th>discovery</th><th>confirmation</th></tr>"
        f"{split_rows}</table>"
        f"<h2>Notes</h2><ul>{notes}</ul></body></html>"
    )
