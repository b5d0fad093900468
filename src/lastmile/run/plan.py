"""The plan: every utterance × condition of a pack, with its seed and cache key."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lastmile.corpus import Corpus, Utterance
from lastmile.render.engine import RENDERER_VERSION
from lastmile.scenario.pack import Condition, LoadedPack, item_seed_hex

__all__ = [
    "PlannedItem",
    "file_sha256",
    "item_id",
    "iter_plan",
    "load_pack_corpus",
    "select",
]


@dataclass(frozen=True)
class PlannedItem:
    """One unit of work: an utterance under a condition."""

    seq: int
    item_id: str
    utterance: Utterance
    condition: Condition
    item_seed: str
    cache_key: str


def item_id(utterance_id: str, condition_id: str) -> str:
    """Derived-audio id, lhotse style: ``utt42__hum60_snr10``."""
    return f"{utterance_id}__{condition_id}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def select(corpus: Corpus, *, per_speaker: int | None, limit: int | None) -> Corpus:
    """Keep the first ``per_speaker`` utterances (by id) of each speaker, then at most
    ``limit`` utterances taken round-robin over speakers (sorted), so a small limit still
    spans the groups."""
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    for utt in sorted(corpus.utterances, key=lambda u: u.id):
        by_speaker[utt.speaker].append(utt)
    if per_speaker is not None:
        by_speaker = defaultdict(list, {s: u[:per_speaker] for s, u in by_speaker.items()})
    kept: list[Utterance] = []
    if limit is None:
        kept = [u for s in sorted(by_speaker) for u in by_speaker[s]]
    else:
        # round-robin over groups, then over each group's speakers
        by_group: dict[str, list[str]] = defaultdict(list)
        for s in sorted(by_speaker):
            by_group[by_speaker[s][0].group].append(s)
        queues = {s: list(by_speaker[s]) for s in by_speaker}
        turn = {g: 0 for g in by_group}
        while len(kept) < limit and any(queues.values()):
            for g in sorted(by_group):
                speakers = [s for s in by_group[g] if queues[s]]
                if not speakers or len(kept) >= limit:
                    continue
                s = speakers[turn[g] % len(speakers)]
                turn[g] += 1
                kept.append(queues[s].pop(0))
    order = {u.id: i for i, u in enumerate(corpus.utterances)}
    kept.sort(key=lambda u: order[u.id])
    return Corpus(manifest=corpus.manifest, utterances=tuple(kept), group_by=corpus.group_by)


def load_pack_corpus(loaded: LoadedPack, *, limit: int | None = None) -> Corpus:
    """The pack's corpus after its ``per_speaker`` selection and an optional ``limit``."""
    return select(loaded.load_corpus(), per_speaker=loaded.pack.corpus.per_speaker, limit=limit)


def iter_plan(
    loaded: LoadedPack,
    utterances: Iterable[Utterance],
    *,
    condition_keys: dict[str, str],
    audio_digest: Callable[[Utterance], str],
    first_seq: int = 0,
) -> Iterator[PlannedItem]:
    """Items of ``utterances`` ordered utterance-major (one utterance's conditions together),
    numbered from ``first_seq``; ``audio_digest`` is asked once per utterance."""
    seq = first_seq
    seed = loaded.pack.seed
    for utt in utterances:
        digest = audio_digest(utt)
        for cond in loaded.conditions:
            seed_hex = item_seed_hex(seed, cond.seed_id, utt.id)  # front-end twins share it
            key = hashlib.sha256(
                "\n".join([digest, condition_keys[cond.id], seed_hex, RENDERER_VERSION]).encode()
            ).hexdigest()
            yield PlannedItem(
                seq=seq,
                item_id=item_id(utt.id, cond.id),
                utterance=utt,
                condition=cond,
                item_seed=seed_hex,
                cache_key=key,
            )
            seq += 1
