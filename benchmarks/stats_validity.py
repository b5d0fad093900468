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
* ``many_null_k{k}_n{n}_{low,high}_{p_below_alpha,familywise}``: null packs of k = 4, 6, 8
  groups x n = 4, 6, 8 speakers at about 10 % or 40 % WER under noise (what a hunt's
  confirmation sees): share of conditions with p <= 0.05 (target 0.04-0.055) and of packs
  with any condition ``uneven`` (target <= 0.05); ``…_welch_f_…`` and ``…_max_…``: the same
  for Welch's F with capped df (the test before) and for the largest studentized pairwise
  gap under the same parametric bootstrap, on the same runs.
* ``power_gap{g}_n{n}``: share flagged uneven, one uneven condition among 10, 20 utterances
  (the curve, then gap 10 at 14 and 16 speakers and gap 13 at 10: where 0.5 is reached),
  the gap on group c (the most varied).
* ``study_gap_on_{c,a}_{uneven,oracle,oracle_formula,omnibus_known_se,contrast_sd,welch_f,
  bootstrap_max,chi2_reference,pooled_variance}``:
  at a 10-point gap, 10 speakers x 20 utterances, the gap on group c or on group a (the least
  varied): the analysis's power; an oracle's that knows the group, the sign and the true
  standard errors (one-sided z at alpha / 10); a test of all groups alike that knows the
  standard errors (noncentral chi-square, 2 df); Welch's F (the test before) and the largest
  studentized pairwise gap under the same parametric bootstrap, on the same runs; and two
  shortcuts that gain power by ignoring how uncertain the standard errors are
  (``chi2_reference``: Welch's statistic against chi-square; ``pooled_variance``: each group's
  variance averaged over the pack's conditions). ``study_null_{sizes}_{uneven,chi2_reference,
  pooled_variance}_familywise``: their false flags on null packs of that design (10 conditions,
  20 utterances; groups 10/10/10, 30/10/5, 10/10/3).
* ``seconds``: analysis of 20 conditions x 8 groups x 200 speakers x 10 utterances.

Run: ``python benchmarks/stats_validity.py [--sims N] [--seed S] [--only SECTIONS]`` (default
100 sims: several minutes on one core; benchmarks/README.md says which sims its figures used).
``--only`` takes a comma list of coverage, null, many, verdicts, power, study, speed.
Exits 1 if a target is missed by more than two Monte-Carlo standard errors of the estimate.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core; set before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402

from lastmile.analysis import FairnessSettings, analyze_table  # noqa: E402
from lastmile.analysis.synthetic import GroupSpec, SyntheticRun, synthetic_table  # noqa: E402
from lastmile.analysis.validity import (  # noqa: E402
    coverage,
    many_groups_null,
    null_uneven_rate,
    power_study,
    shortcut_null,
    verdict_shares,
)

