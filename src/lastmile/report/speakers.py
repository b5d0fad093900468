"""Who drives a gap: each speaker's Δ per condition × group, as strip plots for report.html.

summary.json carries every speaker's own Δ (``analysis.conditions[].groups[].speakers``); a
gap carried by one or two speakers looks different from one that every speaker shares.
"""

from __future__ import annotations

import hashlib
import html
import re
import shlex
import textwrap
from collections.abc import Mapping
from typing import Any

from lastmile.report.plots import Plot, _drawn_plainly, _figure, _literal, _png

__all__ = ["listen_command", "speaker_strips", "speakers_html"]

_MAX_PANELS = 24
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
NO_SPEAKERS = "no scored speakers"
"""The label of a strip plot column whose group has no scored item under the condition."""


def _folder_name(condition_id: str, utterance_id: str) -> str:
    """``hum60_snr10__us-0-u1``: a folder name of its own for each (condition, utterance);
    characters outside ``A-Za-z0-9._-`` become ``_``, and then a short digest of the ids
    keeps two items apart that would read the same."""
    name = f"{condition_id}__{utterance_id}"
    safe = _UNSAFE.sub("_", name).strip("._") or "item"
    if safe != name:
        digest = hashlib.sha256(f"{condition_id}\0{utterance_id}".encode()).hexdigest()[:8]
        safe = f"{safe}_{digest}"
    return safe


def listen_command(pack_path: str, condition_id: str, utterance_id: str) -> str:
    """The shell command that renders one item to listen to, into a folder of its own under
    ``listen/`` (``lastmile render``'s ``--out`` is a folder it writes mix.wav and item.json
    into, so items sharing one would overwrite each other); arguments shell-quoted."""
    out = f"listen/{_folder_name(condition_id, utterance_id)}"
    return shlex.join(
        ["lastmile", "render", pack_path, "-c", condition_id, "-u", utterance_id, "--out", out]
    )


@_drawn_plainly
def speaker_strips(summary: Mapping[str, Any]) -> Plot | None:
    """One panel per degraded condition (at most 24): every speaker's Δ as a dot per group,
    the group's pooled Δ as a bar with its interval; a group with nothing to draw is labelled
    ("no scored speakers", or "Δ undefined"); ``None`` when no speaker Δ is known."""
    drawn = _strip_figure(summary)
    if drawn is None:
        return None
    fig, unit, empty = drawn
    alt = f"Strip plots of every speaker's degradation from clean ({unit}) per condition and group"
    if empty:
        alt += "; nothing to draw for " + "; ".join(empty)
    return Plot(
        title="Each speaker's Δ (dots), the group's pooled Δ (bar) and its interval (vertical "
        "line, where there is one: the Conditions tables say why not)",
        alt=alt,
        png=_png(fig),
    )


def _empty_reason(cell: Mapping[str, Any] | None) -> str:
    """Why a strip plot column has no dot and no bar."""
    if cell is None or int(cell.get("n_items") or 0) <= int(cell.get("n_failed") or 0):
        return NO_SPEAKERS
    if not cell.get("n_ref_words"):
        return NO_SPEAKERS
    return "Δ undefined"


