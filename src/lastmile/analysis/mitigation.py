"""Mitigation check: does a front end close the gap between groups, and what does it cost?

A pack's front-end chain F runs every condition c a second time as ``c+F`` on the same
utterances and item seeds (the same noise draws), so the comparison is paired by speaker.
Per condition c and chain F (definitions of DESIGN "Analysis"; Δ from the clean condition
*without* a front end, the recognizer's own reference):

- Δ_without(g) = Δ(c, g), Δ_with(g) = Δ(c+F, g); U_without, U_with their max − min.
- ΔU = U_with − U_without, with a paired speaker-bootstrap interval (below).
- closes = 100 · (U_without − U_with) / U_without (percent of the gap closed; negative:
  the front end widens it).
- Cost on clean speech per group and pooled over groups: WER(clean+F) − WER(clean), with the
  same bootstrap.

Intervals (speakers resampled within groups, n − 1 of each group's n per replicate, the same
draw across the four conditions, so the intervals carry the pairing; t with the smallest
group's n − 1 degrees of freedom; no interval below 3 speakers per group):

- cost on clean speech: estimate ± t × the bootstrap standard error;
- ΔU: U = max − min is not smooth where groups tie, and its upward bias there (largest when a
  front end closes the whole gap and the groups end alike) is what a bootstrap sees least. The
  interval is the hull of estimate − bias ± t × SE over two views of each U's bias: the
  bootstrap's own, and the one U would have if the groups that cannot be told from the worst
  or best one (gap within 1.96 standard errors) were truly tied (generalized moment
  selection). Conservative where groups tie, by design.

Coverage by simulation (``benchmarks/mitigation_validity.py``, figures in
benchmarks/README.md): partial closure, full closure, no effect, no gap, a reversed gap, at
6/14/9, 4/4/4 and 20/20/20 speakers per group. The plain bootstrap (± t × SE around the
bias-corrected estimate) covered 0.90–0.93 when the front end closed the whole gap; this
interval 0.94–0.96 there, 0.91–0.93 for a reversed gap at 20 speakers per group, and up to
0.99 where the groups tie without and with the front end. Numbers are fractions in Python;
:meth:`MitigationReport.to_dict` gives points (×100).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from lastmile.analysis.counts import CountTable
from lastmile.analysis.inference import MIN_SPEAKERS_FOR_INTERVAL
from lastmile.analysis.resampling import group_sums
from lastmile.analysis.result import Estimate
from lastmile.analysis.settings import FairnessSettings
from lastmile.analysis.stats import disparity, pooled_ratio
from lastmile.errors import ConfigError

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "CleanCost",
    "FrontEndPair",
    "Mitigation",
    "MitigationReport",
    "analyze_mitigation",
    "frontend_pairs",
    "mitigation_problems",
    "mitigation_section",
]

DEFAULT_BOOTSTRAP = 2000
"""Bootstrap replicates for the paired intervals."""

_TIE_Z = 1.96
"""Groups whose gap to the worst (best) group is within this many standard errors count as
possibly tied with it, for U's bias (:func:`_tied_error`)."""


@dataclass(frozen=True)
class FrontEndPair:
    """A condition and its twin through a front end: ``twin_id`` = ``condition_id+frontend``."""

    condition_id: str
    frontend: str
    twin_id: str
    label: str = ""


def frontend_pairs(conditions: Sequence[Mapping[str, Any]]) -> tuple[FrontEndPair, ...]:
    """The pairs among run.json's ``conditions`` (``{"id", "label", "spec": {"frontend"}}``)."""
    labels = {str(c.get("id")): str(c.get("label") or c.get("id")) for c in conditions}
    out = []
    for cond in conditions:
        spec = cond.get("spec") or {}
        name = spec.get("frontend") if isinstance(spec, Mapping) else None
        if not name:
            continue
        twin = str(cond["id"])
        suffix = f"+{name}"
        if not twin.endswith(suffix) or twin[: -len(suffix)] not in labels:
            raise ConfigError(
                f"run.json: conditions: '{twin}' has front end '{name}' but no condition "
                f"'{twin.removesuffix(suffix)}' without it; rerun the pack"
            )
        base = twin[: -len(suffix)]
        out.append(FrontEndPair(base, str(name), twin, labels[base]))
    return tuple(out)


@dataclass(frozen=True)
class CleanCost:
    """What a front end costs on clean speech: WER(clean+F) − WER(clean)."""

    frontend: str
    by_group: Mapping[str, Estimate]
    overall: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "frontend": self.frontend,
            "wer_change_pts": self.overall.to_dict(),
            "by_group": {g: e.to_dict() for g, e in self.by_group.items()},
        }


