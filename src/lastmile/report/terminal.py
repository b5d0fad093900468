"""The terminal table (rich): condition × group WER with CI, Δ, disparity with CI, verdict.

Laid out for the console's width (80 columns and up): each condition is a line of its own
(its id as the pack wrote it, the verdict, the gap U and q), followed by one row per group;
numbers never wrap, words never split, and long generated labels go to a legend below.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from rich.cells import cell_len
from rich.console import Console, Group
from rich.text import Text

from lastmile.report.findings import (
    FAILED_LEGEND,
    FAILED_MARK,
    condition_info,
    failed_note,
)
from lastmile.report.intervals import NoteMarks, fmt_estimate, marks_worst, threshold_text

__all__ = ["FLAG_STYLES", "print_summary", "summary_table"]

FLAG_STYLES: dict[str, str] = {
    "uneven": "bold red",
    "inconclusive": "yellow",
    "insufficient-data": "magenta",
    "even": "green",
}

_GAP = "   "  # between columns
_INDENT = "  "  # group rows under their condition
_HANG = "    "  # continuation lines of a wrapped condition line or legend entry


def _wrap(text: Text, width: int, *, hang: str = _HANG) -> list[Text]:
    """``text`` wrapped at spaces to ``width`` cells, continuation lines indented by
    ``hang``; a word longer than a line is the only thing ever folded."""
    plain = text.plain
    first = textwrap.wrap(plain, width=max(width, 8), break_on_hyphens=False)
    if len(first) <= 1:
        return [text]
    rest = textwrap.wrap(
        plain[len(first[0]) :].lstrip(), width=max(width - len(hang), 8), break_on_hyphens=False
    )
    out: list[Text] = []
    pos = 0
    for k, line in enumerate([first[0], *rest]):
        start = plain.index(line, pos) if line else pos
        piece = text[start : start + len(line)]
        pos = start + len(line)
        out.append(piece if k == 0 else Text(hang) + piece)
    return out


def _verdict_line(cond: Mapping[str, Any], marks: NoteMarks) -> Text:
    """``hum60_snr10  inconclusive  U 5.6 (-10.6 to 21.8), q 0.64; need ~50 spk/group``
    (``U 2.3 (no CI [1])`` when the gap has no interval)."""
    line = Text(str(cond["id"]), style="bold")
    line.append("  ")
    if cond["is_clean"]:
        line.append("reference", style="dim")
        return line
    flag = str(cond.get("flag") or "n/a")
    line.append(flag, style=FLAG_STYLES.get(flag, ""))
    details = []
    if cond["disparity_pts"]["value"] is not None:
        details.append(f"U {fmt_estimate(cond['disparity_pts'], marks)}")
    if cond.get("q_value") is not None:
        details.append(f"q {cond['q_value']:.2g}")
    text = ", ".join(details)
    if cond.get("speakers_needed_per_group"):
        text += ("; " if text else "") + f"need ~{cond['speakers_needed_per_group']} spk/group"
    if text:
        line.append("  " + text)
    return line


def summary_table(summary: Mapping[str, Any], *, width: int = 80) -> Group:
    """The condition × group table laid out for ``width`` columns.

    One line per condition (id, verdict, gap U with CI, q), then one row per group: speakers,
    WER % (CI) and Δ (CI); the worst group in bold (none under ``insufficient-data``); a
    cell with failed items carries ``†`` and a line saying how many. A number shown without
    an interval says ``no CI [n]``, the reason listed under the table. Numbers never wrap;
    group names wrap at spaces only when they cannot fit; a legend gives each generated label
    under its id.
    """
    analysis = summary["analysis"]
    info = condition_info(summary.get("run", {}))
    level = f"{analysis['settings']['ci_level'] * 100:g}%"
    delta_unit = "Δ pts" if analysis["metric"] == "absolute" else "Δ % rel"
    heads = ("Condition / group", "Spk", f"WER % ({level} CI)", f"{delta_unit} ({level} CI)")
    rows: list[tuple[Mapping[str, Any], Mapping[str, Any], str, str, str]] = []
    marks = NoteMarks()
    verdicts: dict[str, Text] = {}
    for cond in analysis["conditions"]:  # marks numbered in the order they are shown
        verdicts[str(cond["id"])] = _verdict_line(cond, marks)
        for cell in cond["groups"]:
            wer = fmt_estimate(cell["wer_pct"], marks)
            delta = "—" if cond["is_clean"] else fmt_estimate(cell["delta_pts"], marks, signed=True)
            rows.append((cond, cell, str(cell["n_speakers"]), wer, delta))
    spk_w = max([cell_len(heads[1])] + [cell_len(r[2]) for r in rows])
    wer_w = max([cell_len(heads[2])] + [cell_len(r[3]) for r in rows])
    delta_w = max([cell_len(heads[3])] + [cell_len(r[4]) for r in rows])
    fixed = len(_INDENT) + 3 * len(_GAP) + spk_w + wer_w + delta_w
    longest = max([cell_len(heads[0])] + [cell_len(str(r[1]["group"])) for r in rows])
    name_w = max(min(longest, width - fixed), 6)
    total = len(_INDENT) + name_w + fixed - len(_INDENT)

    def row(name: str, spk: str, wer: Text | str, delta: str, *, style: str = "") -> list[Text]:
        names = textwrap.wrap(name, width=name_w, break_on_hyphens=False) or [""]
        first = Text(_INDENT) + Text(names[0].ljust(name_w), style=style)
        first.append(_GAP + spk.rjust(spk_w) + _GAP)
        wer_text = wer if isinstance(wer, Text) else Text(wer)
        first.append_text(Text(" " * (wer_w - cell_len(wer_text.plain))) + wer_text)
        first.append(_GAP + " " * (delta_w - cell_len(delta)) + delta)
        return [first] + [Text(_INDENT) + Text(more, style=style) for more in names[1:]]

    head = Text(_INDENT + heads[0].ljust(name_w), style="bold")
    head.append(_GAP + heads[1].rjust(spk_w) + _GAP, style="bold")
    head.append(heads[2].rjust(wer_w) + _GAP + heads[3].rjust(delta_w), style="bold")
    lines: list[Text] = [head, Text("─" * min(total, width))]
    seen: set[str] = set()
    for cond, cell, spk, wer, delta in rows:
        if cond["id"] not in seen:
            if seen:
                lines.append(Text(""))
            seen.add(cond["id"])
            lines.extend(_wrap(verdicts[str(cond["id"])], width))
        worst = marks_worst(cond, cell["group"])
        lines.extend(row(str(cell["group"]), spk, wer, delta, style="bold" if worst else ""))
        if note := failed_note(cell):  # a line of its own, under the cell's WER
            mark = f"{FAILED_MARK} {note}"
            pad = len(_INDENT) + name_w + 2 * len(_GAP) + spk_w + max(wer_w - cell_len(mark), 0)
            lines.append(Text(" " * pad) + Text(mark, style="bold red"))
    notes = marks.take()
    if notes:
        lines.append(Text(""))
        for mark, note in notes:
            lines.extend(_wrap(Text(f"{mark} {note}"), width, hang=" " * (len(mark) + 1)))
    legend = [
        (cid, meta["label"]) for cid, meta in info.items() if meta["label"] != cid and cid in seen
    ]
    if legend:
        lines.append(Text(""))
        short = [cell_len(cid) for cid, _ in legend if cell_len(cid) <= width // 3]
        id_w = max(short, default=0)  # longer ids are followed by their label directly
        for cid, label in legend:
            entry = Text(cid.ljust(id_w), style="bold") + Text("  " + label)
            lines.extend(_wrap(entry, width, hang=" " * min(id_w + 2, width // 3)))
    return Group(*lines)


def print_summary(summary: Mapping[str, Any], console: Console) -> None:
    """Print findings, the condition × group table and a one-line run note to ``console``,
    laid out for its width.

    ``summary`` is summary.json's content (see :func:`lastmile.report.build_summary`).
    """
    width = console.width
    run = summary.get("run", {})
    analysis = summary["analysis"]
    pack = (run.get("pack") or {}).get("name", "?")
    backend = (run.get("backend") or {}).get("name", "?")
    head = Text.assemble(
        ("lastmile ", "bold"),
        (str(pack), "bold cyan"),
        f"  backend {backend}, metric {analysis['metric']}, "
        f"{analysis['totals']['n_items']} items, {analysis['totals']['n_speakers']} speakers",
    )
    for line in _wrap(head, width):
        console.print(line, overflow="fold")
    for sentence in summary.get("findings", []):
        for line in _wrap(Text("• ") + Text(sentence), width, hang="  "):
            console.print(line, overflow="fold")
    console.print()
    console.print(summary_table(summary, width=width), overflow="fold")
    if any(cell["n_failed"] for cond in analysis["conditions"] for cell in cond["groups"]):
        for line in _wrap(Text(FAILED_LEGEND + ".", style="red"), width, hang="  "):
            console.print(line, overflow="fold")
    settings = analysis["settings"]
    threshold = threshold_text(analysis)
    note = Text(
        f"U = largest minus smallest Δ across groups; flag uneven when U ≥ "
        f"{threshold} and q ≤ {settings['alpha']:g} "
        f"(Welch's statistic of equal Δ, parametric bootstrap, Benjamini–Hochberg); even "
        f"when every pairwise gap's "
        f"{(1 - 2 * settings['alpha']) * 100:g}% interval lies within ± {threshold}. "
        "Every pairwise gap with its interval: summary.md and report.html (pairs in "
        "summary.json).",
        style="dim",
    )
    for line in _wrap(note, width, hang=""):
        console.print(line, overflow="fold")
