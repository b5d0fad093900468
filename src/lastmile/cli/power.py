"""`lastmile power RUN_DIR | --assume-sd-pts SD`: speakers and utterances a decision would need."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lastmile.cli.common import EXIT_CLEAN, BadInput, handle_errors

if TYPE_CHECKING:
    from lastmile.analysis import FairnessSettings
    from lastmile.analysis.planning import DesignPlan, PilotCondition

__all__ = ["command"]


def _pilot(run_dir: Path) -> tuple[FairnessSettings, tuple[PilotCondition, ...]]:
    """The pack's fairness settings and, per degraded condition, what planning needs."""
    from lastmile.analysis import FairnessSettings
    from lastmile.analysis.planning import pilot_conditions, pilot_from_items
    from lastmile.errors import ConfigError
    from lastmile.report.run_folder import iter_items_csv, read_run_json

    meta = read_run_json(run_dir)
    try:
        settings = FairnessSettings.model_validate(meta.get("fairness") or {})
    except ValueError as exc:
        raise ConfigError(f"{run_dir / 'run.json'}: fairness: {exc}") from None
    table, utterances = pilot_from_items(
        iter_items_csv(run_dir / "items.csv"), clean_condition_id=str(meta["clean_condition_id"])
    )
    return settings, pilot_conditions(table, utterances, relative=settings.metric == "relative")


def _utterance_grid(values: tuple[str, ...]) -> tuple[int, ...] | None:
    """``--utterances 5,10 --utterances 20`` → (5, 10, 20); ``None`` when not given."""
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            text = part.strip()
            if not text.isdigit() or int(text) < 1:
                raise click.BadParameter(
                    f"expected whole numbers >= 1 separated by commas (e.g. 5,10,20), got "
                    f"{part.strip()!r}",
                    param_hint="--utterances",
                )
            out.append(int(text))
    return tuple(sorted(set(out))) or None


def _scale(value: float | None, relative: bool) -> float | None:
    """A variance in Δ's unit² as an SD in the metric's printed unit (points or ratio)."""
    if value is None or not math.isfinite(value):
        return None
    sd = math.sqrt(max(value, 0.0))
    return round(sd if relative else sd * 100.0, 4)


def _amount(value: float, relative: bool) -> str:
    """A gap or margin (a fraction of Δ) as people read it, in the metric's own unit."""
    if relative:
        return f"{value:.6g} relative change ({value * 100:.6g} points on the report's % scale)"
    return f"{value * 100:.6g} points"


def _row(
    pilot: PilotCondition,
    design: DesignPlan,
    *,
    goal: str,
    gap: float,
    margin: float,
    relative: bool,
    assumed: bool,
) -> dict[str, Any]:
    at_m = design.speakers_at(design.pilot_utterances)
    plan_m = dict(design.by_utterances)[design.pilot_utterances]
    if not pilot.plannable:
        note = "cannot plan"
    elif at_m is None:
        note = f"more than {plan_m.power_by_size[-1][0]}" if plan_m.power_by_size else ""
    else:
        note = ""
    names = [p.group for p in pilot.groups]
    scale = 1.0 if relative else 100.0
    return {
        "condition": pilot.condition_id,
        "plannable": pilot.plannable,
        "goal": goal,
        "unit": "relative" if relative else "WER points",
        "gap": round(gap * scale, 6) if goal == "detect" else None,
        "margin": round(margin * scale, 6) if goal == "even" else None,
        "gap_pts": round(gap * 100.0, 6) if goal == "detect" and not relative else None,
        "speakers_per_group": at_m,
        "pilot_speakers": [int(r.size) for r in pilot.residuals],
        "note": note,
        "pilot_utterances_per_speaker": design.pilot_utterances,
        "utterances": [
            {
                "utterances_per_speaker": k,
                "speakers_per_group": plan.speakers,
                "utterances_per_group": None if plan.speakers is None else plan.speakers * k,
            }
            for k, plan in design.by_utterances
        ],
        "unlimited_utterances_speakers_per_group": (
            None if design.unlimited is None else design.unlimited.speakers
        ),
        # true: that number is a lower bound (a group's τ² truncated at 0 in the pilot)
        "unlimited_is_lower_bound": design.unlimited_is_bound,
        "gap_group": None if assumed or goal != "detect" else names[design.gap_group],
        "variance_unit": "relative" if relative else "WER points",
        "variance": [
            {
                "group": p.group,
                "speakers": p.speakers,
                "utterances_per_speaker": p.utterances,
                "total_sd": _scale(p.total, relative),
                "within_sd": _scale(p.within, relative),
                "between_sd": _scale(p.between, relative),
                "between_truncated": p.truncated,
            }
            for p in (pilot.groups[:1] if assumed else pilot.groups)
        ],
        "feasible_from_utterances_per_speaker": design.reach,
        "feasible_note": design.reach_note,
        "limit": design.limit,
        "problem": design.problem,
    }


