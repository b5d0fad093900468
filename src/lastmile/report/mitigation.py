"""The mitigation part of summary.md and report.html (summary.json's ``mitigation``)."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from lastmile.report.findings import fmt_ci

__all__ = ["mitigation_html", "mitigation_markdown"]


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((summary.get("mitigation") or {}).get("conditions") or [])


def _groups(summary: Mapping[str, Any]) -> list[str]:
    return list(summary["analysis"]["groups"])


def _closes(row: Mapping[str, Any]) -> str:
    closes = row["closes_pct"]
    return "n/a" if closes is None else f"{closes:.0f} %"


def _notes(summary: Mapping[str, Any]) -> list[str]:
    """Why an interval is missing, or what it left out: one line per estimate with a note."""
    out = []
    for row in _rows(summary):
        note = row["disparity_change_pts"].get("ci_note")
        if note:
            out.append(f"{row['label']}, {row['frontend']}: change in U: {note}")
    for cost in (summary.get("mitigation") or {}).get("clean_cost") or []:
        estimates = [("all groups", cost["wer_change_pts"]), *cost["by_group"].items()]
        for who, estimate in estimates:
            if estimate.get("ci_note"):
                out.append(
                    f"{cost['frontend']}: cost on clean speech, {who}: {estimate['ci_note']}"
                )
    return out


def mitigation_markdown(
    summary: Mapping[str, Any], *, escape: Callable[[object], str]
) -> list[str]:
    """Lines for summary.md (empty without front ends): the sentences, then per condition
    and front end U without → with, its change with the interval, the share closed and each
    group's Δ without → with; then each front end's cost on clean speech."""
    mitigation = summary.get("mitigation")
    if not mitigation:
        return []
    level = f"{mitigation['ci_level'] * 100:g}%"
    groups = _groups(summary)
    lines = ["", "### Mitigation: front ends (same items and seeds)", ""]
    lines += [f"- {escape(row['sentence'])}" for row in _rows(summary)]
    lines += [
        "",
        f"| Condition | Front end | Gap U without → with | Change ({level} CI) | Closes | "
        + " | ".join(f"Δ {escape(g)}" for g in groups)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(groups),
    ]
    for row in _rows(summary):
        cells = [
            f"{_num(row['by_group'][g]['delta_without_pts'], '+.1f')} → "
            f"{_num(row['by_group'][g]['delta_with_pts'], '+.1f')}"
            for g in groups
        ]
        lines.append(
            f"| {escape(row['label'])} | {escape(row['frontend'])} | "
            f"{_num(row['disparity_without_pts'])} → {_num(row['disparity_with_pts'])} | "
            f"{fmt_ci(row['disparity_change_pts'], signed=True)} | {_closes(row)} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        f"| Front end | Cost on clean speech, WER pts ({level} CI) | "
        + " | ".join(escape(g) for g in groups)
        + " |",
        "|---|---|" + "---|" * len(groups),
    ]
    for cost in mitigation["clean_cost"]:
        lines.append(
            f"| {escape(cost['frontend'])} | {fmt_ci(cost['wer_change_pts'], signed=True)} | "
            + " | ".join(fmt_ci(cost["by_group"][g], signed=True) for g in groups)
            + " |"
        )
    notes = _notes(summary)
    if notes:
        lines += ["", "Intervals:", ""] + [f"- {escape(n)}" for n in notes]
    return lines


def mitigation_html(summary: Mapping[str, Any]) -> str:
    """report.html's mitigation section ("" without front ends)."""
    mitigation = summary.get("mitigation")
    if not mitigation:
        return ""

    def e(text: object) -> str:
        return html.escape(str(text), quote=True)

    level = f"{mitigation['ci_level'] * 100:g}%"
    groups = _groups(summary)
    parts = [
        "<section id='mitigation'><h2>Mitigation: front ends</h2>",
        "<p class='muted'>Every condition ran again through each front end on the same "
        "utterances and noise draws; Δ is from clean speech without a front end.</p>",
        "<ul class='findings'>",
        *(f"<li>{e(row['sentence'])}</li>" for row in _rows(summary)),
        "</ul><div class='scroll'><table><thead><tr><th>Condition</th><th>Front end</th>",
        "<th class='num'>Gap U without → with</th>",
        f"<th class='num'>Change ({e(level)} CI)</th><th class='num'>Closes</th>",
        *(f"<th class='num'>Δ {e(g)}</th>" for g in groups),
        "</tr></thead><tbody>",
    ]
    for row in _rows(summary):
        parts.append(
            f"<tr><td>{e(row['label'])}</td><td>{e(row['frontend'])}</td>"
            f"<td class='num'>{_num(row['disparity_without_pts'])} → "
            f"{_num(row['disparity_with_pts'])}</td>"
            f"<td class='num'>{e(fmt_ci(row['disparity_change_pts'], signed=True))}</td>"
            f"<td class='num'>{e(_closes(row))}</td>"
        )
        for g in groups:
            cell = row["by_group"][g]
            parts.append(
                f"<td class='num'>{_num(cell['delta_without_pts'], '+.1f')} → "
                f"{_num(cell['delta_with_pts'], '+.1f')}</td>"
            )
        parts.append("</tr>")
    parts.append(
        "</tbody></table></div><h3>Cost on clean speech</h3><div class='scroll'><table>"
        f"<thead><tr><th>Front end</th><th class='num'>WER pts ({e(level)} CI)</th>"
        + "".join(f"<th class='num'>{e(g)}</th>" for g in groups)
        + "</tr></thead><tbody>"
    )
    for cost in mitigation["clean_cost"]:
        parts.append(
            f"<tr><td>{e(cost['frontend'])}</td>"
            f"<td class='num'>{e(fmt_ci(cost['wer_change_pts'], signed=True))}</td>"
            + "".join(
                f"<td class='num'>{e(fmt_ci(cost['by_group'][g], signed=True))}</td>"
                for g in groups
            )
            + "</tr>"
        )
    parts.append("</tbody></table></div>")
    notes = _notes(summary)
    if notes:
        parts.append("<ul class='muted'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</section>")
    return "".join(parts)
