"""The hunt itself: split speakers, search on the discovery half, confirm on the other.

The logic is independent of how a candidate is evaluated: it calls an :data:`Evaluate`
callable with candidates and utterances and gets back scored items (the keys of
:func:`lastmile.analysis.analyze`). The product wires it to the real engine
(:mod:`lastmile.hunt.engine`); the benchmark wires it to a simulated recognizer.

Search (successive halving inside brackets, with local refinement between them):

* fidelity levels are utterances per discovery speaker, doubling up to all of them;
* a bracket draws ``n0`` new candidates (after the first bracket, half are grid neighbours
  of the best candidates so far, half uniform draws), evaluates them at the lowest fidelity,
  keeps the best third, doubles the fidelity, and so on until the survivors have been
  evaluated on every discovery utterance;
* brackets repeat while the search budget lasts; the ``top`` candidates by full-fidelity
  score are re-run on the confirmation speakers, and only those verdicts (Benjamini–Hochberg
  across the ``top``, :func:`lastmile.analysis.analyze`) are findings.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lastmile.analysis import Analysis, FairnessSettings, analyze
from lastmile.errors import ConfigError
from lastmile.hunt.space import Candidate, Space
from lastmile.scenario.pack import CLEAN_ID

__all__ = [
    "ETA",
    "Evaluate",
    "Finding",
    "HuntResult",
    "Split",
    "UttRef",
    "budget_plan",
    "hunt_rng",
    "run_hunt",
    "split_speakers",
]

ETA = 3
"""Successive halving keeps the best 1/ETA of a rung."""


@dataclass(frozen=True, order=True)
class UttRef:
    """An utterance as the hunt sees it (no audio): id, speaker, group."""

    group: str
    speaker: str
    id: str


Evaluate = Callable[[str, Sequence[Candidate], Sequence[UttRef]], list[dict[str, Any]]]
"""``evaluate(stage, candidates, utterances)`` → scored items of every candidate on every
utterance, plus the clean condition (id ``clean``) on every utterance (the caller counts a
clean item once per utterance). ``stage`` names the call (``search-003``,
``confirm``): the product uses it as the run folder's name."""


@dataclass(frozen=True)
class Split:
    """Speakers of every group in a discovery and a confirmation half (disjoint)."""

    discovery: tuple[UttRef, ...]
    confirmation: tuple[UttRef, ...]
    notes: tuple[str, ...] = ()

    def speakers(self, half: str) -> set[str]:
        refs = self.discovery if half == "discovery" else self.confirmation
        return {u.speaker for u in refs}

    def to_dict(self) -> dict[str, Any]:
        def by_group(refs: Sequence[UttRef]) -> dict[str, list[str]]:
            out: dict[str, set[str]] = defaultdict(set)
            for u in refs:
                out[u.group].add(u.speaker)
            return {g: sorted(s) for g, s in sorted(out.items())}

        return {
            "discovery": by_group(self.discovery),
            "confirmation": by_group(self.confirmation),
            "notes": list(self.notes),
        }


def hunt_rng(seed: int, purpose: str) -> np.random.Generator:
    """The generator of one purpose (``split``, ``search``), derived from the pack seed."""
    digest = hashlib.sha256(f"{seed}/hunt/{purpose}".encode()).hexdigest()
    return np.random.default_rng(np.random.SeedSequence(entropy=int(digest, 16)))


def split_speakers(
    utterances: Sequence[UttRef],
    *,
    seed: int,
    confirm_share: float,
    min_speakers: int,
    where: str = "hunt",
) -> Split:
    """Split every group's speakers (stratified, seeded): ``confirm_share`` of them, at least
    ``min_speakers`` (so the confirmation can reach a verdict), are held out for confirmation,
    at least one is left for discovery. Raises :class:`ConfigError` naming a group with too
    few speakers to split."""
    speakers: dict[str, set[str]] = defaultdict(set)
    for u in utterances:
        speakers[u.group].add(u.speaker)
    if len(speakers) < 2:
        raise ConfigError(
            f"{where}: the corpus has {len(speakers)} group(s); a hunt compares at least two"
        )
    rng = hunt_rng(seed, "split")
    held: set[str] = set()
    notes = []
    for group in sorted(speakers):
        names = sorted(speakers[group])
        n = len(names)
        n_conf = max(int(round(confirm_share * n)), min_speakers)
        if n - n_conf < 1:
            raise ConfigError(
                f"{where}: group {group!r} has {n} speaker(s), too few to split: the "
                f"confirmation half needs {min_speakers} (fairness.min_speakers) and the "
                f"discovery half at least 1; add speakers to the group (at least "
                f"{min_speakers + 1}) or leave it out of the corpus"
            )
        if n_conf > int(round(confirm_share * n)):
            notes.append(
                f"group {group!r}: {n_conf} of {n} speakers held out for confirmation "
                f"(min_speakers {min_speakers}), {n - n_conf} left for the search"
            )
        order = rng.permutation(n)
        held.update(names[k] for k in order[:n_conf])
    disc = tuple(sorted(u for u in utterances if u.speaker not in held))
    conf = tuple(sorted(u for u in utterances if u.speaker in held))
    return Split(discovery=disc, confirmation=conf, notes=tuple(notes))


