"""The terminal table (rich): condition × group WER with CI, Δ, disparity with CI, flag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lastmile.report.findings import (
    FAILED_LEGEND,
    FAILED_MARK,
    condition_info,
    failed_note,
    fmt_ci,
    is_worst,
)

__all__ = ["FLAG_STYLES", "print_summary", "summary_table"]

FLAG_STYLES: dict[str, str] = {
    "uneven": "bold red",
    "inconclusive": "yellow",
    "insufficient-data": "magenta",
    "even": "green",
}


def summary_table(summary: Mapping[str, Any]) -> Table:
    """One row per condition × group: WER % (CI), Δ (CI); the condition's first rows carry its
    flag, disparity U (CI) and q. Fits 100 columns (labels fold, numbers never wrap)."""
    analysis = summary["analysis"]
    info = condition_info(summary.get("run", {}))
    level = f"{analysis['settings']['ci_level'] * 100:g}%"
    delta_unit = "Δ pts" if analysis["metric"] == "absolute" else "Δ % rel"
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        title=None,
    )
    table.add_column("Condition", overflow="fold", ratio=3, min_width=12)
    table.add_column("Group", overflow="fold", ratio=2, min_width=6)
    table.add_column("Spk", justify="right", no_wrap=True)
    table.add_column(f"WER % ({level} CI)", justify="right", no_wrap=True)
    table.add_column(f"{delta_unit} ({level} CI)", justify="right", no_wrap=True)
    table.add_column("Verdict", overflow="fold", min_width=14)
    for cond in analysis["conditions"]:
        label = info.get(cond["id"], {}).get("label", cond["id"])
        verdict_lines: list[Text]
        if cond["is_clean"]:
            verdict_lines = [Text("reference", style="dim")]
        else:
            flag = cond["flag"]
            verdict_lines = [Text(flag, style=FLAG_STYLES.get(flag, ""))]
            if cond["disparity_pts"]["value"] is not None:
                verdict_lines.append(Text(f"U {fmt_ci(cond['disparity_pts'])}"))
            if cond["q_value"] is not None:
                q_text = f"q {cond['q_value']:.2g}"
                if cond.get("speakers_needed_per_group"):
                    q_text += f", need ~{cond['speakers_needed_per_group']} spk/group"
                verdict_lines.append(Text(q_text))
        groups = cond["groups"]
        rows = max(len(groups), 1)
        if len(verdict_lines) > rows:  # fold the extra lines into the last row
            verdict_lines = [
                *verdict_lines[: rows - 1],
                Text(" ").join(verdict_lines[rows - 1 :]),
            ]
        for k, cell in enumerate(groups):
            worst = is_worst(cond, cell["group"])
            wer = Text(fmt_ci(cell["wer_pct"]))
            if note := failed_note(cell):
                wer.append(f"\n{FAILED_MARK} {note}", style="bold red")  # a line of its own
            table.add_row(
                Text(label) if k == 0 else "",
                Text(cell["group"], style="bold" if worst else ""),
                str(cell["n_speakers"]),
                wer,
                "—" if cond["is_clean"] else fmt_ci(cell["delta_pts"], signed=True),
                verdict_lines[k] if k < len(verdict_lines) else "",
                end_section=k == len(groups) - 1,
            )
    return table


def print_summary(summary: Mapping[str, Any], console: Console) -> None:
    """Print findings, the condition × group table and a one-line run note to ``console``.

    ``summary`` is summary.json's content (see :func:`lastmile.report.build_summary`).
    """
    run = summary.get("run", {})
    analysis = summary["analysis"]
    pack = (run.get("pack") or {}).get("name", "?")
    backend = (run.get("backend") or {}).get("name", "?")
    console.print(
        Text.assemble(
            ("lastmile ", "bold"),
            (str(pack), "bold cyan"),
            f"  backend {backend}, metric {analysis['metric']}, "
            f"{analysis['totals']['n_items']} items, {analysis['totals']['n_speakers']} speakers",
        )
    )
    for sentence in summary.get("findings", []):
        console.print(Text("• ") + Text(sentence))
    console.print()
    console.print(summary_table(summary))
    if any(cell["n_failed"] for cond in analysis["conditions"] for cell in cond["groups"]):
        console.print(Text(FAILED_LEGEND + ".", style="red"))
    settings = analysis["settings"]
    console.print(
        Text(
            f"U = largest minus smallest Δ across groups; flag uneven when U ≥ "
            f"{settings['threshold_pts']:g} and q ≤ {settings['alpha']:g} "
            f"(permutation test, Benjamini–Hochberg).",
            style="dim",
        )
    )