SECTIONS = ("coverage", "null", "many", "verdicts", "power", "study", "speed")


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
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma list of sections")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not only <= set(SECTIONS):
        parser.error(f"--only: unknown sections {sorted(only - set(SECTIONS))}; use {SECTIONS}")
    if args.no_power:
        only.discard("power")
    # Each section draws its seeds from its own child, so running a section alone gives the
    # same figures as running it with the others.
    section_seeds = dict(
        zip(SECTIONS, np.random.SeedSequence(args.seed).spawn(len(SECTIONS)), strict=True)
    )

    def seeds_of(section: str) -> Iterator[int]:
        return iter(int(x) for x in section_seeds[section].generate_state(100))

    failures: list[str] = []
    started = time.perf_counter()
    print(f"sims={args.sims}")
    seeds = seeds_of("coverage")
    for n in (3, 5, 10, 30) if "coverage" in only else ():
        cov = coverage(n_speakers=n, n_sims=args.sims, seed=int(next(seeds)))
        for kind in ("wer", "delta", "pairs"):
            value = getattr(cov, kind)
            print(f"coverage_{kind}_n{n}={value:.4f}")
            slack = 2.0 * (0.95 * 0.05 / max(cov.n_intervals / 3, 1)) ** 0.5  # Monte-Carlo
            if not 0.93 - slack <= value <= 0.97 + slack:
                failures.append(f"coverage_{kind}_n{n}")
        print(f"shown_n{n}={cov.shown:.3f}")
    seeds = seeds_of("null")
    for metric in ("absolute", "relative") if "null" in only else ():
        for sizes in ((10, 10, 10), (30, 10, 5), (10, 10, 3)):
            null = null_uneven_rate(
                metric=metric, sizes=sizes, n_sims=args.sims, seed=int(next(seeds))
            )
            key = f"null_{metric}_{'-'.join(map(str, sizes))}"
            print(f"{key}_familywise={null.familywise_uneven:.4f}")
            print(f"{key}_p_below_alpha={null.p_below_alpha:.4f}")
            if null.familywise_uneven > 0.05 + 2.0 * (0.05 * 0.95 / args.sims) ** 0.5:
                failures.append(f"{key}_familywise")
    seeds = seeds_of("many")
    for level in ("low", "high") if "many" in only else ():
        for k in (4, 6, 8):
            for n in (4, 6, 8):
                null = many_groups_null(
                    n_groups=k, n_speakers=n, level=level, n_sims=args.sims, seed=int(next(seeds))
                )
                key = f"many_null_k{k}_n{n}_{level}"
                print(f"{key}_p_below_alpha={null.p_below_alpha:.4f}")
                print(f"{key}_familywise={null.familywise_uneven:.4f}")
                for other in ("welch_f", "max"):
                    for what in ("p_below_alpha", "familywise"):
                        value = getattr(null, f"{other}_{what}")
                        print(f"{key}_{other}_{what}={value:.4f}")
                if null.p_below_alpha > 0.055 + 2.0 * (0.05 * 0.95 / (10 * args.sims)) ** 0.5:
                    failures.append(f"{key}_p_below_alpha")
                if null.familywise_uneven > 0.05 + 2.0 * (0.05 * 0.95 / args.sims) ** 0.5:
                    failures.append(f"{key}_familywise")
    seeds = seeds_of("verdicts")
    if "verdicts" in only:
        for n in (5, 10, 30):
            alike = verdict_shares(gap=0.0, n_speakers=n, n_sims=args.sims, seed=int(next(seeds)))
            print(f"even_share_n{n}={alike.even:.4f}")
            print(f"inconclusive_share_n{n}={alike.inconclusive:.4f}")
        edge = verdict_shares(gap=0.05, n_speakers=30, n_sims=args.sims, seed=int(next(seeds)))
        print(f"false_even_at_margin={edge.even:.4f}")
        if edge.even > 0.05 + 2.0 * (0.05 * 0.95 / args.sims) ** 0.5:
            failures.append("false_even_at_margin")
    seeds = seeds_of("power")
    if "power" in only:
        # the curve, then where the goal (0.5 at a 10-point gap) is reached
        cells = [(gap, n) for gap in (0.02, 0.05, 0.10, 0.20) for n in (5, 10, 20, 40)]
        for gap, n in [*cells, (0.10, 14), (0.10, 16), (0.13, 10)]:
            shares = verdict_shares(
                gap=gap,
                n_speakers=n,
                n_utterances=20,
                n_sims=args.sims,
                seed=int(next(seeds)),
            )
            print(f"power_gap{round(gap * 100)}_n{n}={shares.uneven:.4f}")
    seeds = seeds_of("study")
    for name, group in (("c", 2), ("a", 0)) if "study" in only else ():
        study = power_study(gap_group=group, n_sims=args.sims, seed=int(next(seeds)))
        for field in (
            "uneven",
            "oracle",
            "oracle_formula",
            "omnibus_known_se",
            "contrast_sd",
            "welch_f",
            "bootstrap_max",
            "chi2_reference",
            "pooled_variance",
        ):
            print(f"study_gap_on_{name}_{field}={getattr(study, field):.4f}")
    for sizes in ((10, 10, 10), (30, 10, 5), (10, 10, 3)) if "study" in only else ():
        rates = shortcut_null(sizes=sizes, n_sims=args.sims, seed=int(next(seeds)))
        for key, value in rates.items():
            print(f"study_null_{'-'.join(map(str, sizes))}_{key}_familywise={value:.4f}")
    if "speed" in only:
        seconds = speed_seconds(int(next(seeds_of("speed"))))
        print(f"seconds={seconds:.3f}")
        if seconds > 2.0:
            failures.append("seconds")
    print(f"total_seconds={time.perf_counter() - started:.1f}")
    print(f"checks_failed={len(failures)}" + (f" ({'; '.join(failures)})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
