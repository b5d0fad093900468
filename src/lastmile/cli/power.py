"""`lastmile power RUN_DIR | --assume-sd-pts SD`: speakers per group a decision would need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lastmile.cli.common import EXIT_CLEAN, handle_errors

__all__ = ["command"]


def _pilot_residuals(run_dir: Path) -> tuple[dict[str, Any], list[tuple[str, list[Any]]]]:
    """run.json, and per degraded condition the groups' centred speaker pseudo-values."""
    import numpy as np

    from lastmile.analysis import FairnessSettings, count_table
    from lastmile.analysis.inference import pseudo_values
    from lastmile.errors import ConfigError
    from lastmile.report.run_folder import iter_items_csv, read_run_json

    meta = read_run_json(run_dir)
    try:
        settings = FairnessSettings.model_validate(meta.get("fairness") or {})
    except ValueError as exc:
        raise ConfigError(f"{run_dir / 'run.json'}: fairness: {exc}") from None
    table = count_table(
        iter_items_csv(run_dir / "items.csv"), clean_condition_id=str(meta["clean_condition_id"])
    )
    psi = pseudo_values(
        table.errors,
        table.ref_words,
        table.speaker_group,
        len(table.groups),
        relative=settings.metric == "relative",
    )
    out = []
    for k, cond in enumerate(table.conditions[1:]):
        residuals = []
        for g in range(len(table.groups)):
            values = psi[table.speaker_group == g, k]
            values = values[np.isfinite(values)]
            residuals.append(values - values.mean() if values.size else values)
        out.append((cond, residuals))
    return {"settings": settings, "groups": table.groups, "meta": meta}, out


@click.command("power")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option(
    "--assume-sd-pts",
    type=click.FloatRange(min=0, min_open=True),
    help="Without a pilot run: the spread (SD) of one speaker's Δ across speakers, in the "
    "metric's points (e.g. 8 WER points); every group is assumed normal with this spread.",
)
@click.option(
    "--groups", "n_groups", type=click.IntRange(min=2), default=3, show_default=True,
    help="With --assume-sd-pts: number of groups.",
)  # fmt: skip
@click.option(
    "--conditions", "n_conditions", type=click.IntRange(min=1), default=None,
    help="Degraded conditions tested together (default: the pilot's, or 10).",
)  # fmt: skip
@click.option(
    "--gap", "gap_pts", type=click.FloatRange(min=0, min_open=True), default=None,
    help="Gap to detect, in the metric's points (default: the pack's threshold).",
)  # fmt: skip
@click.option(
    "--goal", type=click.Choice(["detect", "even"]), default="detect", show_default=True,
    help="detect: flag a gap of --gap; even: show truly alike groups even within the threshold.",
)  # fmt: skip
@click.option("--power", "target", type=click.FloatRange(0.5, 0.99), default=0.8, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def command(
    run_dir: Path | None,
    assume_sd_pts: float | None,
    n_groups: int,
    n_conditions: int | None,
    gap_pts: float | None,
    goal: str,
    target: float,
    seed: int,
    as_json: bool,
) -> None:
    """Estimate, by simulation, the speakers per group needed to detect a gap between groups
    (or to show them even) with the given power, under the pack's α and its number of
    conditions.

    From a pilot RUN_DIR, each group's speakers are resampled (their own spread of Δ, with
    the pilot's utterances per speaker); with --assume-sd-pts, every group is normal with that
    spread. A gap is put on the most varied group, the hardest case.

    \b
    Example:
      lastmile power lastmile-runs/pilot-20240611-101500 --gap 10
      lastmile power --assume-sd-pts 8 --groups 4 --conditions 12 --gap 5
    """
    import numpy as np

    from lastmile.analysis import FairnessSettings
    from lastmile.analysis.planning import plan_speakers

    if (run_dir is None) == (assume_sd_pts is None):
        raise click.UsageError("give a pilot RUN_DIR or --assume-sd-pts SD (one of the two)")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rows: list[dict[str, Any]] = []
    if run_dir is not None:
        info, pilot = _pilot_residuals(run_dir)
        settings: FairnessSettings = info["settings"]
        tests = n_conditions or len(pilot)
    else:
        settings = FairnessSettings()
        tests = n_conditions or 10
        sd = float(assume_sd_pts or 0.0) / 100.0
        base = np.random.default_rng(np.random.SeedSequence([seed, 1])).standard_normal(400)
        base = (base - base.mean()) / base.std(ddof=1) * sd
        pilot = [("assumed", [base.copy() for _ in range(n_groups)])]
    margin = settings.threshold
    gap = margin if gap_pts is None else gap_pts / 100.0
    for cond, residuals in pilot:
        small = [r.size for r in residuals if r.size < 2]
        plan = plan_speakers(
            residuals,
            goal=goal,
            gap=gap,
            margin=margin,
            alpha=settings.alpha,
            n_tests=tests,
            power=target,
            n_sims=400,
            rng=rng,
        )
        rows.append(
            {
                "condition": cond,
                "goal": goal,
                "gap_pts": round(gap * 100.0, 6),
                "speakers_per_group": plan.speakers,
                "pilot_speakers": [int(r.size) for r in residuals],
                "note": (
                    "a group has fewer than 2 pilot speakers"
                    if small
                    else ("" if plan.speakers else f"more than {plan.power_by_size[-1][0]}")
                ),
            }
        )
    if as_json:
        click.echo(json.dumps({"power": target, "alpha": settings.alpha, "rows": rows}, indent=2))
    else:
        aim = "detect a gap of" if goal == "detect" else "show even within ±"
        for row in rows:
            need = row["speakers_per_group"] or row["note"]
            click.echo(
                f"{row['condition']}: {need} speakers per group to {aim} "
                f"{row['gap_pts'] if goal == 'detect' else margin * 100:g} points with "
                f"{target:.0%} power (α {settings.alpha:g}, {tests} conditions; pilot speakers "
                f"{row['pilot_speakers'] if run_dir else 'assumed'})"
            )
    click.get_current_context().exit(EXIT_CLEAN)
