"""Per-item results folded into (speaker × condition) count matrices.

The analysis never looks at single items again after this step: pooled WER, the bootstrap and
the permutation test are all sums of these matrices over speakers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lastmile.errors import ConfigError

__all__ = ["REQUIRED_ITEM_KEYS", "WORST_ITEMS", "CountTable", "WorstItem", "count_table"]

WORST_ITEMS = 5
"""Items kept per condition as its worst (most errors), for people to read and listen to."""


@dataclass(frozen=True)
class WorstItem:
    """One scored item with many errors; ``clean_*`` are the same utterance's clean counts
    (``None`` when it was not scored clean). Text fields are empty when the items had none."""

    utterance_id: str
    speaker: str
    group: str
    n_ref: int
    n_errors: int
    clean_n_ref: int | None
    clean_errors: int | None
    reference: str
    hypothesis: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form, WER in percent."""

        def pct(errors: int | None, words: int | None) -> float | None:
            return None if not words or errors is None else round(100.0 * errors / words, 4)

        return {
            "utterance_id": self.utterance_id,
            "speaker": self.speaker,
            "group": self.group,
            "n_ref": self.n_ref,
            "n_errors": self.n_errors,
            "wer_pct": pct(self.n_errors, self.n_ref),
            "clean_wer_pct": pct(self.clean_errors, self.clean_n_ref),
            "reference": self.reference,
            "hypothesis": self.hypothesis,
        }


REQUIRED_ITEM_KEYS: tuple[str, ...] = (
    "condition_id",
    "utterance_id",
    "speaker",
    "group",
    "n_ref",
    "substitutions",
    "deletions",
    "insertions",
)
_COUNT_KEYS = ("n_ref", "substitutions", "deletions", "insertions")


@dataclass(frozen=True, eq=False)
class CountTable:
    """Summed counts per speaker and condition; arrays are read-only.

    Rows are speakers ordered by (group, speaker id); columns are conditions, the clean
    condition first, the others in order of first appearance. All arrays have shape
    ``(n_speakers, n_conditions)``. Failed items count in ``n_items`` and ``n_failed`` only.
    """

    conditions: tuple[str, ...]
    groups: tuple[str, ...]
    speakers: tuple[str, ...]
    speaker_group: np.ndarray  # (S,) int index into ``groups``
    ref_words: np.ndarray  # Σ N over scored items
    substitutions: np.ndarray
    deletions: np.ndarray
    insertions: np.ndarray
    n_items: np.ndarray  # items attempted (scored + failed)
    n_failed: np.ndarray
    worst_items: tuple[tuple[WorstItem, ...], ...] = ()  # per condition, most errors first

    @property
    def errors(self) -> np.ndarray:
        """Σ (S + D + I) per speaker and condition, shape ``(S, C)``."""
        return self.substitutions + self.deletions + self.insertions


