"""Statistical validity and speed of ``lastmile.analysis`` on simulated runs with a known truth.

Prints ``key=value`` lines (metric absolute, then the same keys prefixed ``relative_``):

* ``null_flag_rate``: groups degrade alike; share of degraded conditions flagged ``uneven``
  (must be ≤ α). ``null_p_below_alpha``: share of permutation p ≤ α (≈ α when calibrated).
* ``ci_coverage``: share of nominal-95 % intervals of per-group Δ and of pairwise Δ
  differences that contain the truth, the population pooled WER of the simulation model
  (20 speakers × 10 utterances per group; must be in [0.93, 0.97]); ``ci_coverage_delta``,
  ``ci_coverage_pairs`` split it; ``ci_coverage_plain_percentile`` is the same with
  unexpanded percentile tails, for contrast.
* ``power_5pt``: share flagged when one group truly loses 5 WER points more (10 speakers ×
  20 utterances per group).
* ``seconds``: ``analyze`` on 20 conditions × 8 groups × 200 speakers (2 utterances each,
  64,000 items) with B = P = 2000, best of 3, one BLAS thread (must be < 2).

Run: ``python benchmarks/stats_validity.py [--sims N] [--seed S]``; exits 1 if a check fails.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, as the speed target says; set before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lastmile.analysis import FairnessSettings, Metric, analyze  # noqa: E402
from lastmile.analysis.simulate import SimulationSpec, simulate_items  # noqa: E402
from lastmile.analysis.validity import ci_coverage, null_flag_rate, power  # noqa: E402


def speed_seconds(metric: Metric, *, seed: int, repeats: int = 3) -> tuple[float, int]:
    """Best wall time of ``analyze`` on the speed case, and its item count."""
    groups = [f"g{k}" for k in range(8)]
    truth = {"clean": dict.fromkeys(groups, 0.10)}
    for c in range(19):
        truth[f"c{c:02d}"] = {g: 0.12 + 0.01 * c + 0.002 * k for k, g in enumerate(groups)}
    spec = SimulationSpec(truth, n_speakers=200, n_utterances=2)
    items = simulate_items(spec, rng=np.random.default_rng(np.random.SeedSequence(seed)))
    settings = FairnessSettings(metric=metric, n_bootstrap=2000, n_permutations=2000)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        analyze(items, clean_condition_id="clean", settings=settings, seed=seed)
        best = min(best, time.perf_counter() - start)
    return best, len(items)


def main() -> int:
    """Run every check for both metrics, print ``key=value`` lines, return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sims", type=int, default=1000, help="simulated runs per check")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    alpha = FairnessSettings().alpha
    failures = []
    started = time.perf_counter()
    for metric in ("absolute", "relative"):
        prefix = "" if metric == "absolute" else "relative_"
        seeds = np.random.SeedSequence([args.seed, 0 if metric == "absolute" else 1]).spawn(4)
        s_null, s_cov, s_pow, s_speed = (int(s.generate_state(1)[0]) for s in seeds)
        null = null_flag_rate(metric=metric, n_sims=args.sims, seed=s_null)
        print(f"{prefix}sims_null={null.n_sims} ({null.n_conditions} conditions)")
        print(f"{prefix}null_flag_rate={null.flag_rate:.4f}")
        print(f"{prefix}null_p_below_alpha={null.p_below_alpha:.4f}")
        if null.flag_rate > alpha:
            failures.append(f"{prefix}null_flag_rate > {alpha}")
        cov = ci_coverage(metric=metric, n_sims=args.sims, seed=s_cov, n_bootstrap=2000)
        print(f"{prefix}sims_coverage={cov.n_sims} ({cov.n_intervals} intervals)")
        print(f"{prefix}ci_coverage={cov.coverage:.4f}")
        print(f"{prefix}ci_coverage_delta={cov.delta:.4f}")
        print(f"{prefix}ci_coverage_pairs={cov.pairs:.4f}")
        print(f"{prefix}ci_coverage_plain_percentile={cov.plain_percentile:.4f}")
        if not 0.93 <= cov.coverage <= 0.97:
            failures.append(f"{prefix}ci_coverage outside [0.93, 0.97]")
        rate = power(metric=metric, n_sims=args.sims, seed=s_pow)
        print(f"{prefix}sims_power={args.sims}")
        print(f"{prefix}power_5pt={rate:.4f}")
        seconds, n_items = speed_seconds(metric, seed=s_speed)
        print(f"{prefix}speed_items={n_items}")
        print(f"{prefix}seconds={seconds:.3f}")
        if seconds >= 2.0:
            failures.append(f"{prefix}seconds >= 2")
    print(f"total_seconds={time.perf_counter() - started:.1f}")
    print(f"checks_failed={len(failures)}" + (f" ({'; '.join(failures)})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
