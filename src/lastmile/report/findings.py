"""Plain-language findings from a summary's ``analysis`` and ``run`` parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lastmile.analysis.analyze import SIZES_MAX

__all__ = [
    "FAILED_LEGEND",
    "FAILED_MARK",
    "condition_info",
    "failed_cells",
    "failed_note",
    "findings",
    "fmt_ci",
    "fmt_range",
    "is_worst",
    "latency_sentence",
    "overall_wer_pct",
]


def latency_sentence(latency: Mapping[str, Any]) -> str:
    """summary.json's ``latency`` in words: seconds per decoded item."""
    return (
        f"Backend latency per item: median {latency['p50_s']:.3g} s, 95th percentile "
        f"{latency['p95_s']:.3g} s, slowest {latency['max_s']:.3g} s "
        f"({latency['n_items']} items decoded for this run folder, a resumed run's earlier "
        "ones included)"
    )


FAILED_MARK = "†"
"""Marks, in every report, a condition × group cell some of whose items failed."""
FAILED_LEGEND = (
    f"{FAILED_MARK} items of this cell failed: they are left out of its WER "
    "(see the error column of items.csv)"
)


def failed_note(cell: Mapping[str, Any]) -> str:
    """``"2 of 12 failed"`` (or ``"all 12 failed"``) for a cell with failed items, ``""``
    otherwise."""
    failed, items = int(cell.get("n_failed") or 0), int(cell.get("n_items") or 0)
    if not failed:
        return ""
    return f"all {items} failed" if failed >= items else f"{failed} of {items} failed"