def _as_count(value: Any, *, where: str, key: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {key}: expected a whole number >= 0, got {value!r}")
    whole_float = isinstance(value, (float, np.floating)) and float(value).is_integer()
    if isinstance(value, (int, np.integer)) or whole_float:
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+").isdigit():
        number = int(value.strip())
    else:
        raise ConfigError(
            f"{where}: {key}: expected a whole number >= 0, got {value!r}; "
            "fix the scorer output (counts are integers)"
        )
    if number < 0:
        raise ConfigError(f"{where}: {key}: expected a whole number >= 0, got {number}")
    return number


def _is_failed(error: Any) -> bool:
    if error is None:
        return False
    if isinstance(error, float) and np.isnan(error):  # a missing CSV cell read as NaN
        return False
    return str(error).strip() != ""


def count_table(items: Iterable[Mapping[str, Any]], *, clean_condition_id: str) -> CountTable:
    """Fold per-item mappings (see :func:`lastmile.analysis.analyze`) into a :class:`CountTable`.

    Raises :class:`ConfigError` on a missing key, a negative or non-integer count, an item
    counted twice, a speaker listed in two groups, no items, or a missing clean condition.
    """
    cond_order: dict[str, int] = {}
    speaker_group: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    # (speaker, condition) -> [N, S, D, I, items, failed]
    cells: dict[tuple[str, str], list[int]] = {}
    # Per condition a min-heap of (errors, WER, utterance id, item fields): its WORST_ITEMS
    # worst items (ties broken by the id, so the choice does not depend on item order).
    heaps: dict[str, list[tuple[int, float, str, tuple[str, str, str, int, str, str]]]] = {}
    clean_counts: dict[str, tuple[int, int]] = {}
    index = -1
    for index, item in enumerate(items):
        try:
            cond = str(item["condition_id"])
            utt = str(item["utterance_id"])
            speaker = str(item["speaker"])
            group = str(item["group"])
            raw = [item[key] for key in _COUNT_KEYS]
        except KeyError:
            missing = [key for key in REQUIRED_ITEM_KEYS if key not in item]
            raise ConfigError(
                f"items[{index}]: missing {', '.join(missing)}; every item needs "
                f"{', '.join(REQUIRED_ITEM_KEYS)} (and error, empty when scored)"
            ) from None
        if (cond, utt) in seen:
            raise ConfigError(
                f"items[{index}]: utterance {utt!r} in condition {cond!r} appears twice; "
                "each utterance × condition must be counted once (resume the run, do not append)"
            )
        seen.add((cond, utt))
        known = speaker_group.setdefault(speaker, group)
        if known != group:
            raise ConfigError(
                f"items[{index}]: speaker {speaker!r} is in group {group!r} here and {known!r} "
                "elsewhere; a speaker belongs to one group (fix the corpus manifest)"
            )
        cond_order.setdefault(cond, len(cond_order))
        cell = cells.setdefault((speaker, cond), [0, 0, 0, 0, 0, 0])
        cell[4] += 1
        if _is_failed(item.get("error")):
            cell[5] += 1
            continue
        counted = []
        for k, value in enumerate(raw):
            if type(value) is not int or value < 0:
                value = _as_count(value, where=f"items[{index}]", key=_COUNT_KEYS[k])
            cell[k] += value
            counted.append(value)
        n_errors = counted[1] + counted[2] + counted[3]
        if cond == clean_condition_id:
            clean_counts[utt] = (n_errors, counted[0])
        elif n_errors > 0:
            heap = heaps.setdefault(cond, [])
            key = (n_errors, n_errors / max(counted[0], 1), utt)
            if len(heap) < WORST_ITEMS or key > heap[0][:3]:
                text = (_text(item, "reference"), _text(item, "hypothesis"))
                entry = (*key, (utt, speaker, group, counted[0], *text))
                if len(heap) < WORST_ITEMS:
                    heapq.heappush(heap, entry)
                else:
                    heapq.heapreplace(heap, entry)
    if index < 0:
        raise ConfigError("analysis: no items given; run the pack first (items.csv is empty)")
    if clean_condition_id not in cond_order:
        found = ", ".join(sorted(cond_order)[:10])
        raise ConfigError(
            f"analysis: clean condition {clean_condition_id!r} not found among the items' "
            f"condition_id values ({found}); pass the id of the pack's clean condition, "
            "or rerun so the clean condition is included"
        )
    others = sorted(cond_order, key=cond_order.__getitem__)
    conditions = (clean_condition_id, *(c for c in others if c != clean_condition_id))
    groups = tuple(sorted(set(speaker_group.values())))
    speakers = tuple(sorted(speaker_group, key=lambda s: (speaker_group[s], s)))
    s_index = {s: i for i, s in enumerate(speakers)}
    c_index = {c: j for j, c in enumerate(conditions)}
    g_index = {g: k for k, g in enumerate(groups)}
    table = np.zeros((6, len(speakers), len(conditions)), dtype=np.int64)
    for (speaker, cond), values in cells.items():
        table[:, s_index[speaker], c_index[cond]] = values
    sg = np.array([g_index[speaker_group[s]] for s in speakers], dtype=np.intp)
    arrays = [sg, *(table[k].astype(np.float64) for k in range(4)), table[4], table[5]]
    for array in arrays:
        array.flags.writeable = False
    worst = []
    for cond in conditions:
        ranked = sorted(heaps.get(cond, []), key=lambda e: e[:3], reverse=True)
        row = []
        for n_errors, _, _, (utt, speaker, group, n_ref, reference, hypothesis) in ranked:
            clean = clean_counts.get(utt)
            row.append(
                WorstItem(
                    utterance_id=utt,
                    speaker=speaker,
                    group=group,
                    n_ref=n_ref,
                    n_errors=n_errors,
                    clean_n_ref=None if clean is None else clean[1],
                    clean_errors=None if clean is None else clean[0],
                    reference=reference,
                    hypothesis=hypothesis,
                )
            )
        worst.append(tuple(row))
    sg_, words, subs, dels, ins, tried, failed = arrays
    return CountTable(
        conditions, groups, speakers, sg_, words, subs, dels, ins, tried, failed, tuple(worst)
    )


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)