@dataclass(frozen=True)
class Finding:
    """A confirmed (or not) candidate: its verdict on the confirmation speakers."""

    rank: int
    condition: dict[str, Any]
    params: dict[str, Any]
    search_score: float
    flag: str
    confirmed: bool
    disparity_pts: dict[str, Any]
    worst_group: str | None
    best_group: str | None
    p_value: float | None
    q_value: float | None
    note: str
    groups: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.condition["id"],
            "condition": self.condition,
            "params": self.params,
            "search_score_pts": round(100 * self.search_score, 4),
            "flag": self.flag,
            "confirmed": self.confirmed,
            "disparity_pts": self.disparity_pts,
            "worst_group": self.worst_group,
            "best_group": self.best_group,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "note": self.note,
            "groups": self.groups,
        }


@dataclass
class HuntResult:
    """What a hunt did and found. ``trace`` has one record per candidate evaluation step."""

    split: Split
    space: Space
    trace: list[dict[str, Any]]
    findings: list[Finding]
    decodes: int
    search_decodes: int
    budget: int
    target: str | None
    analysis: Analysis | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> list[Finding]:
        return [f for f in self.findings if f.confirmed]


def _fidelities(per_speaker: int) -> list[int]:
    levels = [1]
    while levels[-1] < per_speaker:
        levels.append(min(2 * levels[-1], per_speaker))
    return levels


def _bracket_size(n_levels: int, top: int) -> int:
    return max(ETA ** (n_levels - 1), 2 * top, ETA)


def _bracket_cost(n0: int, levels: Sequence[int], n_speakers: int) -> int:
    cost, n, prev = 0, n0, 0
    for level in levels:
        cost += n * (level - prev) * n_speakers
        prev = level
        n = max(1, math.ceil(n / ETA))
    return cost


def budget_plan(split: Split, top: int) -> dict[str, int]:
    """Decodes the hunt needs at least: the confirmation (clean + ``top`` candidates on every
    confirmation utterance), the discovery clean items, and one search bracket."""
    per_speaker = _per_speaker(split.discovery)
    levels = _fidelities(min(len(v) for v in per_speaker.values()))
    n_disc = len(per_speaker)
    confirm = (top + 1) * len(split.confirmation)
    clean = levels[-1] * n_disc
    bracket = _bracket_cost(_bracket_size(len(levels), top), levels, n_disc)
    return {
        "confirm": confirm,
        "discovery_clean": clean,
        "bracket": bracket,
        "minimum": confirm + clean + bracket,
    }


def _per_speaker(refs: Sequence[UttRef]) -> dict[str, list[UttRef]]:
    out: dict[str, list[UttRef]] = defaultdict(list)
    for u in sorted(refs, key=lambda r: (r.speaker, r.id)):
        out[u.speaker].append(u)
    return dict(out)