def _table(row: dict[str, Any], top: int) -> list[str]:
    """Utterances per speaker × speakers per group, the pilot's own m marked with *."""
    m = row["pilot_utterances_per_speaker"]
    heads = ["utterances per speaker"] + [
        f"{c['utterances_per_speaker']}{'*' if c['utterances_per_speaker'] == m else ''}"
        for c in row["utterances"]
    ]
    cells = ["speakers per group"] + [
        str(c["speakers_per_group"]) if c["speakers_per_group"] else f">{top}"
        for c in row["utterances"]
    ]
    totals = ["utterances per group"] + [
        str(c["utterances_per_group"]) if c["utterances_per_group"] else "-"
        for c in row["utterances"]
    ]
    if row["unlimited_utterances_speakers_per_group"] is not None or len(row["utterances"]) > 1:
        floor = row["unlimited_utterances_speakers_per_group"]
        heads.append("unlimited")
        bound = "≥" if row["unlimited_is_lower_bound"] else ""
        cells.append(f"{bound}{floor}" if floor else f">{top}")
        totals.append("-")
    width = [max(len(a), len(b), len(c)) for a, b, c in zip(heads, cells, totals, strict=True)]
    lines = []
    for parts in (heads, cells, totals):
        first = parts[0].ljust(width[0])
        rest = "  ".join(p.rjust(w) for p, w in zip(parts[1:], width[1:], strict=True))
        lines.append(f"  {first}  {rest}")
    return lines