def _strip_figure(summary: Mapping[str, Any]) -> tuple[Any, str, list[str]] | None:
    """The strip plots' figure, the unit of Δ and "condition / group: reason" of each empty
    column; ``None`` when no speaker Δ is known."""
    import numpy as np

    analysis = summary["analysis"]
    conditions = [c for c in analysis["conditions"] if not c["is_clean"]][:_MAX_PANELS]
    groups = list(analysis["groups"])
    if not conditions or not any(
        s.get("delta_pts") is not None
        for c in conditions
        for cell in c["groups"]
        for s in cell.get("speakers", [])
    ):
        return None
    columns = min(3, len(conditions))
    rows = -(-len(conditions) // columns)
    width = min(4.0 + 0.55 * len(groups), 7.0)
    fig = _figure(width * columns, 2.6 * rows + 0.4)
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    unit = "WER points" if analysis["metric"] == "absolute" else "% relative change"
    empty: list[str] = []
    for k, cond in enumerate(conditions):
        ax = fig.add_subplot(rows, columns, k + 1)
        for j, group in enumerate(groups):
            cell = next((c for c in cond["groups"] if c["group"] == group), None)
            drawn = cell is not None and (
                cell["delta_pts"]["value"] is not None
                or any(s["delta_pts"] is not None for s in cell.get("speakers", []))
            )
            if cell is None or not drawn:
                reason = _empty_reason(cell)
                empty.append(f"{cond['id']} / {group}: {reason}")
                ax.text(
                    j, 0.5, reason, transform=ax.get_xaxis_transform(),
                    ha="center", va="center", fontsize=7, color="#666666", rotation=90,
                )  # fmt: skip
                continue
            values = np.array(
                [s["delta_pts"] for s in cell.get("speakers", []) if s["delta_pts"] is not None]
            )
            if values.size:
                ax.scatter(
                    j + rng.uniform(-0.18, 0.18, values.size), values, s=10, alpha=0.6, color="C0"
                )
            delta = cell["delta_pts"]
            if delta["value"] is not None:
                ax.hlines(delta["value"], j - 0.3, j + 0.3, color="black", linewidth=2)
                if delta.get("ci_low") is not None:
                    ax.vlines(j + 0.32, delta["ci_low"], delta["ci_high"], color="black")
        ax.axhline(0.0, color="#999999", linewidth=0.8)
        ax.set_xticks(range(len(groups)), labels=[_literal(g) for g in groups], fontsize=8)
        flag = f" [{cond['flag']}]" if cond.get("flag") else ""
        title = textwrap.fill(_literal(str(cond["id"]) + flag), 40, break_on_hyphens=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.6, len(groups) - 0.4)  # an empty last column keeps its place
        if k % columns == 0:
            ax.set_ylabel(f"Δ ({unit})", fontsize=8)
    return fig, unit, empty


def _worst_items_html(summary: Mapping[str, Any]) -> str:
    """Per degraded condition, its worst items: reference, hypothesis, WER (and clean WER),
    and the command that renders the item's audio to listen to."""
    e = html.escape
    run = summary.get("run") or {}
    absolute = (run.get("paths") or {}).get("pack")  # recorded with --absolute-paths
    pack_path = str(absolute or (run.get("pack") or {}).get("path") or "PACK.yaml")
    parts = []
    for cond in summary["analysis"]["conditions"]:
        worst = cond.get("worst_items") or []
        if cond["is_clean"] or not worst:
            continue
        parts.append(
            f"<h3>{e(str(cond['id']))}: worst items</h3><div class='scroll'><table><thead><tr>"
            "<th>utterance</th><th>group</th><th>WER % (clean)</th><th>reference</th>"
            "<th>hypothesis</th><th>listen</th></tr></thead><tbody>"
        )
        for item in worst:
            clean = item.get("clean_wer_pct")
            wer = "n/a" if item["wer_pct"] is None else f"{item['wer_pct']:.1f}"
            wer += "" if clean is None else f" ({clean:.1f})"
            command = listen_command(pack_path, str(cond["id"]), str(item["utterance_id"]))
            parts.append(
                f"<tr><td>{e(item['utterance_id'])}</td><td>{e(item['group'])}</td>"
                f"<td>{e(wer)}</td><td>{e(item['reference'])}</td><td>{e(item['hypothesis'])}</td>"
                f"<td><code>{e(command)}</code></td></tr>"
            )
        parts.append("</tbody></table></div>")
    if parts and not absolute:
        parts.append(
            f"<p>Run the listen commands in the folder that holds {e(pack_path)} (the run "
            "records the pack's name only; <code>lastmile run --absolute-paths</code> records "
            "where it is).</p>"
        )
    return "".join(parts)


def speakers_html(summary: Mapping[str, Any]) -> str:
    """report.html's "Who drives the gap" section: the strip plots and each condition's worst
    items ('' when there is neither)."""
    import base64

    plot = speaker_strips(summary)
    items = _worst_items_html(summary)
    if plot is None and not items:
        return ""
    parts = ["<section id='speakers'><h2>Who drives the gap</h2>"]
    if plot is not None:
        data = base64.b64encode(plot.png).decode("ascii")
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(plot.alt)}">'
            f"<figcaption>{html.escape(plot.title)}</figcaption></figure>"
        )
        conditions = [c for c in summary["analysis"]["conditions"] if not c["is_clean"]]
        more = len(conditions) - _MAX_PANELS
        if more > 0:
            parts.append(
                f"<p class='muted'>First {_MAX_PANELS} conditions shown; {more} more in "
                "summary.json.</p>"
            )
    parts.append(items)
    parts.append("</section>")
    return "".join(parts)
