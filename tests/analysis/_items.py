"""Hand-built items for the analysis tests."""

from __future__ import annotations

from typing import Any


def make_item(
    condition_id: str,
    utterance_id: str,
    speaker: str,
    group: str,
    n_ref: int,
    errors: int = 0,
    *,
    error: str | None = None,
) -> dict[str, Any]:
    """One scored item whose errors are all substitutions."""
    return {
        "condition_id": condition_id,
        "utterance_id": utterance_id,
        "speaker": speaker,
        "group": group,
        "n_ref": n_ref,
        "substitutions": errors,
        "deletions": 0,
        "insertions": 0,
        "error": error,
    }


def grid_items(
    errors: dict[str, dict[str, list[int]]], *, n_ref: int = 100
) -> list[dict[str, Any]]:
    """Items from ``errors[condition][group]`` = errors per speaker (one utterance each)."""
    items = []
    for cond, by_group in errors.items():
        for group, per_speaker in by_group.items():
            for k, count in enumerate(per_speaker):
                speaker = f"{group}{k}"
                items.append(make_item(cond, f"{speaker}-u0", speaker, group, n_ref, count))
    return items