@click.command("power")
@click.argument("run_dir", type=click.Path(path_type=Path), required=False)
@click.option(
    "--assume-sd-pts",
    type=click.FloatRange(min=0, min_open=True),
    help="Without a pilot run: the spread (SD) of one speaker's Δ across speakers, in the "
    "metric's points (e.g. 8 WER points), at --assume-utterances per speaker; every group is "
    "assumed normal with this spread.",
)
@click.option(
    "--assume-within-sd-pts",
    type=click.FloatRange(min=0),
    default=None,
    help="With --assume-sd-pts: the part of that SD that is utterance sampling (what the "
    "spread would be if speakers did not differ), at most --assume-sd-pts. Without it only "
    "--assume-utterances per speaker is planned.",
)
@click.option(
    "--assume-utterances",
    type=click.IntRange(min=1),
    default=None,
    help="With --assume-sd-pts: utterances per speaker the assumed SDs refer to [default: 10].",
)
@click.option(
    "--utterances",
    "utterances_opt",
    multiple=True,
    metavar="M[,M...]",
    help="Utterances per speaker to plan for, e.g. 5,10,20,40 (repeatable); the pilot's own "
    "is always included [default: half, 1, 2 and 4 times the pilot's].",
)
@click.option(
    "--groups", "n_groups", type=click.IntRange(min=2), default=None,
    help="With --assume-sd-pts: number of groups [default: 3] (a pilot RUN_DIR has its own).",
)  # fmt: skip
@click.option(
    "--conditions", "n_conditions", type=click.IntRange(min=1), default=None,
    help="Degraded conditions tested together (default: the pilot's, or 10).",
)  # fmt: skip
@click.option(
    "--gap", "gap_value", type=click.FloatRange(min=0, min_open=True), default=None,
    help="With --goal detect: the gap between groups' Δ to detect, in the metric's own unit: "
    "WER points under metric absolute (10 = 10 points), a relative gap under the pilot's "
    "metric relative (0.5 = 50 % of clean WER, like threshold_rel) [default: the pack's "
    "threshold]. --assume-sd-pts plans the absolute metric (points).",
)  # fmt: skip
@click.option(
    "--margin", "margin_value", type=click.FloatRange(min=0, min_open=True), default=None,
    help="With --goal even: show the groups even within ± this, in the metric's own unit "
    "(as --gap) [default: the pack's threshold].",
)  # fmt: skip
@click.option(
    "--goal", type=click.Choice(["detect", "even"]), default="detect", show_default=True,
    help="detect: flag a gap of --gap; even: show truly alike groups even within ± --margin.",
)  # fmt: skip
@click.option("--power", "target", type=click.FloatRange(0.5, 0.99), default=0.8, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def command(
    run_dir: Path | None,
    assume_sd_pts: float | None,
    assume_within_sd_pts: float | None,
    assume_utterances: int | None,
    utterances_opt: tuple[str, ...],
    n_groups: int | None,
    n_conditions: int | None,
    gap_value: float | None,
    margin_value: float | None,
    goal: str,
    target: float,
    seed: int,
    as_json: bool,
) -> None:
    """Estimate, by simulation, the speakers per group, and the utterances per speaker, needed
    to detect a gap between groups (or to show them even) with the given power, under the
    pack's α and its number of conditions.

    From a pilot RUN_DIR, each group's speakers are resampled (their own spread of Δ). That
    spread is split into speaker-to-speaker differences and utterance sampling: a
    delete-one-utterance jackknife within each speaker (an utterance's clean and degraded
    items leave together) gives the utterance part, which shrinks as 1/m with m utterances
    per speaker; the rest is the speakers' own (it stays whatever m is). A table gives the
    speakers needed at several utterances per speaker and with unlimited utterances, and a
    sentence what limits it. A pilot with one utterance per speaker plans speakers only.
    When no column reaches the power but unlimited utterances do, the column from which the
    plan becomes feasible (up to 1000 utterances per speaker) is added.

    --gap and --margin are in the pilot's metric unit: WER points under metric absolute, a
    relative gap under metric relative (0.5 = 50 %, as threshold_rel). A condition that
    cannot be planned says why; when none can, the exit code is 2.

    With --assume-sd-pts, every group is normal with that spread at --assume-utterances per
    speaker (default 10), of which --assume-within-sd-pts is utterance sampling (without it,
    speakers only). A gap is put on the most varied group, the hardest case, as a shift of
    its speakers' Δ: when a worse group's speakers also spread more (usual when they differ
    a lot), the real power is lower; ask for --power 0.9 to keep a margin.

    \b
    Example:
      lastmile power lastmile-runs/pilot-20240611-101500 --gap 10
      lastmile power lastmile-runs/pilot-20240611-101500 --utterances 10,20,40 --goal even
      lastmile power --assume-sd-pts 8 --groups 4 --conditions 12 --gap 5
      lastmile power --assume-sd-pts 8 --assume-within-sd-pts 6 --assume-utterances 10
    """
    import numpy as np

    from lastmile.analysis import FairnessSettings
    from lastmile.analysis.planning import SIZES, assumed_condition, plan_design
    from lastmile.analysis.settings import REL_MAX

    if (run_dir is None) == (assume_sd_pts is None):
        raise click.UsageError("give a pilot RUN_DIR or --assume-sd-pts SD (one of the two)")
    if run_dir is not None and (assume_within_sd_pts is not None or assume_utterances):
        raise click.UsageError(
            "--assume-within-sd-pts and --assume-utterances go with --assume-sd-pts; a pilot "
            "RUN_DIR measures both"
        )
    if run_dir is not None and n_groups is not None:
        raise click.UsageError(
            "--groups goes with --assume-sd-pts; a pilot RUN_DIR plans the groups it has"
        )
    if goal == "even" and gap_value is not None:
        raise click.UsageError(
            "--gap is the gap --goal detect looks for; --goal even shows the groups within ± "
            "a margin: give --margin (default: the pack's threshold)"
        )
    if goal == "detect" and margin_value is not None:
        raise click.UsageError(
            "--margin goes with --goal even; --goal detect plans for a gap: give --gap"
        )
    grid = _utterance_grid(utterances_opt)
    assumed = run_dir is None
    if assumed and grid and assume_within_sd_pts is None:
        raise click.UsageError(
            "--utterances with --assume-sd-pts needs --assume-within-sd-pts (the part of the "
            "spread that more utterances per speaker would shrink)"
        )
    if (
        assumed
        and assume_within_sd_pts is not None
        and assume_within_sd_pts > (assume_sd_pts or 0.0)
    ):
        raise click.UsageError(
            f"--assume-within-sd-pts {assume_within_sd_pts:g} exceeds --assume-sd-pts "
            f"{assume_sd_pts:g}: utterance sampling is a part of a speaker's spread"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    if run_dir is not None:
        settings, pilots = _pilot(run_dir)
        tests = n_conditions or len(pilots)
    else:
        settings = FairnessSettings()
        tests = n_conditions or 10
        within = None if assume_within_sd_pts is None else assume_within_sd_pts / 100.0
        pilots = (
            assumed_condition(
                sd=float(assume_sd_pts or 0.0) / 100.0,
                within_sd=within,
                utterances=assume_utterances or 10,
                n_groups=n_groups or 3,
                rng=np.random.default_rng(np.random.SeedSequence([seed, 1])),
            ),
        )
    relative = settings.metric == "relative"
    for name, value in (("--gap", gap_value), ("--margin", margin_value)):
        if relative and value is not None and value > REL_MAX:
            raise click.UsageError(
                f"{name} {value:g}: the pilot's metric is relative, so {name} is a relative "
                f"change as a fraction (0.5 means 50 %); {value:g} would be {value * 100:g} %, "
                f"more than the {REL_MAX * 100:g} % a pack's threshold_rel may be: did you "
                f"mean {value / 100:g}?"
            )
    scale = 1.0 if relative else 100.0  # the metric's own unit per fraction of Δ
    margin = settings.threshold if margin_value is None else margin_value / scale
    gap = settings.threshold if gap_value is None else gap_value / scale
    rows: list[dict[str, Any]] = []
    for pilot in pilots:
        m = pilot.pilot_utterances
        design = plan_design(
            pilot,
            utterances=None if grid is None else (*grid, m),
            goal=goal,
            gap=gap,
            margin=margin,
            alpha=settings.alpha,
            n_tests=tests,
            relative=relative,
            power=target,
            n_sims=400,
            rng=rng,
        )
        rows.append(
            _row(
                pilot, design, goal=goal, gap=gap, margin=margin, relative=relative,
                assumed=assumed,
            )
        )  # fmt: skip
    planned = [row for row in rows if row["plannable"]]
    if as_json:
        click.echo(json.dumps({"power": target, "alpha": settings.alpha, "rows": rows}, indent=2))
    else:
        aim = (
            f"detect a gap of {_amount(gap, relative)}"
            if goal == "detect"
            else f"show even within ± {_amount(margin, relative)}"
        )
        for row in rows:
            if not row["plannable"]:
                click.echo(f"{row['condition']}: cannot plan: {row['problem']}")
                continue
            need = row["speakers_per_group"] or row["note"]
            m = row["pilot_utterances_per_speaker"]
            where = (
                f"assumed, {m} utterance{'s' if m != 1 else ''} each"
                if assumed
                else f"{row['pilot_speakers']}, {m} utterance{'s' if m != 1 else ''} each"
            )
            click.echo(
                f"{row['condition']}: {need} speakers per group to {aim} with {target:.0%} "
                f"power (α {settings.alpha:g}, {tests} condition{'s' if tests != 1 else ''}; pilot "
                f"speakers {where})"
            )
            for line in _table(row, SIZES[-1]):
                click.echo(line)
            if row["feasible_note"]:
                click.echo(f"  {row['feasible_note']}")
            click.echo(f"  {row['limit']}")
    if not planned:
        # The pilot itself cannot be planned from (every condition has a group without two
        # speakers whose Δ is defined): bad input, exit 2, as `lastmile run` for bad packs.
        raise BadInput(
            f"nothing could be planned: none of the {len(rows)} degraded condition"
            f"{'s' if len(rows) != 1 else ''} of {run_dir} has two or more speakers with a "
            f"defined Δ in every group; each condition's reason, and its fix, is "
            f"{'in its row (problem)' if as_json else 'above'}"
        )
    click.get_current_context().exit(EXIT_CLEAN)
