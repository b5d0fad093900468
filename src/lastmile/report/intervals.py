"""What the terminal, Markdown and HTML reports share about the numbers they show: an
estimate whose interval is missing says so and why, the pairwise gaps of a condition, the
threshold in the unit of the values, and which group is marked worst."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lastmile.report.findings import fmt_ci, fmt_range, is_worst

__all__ = [
    "NoteMarks",
    "PairRow",
    "delta_unit",
    "fmt_estimate",
    "marks_worst",
    "pair_rows",
    "threshold_text",
    "why_no_interval",
]


def why_no_interval(estimate: Mapping[str, Any] | None) -> str | None:
    """The reason an estimate is shown without an interval (its ``ci_note``, starting with
    ``no interval:`` when a value is shown), or ``None`` when it has one."""
    if not estimate:
        return "not estimated"
    has_value = estimate.get("value") is not None
    if has_value and estimate.get("ci_low") is not None and estimate.get("ci_high") is not None:
        return None
    note = str(estimate.get("ci_note") or "").strip()
    if not has_value:
        return note or "not estimated"
    if not note:
        return "no interval: none was computed"
    return note if note.startswith("no interval") else f"no interval: {note}"


class NoteMarks:
    """Numbers the reasons intervals are missing, ``[1]``, ``[2]``, …, in order of first use
    and once per distinct reason; :meth:`take` lists those marked since the last call (the
    notes to print under the table just written)."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._pending: list[str] = []

    def mark(self, note: str) -> str:
        """``[n]`` for ``note`` (the same number every time it recurs)."""
        number = self._numbers.setdefault(note, len(self._numbers) + 1)
        if note not in self._pending:
            self._pending.append(note)
        return f"[{number}]"

    def take(self) -> list[tuple[str, str]]:
        """(``[n]``, note) of every note marked since the last call, by number."""
        out = sorted((self._numbers[n], n) for n in self._pending)
        self._pending = []
        return [(f"[{number}]", note) for number, note in out]


def fmt_estimate(
    estimate: Mapping[str, Any] | None, marks: NoteMarks, *, signed: bool = False
) -> str:
    """``"14.2 (9.1–19.0)"``; without an interval ``"7.3 (no CI [1])"``, or ``"n/a [2]"``
    when there is no value, the mark pointing at the reason (see :class:`NoteMarks`)."""
    why = why_no_interval(estimate)
    if why is None:
        return fmt_ci(estimate, signed=signed)
    if not estimate or estimate.get("value") is None:
        return f"n/a {marks.mark(why)}"
    return f"{fmt_ci(estimate, signed=signed)} (no CI {marks.mark(why)})"


def delta_unit(metric: str) -> str:
    """The unit Δ, U and the pairwise gaps are shown in: ``pts`` or ``% rel``."""
    return "pts" if metric == "absolute" else "% rel"


def threshold_text(analysis: Mapping[str, Any]) -> str:
    """The pack's fairness threshold in the unit the values are shown in: ``"5 pts"``, or
    ``"25 % rel"`` for ``metric: relative`` with ``threshold_rel: 0.25`` (values are shown
    as percent relative change, so the ratio is shown ×100)."""
    settings = analysis["settings"]
    unit = delta_unit(analysis["metric"])
    if analysis["metric"] != "absolute" and settings.get("threshold_rel") is not None:
        return f"{settings['threshold_rel'] * 100:g} {unit}"
    if settings.get("threshold_pts") is not None:
        return f"{settings['threshold_pts']:g} {unit}"
    return "the threshold"


def marks_worst(condition: Mapping[str, Any], group: str) -> bool:
    """True when a report marks ``group`` as the worst of ``condition``: a degraded condition
    with a positive gap and a verdict (never under ``insufficient-data``)."""
    return condition.get("flag") != "insufficient-data" and is_worst(condition, group)


@dataclass(frozen=True)
class PairRow:
    """One pairwise gap of a condition as the reports show it."""

    first: str
    second: str
    gap: str
    """Δ(first) − Δ(second) with its interval (or the mark of why there is none)."""
    equivalence: str
    """The (1 − 2α) interval the ``even`` verdict rests on, or ``n/a``."""
    within: str
    """``yes`` / ``no`` / ``n/a``: that interval lies within ± the threshold."""


def pair_rows(condition: Mapping[str, Any], marks: NoteMarks) -> list[PairRow]:
    """Every pairwise gap of ``condition`` (summary.json's ``pairs``), formatted."""
    rows = []
    for pair in condition.get("pairs") or []:
        first, second = (str(g) for g in pair["groups"])
        low, high = [*(pair.get("equivalence_ci_pts") or []), None, None][:2]
        known = low is not None and high is not None
        rows.append(
            PairRow(
                first=first,
                second=second,
                gap=fmt_estimate(pair["difference_pts"], marks, signed=True),
                equivalence=fmt_range(low, high) if known else "n/a",
                within="yes" if pair.get("within_margin") else "no" if known else "n/a",
            )
        )
    return rows
