"""A small synthetic run folder, as the run engine writes it (run.json, items.csv, examples)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

COLUMNS = [
    "item_id", "condition_id", "utterance_id", "speaker", "group", "n_ref", "substitutions",
    "deletions", "insertions", "hits", "reference", "hypothesis", "normalizer", "duration_s",
    "decode_s", "target_snr_db", "achieved_snr_db", "item_seed", "cached", "error",
]  # fmt: skip

GROUPS = ("caribbean", "scottish", "us")
CONDITIONS: list[dict[str, Any]] = [
    {"id": "clean", "label": "clean", "noise_family": "none", "snr_db": None},
    {"id": "hum60_snr10", "label": "hum 60 Hz at 10 dB SNR", "noise_family": "hum60",
     "snr_db": 10.0},
    {"id": "hum60_snr0", "label": "hum 60 Hz at 0 dB SNR", "noise_family": "hum60",
     "snr_db": 0.0},
]  # fmt: skip
SAMPLE_RATE = 16000
WORDS = [
    "the",
    "patient",
    "in",
    "room",
    "four",
    "needs",
    "a",
    "scan",
    "before",
    "noon",
    "today",
    "please",
]


def _spec(cond: dict[str, Any]) -> dict[str, Any]:
    noise = None if cond["snr_db"] is None else {"type": "hum", "fundamental_hz": 60.0}
    return {"noise": noise, "snr_db": cond["snr_db"], "device": None, "channel": None,
            "reverb": None}  # fmt: skip


def run_meta(**overrides: Any) -> dict[str, Any]:
    """run.json's content."""
    meta: dict[str, Any] = {
        "schema_version": 1,
        "pack": {"name": "ward-3", "path": "/packs/ward-3.yaml",
                 "description": "Third-floor imaging suite.", "seed": 1234},
        "backend": {"spec": "fake", "name": "fake", "fingerprint": "fake:v1?beam=1"},
        "normalizer": "default",
        "group_by": "accent",
        "clean_condition_id": "clean",
        "fairness": {"threshold_pts": 5, "alpha": 0.05, "min_speakers": 3,
                     "n_bootstrap": 500, "n_permutations": 999},
        "conditions": [{**c, "spec": _spec(c)} for c in CONDITIONS],
        "corpus": {"manifest": "/corpus/manifest.csv", "n_utterances": 36},
        "started_at": "2024-06-11T10:15:00+00:00",
        "finished_at": "2024-06-11T10:25:00+00:00",
        "versions": {"lastmile": "0.1.0", "python": "3.11.7", "numpy": "2.0"},
        "complete": True,
    }  # fmt: skip
    meta.update(overrides)
    return meta


def error_rate(group: str, condition_id: str, *, uneven: bool) -> float:
    """Error probability per word: everyone degrades, caribbean much more when ``uneven``."""
    base = {"clean": 0.06, "hum60_snr10": 0.12, "hum60_snr0": 0.25}[condition_id]
    extra = {"clean": 0.0, "hum60_snr10": 0.10, "hum60_snr0": 0.25}[condition_id]
    return base + (extra if uneven and group == "caribbean" else 0.0)


def write_run(
    folder: Path,
    *,
    uneven: bool = True,
    n_speakers: int = 4,
    n_utterances: int = 3,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    examples: bool = True,
    groups: tuple[str, ...] = GROUPS,
    failed: dict[tuple[str, str], int] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a complete run folder into ``folder`` and return it.

    ``groups`` are the group names, standing in for ``caribbean``, ``scottish``, ``us`` in
    turn (the first degrades more when ``uneven``). ``failed`` maps (condition id, group) to
    the number of that cell's items that failed (no counts, an error text). ``conditions``
    replace :data:`CONDITIONS` (ids, labels, SNRs), the k-th degrading like the k-th there.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(meta or run_meta(), indent=2))
    to_fail = dict(failed or {})
    rows = []
    for k, group in enumerate(groups):
        kind = GROUPS[k % len(GROUPS)]
        for s in range(n_speakers):
            speaker = f"{group}-{s}"
            for u in range(n_utterances):
                utt = f"{speaker}-u{u}"
                n_ref = len(WORDS)
                for j, cond in enumerate(conditions or CONDITIONS):
                    p = error_rate(kind, CONDITIONS[j % len(CONDITIONS)]["id"], uneven=uneven)
                    errors = int(rng.binomial(n_ref, p))
                    subs = int(rng.binomial(errors, 0.7))
                    dels = errors - subs
                    rows.append({
                        "item_id": f"{utt}__{cond['id']}", "condition_id": cond["id"],
                        "utterance_id": utt, "speaker": speaker, "group": group,
                        "n_ref": n_ref, "substitutions": subs, "deletions": dels,
                        "insertions": 0, "hits": n_ref - errors,
                        "reference": " ".join(WORDS), "hypothesis": " ".join(WORDS[errors:]),
                        "normalizer": "default", "duration_s": 2.5, "decode_s": 0.1,
                        "target_snr_db": "" if cond["snr_db"] is None else cond["snr_db"],
                        "achieved_snr_db": "" if cond["snr_db"] is None else cond["snr_db"],
                        "item_seed": 42, "cached": "false", "error": "",
                    })  # fmt: skip
                    if to_fail.get((cond["id"], group), 0) > 0:
                        to_fail[(cond["id"], group)] -= 1
                        rows[-1].update({c: "" for c in ("n_ref", "substitutions", "deletions",
                                         "insertions", "hits", "hypothesis")})  # fmt: skip
                        rows[-1]["error"] = "BackendError: exit status 1"
    with (folder / "items.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    if examples:
        write_examples(folder)
    return folder


def write_examples(folder: Path) -> None:
    """Tiny FLAC examples (0.6 s tones) for the first speaker of two groups, every condition."""
    index = []
    t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    for k, group in enumerate(GROUPS[:2]):
        utt = f"{group}-0-u0"
        for j, cond in enumerate(CONDITIONS):
            audio = 0.2 * np.sin(2 * np.pi * (220 + 110 * k) * t)
            if cond["snr_db"] is not None:
                audio = audio + 0.05 * (j + 1) * np.sin(2 * np.pi * 60 * t)
            rel = Path("examples") / cond["id"] / f"{utt}.flac"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(folder / rel, audio.astype(np.float32), SAMPLE_RATE, format="FLAC")
            index.append({
                "condition_id": cond["id"], "utterance_id": utt, "group": group,
                "speaker": f"{group}-0", "path": str(rel), "reference": " ".join(WORDS),
                "hypothesis": " ".join(WORDS[: 8 - j]),
            })  # fmt: skip
    (folder / "examples" / "index.json").write_text(json.dumps(index, indent=2))
