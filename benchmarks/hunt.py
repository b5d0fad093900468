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
    python benchmarks/hunt.py seeds=0 null_seeds=0 direct=600   # the test alone (below)

Keys:
  grid_points=           points of the exhaustive grid at the hunt's resolution
  grid_decodes=          decodes an exhaustive grid search would spend on the discovery
                         speakers alone (every point on every discovery utterance + clean)
  decodes_to_find=       the hunt's decodes (search + confirmation) / grid_decodes (goal <= 0.25)
  found_rate=            share of seeds whose confirmed findings include a point of the
                         planted region with g2 the worst group (goal >= 0.9)
  false_confirm_rate=    share of null seeds (the same surface without the planted region)
                         with any confirmed finding (goal <= alpha), with its standard error
  direct_p_below_alpha_<condition>=, direct_welch_f_p_below_alpha_<condition>=
                         with direct=N: N null packs of the confirmation's shape (6 groups x
                         6 speakers x 8 utterances) under four fixed conditions (the two of
                         highest WER, two near the clean WER), the share with p <= 0.05 from
                         the real analyze_table, and from Welch's F (the test before) on the
                         same tables
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lastmile.analysis import FairnessSettings, analyze_table
from lastmile.analysis.counts import count_table
from lastmile.analysis.inference import group_means, pseudo_values, welch_heterogeneity
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


def direct_null(sp: Space, utts: Sequence[UttRef], packs: int) -> dict[str, tuple[float, float]]:
    """Share of null packs with p <= 0.05 per condition: the analysis's test, Welch's F."""
    confirm = [u for u in utts if int(u.speaker.split("-s")[1]) < SPEAKERS_PER_GROUP // 2]
    probe = Simulator(sp, utts, seed=0, planted=False)
    some = list(sp.grid())[:: max(1, sp.size // 400)]
    ranked = sorted(some, key=lambda c: -np.mean([probe.p(c, u) for u in confirm]))
    chosen = [ranked[0], ranked[1], ranked[len(ranked) // 2], ranked[-1]]
    new, old = [], []
    for seed in range(packs):
        sim = Simulator(sp, utts, seed=500_000 + seed, planted=False)
        table = count_table(sim("confirm", chosen, confirm), clean_condition_id="clean")
        analysis = analyze_table(table, settings=FairnessSettings(), seed=seed, plan=False)
        new.append([v.p_value for v in analysis.verdicts[1:]])
        g = len(table.groups)
        psi = pseudo_values(table.errors, table.ref_words, table.speaker_group, g, relative=False)
        means, variances, sizes = group_means(psi, table.speaker_group, g)
        sizes_2d = np.broadcast_to(sizes, means.shape)
        old.append(welch_heterogeneity(means, variances, sizes_2d, cap_df=True)[3])
    p_new, p_old = np.array(new) <= 0.05, np.array(old) <= 0.05
    return {
        sp.condition_id(c): (float(p_new[:, k].mean()), float(p_old[:, k].mean()))
        for k, c in enumerate(chosen)
    }


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
    direct = int(args.get("direct", 0))
    if direct:
        for cid, (p_new, p_old) in direct_null(sp, utts, direct).items():
            print(f"direct_p_below_alpha_{cid}={p_new:.4f}")
            print(f"direct_welch_f_p_below_alpha_{cid}={p_old:.4f}")
    print(f"alpha={fairness.alpha}")
    print(f"seeds={seeds}")
    print(f"null_seeds={null_seeds}")
    print(f"wall_s={time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
