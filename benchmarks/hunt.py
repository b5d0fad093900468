"""Benchmark of the hunt's search algorithm (prints key=value lines).

What is measured is the SEARCH, so decoding is replaced by a simulated recognizer whose
per-group error rate depends smoothly on the condition's parameters (SNR, noise source, hum
fundamental, device, channel), with speaker random effects, and with one planted uneven
region: hum with a fundamental within about a third of an octave of 200 Hz at SNR <= 12 dB
costs one group (g2) up to 20 extra WER points. The simulator lives here, never in the
product; the hunt gets it through the same ``evaluate`` callable the product wires to the
real engine.

    python benchmarks/hunt.py                 # 50 planted seeds, 200 null seeds, 2 % budget
    python benchmarks/hunt.py seeds=10 null_seeds=50 share=0.05
    python benchmarks/hunt.py seeds=0 null_seeds=1000     # the false-confirmation rate alone

Keys:
  grid_points=           points of the exhaustive grid at the hunt's resolution
  grid_decodes=          decodes an exhaustive grid search would spend on the discovery
                         speakers alone (every point on every discovery utterance + clean)
  decodes_to_find=       the hunt's decodes (search + confirmation) / grid_decodes (goal <= 0.25)
  found_rate=            share of seeds whose confirmed findings include a point of the
                         planted region with g2 the worst group (goal >= 0.9)
  false_confirm_rate=    share of null seeds (the same surface without the planted region)
                         with any confirmed finding (goal <= alpha), with its standard error
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lastmile.analysis import FairnessSettings
from lastmile.hunt.search import UttRef, run_hunt
from lastmile.hunt.settings import HuntSettings
from lastmile.hunt.space import Candidate, Space, build_space

GROUPS = tuple(f"g{k}" for k in range(6))
SPEAKERS_PER_GROUP = 12
UTTS_PER_SPEAKER = 8
TARGET = "g2"
PLANT_HZ = 200.0
PLANT_SNR_DB = 12.0
PLANT_PTS = 0.20


def corpus() -> list[UttRef]:
    return [
        UttRef(group=g, speaker=f"{g}-s{s}", id=f"{g}-s{s}-u{u}")
        for g in GROUPS
        for s in range(SPEAKERS_PER_GROUP)
        for u in range(UTTS_PER_SPEAKER)
    ]


def space() -> Space:
    settings = HuntSettings.model_validate(
        {
            "snr_db": [-5, 25],
            "snr_step_db": 2.5,
            "noise": ["white", "pink", "brown", {"type": "hum"}],
            "hum_fundamental_hz": [40, 480],
            "hum_steps_per_octave": 6,
            "hum_harmonics": ["falling", "flat", "odd"],
            "devices": [None, "narrowband-handset"],
            "channels": [None, {"codec": "g711-ulaw"}],
        }
    )
    return build_space(settings)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def in_region(params: dict[str, Any]) -> bool:
    f = params.get("fundamental_hz")
    return (
        params["noise"] == "hum"
        and f is not None
        and abs(math.log2(f / PLANT_HZ)) <= 0.5
        and params["snr_db"] <= PLANT_SNR_DB
    )


class Simulator:
    """Per item: errors ~ Binomial(n_ref, p(condition, group, speaker)), deterministic from
    (seed, condition id, utterance id)."""

    def __init__(self, space: Space, corpus: Sequence[UttRef], *, seed: int, planted: bool) -> None:
        self.space = space
        self.corpus = list(corpus)
        self.index = {u.id: k for k, u in enumerate(self.corpus)}
        self.seed = seed
        self.planted = planted
        self._draws: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._speakers: dict[str, float] = {}

    def _rng(self, *parts: str) -> np.random.Generator:
        digest = hashlib.sha256("/".join([str(self.seed), *parts]).encode()).hexdigest()
        return np.random.default_rng(np.random.SeedSequence(entropy=int(digest, 16)))

    def _speaker_effect(self, speaker: str) -> float:
        if speaker not in self._speakers:
            self._speakers[speaker] = float(self._rng("speaker", speaker).normal(0.0, 0.35))
        return self._speakers[speaker]

    def p(self, c: Candidate | None, u: UttRef) -> float:
        base = -2.9 + self._speaker_effect(u.speaker)  # ~5 % clean WER
        if c is None:
            return _sigmoid(base)
        params = self.space.params(c)
        snr = params["snr_db"]
        noise_gain = {"white": 1.0, "pink": 0.8, "brown": 0.5, "hum": 0.6}[params["noise"]]
        extra = 3.0 * noise_gain * _sigmoid((4.0 - snr) / 3.0)
        extra += 0.4 if params["device"] else 0.0
        extra += 0.3 if params["channel"] else 0.0
        p = _sigmoid(base + extra)
        if self.planted and u.group == TARGET and params["noise"] == "hum":
            f = params["fundamental_hz"]
            bump = math.exp(-(math.log2(f / PLANT_HZ) ** 2) / (2 * 0.25**2))
            p = min(0.95, p + PLANT_PTS * bump * _sigmoid((PLANT_SNR_DB - snr) / 1.5))
        return p

    def _condition_draws(self, cid: str, c: Candidate | None) -> tuple[np.ndarray, np.ndarray]:
        """Words and errors of every corpus utterance under one condition (one generator per
        condition, so an item's result does not depend on which call asks for it)."""
        if cid not in self._draws:
            rng = self._rng(cid)
            n_ref = rng.integers(8, 16, size=len(self.corpus))
            p = np.array([self.p(c, u) for u in self.corpus])
            self._draws[cid] = (n_ref, rng.binomial(n_ref, p))
        return self._draws[cid]

    def __call__(
        self, stage: str, cands: Sequence[Candidate], utts: Sequence[UttRef]
    ) -> list[dict[str, Any]]:
        out = []
        conds: list[tuple[str, Candidate | None]] = [("clean", None)]
        conds += [(self.space.condition_id(c), c) for c in cands]
        for cid, c in conds:
            n_ref, errors = self._condition_draws(cid, c)
            for u in utts:
                k = self.index[u.id]
                out.append(
                    {
                        "condition_id": cid,
                        "utterance_id": u.id,
                        "speaker": u.speaker,
                        "group": u.group,
                        "n_ref": int(n_ref[k]),
                        "substitutions": int(errors[k]),
                        "deletions": 0,
                        "insertions": 0,
                        "error": None,
                    }
                )
        return out


def main(argv: Sequence[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    seeds = int(args.get("seeds", 50))
    null_seeds = int(args.get("null_seeds", 200))
    share = float(args.get("share", 0.02))
    top = int(args.get("top", 3))
    sp = space()
    utts = corpus()
    fairness = FairnessSettings(threshold_pts=5, alpha=0.05, min_speakers=3)
    n_disc = len(GROUPS) * (SPEAKERS_PER_GROUP // 2) * UTTS_PER_SPEAKER
    grid_decodes = sp.size * n_disc + n_disc
    budget = int(share * grid_decodes)
    found = false = 0
    used = []
    t0 = time.perf_counter()
    for seed in range(seeds):
        sim = Simulator(sp, utts, seed=seed, planted=True)
        result = run_hunt(
            space=sp,
            utterances=utts,
            evaluate=sim,
            budget=budget,
            seed=seed,
            fairness=fairness,
            top=top,
        )
        used.append(result.decodes)
        found += any(in_region(f.params) and f.worst_group == TARGET for f in result.confirmed)
    for seed in range(null_seeds):
        sim = Simulator(sp, utts, seed=100_000 + seed, planted=False)
        result = run_hunt(
            space=sp,
            utterances=utts,
            evaluate=sim,
            budget=budget,
            seed=seed,
            fairness=fairness,
            top=top,
        )
        false += bool(result.confirmed)
    print(f"grid_points={sp.size}")
    print(f"grid_decodes={grid_decodes}")
    print(f"budget={budget}")
    if seeds:  # seeds=0 measures only the false-confirmation rate
        print(f"decodes_to_find={float(np.mean(used)) / grid_decodes:.4f}")
        print(f"found_rate={found / seeds:.3f}")
    if null_seeds:
        print(f"false_confirm_rate={false / null_seeds:.3f}")
        se = math.sqrt(max(false, 1) / null_seeds * (1 - false / null_seeds) / null_seeds)
        print(f"false_confirm_rate_se={se:.3f}")
    print(f"alpha={fairness.alpha}")
    print(f"seeds={seeds}")
    print(f"null_seeds={null_seeds}")
    print(f"wall_s={time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
