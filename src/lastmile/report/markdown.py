"""summary.md: a CI job summary (GitHub step summary): headline, findings, condition × group."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lastmile.report.findings import (
    FAILED_LEGEND,
    FAILED_MARK,
    condition_info,
    failed_cells,
    failed_note,
    latency_sentence,
)
from lastmile.report.intervals import (
    NoteMarks,
    fmt_estimate,
    marks_worst,
    pair_rows,
    threshold_text,
)
from lastmile.report.mitigation import mitigation_markdown

__all__ = ["headline", "render_markdown"]

_FLAG_MARK = {
    "uneven": "❌ uneven",
    "inconclusive": "⚠️ inconclusive",
    "insufficient-data": "❔ insufficient-data",
    "even": "✅ even",
}


# Markdown (GitHub's, with its $math$ and inline HTML) gives these a meaning; a backslash
# makes each literal (no HTML entities: they would show as typed inside code and in some
# renderers).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~$<>&])")
_TICKS = re.compile(r"`+")


def _md(text: object) -> str:
    """Text shown literally in Markdown, also inside a table cell: Markdown punctuation
    (emphasis, links, code, math, pipes, HTML's ``<``, ``>`` and ``&``) backslash-escaped,
    newlines folded."""
    escaped = _MD_SPECIAL.sub(r"\\\1", str(text))
    return escaped.replace("\r", " ").replace("\n", " ")


def _code(text: object) -> str:
    """A Markdown code span showing ``text`` literally, also inside a table cell (the fence
    is longer than any run of backticks in it; pipes escaped as GitHub tables need)."""
    body = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(m) for m in _TICKS.findall(body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def headline(summary: Mapping[str, Any]) -> str:
    """One line: how many degraded conditions got each verdict, uneven first."""
    totals = summary["analysis"]["totals"]
    n_deg = max(totals["n_conditions"] - 1, 0)
    if n_deg == 0:
        return "only the clean condition was run: nothing to compare"
    n_even = totals.get("n_even", 0)
    if n_even == n_deg:
        if n_deg == 1:
            return "the degraded condition is shown even across groups"
        return f"all {n_deg} degraded conditions are shown even across groups"
    if totals["n_uneven"]:
        verb = "is" if totals["n_uneven"] == 1 else "are"
        first = (
            f"{totals['n_uneven']} of {n_deg} degraded condition{'s' if n_deg != 1 else ''} "
            f"{verb} uneven across groups"
        )
    else:
        first = f"no condition of {n_deg} is shown uneven"
    rest = [
        f"{n} {what}"
        for n, what in (
            (n_even, "shown even"),
            (totals["n_inconclusive"], "inconclusive (need more speakers)"),
            (totals["n_insufficient_data"], "insufficient-data (no verdict)"),
        )
        if n
    ]
    return first + ("; " + ", ".join(rest) if rest else "")


def _notes(marks: NoteMarks) -> list[str]:
    """The reasons marked in the table just written, as lines under it (none: no lines)."""
    notes = marks.take()
    if not notes:
        return []
    return [""] + [f"- {_md(mark)} {_md(note)}" for mark, note in notes]


def _pairs_table(
    analysis: Mapping[str, Any], labels: Mapping[str, str], marks: NoteMarks
) -> list[str]:
    """Every pairwise gap Δ(a) − Δ(b) of every degraded condition with its interval, the
    (1 − 2α) interval the ``even`` verdict rests on and whether it lies within ± the
    threshold, in a collapsible block (no lines when no condition has pairs)."""
    settings = analysis["settings"]
    level = f"{settings['ci_level'] * 100:g}%"
    eq_level = f"{(1 - 2 * settings['alpha']) * 100:g}%"
    unit = "pts" if analysis["metric"] == "absolute" else "% rel."
    threshold = threshold_text(analysis)
    rows = []
    for cond in analysis["conditions"]:
        if cond["is_clean"]:
            continue
        label = labels.get(cond["id"], cond["id"])
        for pair in pair_rows(cond, marks):
            rows.append(
                f"| {_md(label)} | {_md(pair.first)} − {_md(pair.second)} | {_md(pair.gap)} | "
                f"{_md(pair.equivalence)} | {pair.within} |"
            )
    if not rows:
        return []
    return [
        "",
        f"<details><summary>Pairwise gaps between groups, Δ(a) − Δ(b) with {level} "
        "confidence intervals</summary>",
        "",
        f"| Condition | Pair a − b | Gap {unit} ({level} CI) | {eq_level} interval "
        f"| Within ± {_md(threshold)} |",
        "|---|---|---|---|---|",
        *rows,
        *_notes(marks),
        "",
        "</details>",
    ]


def render_markdown(summary: Mapping[str, Any]) -> str:
    """summary.md's text: headline, findings, a condition × group table (WER % and Δ),
    the intervals per cell and every pairwise gap with its interval in collapsible blocks,
    and the run's identity. A number shown without an interval says ``no CI [n]``, the
    reason listed under its table."""
    analysis = summary["analysis"]
    run = summary.get("run", {})
    info = condition_info(run)
    groups = list(analysis["groups"])
    level = f"{analysis['settings']['ci_level'] * 100:g}%"
    delta_unit = "pts" if analysis["metric"] == "absolute" else "% rel."
    pack = (run.get("pack") or {}).get("name", "?")
    labels = {str(cid): str(meta.get("label", cid)) for cid, meta in info.items()}
    marks = NoteMarks()
    lines = [
        f"## lastmile: {_md(pack)}",
        "",
        f"**{_md(headline(summary))}.**",
        "",
        "### Findings",
        "",
    ]
    lines += [f"- {_md(sentence)}" for sentence in summary.get("findings", [])] or ["- (none)"]
    lines += [
        "",
        f"### WER % by condition and group (Δ from clean, {delta_unit})",
        "",
        "| Condition | Verdict | Gap U ("
        + level
        + " CI) | q | "
        + " | ".join(_md(g) for g in groups)
        + " |",
        "|---|---|---|---|" + "---|" * len(groups),
    ]
    for cond in analysis["conditions"]:
        label = info.get(cond["id"], {}).get("label", cond["id"])
        cells = []
        for cell in cond["groups"]:
            wer = cell["wer_pct"]["value"]
            text = "n/a" if wer is None else f"{wer:.1f}"
            if not cond["is_clean"] and cell["delta_pts"]["value"] is not None:
                text += f" ({cell['delta_pts']['value']:+.1f})"
            if marks_worst(cond, cell["group"]):
                text = f"**{text}**"
            if note := failed_note(cell):
                text += f" {FAILED_MARK} {note}"
            cells.append(text)
        if cond["is_clean"]:
            verdict, gap, q = "reference", "", ""
        else:
            verdict = _FLAG_MARK.get(cond["flag"], cond["flag"])
            gap = _md(fmt_estimate(cond["disparity_pts"], marks))
            q = "" if cond["q_value"] is None else f"{cond['q_value']:.2g}"
        lines.append(f"| {_md(label)} | {verdict} | {gap} | {q} | " + " | ".join(cells) + " |")
    lines += _notes(marks)
    if failed_cells(summary):
        lines += ["", f"{FAILED_LEGEND}."]
    lines += mitigation_markdown(summary, escape=_md)
    lines += [
        "",
        f"<details><summary>{level} confidence intervals per cell</summary>",
        "",
        "| Condition | Group | Speakers | Items (failed) "
        f"| WER % ({level} CI) | Δ {delta_unit} ({level} CI) |",
        "|---|---|---|---|---|---|",
    ]
    for cond in analysis["conditions"]:
        label = info.get(cond["id"], {}).get("label", cond["id"])
        for cell in cond["groups"]:
            delta = (
                "—"
                if cond["is_clean"]
                else _md(fmt_estimate(cell["delta_pts"], marks, signed=True))
            )
            lines.append(
                f"| {_md(label)} | {_md(cell['group'])} | {cell['n_speakers']} | "
                f"{cell['n_items']} ({cell['n_failed']}) | "
                f"{_md(fmt_estimate(cell['wer_pct'], marks))}"
                + (f" {FAILED_MARK}" if cell["n_failed"] else "")
                + f" | {delta} |"
            )
    lines += _notes(marks)
    backend = run.get("backend") or {}
    seed = (run.get("pack") or {}).get("seed", "?")
    lines += ["", "</details>"]
    lines += _pairs_table(analysis, labels, marks)
    lines += [
        "",
        f"Backend {_code(backend.get('fingerprint', backend.get('name', '?')))}, normalizer "
        f"{_code(run.get('normalizer', '?'))}, seed {_md(seed)}, "
        f"metric {analysis['metric']}, threshold {_md(threshold_text(analysis))}, "
        f"FDR α {analysis['settings']['alpha']:g}.",
        "",
    ]
    latency = summary.get("latency")
    if latency:
        lines += [f"{_md(latency_sentence(latency))}", ""]
    return "\n".join(lines)
