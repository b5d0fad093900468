"""One item of a pack rendered to listen to: :func:`render_item` and :func:`write_item`.

``lastmile render`` and Python users call them; a run renders through
:class:`lastmile.render.engine.Renderer` directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastmile.corpus import Utterance
from lastmile.errors import ConfigError
from lastmile.render.engine import RenderedItem, Renderer

__all__ = ["RenderedExample", "render_item", "write_item"]


@dataclass(frozen=True)
class RenderedExample:
    """An utterance rendered under a condition, with the record ``item.json`` holds.

    ``notes`` say what loading the speech did to it (downmixed, resampled); ``record`` has
    the ids, the condition's spec, the seeds, the target and achieved SNR and every drawn
    parameter (JSON-able).
    """

    item: RenderedItem
    utterance: Utterance
    notes: tuple[str, ...]
    record: dict[str, Any]


def render_item(pack: str | Path, condition_id: str, utterance_id: str) -> RenderedExample:
    """Render utterance ``utterance_id`` of ``pack``'s corpus under condition
    ``condition_id``, exactly as a run renders it (same seeds, same render rate), before the
    final resample to a backend's rate.

    An unknown condition or utterance raises :class:`ConfigError` naming a few that exist.
    """
    from lastmile.scenario.pack import item_seed_hex, load_pack

    loaded = load_pack(pack)
    cond = loaded.condition(condition_id)
    corpus = loaded.load_corpus()
    try:
        utt = corpus.by_id(utterance_id)
    except KeyError:
        raise ConfigError(
            f"{loaded.manifest_path}: no utterance '{utterance_id}'; "
            f"e.g. {', '.join(u.id for u in corpus.utterances[:3])}"
        ) from None
    rate = loaded.pack.render_sample_rate
    renderer = Renderer(loaded, sample_rate=rate, render_rate=rate)
    speech, notes = renderer.load_speech(utt.audio)
    item = renderer.render(speech, cond, utterance_id=utt.id)
    record = {
        "utterance_id": utt.id,
        "condition_id": cond.id,
        "condition": cond.spec(),
        "pack": str(loaded.path),
        "seed": loaded.pack.seed,
        "item_seed": item_seed_hex(loaded.pack.seed, cond.seed_id, utt.id),
        "sample_rate": item.sample_rate,
        "target_snr_db": item.target_snr_db,
        "achieved_snr_db": item.achieved_snr_db,
        "params": item.params,
        "notes": list(notes),
        "text": utt.text,
    }
    return RenderedExample(item=item, utterance=utt, notes=tuple(notes), record=record)


def write_item(example: RenderedExample, out: str | Path, *, stems: bool = False) -> list[Path]:
    """Write ``mix.wav`` (what the ASR hears, at the render rate), with ``stems`` also
    ``speech.wav`` and ``noise.wav`` (the noise exactly as added, before device and channel;
    none for a condition without noise), and ``item.json`` into the folder ``out`` (made
    if missing). Returns the paths written, in that order."""
    from lastmile.audio import write_audio

    folder = Path(out)
    item = example.item
    folder.mkdir(parents=True, exist_ok=True)
    written = [write_audio(folder / "mix.wav", item.audio, sample_rate=item.sample_rate)]
    if stems:
        rate = item.render_rate
        written.append(write_audio(folder / "speech.wav", item.speech, sample_rate=rate))
        if item.noise is not None:
            written.append(write_audio(folder / "noise.wav", item.noise, sample_rate=rate))
    (folder / "item.json").write_text(json.dumps(example.record, indent=2) + "\n")
    written.append(folder / "item.json")
    return written