def failed_cells(summary: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(condition, cell) of every cell with failed items, in the analysis' order."""
    return [
        (cond, cell)
        for cond in summary["analysis"]["conditions"]
        for cell in cond["groups"]
        if cell.get("n_failed")
    ]


def is_worst(condition: Mapping[str, Any], group: str) -> bool:
    """True for the worst group of a degraded condition with a positive disparity."""
    gap = condition["disparity_pts"]["value"]
    return (
        not condition["is_clean"]
        and gap is not None
        and gap > 0
        and group == condition["worst_group"]
    )


def fmt_range(low: float, high: float) -> str:
    """``"9.1–19.0"``, or ``"-2.1 to 3.4"`` when a bound is negative (a dash would read as
    a minus sign)."""
    if low < 0 or high < 0:
        return f"{low:.1f} to {high:.1f}"
    return f"{low:.1f}–{high:.1f}"


def condition_info(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """run.json's conditions keyed by id (``label`` defaults to the id)."""
    out: dict[str, dict[str, Any]] = {}
    for cond in run.get("conditions", []) or []:
        if isinstance(cond, Mapping) and "id" in cond:
            info = dict(cond)
            info["label"] = str(info.get("label") or info["id"])
            out[str(cond["id"])] = info
    return out


def fmt_ci(estimate: Mapping[str, Any] | None, *, signed: bool = False) -> str:
    """``"14.2 (9.1–19.0)"`` from ``{"value", "ci_low", "ci_high"}``; ``"n/a"`` if undefined."""
    if not estimate or estimate.get("value") is None:
        return "n/a"
    sign = "+" if signed else ""
    value = f"{estimate['value']:{sign}.1f}"
    if estimate.get("ci_low") is None or estimate.get("ci_high") is None:
        return value
    return f"{value} ({fmt_range(estimate['ci_low'], estimate['ci_high'])})"


def overall_wer_pct(condition: Mapping[str, Any]) -> float | None:
    """Pooled WER (%) of a condition over all groups: Σ errors / Σ words."""
    words = sum(cell["n_ref_words"] for cell in condition["groups"])
    errors = sum(cell["n_errors"] for cell in condition["groups"])
    return 100.0 * errors / words if words else None


def _cell(condition: Mapping[str, Any], group: str | None) -> Mapping[str, Any] | None:
    for cell in condition["groups"]:
        if cell["group"] == group:
            return cell
    return None


def _change(cell: Mapping[str, Any], *, relative: bool, level_pct: str, first: bool) -> str:
    delta = cell["delta_pts"]
    value = delta["value"]
    ci = ""
    if delta.get("ci_low") is not None:
        span = fmt_range(delta["ci_low"], delta["ci_high"])
        ci = f" ({level_pct} CI {span})" if first else f" ({span})"
    group = cell["group"]
    if relative:
        verb = "rises" if value >= 0 else "falls"
        return f"{group} speakers' WER {verb} by {abs(value):.1f}%{ci}"
    verb = "lose" if value >= 0 else "gain"
    unit = " WER points" if first else ""
    return f"{group} speakers {verb} {abs(value):.1f}{unit}{ci}"


def _and_list(names: list[str]) -> str:
    """``"a, b and 2 more"``: at most three names; "; " between them if a label has a comma."""
    first = names[:3] + ([f"{len(names) - 3} more"] if len(names) > 3 else [])
    sep = "; " if any("," in name for name in first) else ", "
    return first[0] if len(first) == 1 else f"{sep.join(first[:-1])} and {first[-1]}"


def findings(summary: Mapping[str, Any]) -> list[str]:
    """Sentences for people: flagged conditions first (largest disparity first), then the
    inconclusive and the unjudgeable, then overall degradation, failures and completeness."""
    analysis = summary["analysis"]
    run = summary.get("run", {})
    info = condition_info(run)
    settings = analysis["settings"]
    relative = analysis["metric"] == "relative"
    level_pct = f"{settings['ci_level'] * 100:g}%"
    threshold = (
        settings["threshold_pts"]
        if settings.get("threshold_pts") is not None
        else settings["threshold_rel"] * 100.0  # metric relative: a ratio, shown in points
    )
    unit = "points of relative change" if relative else "WER points"
    group_by = str(run.get("group_by") or "group")
    conditions = [c for c in analysis["conditions"] if not c["is_clean"]]

    def label(cond: Mapping[str, Any]) -> str:
        return str(info.get(cond["id"], {}).get("label", cond["id"]))

    def by_disparity(cond: Mapping[str, Any]) -> float:
        value = cond["disparity_pts"]["value"]
        return -(value if value is not None else -1.0)

    out: list[str] = []
    uneven = sorted((c for c in conditions if c["flag"] == "uneven"), key=by_disparity)
    inconclusive = sorted((c for c in conditions if c["flag"] == "inconclusive"), key=by_disparity)
    insufficient = [c for c in conditions if c["flag"] == "insufficient-data"]
    if uneven:
        out.append(
            f"{len(uneven)} of {len(conditions)} degraded condition"
            f"{'s' if len(conditions) != 1 else ''} hit some {group_by} groups harder than "
            f"others (gap of at least {threshold:g} {unit}, FDR {settings['alpha']:g})."
        )
    for cond in uneven:
        worst, best = _cell(cond, cond["worst_group"]), _cell(cond, cond["best_group"])
        if worst is None or best is None:
            continue
        gap = cond["disparity_pts"]["value"]
        out.append(
            f"Under {label(cond)}, "
            f"{_change(worst, relative=relative, level_pct=level_pct, first=True)}; "
            f"{_change(best, relative=relative, level_pct=level_pct, first=False)}. "
            f"The gap of {gap:.1f} {unit} is unlikely to be chance (q = {cond['q_value']:.2g})."
        )
    for cond in inconclusive:
        worst, best = _cell(cond, cond["worst_group"]), _cell(cond, cond["best_group"])
        if worst is None or best is None:
            continue
        needed = cond.get("speakers_needed_per_group")
        more = f"; about {needed} speakers per group would tell" if needed is not None else ""
        if needed is None and "would not" in str(cond.get("note") or ""):
            more = (
                f"; even {SIZES_MAX} speakers per group would not tell at these utterances "
                "per speaker"
            )
        gap = cond["disparity_pts"]["value"]
        if gap >= threshold - 1e-9:
            verdict = f"but with these speakers it may be chance (q = {cond['q_value']:.2g})"
        else:
            verdict = (
                f"under the threshold of {threshold:g}, but these speakers cannot show every "
                f"gap between two groups to be within ± {threshold:g}"
            )
        out.append(
            f"Under {label(cond)}, "
            f"{_change(worst, relative=relative, level_pct=level_pct, first=True)} and "
            f"{_change(best, relative=relative, level_pct=level_pct, first=False)}: a gap of "
            f"{gap:.1f} {unit}, {verdict}{more}."
        )
    even = [c for c in conditions if c["flag"] == "even"]
    if even and (uneven or inconclusive or insufficient):
        joined = _and_list([label(c) for c in even])
        out.append(
            f"Under {joined}, the {group_by} groups are shown even: every gap between two "
            f"groups lies within ± {threshold:g} {unit} "
            f"({(1 - 2 * settings['alpha']) * 100:g}% intervals)."
        )
    same_note: dict[str, list[str]] = {}  # one sentence for the conditions with one reason
    for cond in insufficient:
        same_note.setdefault(str(cond["note"]), []).append(label(cond))
    for note, names in same_note.items():
        out.append(f"Under {_and_list(names)}, no fairness verdict: {note}.")
    if not uneven and not inconclusive and conditions:
        judged = [c for c in conditions if c["disparity_pts"]["value"] is not None]
        if judged and not insufficient:
            top = min(judged, key=by_disparity)
            out.append(
                f"Every {group_by} group degrades alike within {threshold:g} {unit}, shown "
                f"for each condition ({(1 - 2 * settings['alpha']) * 100:g}% intervals of every "
                f"gap between two groups): the largest gap is "
                f"{top['disparity_pts']['value']:.1f} (under {label(top)})."
            )
    clean = next((c for c in analysis["conditions"] if c["is_clean"]), None)
    clean_wer = overall_wer_pct(clean) if clean else None
    rated: list[tuple[float, Mapping[str, Any]]] = []
    for cond in conditions:
        wer = overall_wer_pct(cond)
        if wer is not None:
            rated.append((wer, cond))
    if clean_wer is not None and rated:
        worst_wer, worst_cond = max(rated, key=lambda pair: pair[0])
        if abs(worst_wer - clean_wer) < 0.05:
            out.append(f"Overall WER stays at {clean_wer:.1f}% in every condition.")
        elif worst_wer < clean_wer:
            out.append(
                f"Overall WER is {clean_wer:.1f}% on clean speech and lower in every other "
                f"condition (at most {worst_wer:.1f}%, under {label(worst_cond)})."
            )
        else:
            out.append(
                f"Overall WER goes from {clean_wer:.1f}% on clean speech to {worst_wer:.1f}% "
                f"under {label(worst_cond)}, the hardest of {len(conditions)} condition"
                f"{'s' if len(conditions) != 1 else ''}."
            )
    elif clean_wer is not None:
        out.append(f"Overall WER on clean speech is {clean_wer:.1f}%.")
    totals = analysis["totals"]
    if totals["n_failed"]:
        share = 100.0 * totals["n_failed"] / max(totals["n_items"], 1)
        marked = failed_cells(summary)
        shown = ", ".join(
            f"{label(cond)} / {cell['group']} ({failed_note(cell)})" for cond, cell in marked[:6]
        )
        more = f" and {len(marked) - 6} more" if len(marked) > 6 else ""
        out.append(
            f"{totals['n_failed']} of {totals['n_items']} items failed ({share:.1f}%) and are "
            f"left out of WER, in {len(marked)} cell{'s' if len(marked) != 1 else ''} marked "
            f"{FAILED_MARK}: {shown}{more}; see the error column of items.csv."
        )
    if run.get("complete") is False:
        out.append(
            "This run is incomplete (run.json says complete: false): the numbers cover only "
            "the items that finished."
        )
    return out
