"""A run's identity: everything that determines its items, recorded when the run starts.

A run folder holds exactly one run. ``--resume`` compares the identity stored in the run
folder with the one the pack, corpus and backend give now, and refuses any difference,
naming what changed (``conditions changed: pink_snr10 → pink_snr5``, ``transcript of utt42
changed``), so a resumed run never mixes items of two plans.

The identity covers the pack's seed and conditions (their specs and the renderer's key for
each: the digests of the noise and device files it uses, its front-end chain), the render
rate, the renderer's version, the normalizer, the grouping attribute, the backend's
fingerprint, the selection of utterances, and for each utterance the digests of its audio,
transcript, speaker and group.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from lastmile.corpus import Corpus
from lastmile.render.engine import RENDERER_VERSION
from lastmile.scenario.pack import LoadedPack

__all__ = ["IDENTITY_VERSION", "identity_changes", "identity_digests", "run_identity"]

IDENTITY_VERSION = 1
_NAMED = 5  # utterances or conditions named per kind of change


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def run_identity(
    loaded: LoadedPack,
    corpus: Corpus,
    *,
    backend_fingerprint: str,
    condition_keys: Mapping[str, str],
    audio_digests: Mapping[str, str],
    limit: int | None,
) -> dict[str, Any]:
    """The identity of a run of ``loaded`` over ``corpus`` (already selected) as plain JSON
    data. ``condition_keys`` are the renderer's keys per condition id (spec and the digests of
    the files it uses); ``audio_digests`` the sha256 of each utterance's audio file."""
    pack = loaded.pack
    return {
        "version": IDENTITY_VERSION,
        "seed": pack.seed,
        "render_sample_rate": pack.render_sample_rate,
        "renderer": RENDERER_VERSION,
        "normalizer": pack.normalizer,
        "group_by": pack.group_by,
        "backend": backend_fingerprint,
        "conditions": {
            c.id: {"spec": c.spec_json(), "files": _short(condition_keys[c.id])}
            for c in loaded.conditions
        },
        "selection": {"limit": limit, "per_speaker": pack.corpus.per_speaker},
        "utterances": {
            u.id: {
                "audio": audio_digests[u.id][:16],
                "text": _short(u.text),
                "speaker": _short(u.speaker),
                "group": _short(u.group),
            }
            for u in corpus.utterances
        },
    }


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def identity_digests(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The identity's sha256 and that of each part, as recorded in run.json."""
    return {
        "sha256": _digest(identity),
        "parts": {key: _digest(value) for key, value in identity.items()},
    }


def _names(ids: list[str]) -> str:
    shown = ", ".join(ids[:_NAMED])
    return shown + (f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else "")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A spec as ``{dotted.field: value}``."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _spec_diff(before_json: str, now_json: str) -> str:
    """``": snr_db 10 → 5, noise.type pink → white"`` (empty when the specs do not parse)."""
    try:
        before, now = _flat(json.loads(before_json)), _flat(json.loads(now_json))
    except (TypeError, ValueError):
        return ""
    changed = [
        f"{k} {_cut(json.dumps(before.get(k)), 30)} → {_cut(json.dumps(now.get(k)), 30)}"
        for k in sorted(set(before) | set(now))
        if before.get(k) != now.get(k)
    ]
    return (": " + ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else "")) if changed else ""


def _cut(text: Any, width: int = 60) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _change(before: Any, now: Any, width: int = 60) -> str:
    """``before → now``; long texts shown around where they first differ."""
    a, b = str(before), str(now)
    if len(a) <= width and len(b) <= width:
        return f"{a} → {b}"
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    start = max(0, start - 15)
    lead = "..." if start else ""
    return f"{lead}{_cut(a[start:], width)} → {lead}{_cut(b[start:], width)}"


def identity_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between the identity a run folder recorded and the current one, one
    sentence per kind of change; ``[]`` when they are the same run."""
    if before.get("version") != now.get("version"):
        return [
            f"the run folder's identity has version {before.get('version')!r}, this lastmile "
            f"writes {now.get('version')!r}"
        ]
    out: list[str] = []
    for key, what in (
        ("seed", "seed"),
        ("render_sample_rate", "render_sample_rate"),
        ("renderer", "renderer version (lastmile was upgraded)"),
        ("normalizer", "normalizer"),
        ("group_by", "group_by"),
        ("backend", "backend"),
    ):
        if before.get(key) != now.get(key):
            out.append(f"{what} changed: {_change(before.get(key), now.get(key))}")
    out += _condition_changes(before.get("conditions") or {}, now.get("conditions") or {})
    out += _utterance_changes(before, now)
    return out


def _condition_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out = []
    removed = [c for c in before if c not in now]
    added = [c for c in now if c not in before]
    if removed or added:
        out.append(
            f"conditions changed: {_names(removed) or '(none)'} → {_names(added) or '(none)'}"
        )
    spec = [c for c in before if c in now and before[c]["spec"] != now[c]["spec"]]
    for c in spec[:_NAMED]:
        fields = _spec_diff(before[c]["spec"], now[c]["spec"])
        out.append(f"condition {c} changed (same id, another spec{fields})")
    if len(spec) > _NAMED:
        out.append(f"and {len(spec) - _NAMED} more conditions changed their spec")
    files = [
        c for c in before if c in now and c not in spec and before[c]["files"] != now[c]["files"]
    ]
    if files:
        out.append(
            f"what condition {_names(files)} uses changed (its noise or device files, or its "
            "front-end chain)"
        )
    return out


def _utterance_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out = []
    old = before.get("utterances") or {}
    new = now.get("utterances") or {}
    gone = [u for u in old if u not in new]
    came = [u for u in new if u not in old]
    if gone or came:
        parts = []
        if gone:
            parts.append(f"{len(gone)} no longer selected ({_names(gone)})")
        if came:
            parts.append(f"{len(came)} newly selected ({_names(came)})")
        text = "utterances changed: " + ", ".join(parts)
        b_sel, n_sel = before.get("selection") or {}, now.get("selection") or {}
        if b_sel != n_sel:
            text += (
                f" (--limit {b_sel.get('limit')} → {n_sel.get('limit')}, per_speaker "
                f"{b_sel.get('per_speaker')} → {n_sel.get('per_speaker')})"
            )
        out.append(text)
    for field, what in (
        ("text", "transcript"),
        ("audio", "audio"),
        ("speaker", "speaker"),
        ("group", "group"),
    ):
        changed = [u for u in old if u in new and old[u][field] != new[u][field]]
        if changed:
            out.append(f"{what} of {_names(changed)} changed")
    return out
