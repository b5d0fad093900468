"""Coverage of the mitigation check's intervals by simulation (prints key=value lines).

Synthetic runs (``lastmile.analysis.synthetic``: logit-normal speakers, shared utterance
difficulty, speaker × condition effects, beta-binomial errors, insertion bursts) with four
conditions: clean, hum, hum through a front end, clean through it. Each goes through the real
``analyze_mitigation``; an interval covers when it holds the true change in U (or the true
cost on clean speech of group a).

Scenarios (true Δ in WER points for groups a / b / c, without → with the front end):

  partial     4 / 14 / 9  →  3 / 4 / 4     closes most of the gap
  full        4 / 14 / 9  →  3 / 3 / 3     closes all of it (U with it is 0)
  no-effect   4 / 14 / 9  →  4 / 14 / 9    changes nothing
  no-gap      8 / 8 / 8   →  4 / 4 / 4     no gap without or with it
  overshoot   4 / 14 / 9  →  6 / 2 / 6     reverses the gap

Sizes: mixed (6 / 14 / 9 speakers), small (4 / 4 / 4), large (20 / 20 / 20); 10 utterances
per speaker.

    python benchmarks/mitigation_validity.py [--sims 600] [--bootstrap 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lastmile.analysis import FairnessSettings
from lastmile.analysis.mitigation import FrontEndPair, analyze_mitigation
from lastmile.analysis.stats import disparity
from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_table

PAIRS = [FrontEndPair("clean", "n", "clean+n"), FrontEndPair("hum", "n", "hum+n", "hum")]
CONDITIONS = ("clean", "hum", "hum+n", "clean+n")
# WER per group under clean, hum, hum+n, clean+n
SCENARIOS = {
    "partial": {
        "a": [0.08, 0.12, 0.11, 0.085],
        "b": [0.10, 0.24, 0.14, 0.105],
        "c": [0.06, 0.15, 0.10, 0.07],
    },
    "full": {
        "a": [0.08, 0.12, 0.11, 0.085],
        "b": [0.10, 0.24, 0.13, 0.105],
        "c": [0.06, 0.15, 0.09, 0.07],
    },
    "no-effect": {
        "a": [0.08, 0.12, 0.12, 0.08],
        "b": [0.10, 0.24, 0.24, 0.10],
        "c": [0.06, 0.15, 0.15, 0.06],
    },
    "no-gap": {
        "a": [0.08, 0.16, 0.12, 0.08],
        "b": [0.10, 0.18, 0.14, 0.10],
        "c": [0.06, 0.14, 0.10, 0.06],
    },
    "overshoot": {
        "a": [0.08, 0.12, 0.14, 0.085],
        "b": [0.10, 0.24, 0.12, 0.105],
        "c": [0.06, 0.15, 0.12, 0.07],
    },
}
SIZES = {"mixed": (6, 14, 9), "small": (4, 4, 4), "large": (20, 20, 20)}


def coverage(
    scenario: str, size: str, *, sims: int, n_bootstrap: int, seed: int
) -> tuple[float, float, float]:
    """Coverage of the change in U, its mean width (points), coverage of group a's clean cost."""
    wer = SCENARIOS[scenario]
    groups = sorted(wer)
    run = SyntheticRun(
        groups={g: GroupSpec(n, wer[g]) for g, n in zip(groups, SIZES[size], strict=True)},
        condition_ids=CONDITIONS,
    )

    def true_u(k: int) -> float:
        return float(disparity(np.array([wer[g][k] - wer[g][0] for g in groups]))[0])

    truth = true_u(2) - true_u(1)
    cost_truth = wer["a"][3] - wer["a"][0]
    rng = np.random.default_rng(seed)
    hits = hits_cost = 0
    width = 0.0
    for _ in range(sims):
        table = synthetic_table(run, rng=rng)
        rep = analyze_mitigation(
            table, PAIRS, settings=FairnessSettings(), rng=rng, n_bootstrap=n_bootstrap
        )
        u = rep.row("hum", "n").u_change
        hits += u.ci_low <= truth <= u.ci_high
        width += u.ci_high - u.ci_low
        cost = rep.clean_costs[0].by_group["a"]
        hits_cost += cost.ci_low <= cost_truth <= cost.ci_high
    return hits / sims, 100.0 * width / sims, hits_cost / sims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=600)
    parser.add_argument("--bootstrap", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"sims={args.sims}")
    for size in SIZES:
        for scenario in SCENARIOS:
            cover, width, cost = coverage(
                scenario, size, sims=args.sims, n_bootstrap=args.bootstrap, seed=args.seed
            )
            key = f"{scenario.replace('-', '_')}_{size}"
            print(f"coverage_u_change_{key}={cover:.3f}")
            print(f"width_u_change_pts_{key}={width:.1f}")
            print(f"coverage_clean_cost_{key}={cost:.3f}")
    print(f"seconds={time.perf_counter() - start:.0f}")


if __name__ == "__main__":
    main()