class _Scores:
    """Pooled counts per (condition, group), from items, for the search's score."""

    def __init__(self, metric: str, target: str | None) -> None:
        self.metric = metric
        self.target = target
        self.errors: dict[tuple[str, str], float] = defaultdict(float)
        self.words: dict[tuple[str, str], float] = defaultdict(float)
        self.clean_errors: dict[tuple[str, str], float] = defaultdict(float)
        self.clean_words: dict[tuple[str, str], float] = defaultdict(float)
        self.clean_by_utt: dict[str, tuple[int, int]] = {}

    def add(self, items: Sequence[Mapping[str, Any]]) -> None:
        pending = []
        for it in items:
            if it.get("error"):
                continue
            errs = int(it["substitutions"]) + int(it["deletions"]) + int(it["insertions"])
            if it["condition_id"] == CLEAN_ID:
                self.clean_by_utt[str(it["utterance_id"])] = (errs, int(it["n_ref"]))
            else:
                pending.append((it, errs))
        for it, errs in pending:
            clean = self.clean_by_utt.get(str(it["utterance_id"]))
            if clean is None:
                continue  # the clean item failed: the utterance cannot be paired
            key = (str(it["condition_id"]), str(it["group"]))
            self.errors[key] += errs
            self.words[key] += int(it["n_ref"])
            self.clean_errors[key] += clean[0]
            self.clean_words[key] += clean[1]

    def deltas(self, cid: str, groups: Sequence[str]) -> dict[str, float]:
        out = {}
        for g in groups:
            w, cw = self.words.get((cid, g), 0.0), self.clean_words.get((cid, g), 0.0)
            if w <= 0 or cw <= 0:
                continue
            wer, clean = self.errors[(cid, g)] / w, self.clean_errors[(cid, g)] / cw
            if self.metric == "relative":
                if clean <= 0:
                    continue
                out[g] = wer / clean - 1.0
            else:
                out[g] = wer - clean
        return out

    def score(self, cid: str, groups: Sequence[str]) -> float:
        """U = max Δ − min Δ, or with a target Δ(target) − mean Δ of the others."""
        d = self.deltas(cid, groups)
        if self.target is not None:
            if self.target not in d or len(d) < 2:
                return -math.inf
            others = [v for g, v in d.items() if g != self.target]
            return d[self.target] - float(np.mean(others))
        if len(d) < 2:
            return -math.inf
        return max(d.values()) - min(d.values())


