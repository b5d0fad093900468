"""Helpers shared by tests that need real speech: packs over the shipped demo corpus."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lastmile.resources import shipped_dir
from lastmile.testing import write_pack


def demo_rows(*, groups: tuple[str, ...] | None = None, per_group: int = 1) -> list[dict[str, str]]:
    """Rows of the shipped demo manifest: the first ``per_group`` utterances of each group
    (one per speaker in turn), audio paths made absolute."""
    manifest = shipped_dir("demo_corpus") / "manifest.csv"
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out: list[dict[str, str]] = []
    taken: dict[str, set[str]] = {}
    for row in rows:
        g = row["accent"]
        if groups is not None and g not in groups:
            continue
        speakers = taken.setdefault(g, set())
        if len(speakers) >= per_group or row["speaker"] in speakers:
            continue
        speakers.add(row["speaker"])
        out.append({**row, "audio": str((manifest.parent / row["audio"]).resolve())})
    return out


def demo_subset_pack(folder: Path, rows: list[dict[str, str]], **fields: Any) -> Path:
    """A pack in ``folder`` over ``rows`` of the demo corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fields.setdefault("corpus", {"manifest": "manifest.csv"})
    return write_pack(folder / "pack.yaml", **fields)
