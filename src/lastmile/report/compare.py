"""The comparison of two runs (``lastmile compare``) as terminal text and as one self-contained
HTML page (inline CSS and PNG plots, no script, nothing fetched; every name escaped).

Both read the JSON form of :class:`lastmile.analysis.compare.Comparison` (points on the x100
scale), so what is printed, saved and drawn is the same data.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from lastmile.report.findings import fmt_ci
from lastmile.report.plots import (
    Plot,
    _colors,
    _drawn_plainly,
    _figure,
    _literal,
    _png,
    _wrapped,
)

__all__ = ["comparison_html", "comparison_lines", "delta_plot"]

_VERDICT_CLASS = {
    "more-uneven": "uneven",
    "less-uneven": "even",
    "changed": "inconclusive",
    "no-difference": "inconclusive",
    "insufficient-data": "insufficient-data",
}

_CSS = """
:root { --fg:#1d1f23; --muted:#5c6370; --line:#d9dce1; --soft:#f5f6f8; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  margin: 0 auto; max-width: 1100px; padding: 1.5rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
  border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.muted { color: var(--muted); } .banner { padding: .6rem .9rem; border-radius: 6px;
  font-weight: 600; margin: .8rem 0; }
.uneven { background:#fde8e8; color:#8a1c1c; } .even { background:#e5f6ea; color:#1d5e33; }
.inconclusive { background:#fff4d6; color:#7a5600; }
.insufficient-data { background:#f1e6fa; color:#5b2a86; } .reference { background: var(--soft); }
.flag { display:inline-block; padding:0 .45rem; border-radius: 4px; font-size:.85rem;
  font-weight:600; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 4px; } figcaption { font-size: .85rem; color: var(--muted); }
code { font-size: .85rem; word-break: break-all; } .scroll { overflow-x: auto; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _value(estimate: Mapping[str, Any] | None, *, signed: bool = False) -> str:
    if not estimate or estimate.get("value") is None:
        return "n/a"
    return f"{estimate['value']:{'+' if signed else ''}.1f}"


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _q(cond: Mapping[str, Any]) -> str:
    q = cond.get("q_value")
    return "no test" if q is None else f"q = {q:.3g}"


def comparison_lines(data: Mapping[str, Any]) -> list[str]:
    """The comparison as plain terminal lines: the two runs, then per condition its verdict
    and one row per group (WER and Δ of each run, Δ's change B − A with its interval)."""
    a, b = data["run_a"], data["run_b"]
    level = f"{data['settings']['ci_level'] * 100:g}%"
    out = [
        f"Comparing two runs of {data['pack']['name']} (seed {data['pack']['seed']}):",
        f"  A: {a['backend']['spec'] or a['backend']['name']}  ({a['path']})",
        f"  B: {b['backend']['spec'] or b['backend']['name']}  ({b['path']})",
    ]
    groups = {g["group"] for c in data["conditions"] for g in c["groups"]}
    width = max([len("group"), *(len(g) for g in groups)])
    header = (
        f"  {'group':<{width}}  {'spk':>4}  {'WER A':>6}  {'WER B':>6}  {'Δ A':>6}  {'Δ B':>6}"
        f"  Δ B−A ({level} CI)"
    )
    for cond in data["conditions"]:
        out.append("")
        if cond["is_clean"]:
            out.append(f"{cond['label']}  [reference]")
        else:
            out.append(
                f"{cond['label']}  [{cond['verdict']}]  gap A {_pts(cond['disparity_a_pts'])} "
                f"→ B {_pts(cond['disparity_b_pts'])}, {_q(cond)}"
            )
        out.append(header)
        for g in cond["groups"]:
            change = "" if cond["is_clean"] else fmt_ci(g["delta_change_pts"], signed=True)
            out.append(
                f"  {g['group']:<{width}}  {g['n_speakers']:>4}  {_value(g['wer_a_pct']):>6}  "
                f"{_value(g['wer_b_pct']):>6}  {_value(g['delta_a_pts'], signed=True):>6}  "
                f"{_value(g['delta_b_pts'], signed=True):>6}  {change}"
            )
        if not cond["is_clean"] and cond["verdict"] in ("insufficient-data", "changed"):
            out.append(f"  {cond['note']}")
    out.append("")
    out += data["findings"]
    out += [f"Note: {n}" for n in data["notes"]]
    return out


@_drawn_plainly
def delta_plot(cond: Mapping[str, Any], *, level: float) -> Plot | None:
    """Δ per group under A and under B (points with each run's own interval) for one degraded
    condition; ``None`` when no group has a defined Δ in either run."""
    groups = [g["group"] for g in cond["groups"]]
    colors = _colors(["A", "B"])
    fig = _figure(min(3.5 + 0.8 * len(groups), 11.0), 3.6)
    ax = fig.add_subplot()
    drawn = 0
    handles, names = [], []
    for side, offset in (("a", -0.12), ("b", 0.12)):
        xs, ys, lows, highs = [], [], [], []
        for i, g in enumerate(cond["groups"]):
            est = g[f"delta_{side}_pts"]
            if est["value"] is None:
                continue
            lo = est["ci_low"] if est["ci_low"] is not None else est["value"]
            hi = est["ci_high"] if est["ci_high"] is not None else est["value"]
            xs.append(i + offset)
            ys.append(est["value"])
            lows.append(max(est["value"] - lo, 0.0))
            highs.append(max(hi - est["value"], 0.0))
        if xs:
            drawn += len(xs)
            handles.append(
                ax.errorbar(
                    xs, ys, yerr=[lows, highs], marker="o" if side == "a" else "s", ms=5,
                    capsize=3, ls="none", color=colors[side.upper()],
                )
            )  # fmt: skip
            names.append(f"run {side.upper()}")
    if not drawn:
        return None
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xticks(range(len(groups)), labels=[_literal(g) for g in groups], fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel("Δ from clean (points)")
    title = f"Δ per group under {cond['label']}: A and B (bars: {level * 100:g}% CI)"
    ax.set_title(_wrapped(_literal(title)), fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(handles, names, fontsize=8)
    return Plot(
        title=f"Δ per group under {cond['label']}",
        alt=f"Δ per group under {cond['label']} for run A and run B, with intervals",
        png=_png(fig),
    )


def _img(plot: Plot) -> str:
    import base64

    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(plot.alt)}">'
        f"<figcaption>{_e(plot.title)}</figcaption></figure>"
    )


def _runs_table(data: Mapping[str, Any]) -> str:
    rows = ["<table><thead><tr><th></th><th>backend</th><th>spec</th><th>normalizer</th>"]
    rows.append("<th class='num'>failed items</th><th>folder</th></tr></thead><tbody>")
    for key, name in (("run_a", "A"), ("run_b", "B")):
        run = data[key]
        rows.append(
            f"<tr><td><b>{name}</b></td><td>{_e(run['backend']['name'])}</td>"
            f"<td><code>{_e(run['backend']['spec'])}</code></td><td>{_e(run['normalizer'])}</td>"
            f"<td class='num'>{run['n_failed']}</td><td><code>{_e(run['path'])}</code></td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _condition_section(cond: Mapping[str, Any], level: float) -> str:
    verdict = cond["verdict"]
    css = _VERDICT_CLASS.get(verdict or "", "reference")
    parts = [
        f"<section class='condition'><h2>{_e(cond['label'])} "
        f"<span class='flag {css}'>{_e(verdict or 'reference')}</span></h2>"
    ]
    if not cond["is_clean"]:
        parts.append(
            f"<p>Gap between groups: A {_e(_pts(cond['disparity_a_pts']))} (worst "
            f"{_e(cond['worst_group_a'] or 'n/a')}, {_e(cond['flag_a'] or 'n/a')}), B "
            f"{_e(_pts(cond['disparity_b_pts']))} (worst {_e(cond['worst_group_b'] or 'n/a')}, "
            f"{_e(cond['flag_b'] or 'n/a')}): {_e(cond['note'])}.</p>"
        )
        plot = delta_plot(cond, level=level)
        if plot is not None:
            parts.append(_img(plot))
    head = "".join(
        f"<th class='num'>{_e(h)}</th>"
        for h in (
            "speakers",
            "items left out",
            "WER A %",
            "WER B %",
            "WER B−A",
            f"Δ A ({level * 100:g}% CI)",
            f"Δ B ({level * 100:g}% CI)",
            f"Δ B−A ({level * 100:g}% CI)",
        )
    )
    parts.append(f"<div class='scroll'><table><thead><tr><th>group</th>{head}</tr></thead><tbody>")
    for g in cond["groups"]:
        clean = cond["is_clean"]
        cells = (
            str(g["n_speakers"]),
            str(g["n_excluded"]),
            _value(g["wer_a_pct"]),
            _value(g["wer_b_pct"]),
            fmt_ci(g["wer_change_pts"], signed=True),
            "" if clean else fmt_ci(g["delta_a_pts"], signed=True),
            "" if clean else fmt_ci(g["delta_b_pts"], signed=True),
            "" if clean else fmt_ci(g["delta_change_pts"], signed=True),
        )
        parts.append(
            f"<tr><td>{_e(g['group'])}</td>"
            + "".join(f"<td class='num'>{_e(c)}</td>" for c in cells)
            + "</tr>"
        )
    parts.append("</tbody></table></div></section>")
    return "".join(parts)


def comparison_html(data: Mapping[str, Any]) -> str:
    """The comparison as one self-contained HTML page: a banner, the findings, the two runs,
    and per condition a plot of Δ per group for A and B and the side-by-side table."""
    level = float(data["settings"]["ci_level"])
    more: Sequence[str] = data["more_uneven"]
    less: Sequence[str] = data["less_uneven"]
    if more:
        state, text = "uneven", f"B is more uneven than A under {len(more)} condition(s)"
    elif less:
        state, text = "even", f"B is less uneven than A under {len(less)} condition(s)"
    else:
        state, text = "inconclusive", "No condition shows B more or less uneven than A"
    name = data["pack"]["name"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(f'lastmile compare: {name}')}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(name)}: run A vs run B</h1>",
        f"<div class='banner {state}'>{_e(text)}.</div></header>",
        "<section id='findings'><h2>Findings</h2><ul>",
        *(f"<li>{_e(s)}</li>" for s in data["findings"]),
        *(f"<li class='muted'>Note: {_e(n)}</li>" for n in data["notes"]),
        "</ul></section><section id='runs'><h2>Runs</h2>",
        _runs_table(data),
        "<p class='muted'>",
        _e(
            f"Changes B − A carry paired {level * 100:g}% intervals: the delete-one-speaker "
            "jackknife over each group's speakers (a speaker left out of both runs at once), "
            "Student t with n − 1 degrees of freedom. A verdict comes from Welch's statistic "
            "(parametric bootstrap) of "
            f"whether the groups' change differs (Benjamini–Hochberg at α = "
            f"{data['settings']['alpha']:g}); more or less uneven when, in addition, the "
            "jackknife interval of the change of the gap (largest minus smallest Δ) excludes 0. "
            f"{data['n_excluded']} of {data['n_items']} items failed in a run and were "
            "left out of both."
        ),
        "</p></section>",
    ]
    parts += [_condition_section(c, level) for c in data["conditions"]]
    parts.append("</body></html>\n")
    return "".join(parts)