def run_hunt(
    *,
    space: Space,
    utterances: Sequence[UttRef],
    evaluate: Evaluate,
    budget: int,
    seed: int,
    fairness: FairnessSettings,
    top: int = 3,
    target: str | None = None,
    confirm_share: float = 0.5,
    where: str = "hunt",
    on_step: Callable[[str], None] | None = None,
) -> HuntResult:
    """Search ``space`` for the conditions with the largest disparity (or the largest gap of
    ``target`` to the other groups) on the discovery speakers within ``budget`` decodes, then
    confirm the ``top`` on the confirmation speakers. Deterministic from ``seed``."""
    groups = sorted({u.group for u in utterances})
    if target is not None and target not in groups:
        raise ConfigError(
            f"{where}: --target {target!r} is not a group of the corpus; groups: "
            f"{', '.join(groups)}"
        )
    split = split_speakers(
        utterances,
        seed=seed,
        confirm_share=confirm_share,
        min_speakers=fairness.min_speakers,
        where=where,
    )
    plan = budget_plan(split, top)
    if budget < plan["minimum"]:
        raise ConfigError(
            f"{where}: --budget {budget} is too small for one round: confirming {top} "
            f"candidates takes {plan['confirm']} decodes (clean included), the discovery "
            f"speakers' clean items {plan['discovery_clean']}, one search bracket "
            f"{plan['bracket']}; give --budget {plan['minimum']} or more (or a smaller --top)"
        )
    rng = hunt_rng(seed, "search")
    per_speaker = _per_speaker(split.discovery)
    levels = _fidelities(min(len(v) for v in per_speaker.values()))
    n_disc = len(per_speaker)
    scores = _Scores(fairness.metric, target)
    trace: list[dict[str, Any]] = []
    clean_done: set[str] = set()
    decodes = 0
    search_budget = budget - plan["confirm"]
    evaluated: dict[Candidate, int] = {}  # candidate → fidelity level reached
    full: dict[Candidate, float] = {}  # full-fidelity scores
    calls = 0

    def utts_between(lo: int, hi: int) -> list[UttRef]:
        return [u for refs in per_speaker.values() for u in refs[lo:hi]]

    def run_rung(cands: list[Candidate], lo: int, hi: int, bracket: int, rung: int) -> None:
        nonlocal decodes, calls
        refs = utts_between(lo, hi)
        calls += 1
        items = evaluate(f"search-{calls:03d}", cands, refs)
        new_clean = {u.id for u in refs} - clean_done
        clean_done.update(new_clean)
        decodes += len(cands) * len(refs) + len(new_clean)
        scores.add(items)
        for c in cands:
            evaluated[c] = hi
            cid = space.condition_id(c)
            value = scores.score(cid, groups)
            if hi == levels[-1]:
                full[c] = value
            trace.append(
                {
                    "bracket": bracket,
                    "rung": rung,
                    "id": cid,
                    "params": space.params(c),
                    "utterances_per_speaker": hi,
                    "decodes_so_far": decodes,
                    "score_pts": None if not math.isfinite(value) else round(100 * value, 4),
                    "delta_pts": {
                        g: round(100 * v, 4) for g, v in scores.deltas(cid, groups).items()
                    },
                }
            )

    def propose(n: int, bracket: int) -> list[Candidate]:
        chosen: list[Candidate] = []
        seen = set(evaluated)
        if full:
            best = sorted(full, key=lambda c: (-full[c], space.condition_id(c)))[:top]
            local = [x for b in best for x in space.neighbors(b) if x not in seen]
            local = sorted(set(local), key=space.condition_id)
            take = min(len(local), n // 2)
            for k in rng.permutation(len(local))[:take]:
                chosen.append(local[int(k)])
                seen.add(local[int(k)])
        tries = 0
        while len(chosen) < n and tries < 50 * n:
            tries += 1
            c = space.sample(rng)
            if c not in seen:
                chosen.append(c)
                seen.add(c)
        return chosen

    n0 = _bracket_size(len(levels), top)
    bracket = 0
    while True:
        remaining = search_budget - decodes - (levels[-1] * n_disc - len(clean_done))
        size = n0
        while size > 1 and _bracket_cost(size, levels, n_disc) > remaining:
            size -= 1
        if _bracket_cost(size, levels, n_disc) > remaining or (bracket > 0 and size < ETA):
            break
        cands = propose(size, bracket)
        if not cands:
            break  # the space is exhausted
        prev = 0
        for rung, level in enumerate(levels):
            run_rung(cands, prev, level, bracket, rung)
            prev = level
            if rung < len(levels) - 1:
                keep = max(1, math.ceil(len(cands) / ETA))
                ranked = sorted(
                    cands,
                    key=lambda c: (
                        -scores.score(space.condition_id(c), groups),
                        space.condition_id(c),
                    ),
                )
                cands = ranked[:keep]
        if on_step is not None:
            on_step(f"search bracket {bracket + 1}: {decodes} of {budget} decodes")
        bracket += 1
    search_decodes = decodes

    # Confirmation: the top candidates on speakers the search never saw.
    ranked = sorted(full, key=lambda c: (-full[c], space.condition_id(c)))
    chosen = [c for c in ranked if math.isfinite(full[c])][:top]
    findings: list[Finding] = []
    analysis = None
    if chosen:
        items = evaluate("confirm", chosen, list(split.confirmation))
        decodes += len(chosen) * len(split.confirmation) + len(split.confirmation)
        analysis = analyze(items, clean_condition_id=CLEAN_ID, settings=fairness, seed=seed)
        for rank, c in enumerate(chosen, start=1):
            cid = space.condition_id(c)
            v = analysis.verdict(cid)
            confirmed = v.flag == "uneven" and (target is None or v.worst_group == target)
            note = v.note
            if v.flag == "uneven" and not confirmed:
                note += f"; but the worst group is {v.worst_group!r}, not the target"
            findings.append(
                Finding(
                    rank=rank,
                    condition=space.condition(c),
                    params=space.params(c),
                    search_score=full[c],
                    flag=str(v.flag),
                    confirmed=confirmed,
                    disparity_pts=v.disparity.to_dict(),
                    worst_group=v.worst_group,
                    best_group=v.best_group,
                    p_value=None if not math.isfinite(v.p_value) else v.p_value,
                    q_value=None if not math.isfinite(v.q_value) else v.q_value,
                    note=note,
                    groups=[cell.to_dict() for cell in analysis.by_group(cid).values()],
                )
            )
        findings.sort(key=lambda f: (not f.confirmed, f.rank))
    return HuntResult(
        split=split,
        space=space,
        trace=trace,
        findings=findings,
        decodes=decodes,
        search_decodes=search_decodes,
        budget=budget,
        target=target,
        analysis=analysis,
        notes=list(split.notes),
    )