@dataclass(frozen=True)
class Mitigation:
    """One condition without and with one front end."""

    condition_id: str
    frontend: str
    twin_id: str
    label: str
    delta_without: Mapping[str, float]
    delta_with: Mapping[str, float]
    u_without: float
    u_with: float
    u_change: Estimate
    closes_pct: float
    clean_cost: CleanCost
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        def pts(v: float) -> float | None:
            return None if not math.isfinite(v) else round(v * 100.0, 6)

        return {
            "condition_id": self.condition_id,
            "frontend": self.frontend,
            "with_condition_id": self.twin_id,
            "label": self.label,
            "by_group": {
                g: {
                    "delta_without_pts": pts(self.delta_without[g]),
                    "delta_with_pts": pts(self.delta_with[g]),
                }
                for g in self.delta_without
            },
            "disparity_without_pts": pts(self.u_without),
            "disparity_with_pts": pts(self.u_with),
            "disparity_change_pts": self.u_change.to_dict(),
            "closes_pct": None if not math.isfinite(self.closes_pct) else round(self.closes_pct, 3),
            "clean_cost_pts": self.clean_cost.overall.to_dict(),
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class MitigationReport:
    """Every condition × front end, and each front end's cost on clean speech."""

    metric: str
    ci_level: float
    n_bootstrap: int
    rows: tuple[Mitigation, ...]
    clean_costs: tuple[CleanCost, ...]

    def row(self, condition_id: str, frontend: str) -> Mitigation:
        for r in self.rows:
            if r.condition_id == condition_id and r.frontend == frontend:
                return r
        known = ", ".join(f"{r.condition_id}+{r.frontend}" for r in self.rows)
        raise KeyError(f"no mitigation row {condition_id}+{frontend}; known: {known}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "ci_level": self.ci_level,
            "n_bootstrap": self.n_bootstrap,
            "frontends": [c.frontend for c in self.clean_costs],
            "clean_cost": [c.to_dict() for c in self.clean_costs],
            "conditions": [r.to_dict() for r in self.rows],
        }


def _bootstrap_weights(
    speaker_group: np.ndarray, n_groups: int, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(B, S) counts: each replicate draws n − 1 of every group's n speakers with
    replacement (so the bootstrap variance of a mean is s²/n, not (n − 1)/n · s²/n)."""
    weights = np.zeros((n_boot, speaker_group.size))
    for g in range(n_groups):
        members = np.flatnonzero(speaker_group == g)
        n = members.size
        if n == 0:
            continue
        m = max(n - 1, 1)
        picks = rng.integers(0, n, size=(n_boot, m))
        flat = picks + (np.arange(n_boot) * n)[:, None]
        weights[:, members] = np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return weights


def _wer(errors: np.ndarray, ref: np.ndarray, speaker_group: np.ndarray, n_groups: int) -> Any:
    """Pooled WER per condition (columns of ``errors``) and group → (C, G)."""
    return pooled_ratio(
        group_sums(errors, speaker_group, n_groups), group_sums(ref, speaker_group, n_groups)
    )


def _estimate(value: float, boot: np.ndarray, level: float, note: str, df: int) -> Estimate:
    """``value`` ± t(df) × the bootstrap standard error."""
    if note:
        return Estimate(value, math.nan, math.nan, note)
    if not math.isfinite(value):
        return Estimate(value, math.nan, math.nan, "undefined: a cell has no reference words")
    finite = boot[np.isfinite(boot)]
    if finite.size < 0.9 * boot.size:
        return Estimate(
            value, math.nan, math.nan, _undefined_note(boot.size - finite.size, boot.size)
        )
    half = float(stats.t.ppf(0.5 + level / 2.0, df)) * float(np.std(finite, ddof=1))
    return Estimate(
        value, value - half, value + half, _dropped_note(boot.size - finite.size, boot.size)
    )


def _undefined_note(undefined: int, total: int) -> str:
    return (
        f"no interval: {undefined} of {total} speaker resamples left a cell undefined (no "
        "reference words, or a clean WER of 0 under the relative metric)"
    )


def _dropped_note(dropped: int, total: int) -> str:
    """ "" when every resample counted; otherwise the sentence saying how many did not."""
    if dropped == 0:
        return ""
    return (
        f"{dropped} of {total} speaker resamples left a cell undefined (no reference words, or "
        f"a clean WER of 0 under the relative metric); the interval is from the other "
        f"{total - dropped}"
    )


def _tied_error(d: np.ndarray, dev: np.ndarray) -> np.ndarray:
    """Draws (B,) of U's error if every group that cannot be told from the worst (best) one
    is truly tied with it: max over those groups' errors − min over the others' (the
    limit of max − min at ties; generalized moment selection). A group is tied when its gap
    to the extreme is within 1.96 bootstrap standard errors of that gap."""
    hi, lo = int(np.argmax(d)), int(np.argmin(d))
    top = np.zeros(d.size, dtype=bool)
    bottom = np.zeros(d.size, dtype=bool)
    for g in range(d.size):
        top[g] = g == hi or d[hi] - d[g] <= _TIE_Z * float(np.std(dev[:, hi] - dev[:, g], ddof=1))
        bottom[g] = g == lo or d[g] - d[lo] <= _TIE_Z * float(
            np.std(dev[:, g] - dev[:, lo], ddof=1)
        )
    return np.max(dev[:, top], axis=1) - np.min(dev[:, bottom], axis=1)


def _change_in_u(
    d_without: np.ndarray,
    d_with: np.ndarray,
    boot_without: np.ndarray,
    boot_with: np.ndarray,
    level: float,
    note: str,
    df: int,
) -> Estimate:
    """U_with − U_without and its interval (see the module docstring).

    U = max − min is not smooth where groups tie, and its bias there (upward, largest when
    all groups are alike, as when a front end closes the whole gap) is what the bootstrap
    sees least: its replicates are centred on estimates that noise has already spread apart.
    So each U's bias is taken two ways, the bootstrap's own (mean of U* − U) and the one it
    would have if the groups that cannot be told apart from the extremes were truly tied
    (:func:`_tied_error`), and the interval is the hull of estimate − bias ± t(df) × SE over
    the four combinations, SE the larger of the two ways' standard errors of the change.
    """
    value = float(disparity(d_with)[0] - disparity(d_without)[0])
    if note:
        return Estimate(value, math.nan, math.nan, note)
    if not math.isfinite(value):
        return Estimate(value, math.nan, math.nan, "undefined: a cell has no reference words")
    rows = np.isfinite(boot_without).all(axis=1) & np.isfinite(boot_with).all(axis=1)
    dropped = int(rows.size - rows.sum())
    if rows.sum() < 0.9 * rows.size:
        return Estimate(value, math.nan, math.nan, _undefined_note(dropped, rows.size))
    b_without, b_with = boot_without[rows], boot_with[rows]
    plain_without = np.ptp(b_without, axis=1) - np.ptp(d_without)
    plain_with = np.ptp(b_with, axis=1) - np.ptp(d_with)
    tied_without = _tied_error(d_without, b_without - d_without)
    tied_with = _tied_error(d_with, b_with - d_with)
    centres = [
        value - (float(np.mean(w)) - float(np.mean(wo)))
        for w in (plain_with, tied_with)
        for wo in (plain_without, tied_without)
    ]
    se = max(
        float(np.std(plain_with - plain_without, ddof=1)),
        float(np.std(tied_with - tied_without, ddof=1)),
    )
    half = float(stats.t.ppf(0.5 + level / 2.0, df)) * se
    return Estimate(
        value, min(centres) - half, max(centres) + half, _dropped_note(dropped, rows.size)
    )


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value * 100:.1f}"


def _sentence(m: Mitigation, level: float) -> str:
    u = m.u_change
    if math.isfinite(u.ci_low):
        ci = (
            f" (change {u.value * 100:+.1f}, {level * 100:g} % CI {u.ci_low * 100:+.1f} to "
            f"{u.ci_high * 100:+.1f})"
        )
    elif u.ci_note:
        ci = f" ({u.ci_note})"
    else:
        ci = ""
    cost = m.clean_cost.overall
    cost_ci = (
        f" (CI {cost.ci_low * 100:+.1f} to {cost.ci_high * 100:+.1f})"
        if math.isfinite(cost.ci_low)
        else ""
    )
    if not math.isfinite(m.closes_pct):
        verb = "changes the gap"
    elif m.closes_pct >= 0:
        verb = f"closes {m.closes_pct:.0f} % of the gap"
    else:
        verb = f"widens the gap by {-m.closes_pct:.0f} %"
    sign = "a cost" if cost.value >= 0 else "a gain"
    return (
        f"Front end {m.frontend} {verb} under {m.label}: U {_fmt(m.u_without)} → "
        f"{_fmt(m.u_with)}{ci}, at {sign} of {abs(cost.value) * 100:.1f} points of WER on "
        f"clean speech{cost_ci}."
    )


def analyze_mitigation(
    table: CountTable,
    pairs: Sequence[FrontEndPair],
    *,
    settings: FairnessSettings,
    rng: np.random.Generator,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
) -> MitigationReport:
    """Each pair's Δ, U and ΔU without and with its front end, and each front end's cost on
    clean speech, with paired speaker-bootstrap intervals at ``settings.ci_level``.

    ``table``'s first condition is the clean reference; ``pairs`` (see :func:`frontend_pairs`)
    must include the clean condition's twin for every front end. Raises
    :class:`~lastmile.errors.ConfigError` when a condition of a pair is not in the table.
    """
    relative = settings.metric == "relative"
    level = settings.ci_level
    clean = table.conditions[0]
    index = {c: j for j, c in enumerate(table.conditions)}
    for pair in pairs:
        for cid in (pair.condition_id, pair.twin_id):
            if cid not in index:
                raise ConfigError(
                    f"analysis: mitigation: condition '{cid}' has no items; rerun the pack "
                    "(every condition runs without and with each front end)"
                )
    frontends = list(dict.fromkeys(p.frontend for p in pairs))
    clean_twin = {p.frontend: p.twin_id for p in pairs if p.condition_id == clean}
    missing = [f for f in frontends if f not in clean_twin]
    if missing:
        raise ConfigError(
            f"analysis: mitigation: no clean+{missing[0]} items; the clean condition must run "
            "through every front end (its cost on clean speech)"
        )
    n_groups = len(table.groups)
    sg = table.speaker_group
    errors, ref = table.errors, table.ref_words
    wer = _wer(errors, ref, sg, n_groups)  # (C, G)
    weights = _bootstrap_weights(sg, n_groups, n_bootstrap, rng)  # (B, S)
    onehot = np.zeros((sg.size, n_groups))
    onehot[np.arange(sg.size), sg] = 1.0
    # per replicate, condition and group: Σ w_s · x_sc over the group's speakers → (B, C, G)
    boot_err = np.einsum("bs,sc,sg->bcg", weights, errors, onehot, optimize=True)
    boot_ref = np.einsum("bs,sc,sg->bcg", weights, ref, onehot, optimize=True)
    boot_wer = pooled_ratio(boot_err, boot_ref)
    # speakers with words in every condition involved, per group (intervals need 3)
    has_words = ref > 0

    def note_for(cols: Sequence[int]) -> tuple[str, int]:
        """Why no interval ("" if one is shown) and its t degrees of freedom (the smallest
        group's speakers − 1)."""
        few = []
        counts = []
        for g, name in enumerate(table.groups):
            n = int(np.sum(np.all(has_words[sg == g][:, list(cols)], axis=1)))
            counts.append(n)
            if n < MIN_SPEAKERS_FOR_INTERVAL:
                few.append(f"{name!r} has {n} speaker{'' if n == 1 else 's'}")
        df = max(min(counts) - 1, 1)
        if not few:
            return "", df
        return (
            f"no interval: {', '.join(few)}; intervals from fewer than "
            f"{MIN_SPEAKERS_FOR_INTERVAL} speakers per group do not reach their stated coverage"
        ), df

    def delta(w: np.ndarray, col: int, ref_col: int) -> np.ndarray:
        base = w[..., ref_col, :]
        if not relative:
            return w[..., col, :] - base
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base > 0, w[..., col, :] / np.where(base > 0, base, 1.0) - 1.0, np.nan)

    c0 = index[clean]
    costs: dict[str, CleanCost] = {}
    for name in frontends:
        t = index[clean_twin[name]]
        note, df = note_for([c0, t])
        by_group = {}
        for k, g in enumerate(table.groups):
            n_g = int(np.sum(np.all(has_words[sg == k][:, [c0, t]], axis=1)))
            by_group[g] = _estimate(
                float(wer[t, k] - wer[c0, k]),
                boot_wer[:, t, k] - boot_wer[:, c0, k],
                level,
                note,
                max(n_g - 1, 1),
            )
        all_err = boot_err.sum(axis=2)
        all_ref = boot_ref.sum(axis=2)
        pooled = pooled_ratio(all_err, all_ref)  # (B, C)
        value = float(
            pooled_ratio(errors[:, t].sum(), ref[:, t].sum())
            - pooled_ratio(errors[:, c0].sum(), ref[:, c0].sum())
        )
        overall = _estimate(value, pooled[:, t] - pooled[:, c0], level, note, df)
        costs[name] = CleanCost(name, by_group, overall)

    rows = []
    for pair in pairs:
        if pair.condition_id == clean:
            continue
        c, t = index[pair.condition_id], index[pair.twin_id]
        d_without, d_with = delta(wer, c, c0), delta(wer, t, c0)
        u_without = float(disparity(d_without)[0])
        u_with = float(disparity(d_with)[0])
        note, df = note_for([c0, c, t])
        change = _change_in_u(
            d_without,
            d_with,
            delta(boot_wer, c, c0),
            delta(boot_wer, t, c0),
            level,
            note,
            df,
        )
        closes = (
            100.0 * (u_without - u_with) / u_without
            if math.isfinite(u_without) and u_without > 0 and math.isfinite(u_with)
            else math.nan
        )
        row = Mitigation(
            condition_id=pair.condition_id,
            frontend=pair.frontend,
            twin_id=pair.twin_id,
            label=pair.label or pair.condition_id,
            delta_without={g: float(d_without[k]) for k, g in enumerate(table.groups)},
            delta_with={g: float(d_with[k]) for k, g in enumerate(table.groups)},
            u_without=u_without,
            u_with=u_with,
            u_change=change,
            closes_pct=closes,
            clean_cost=costs[pair.frontend],
            sentence="",
        )
        rows.append(_with_sentence(row, level))
    return MitigationReport(
        metric=settings.metric,
        ci_level=level,
        n_bootstrap=n_bootstrap,
        rows=tuple(rows),
        clean_costs=tuple(costs[f] for f in frontends),
    )


def _with_sentence(row: Mitigation, level: float) -> Mitigation:
    from dataclasses import replace

    return replace(row, sentence=_sentence(row, level))


MITIGATION_SEED_KEY = 0x6D17
"""Mixed with the pack seed for the mitigation bootstrap, apart from every other stream."""


def mitigation_section(
    table: CountTable,
    conditions: Sequence[Mapping[str, Any]],
    *,
    settings: FairnessSettings,
    seed: int,
) -> dict[str, Any] | None:
    """summary.json's ``mitigation`` part for a run whose run.json lists ``conditions``, or
    ``None`` when the pack had no front end. Deterministic in ``seed`` (the pack's)."""
    pairs = frontend_pairs(conditions)
    if not pairs:
        return None
    rng = np.random.default_rng([seed, MITIGATION_SEED_KEY])
    return analyze_mitigation(table, pairs, settings=settings, rng=rng).to_dict()


def mitigation_problems(
    section: Mapping[str, Any] | None,
    frontend: str,
    expect: Any,
    *,
    threshold_pts: float,
) -> list[str]:
    """What a front end fails of ``expect`` (a :class:`lastmile.frontend.MitigationExpect`)
    in summary.json's ``mitigation`` section; [] when it holds. ``threshold_pts`` picks the
    default conditions (those whose gap without the front end reaches it)."""
    if not section:
        return [f"mitigation[{frontend}]: the run has no mitigation results (no front end ran)"]
    rows = [r for r in section["conditions"] if r["frontend"] == frontend]
    problems = []
    if expect.closes_pct_at_least is not None:
        if expect.conditions is not None:
            known = {r["condition_id"]: r for r in rows}
            missing = [c for c in expect.conditions if c not in known]
            if missing:
                return [
                    f"mitigation[{frontend}]: no condition {missing[0]!r}; conditions are "
                    f"{', '.join(sorted(known)) or '(none)'}"
                ]
            chosen = [known[c] for c in expect.conditions]
        else:
            chosen = [
                r
                for r in rows
                if r["disparity_without_pts"] is not None
                and r["disparity_without_pts"] >= threshold_pts
            ]
            if not chosen:
                problems.append(
                    f"mitigation[{frontend}]: no condition has a gap of {threshold_pts:g} points "
                    "or more without the front end, so closes_pct_at_least checks nothing; "
                    "name the conditions (mitigation.expect.NAME.conditions: [...])"
                )
        for row in chosen:
            closes = row["closes_pct"]
            if closes is None or closes < expect.closes_pct_at_least:
                shown = "n/a (no gap)" if closes is None else f"{closes:.0f} %"
                problems.append(
                    f"mitigation[{frontend}]: under {row['label']} it closes {shown} of the gap, "
                    f"expected at least {expect.closes_pct_at_least:g} %: {row['sentence']}"
                )
    if expect.clean_cost_pts_at_most is not None:
        cost = next((c for c in section["clean_cost"] if c["frontend"] == frontend), None)
        value = None if cost is None else cost["wer_change_pts"]["value"]
        if value is None or value > expect.clean_cost_pts_at_most:
            shown = "n/a" if value is None else f"{value:+.1f}"
            problems.append(
                f"mitigation[{frontend}]: on clean speech it changes WER by {shown} points, "
                f"expected at most {expect.clean_cost_pts_at_most:+g}"
            )
    return problems
