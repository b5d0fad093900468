"""Statistical validity and speed of ``lastmile.analysis`` on synthetic runs with a known truth.

Runs come from :mod:`lastmile.analysis.synthetic` (logit-normal speakers, shared utterance
difficulty, speaker x condition effects, beta-binomial errors, insertion bursts; groups with
clean WER 8/12/20 % and speaker spreads 0.4/0.6/0.9) through the real ``analyze_table``.
Prints ``key=value`` lines:

* ``coverage_{wer,delta,pairs}_n{3,5,10,30}``: share of shown 95 % intervals containing the
  truth (target 0.93-0.97); ``shown_n…``: share of intervals shown at all.
* ``null_{metric}_{sizes}_familywise``: share of 10-condition null packs with any condition
  ``uneven`` (target <= 0.05); ``…_p_below_alpha``: share of conditions with p <= 0.05.
* ``even_share_n{5,10,30}``, ``inconclusive_share_n…``: a truly even condition's verdicts.
* ``false_even_at_margin``: a true gap equal to the threshold (5 points) called even
  (target <= 0.05).
* ``power_gap{g}_n{n}``: share flagged uneven, one uneven condition among 10, 20 utterances.
* ``seconds``: analysis of 20 conditions x 8 groups x 200 speakers x 10 utterances.

Run: ``python benchmarks/stats_validity.py [--sims N] [--seed S]`` (default 100 sims: a few
minutes on one core; use ``--sims 1000`` for the figures in benchmarks/README.md).
Exits 1 if a target is missed by more than two Monte-Carlo standard errors of the estimate.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core; set before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lastmile.analysis import FairnessSettings, analyze_table  # noqa: E402
from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_table  # noqa: E402
from lastmile.analysis.validity import coverage, null_uneven_rate, verdict_shares  # noqa: E402


def speed_seconds(seed: int) -> float:
    """Best of 3 wall times of ``analyze_table`` on 20 conditions x 8 groups x 200 speakers."""
    groups = {
        f"g{k}": GroupSpec(200, [0.10] + [0.12 + 0.01 * c + 0.002 * k for c in range(19)])
        for k in range(8)
    }
    table = synthetic_table(SyntheticRun(groups, n_utterances=10), rng=np.random.default_rng(seed))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        analyze_table(table, settings=FairnessSettings(), seed=seed)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    """Run every check, print ``key=value`` lines, return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sims", type=int, default=100, help="simulated runs per check")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--no-power", action="store_true", help="skip the power curve")
    args = parser.parse_args()
    seeds = iter(np.random.SeedSequence(args.seed).generate_state(200))
    failures: list[str] = []
    started = time.perf_counter()
    print(f"sims={args.sims}")
    for n in (3, 5, 10, 30):
        cov = coverage(n_speakers=n, n_sims=args.sims, seed=int(next(seeds)))
        for kind in ("wer", "delta", "pairs"):
            value = getattr(cov, kind)
            print(f"coverage_{kind}_n{n}={value:.4f}")
            slack = 2.0 * (0.95 * 0.05 / max(cov.n_intervals / 3, 1)) ** 0.5  # Monte-Carlo
            if not 0.93 - slack <= value <= 0.97 + slack:
                failures.append(f"coverage_{kind}_n{n}")
        print(f"shown_n{n}={cov.shown:.3f}")
    for metric in ("absolute", "relative"):
        for sizes in ((10, 10, 10), (30, 10, 5), (10, 10, 3)):
            null = null_uneven_rate(
                metric=metric, sizes=sizes, n_sims=args.sims, seed=int(next(seeds))
            )
            key = f"null_{metric}_{'-'.join(map(str, sizes))}"
            print(f"{key}_familywise={null.familywise_uneven:.4f}")
            print(f"{key}_p_below_alpha={null.p_below_alpha:.4f}")
            if null.familywise_uneven > 0.05 + 2.0 * (0.05 * 0.95 / args.sims) ** 0.5:
                failures.append(f"{key}_familywise")
    for n in (5, 10, 30):
        alike = verdict_shares(gap=0.0, n_speakers=n, n_sims=args.sims, seed=int(next(seeds)))
        print(f"even_share_n{n}={alike.even:.4f}")
        print(f"inconclusive_share_n{n}={alike.inconclusive:.4f}")
    edge = verdict_shares(gap=0.05, n_speakers=30, n_sims=args.sims, seed=int(next(seeds)))
    print(f"false_even_at_margin={edge.even:.4f}")
    if edge.even > 0.05 + 2.0 * (0.05 * 0.95 / args.sims) ** 0.5:
        failures.append("false_even_at_margin")
    if not args.no_power:
        for gap in (0.02, 0.05, 0.10, 0.20):
            for n in (5, 10, 20, 40):
                shares = verdict_shares(
                    gap=gap,
                    n_speakers=n,
                    n_utterances=20,
                    n_sims=args.sims,
                    seed=int(next(seeds)),
                )
                print(f"power_gap{round(gap * 100)}_n{n}={shares.uneven:.4f}")
    seconds = speed_seconds(int(next(seeds)))
    print(f"seconds={seconds:.3f}")
    if seconds > 2.0:
        failures.append("seconds")
    print(f"total_seconds={time.perf_counter() - started:.1f}")
    print(f"checks_failed={len(failures)}" + (f" ({'; '.join(failures)})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
