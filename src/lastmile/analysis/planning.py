"""How many speakers per group would decide? Estimated by simulation from a pilot's speakers.

A condition's groups are summarized by their speakers' jackknife pseudo-values of Δ
(:func:`lastmile.analysis.inference.pseudo_values`): a group's Δ is their mean and its variance
their spread over n. A planned run with n speakers per group is simulated by drawing n of the
pilot group's speakers with replacement (their deviations from the group's mean, so each
group keeps its own spread and shape), then

* to *detect* a gap D: one group (the one with the widest spread, the hardest case) is
  shifted by D and the run counts as detected when the analysis's own test (Welch's
  heterogeneity test, :func:`lastmile.analysis.inference.welch_heterogeneity` with its degrees
  of freedom capped as in :func:`~lastmile.analysis.inference.heterogeneity_test`) gives
  p ≤ α / m (m degraded conditions: what Benjamini–Hochberg asks of one uneven condition
  among m);
* to *show even*: no shift, and every pairwise (1 − 2α) t interval lies inside ± the margin.

The answer is the smallest n on a grid with power ≥ ``power`` (``None`` if none up to the
grid's end). Everything draws from the one generator passed in.

**Utterances per speaker** (:func:`pilot_conditions`, :func:`plan_design`). A speaker's
pseudo-value varies for two reasons: true speaker-to-speaker differences in Δ (variance τ²,
the *between* part) and the sampling of that speaker's utterances (the *within* part σ²_w,
which shrinks as 1/m with m utterances per speaker). From a pilot's items, each speaker's own
σ²_w is the delete-one-utterance jackknife of their pseudo-value: an utterance leaves in every
condition at once, so where the pack renders the same utterances under every condition the
clean and degraded items stay paired. Per group, τ² = max(total − mean σ²_w, 0) (``truncated``
when the difference was negative: the pilot shows no spread beyond utterance sampling). A
design of m′ utterances per speaker is simulated by drawing pilot speakers as above and
replacing each drawn residual r (a speaker with m utterances) by ρ r + (1 − ρ) b, with
ρ = √(m / m′) and b ~ N(λ r, τ² (1 − λ)), λ = τ² / total, a draw of the speaker's own part
given r: its variance is τ² + ρ² (total − τ²), the pilot's shape at m′ = m (ρ = 1 gives the
pilot's residuals back), only the speakers' part (b) as m′ → ∞ (ρ = 0). The columns of a
design share their random numbers, so a table over m′ differs only by the design.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from lastmile.analysis.counts import CountTable, count_table
from lastmile.analysis.inference import _degrade, _ratio, pseudo_values, welch_heterogeneity
from lastmile.analysis.resampling import group_sums

__all__ = [
    "MAX_UTTERANCES",
    "SIZES",
    "DesignPlan",
    "GroupVariance",
    "PilotCondition",
    "PlanResult",
    "UtteranceCounts",
    "assumed_condition",
    "default_utterances",
    "pilot_conditions",
    "pilot_from_items",
    "plan_design",
    "plan_speakers",
    "power_at",
]

MAX_UTTERANCES = 1000  # utterances per speaker searched at most, beyond a grid that falls short

SIZES: tuple[int, ...] = (
    3,
    4,
    5,
    6,
    8,
    10,
    12,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
    80,
    100,
    130,
    160,
    200,
    250,
    320,
    400,
    500,
)


@dataclass(frozen=True)
class PlanResult:
    """Smallest speakers per group reaching ``power`` (``None``: not within ``SIZES``), and the
    power estimated at each size tried."""

    speakers: int | None
    goal: str  # "detect" or "even"
    power_by_size: tuple[tuple[int, float], ...]


def _draw(
    residuals: Sequence[np.ndarray], n: int, n_sims: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Means and variances of the mean of n resampled residuals per group: (n_sims, G) each."""
    means, variances = [], []
    for r in residuals:
        picks = r[rng.integers(0, r.size, size=(n_sims, n))]
        means.append(picks.mean(axis=1))
        variances.append(picks.var(axis=1, ddof=1) / n)
    return np.stack(means, axis=1), np.stack(variances, axis=1)


def _power(
    means: np.ndarray,
    variances: np.ndarray,
    n: int,
    *,
    widest: int,
    goal: str,
    gap: float,
    margin: float,
    alpha: float,
    n_tests: int,
) -> float:
    """Share of simulated runs that decide: ``means``/``variances`` (n_sims, G) of the null."""
    n_sims, n_groups = means.shape
    sizes = np.full(n_groups, float(n))
    if goal == "detect":
        shifted = means.copy()
        shifted[:, widest] += gap
        # Welch's test of the analysis (degrees of freedom capped as there). A variance of 0
        # (one speaker drawn n times, or no spread left with unlimited utterances) is floored
        # at 1e-3 of the largest, as score_statistic does, so the run counts.
        floor = 1e-3 * np.max(variances, axis=1, keepdims=True) + 1e-18
        variances = np.maximum(variances, floor)
        _, _, _, p = welch_heterogeneity(shifted, variances, sizes, cap_df=True)
        return float(np.mean(np.nan_to_num(p, nan=1.0) <= alpha / max(n_tests, 1)))
    t_value = float(student_t.ppf(1.0 - alpha, n - 1))  # equal sizes: Welch df >= n - 1
    inside = np.ones(n_sims, dtype=bool)
    for a, b in itertools.combinations(range(n_groups), 2):
        half = t_value * np.sqrt(variances[:, a] + variances[:, b])
        diff = means[:, a] - means[:, b]
        inside &= (diff - half > -margin) & (diff + half < margin)
    return float(np.mean(inside))


def power_at(
    residuals: Sequence[np.ndarray],
    n: int,
    *,
    goal: str,
    gap: float,
    margin: float,
    alpha: float,
    n_tests: int,
    n_sims: int,
    rng: np.random.Generator,
) -> float:
    """Estimated power with ``n`` speakers per group (see the module docstring)."""
    means, variances = _draw(residuals, n, n_sims, rng)
    widest = int(np.argmax([float(np.var(r)) for r in residuals]))
    return _power(
        means,
        variances,
        n,
        widest=widest,
        goal=goal,
        gap=gap,
        margin=margin,
        alpha=alpha,
        n_tests=n_tests,
    )


def plan_speakers(
    residuals: Sequence[np.ndarray],
    *,
    goal: str,
    gap: float,
    margin: float,
    alpha: float,
    n_tests: int,
    power: float = 0.8,
    n_sims: int = 400,
    rng: np.random.Generator,
    sizes: Sequence[int] = SIZES,
) -> PlanResult:
    """Smallest n (speakers per group) with estimated power ≥ ``power``.

    ``residuals``: per group, the pilot speakers' pseudo-values of Δ minus their group mean
    (at least 2 each, finite). ``goal``: ``"detect"`` a gap of ``gap`` (fraction) or show
    ``"even"`` within ± ``margin`` when the groups are truly alike. Sizes are tried in order;
    the search stops at the first that reaches the power.
    """
    if goal not in ("detect", "even"):
        raise ValueError(f"goal must be 'detect' or 'even', got {goal!r}")
    usable = [np.asarray(r, dtype=np.float64) for r in residuals]
    if len(usable) < 2 or any(r.size < 2 or not np.isfinite(r).all() for r in usable):
        return PlanResult(None, goal, ())
    return _smallest_size(
        sizes,
        lambda n: power_at(
            usable,
            n,
            goal=goal,
            gap=gap,
            margin=margin,
            alpha=alpha,
            n_tests=n_tests,
            n_sims=n_sims,
            rng=rng,
        ),
        power=power,
        goal=goal,
    )


def _smallest_size(
    sizes: Sequence[int], power_of: Callable[[int], float], *, power: float, goal: str
) -> PlanResult:
    """The first of ``sizes`` (in order) whose ``power_of`` reaches ``power``, and the power
    at each size tried up to it."""
    tried: list[tuple[int, float]] = []
    for n in sizes:
        value = power_of(n)
        tried.append((n, value))
        if value >= power:
            return PlanResult(n, goal, tuple(tried))
    return PlanResult(None, goal, tuple(tried))


# --- utterances per speaker ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UtteranceCounts:
    """A pilot's scored counts per utterance, rows aligned to a :class:`CountTable`.

    ``speaker`` (R,): row index into the table's speakers; ``errors``, ``words`` (R, C): the
    utterance's S + D + I and reference words per condition (0 where not scored); ``scored``
    (R, C): whether the utterance was scored there (absent and failed items are not).
    """

    speaker: np.ndarray
    errors: np.ndarray
    words: np.ndarray
    scored: np.ndarray


def _count(value: Any) -> int:
    # count_table has validated every count of a scored item already.
    return int(value.strip()) if isinstance(value, str) else int(value)


def pilot_from_items(
    items: Iterable[Mapping[str, Any]], *, clean_condition_id: str
) -> tuple[CountTable, UtteranceCounts]:
    """Fold a pilot's items into its :class:`CountTable` and its per-utterance counts.

    Takes the same items as :func:`lastmile.analysis.analyze` (and raises the same
    :class:`~lastmile.errors.ConfigError` on malformed ones). An utterance is one id: its
    items under every condition form one row, so the clean and degraded renderings of an
    utterance leave the within-speaker jackknife together.
    """
    rows = list(items)
    table = count_table(rows, clean_condition_id=clean_condition_id)
    s_index = {s: i for i, s in enumerate(table.speakers)}
    c_index = {c: j for j, c in enumerate(table.conditions)}
    u_index: dict[str, int] = {}
    speaker: list[int] = []
    cells: list[tuple[int, int, int, int]] = []  # (row, condition, errors, words)
    for item in rows:
        utt = str(item["utterance_id"])
        row = u_index.get(utt)
        if row is None:
            row = u_index[utt] = len(speaker)
            speaker.append(s_index[str(item["speaker"])])
        error = item.get("error")
        failed = not (
            error is None
            or (isinstance(error, float) and math.isnan(error))
            or str(error).strip() == ""
        )
        if failed:
            continue
        errors = sum(_count(item[k]) for k in ("substitutions", "deletions", "insertions"))
        cells.append((row, c_index[str(item["condition_id"])], errors, _count(item["n_ref"])))
    shape = (len(speaker), len(table.conditions))
    errors_a, words_a = np.zeros(shape), np.zeros(shape)
    scored = np.zeros(shape, dtype=bool)
    if cells:
        r, c, e, n = (np.array(column) for column in zip(*cells, strict=True))
        errors_a[r, c], words_a[r, c], scored[r, c] = e, n, True
    return table, UtteranceCounts(np.array(speaker, dtype=np.intp), errors_a, words_a, scored)


@dataclass(frozen=True)
class GroupVariance:
    """One group's spread of speakers' Δ (pseudo-values) in a condition, in Δ's unit squared.

    ``total``: variance across speakers at the pilot's ``utterances`` (median per speaker);
    ``within``: the mean of the speakers' own utterance-sampling variances (``None`` when no
    speaker has two utterances); ``between`` = τ² = max(total − within, 0), ``truncated`` when
    the difference was negative (``None`` without ``within``).
    """

    group: str
    speakers: int
    utterances: int
    total: float
    within: float | None
    between: float | None
    truncated: bool


@dataclass(frozen=True, eq=False)
class PilotCondition:
    """What planning needs of one degraded condition: per group the speakers' centred
    pseudo-values of Δ (``residuals``), each speaker's utterances (``utterances``, aligned)
    and the group's :class:`GroupVariance`. ``problem`` says why utterances per speaker
    cannot be planned (empty when they can); ``cannot_plan``: nothing can be planned (a group
    without two speakers whose Δ is defined, or a single group), and ``problem`` names the
    group, the condition and the cause."""

    condition_id: str
    residuals: tuple[np.ndarray, ...]
    utterances: tuple[np.ndarray, ...]
    groups: tuple[GroupVariance, ...]
    problem: str = ""
    cannot_plan: bool = False

    @property
    def plannable(self) -> bool:
        """Whether speakers per group can be planned at all (``problem`` says why not): two
        or more groups, each with two or more speakers whose Δ is defined."""
        return (
            not self.cannot_plan
            and len(self.residuals) >= 2
            and all(r.size >= 2 and bool(np.isfinite(r).all()) for r in self.residuals)
        )

    @property
    def pilot_utterances(self) -> int:
        """The pilot's utterances per speaker: the median over all its speakers, at least 1."""
        every = np.concatenate([u for u in self.utterances if u.size] or [np.ones(1)])
        return max(1, int(np.rint(np.median(every))))


_SPREAD_NEEDS = "a group's spread needs 2 or more speakers with a defined Δ"


def _speakers(n: int) -> str:
    return f"{n} speaker{'' if n == 1 else 's'}"


def _why_undefined(table: CountTable, c: int, g: int, defined: int, *, relative: bool) -> str:
    """Why group ``g`` has fewer than two speakers with a defined Δ (``defined`` of them) in
    condition ``c``: the first that applies of no items, all items failed (there or clean),
    a clean WER of 0 under the relative metric, fewer than two speakers scored in both the
    clean condition and ``c``, a Δ undefined without one speaker (relative metric)."""
    group, cond, clean = table.groups[g], table.conditions[c], table.conditions[0]
    mine = table.speaker_group == g
    items = [int(table.n_items[mine, k].sum()) for k in (c, 0)]
    failed = [int(table.n_failed[mine, k].sum()) for k in (c, 0)]
    for k, where in ((0, cond), (1, f"the clean condition ({clean})")):
        if items[k] == 0:
            return f"group {group!r} has no items in {where} (the pilot did not run them)"
        if failed[k] == items[k]:
            return (
                f"all {items[k]} items of group {group!r} in {where} failed, so its Δ in "
                f"{cond} is undefined (see the errors in items.csv, then resume the run)"
            )
    if relative and int(table.errors[mine, 0].sum()) == 0:
        return (
            f"Δ of group {group!r} in {cond} is undefined: its clean WER is 0 and the relative "
            "metric divides by it (plan with metric absolute, or a pilot whose clean speech "
            "this group's speakers get wrong at least sometimes)"
        )
    both = int(np.sum(mine & (table.ref_words[:, 0] > 0) & (table.ref_words[:, c] > 0)))
    if both < 2:
        return (
            f"group {group!r} has {_speakers(both)} with scored items in both the clean "
            f"condition and {cond} ({_SPREAD_NEEDS}; see the errors in items.csv, or add "
            "speakers)"
        )
    if relative:
        return (
            f"group {group!r} has {_speakers(defined)} with a defined Δ in {cond}: one speaker "
            "makes all of its clean errors, so without that speaker its clean WER is 0 "
            f"(relative metric; {_SPREAD_NEEDS})"
        )
    return f"group {group!r} has {_speakers(defined)} with a defined Δ in {cond} ({_SPREAD_NEEDS})"


def pilot_conditions(
    table: CountTable, utterances: UtteranceCounts, *, relative: bool
) -> tuple[PilotCondition, ...]:
    """Per degraded condition, the groups' residuals and their between/within split.

    A speaker's within variance is n² · m/(m − 1) · Σ_u (θ_(−u) − θ̄)², with θ_(−u) the
    group's Δ without utterance u of that speaker (in every condition), θ̄ their mean, m the
    speaker's utterances and n the group's speakers: the delete-one-utterance jackknife of the
    speaker's pseudo-value nθ − (n − 1)θ_(−s), whose second term does not depend on the
    speaker's utterances. Removing one utterance barely moves a whole group's Δ, so
    θ_(−u) − θ is the utterance's linear influence (not inflated by m/(m − 1) as a one-speaker
    jackknife's would be) and the factor is m/(m − 1), that of a sample variance; with the
    usual (m − 1)/m the within part came out ((m − 1)/m)² too small (0.78 of the truth at
    m = 10 on binomial speakers who differ in nothing). An utterance counts for a condition
    when it was scored there or clean.
    """
    n_groups = len(table.groups)
    sg = table.speaker_group
    psi = pseudo_values(table.errors, table.ref_words, sg, n_groups, relative=relative)
    e_sum = group_sums(table.errors, sg, n_groups)  # (C, G)
    n_sum = group_sums(table.ref_words, sg, n_groups)
    theta = _degrade(_ratio(e_sum, n_sum), _ratio(e_sum[:1], n_sum[:1]), relative)  # (C, G)
    n_speakers = np.bincount(sg, minlength=n_groups).astype(np.float64)
    row_group = sg[utterances.speaker]
    wer_loo = _ratio(e_sum.T[row_group] - utterances.errors, n_sum.T[row_group] - utterances.words)
    theta_loo = _degrade(wer_loo, wer_loo[:, :1], relative)  # (R, C)
    dev = theta_loo - theta.T[row_group]
    n_s = len(table.speakers)
    out = []
    for c in range(1, len(table.conditions)):
        member = utterances.scored[:, c] | utterances.scored[:, 0]
        m_s = np.bincount(utterances.speaker, weights=member, minlength=n_s)
        d = np.where(member, dev[:, c], 0.0)
        bad = np.bincount(
            utterances.speaker, weights=member & ~np.isfinite(dev[:, c]), minlength=n_s
        )
        d = np.where(np.isfinite(d), d, 0.0)
        s1 = np.bincount(utterances.speaker, weights=d, minlength=n_s)
        s2 = np.bincount(utterances.speaker, weights=d * d, minlength=n_s)
        with np.errstate(divide="ignore", invalid="ignore"):
            ss = np.maximum(s2 - s1 * s1 / np.where(m_s > 0, m_s, 1.0), 0.0)
            within_s = n_speakers[sg] ** 2 * m_s / np.where(m_s > 1, m_s - 1.0, 1.0) * ss
        within_s = np.where((m_s >= 2) & (bad == 0), within_s, np.nan)
        residuals, counts, parts = [], [], []
        one_utt: list[str] = []
        for g, group in enumerate(table.groups):
            mine = (sg == g) & np.isfinite(psi[:, c - 1])
            values = psi[mine, c - 1]
            residuals.append(values - values.mean() if values.size else values)
            counts.append(m_s[mine])
            total = float(np.var(values, ddof=1)) if values.size >= 2 else math.nan
            own = within_s[mine]
            own = own[np.isfinite(own)]
            m_med = max(1, int(np.rint(np.median(m_s[mine])))) if values.size else 0
            if own.size == 0 or not math.isfinite(total):
                parts.append(
                    GroupVariance(group, int(values.size), m_med, total, None, None, False)
                )
                one_utt.append(group)
                continue
            within = float(own.mean())
            parts.append(
                GroupVariance(
                    group,
                    int(values.size),
                    m_med,
                    total,
                    within,
                    max(total - within, 0.0),
                    total < within,
                )
            )
        problem = ""
        # A speaker scored in only one of the two conditions still gets a finite
        # pseudo-value (leaving them out moves only that side), but carries no Δ of their own.
        both = np.bincount(
            sg,
            weights=(table.ref_words[:, 0] > 0) & (table.ref_words[:, c] > 0),
            minlength=n_groups,
        )
        thin = [g for g in range(n_groups) if residuals[g].size < 2 or both[g] < 2]
        if n_groups < 2:
            problem = (
                f"the pilot has one group ({table.groups[0]!r}) in {table.conditions[c]}; "
                "planning compares groups (check the pack's group_by column)"
            )
        elif thin:
            problem = "; ".join(
                _why_undefined(table, c, g, int(residuals[g].size), relative=relative) for g in thin
            )
        elif one_utt:
            problem = (
                f"group{'s' if len(one_utt) > 1 else ''} {', '.join(map(repr, one_utt))}: no "
                "speaker has 2 or more scored utterances, so the spread of a speaker's Δ "
                "cannot be split into speakers and utterances (pilot with more utterances "
                "per speaker needed)"
            )
        out.append(
            PilotCondition(
                table.conditions[c],
                tuple(residuals),
                tuple(counts),
                tuple(parts),
                problem,
                cannot_plan=bool(thin) or n_groups < 2,
            )
        )
    return tuple(out)


def assumed_condition(
    *,
    sd: float,
    within_sd: float | None,
    utterances: int,
    n_groups: int,
    rng: np.random.Generator,
    n_speakers: int = 400,
) -> PilotCondition:
    """A pilot that was never run: every group normal with total SD ``sd`` of a speaker's Δ
    at ``utterances`` per speaker, of which ``within_sd`` (``None``: unknown) is utterance
    sampling. Raises ``ValueError`` when ``within_sd`` exceeds ``sd``."""
    if within_sd is not None and within_sd > sd:
        raise ValueError(
            f"the within-speaker SD ({within_sd:g}) cannot exceed the total SD ({sd:g}) of a "
            "speaker's Δ: it is a part of it"
        )
    base = rng.standard_normal(n_speakers)
    base = (base - base.mean()) / base.std(ddof=1) * sd
    total = sd * sd
    within = None if within_sd is None else within_sd * within_sd
    part = GroupVariance(
        "assumed",
        n_speakers,
        utterances,
        total,
        within,
        None if within is None else max(total - within, 0.0),
        False,
    )
    counts = np.full(n_speakers, float(utterances))
    problem = "" if within is not None else "no within-speaker SD assumed"
    return PilotCondition(
        "assumed",
        tuple(base.copy() for _ in range(n_groups)),
        tuple(counts.copy() for _ in range(n_groups)),
        tuple(part for _ in range(n_groups)),
        problem,
    )


def default_utterances(pilot_utterances: int) -> tuple[int, ...]:
    """m/2, m, 2m, 4m utterances per speaker (rounded, at least 1, without repeats)."""
    m = max(1, int(pilot_utterances))
    return tuple(sorted({max(1, int(np.rint(m / 2))), m, 2 * m, 4 * m}))


@dataclass(frozen=True)
class DesignPlan:
    """Speakers per group needed at each number of utterances per speaker.

    ``by_utterances``: (m′, plan) in increasing m′; ``unlimited``: the plan as m′ → ∞ (only
    the speakers' own spread left), ``None`` when utterances cannot be planned; ``gap_group``:
    the group given the gap (the most varied at the pilot's utterances, for ``detect``);
    ``limit``: a sentence saying what limits the design; ``problem``: why utterances per
    speaker were not planned (then ``by_utterances`` holds only the pilot's own m).
    ``unlimited_is_bound``: ``unlimited`` is only a lower bound (some group's τ² is truncated
    at 0, so with unlimited utterances its speakers would not differ at all: at least that
    many speakers, maybe many more). ``reach``: when no design asked for reached the power but
    unlimited utterances do, the
    fewest utterances per speaker that reach it (added to ``by_utterances``; ``None`` when not
    searched or not found up to the bound); ``reach_note`` says it in a sentence.
    """

    goal: str
    pilot_utterances: int
    by_utterances: tuple[tuple[int, PlanResult], ...]
    unlimited: PlanResult | None
    gap_group: int
    limit: str
    problem: str = ""
    reach: int | None = None
    reach_note: str = ""
    unlimited_is_bound: bool = False

    def speakers_at(self, utterances: int) -> int | None:
        """The speakers needed at ``utterances`` per speaker (``None``: not planned/reached)."""
        for m, plan in self.by_utterances:
            if m == utterances:
                return plan.speakers
        return None


def _draw_design(
    pilot: PilotCondition, rho: Sequence[np.ndarray], n: int, n_sims: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_draw`, each drawn residual r turned into ρ r + (1 − ρ) b (module docstring)."""
    means, variances = [], []
    for r, rho_g, part in zip(pilot.residuals, rho, pilot.groups, strict=True):
        pick = rng.integers(0, r.size, size=(n_sims, n))
        z = rng.standard_normal((n_sims, n))
        tau2 = float(part.between or 0.0)
        lam = tau2 / part.total if part.total > 0 else 1.0
        values = r[pick]
        own = lam * values + math.sqrt(max(tau2 * (1.0 - lam), 0.0)) * z
        k = rho_g[pick]
        values = k * values + (1.0 - k) * own
        means.append(values.mean(axis=1))
        variances.append(values.var(axis=1, ddof=1) / n)
    return np.stack(means, axis=1), np.stack(variances, axis=1)


def _fmt_sd(variance: float, relative: bool) -> str:
    sd = math.sqrt(max(variance, 0.0))
    return f"{sd:.3g}" if relative else f"{sd * 100:.1f}"


def _limit(
    pilot: PilotCondition,
    by: Sequence[tuple[int, PlanResult]],
    unlimited: PlanResult,
    m: int,
    *,
    relative: bool,
    top: int,
) -> str:
    """One sentence: what limits the design (speakers' own spread or utterance sampling)."""
    unit = " (relative)" if relative else ", in WER points"
    parts = [p for p in pilot.groups if p.within is not None and p.between is not None]
    total = sum(p.total for p in parts)
    between = sum(float(p.between or 0.0) for p in parts)
    share = between / total if total > 0 else 1.0
    spread = "; ".join(
        f"{p.group}: between {_fmt_sd(float(p.between or 0.0), relative)}, within "
        f"{_fmt_sd(float(p.within or 0.0), relative)}" + (" (τ² truncated at 0)" * p.truncated)
        for p in pilot.groups
    )
    if pilot.groups and pilot.groups[0].group == "assumed":
        p = pilot.groups[0]
        spread = (
            f"between {_fmt_sd(float(p.between or 0.0), relative)}, within "
            f"{_fmt_sd(float(p.within or 0.0), relative)}"
        )
    sds = f"SD of a speaker's Δ at {m} utterances{unit}: {spread}"
    floor = unlimited.speakers
    at_m = next((plan.speakers for k, plan in by if k == m), None)
    if parts and all(float(p.between or 0.0) <= 0.0 for p in parts):
        how = "truncated at 0 in every group" if all(p.truncated for p in parts) else "0"
        return (
            f"no speaker-to-speaker spread beyond utterance sampling (τ² {how}): more "
            f"utterances per speaker replace speakers about one for one ({sds})"
        )
    if floor is None:
        return (
            f"even unlimited utterances per speaker would need more than {top} speakers per "
            f"group: speaker-to-speaker variation alone is too large for this gap ({sds})"
        )
    cut = [p.group for p in parts if p.truncated]
    caveat = (
        f"; τ² is truncated at 0 in {', '.join(map(repr, cut))}: the pilot cannot tell "
        "those speakers' own spread from utterance noise, so with unlimited utterances it "
        f"needs at least {floor} speakers per group, maybe many more (a pilot with more "
        "utterances per speaker would tell)"
        if cut
        else ""
    )
    if share >= 0.5 or (at_m is not None and floor >= 0.75 * at_m):
        return (
            f"more utterances per speaker cannot get below {floor} speakers per group: "
            f"speaker-to-speaker variation dominates ({share:.0%} of the spread at {m} "
            f"utterances; {sds}){caveat}"
        )
    how_far = "" if cut else f", down to {floor} per group at the least"
    return (
        f"utterance sampling is {1 - share:.0%} of the spread at {m} utterances per speaker: "
        f"more utterances per speaker cut the speakers needed{how_far} (speaker-to-speaker "
        f"variation; {sds}){caveat}"
    )


def plan_design(
    pilot: PilotCondition,
    *,
    utterances: Sequence[int] | None = None,
    goal: str,
    gap: float,
    margin: float,
    alpha: float,
    n_tests: int,
    relative: bool = False,
    power: float = 0.8,
    n_sims: int = 400,
    rng: np.random.Generator,
    sizes: Sequence[int] = SIZES,
    extend_to: int = MAX_UTTERANCES,
) -> DesignPlan:
    """Smallest speakers per group reaching ``power`` at each of ``utterances`` per speaker
    (default :func:`default_utterances` of the pilot's), and with unlimited utterances.

    When none of those designs reaches the power but unlimited utterances do, designs with
    more utterances per speaker are searched, up to ``extend_to`` (0: not searched), and the
    fewest that reaches it is added (:attr:`DesignPlan.reach`).

    Without a within-speaker estimate (``pilot.problem``) only the pilot's own design is
    planned, with :func:`plan_speakers`, and ``problem`` says why.
    """
    if goal not in ("detect", "even"):
        raise ValueError(f"goal must be 'detect' or 'even', got {goal!r}")
    m = pilot.pilot_utterances
    grid = tuple(sorted({int(k) for k in (utterances or default_utterances(m))}))
    if any(k < 1 for k in grid):
        raise ValueError(f"utterances per speaker must be whole numbers >= 1, got {grid}")
    usable = [np.asarray(r, dtype=np.float64) for r in pilot.residuals]
    if not pilot.plannable or pilot.problem:
        plan = (
            PlanResult(None, goal, ())
            if not pilot.plannable
            else plan_speakers(
                usable,
                goal=goal,
                gap=gap,
                margin=margin,
                alpha=alpha,
                n_tests=n_tests,
                power=power,
                n_sims=n_sims,
                rng=rng,
                sizes=sizes,
            )
        )
        problem = pilot.problem or "fewer than two groups"
        widest = int(np.argmax([float(np.var(r)) if r.size else 0.0 for r in usable] or [0.0]))
        return DesignPlan(
            goal,
            m,
            ((m, plan),),
            None,
            widest,
            f"{'utterances per speaker not planned' if pilot.plannable else 'cannot plan'}: "
            f"{problem}",
            problem,
        )
    seed = int(rng.integers(0, 2**63 - 1))

    def rho_for(k: float) -> list[np.ndarray]:
        return [np.sqrt(u / k) if math.isfinite(k) else np.zeros_like(u) for u in pilot.utterances]

    def search(rho: Sequence[np.ndarray]) -> PlanResult:
        stream = np.random.default_rng(seed)  # the same for every column: common numbers

        def power_of(n: int) -> float:
            means, variances = _draw_design(pilot, rho, n, n_sims, stream)
            return _power(
                means,
                variances,
                n,
                widest=widest,
                goal=goal,
                gap=gap,
                margin=margin,
                alpha=alpha,
                n_tests=n_tests,
            )

        return _smallest_size(sizes, power_of, power=power, goal=goal)

    # The gap goes to the group most varied at the pilot's own utterances per speaker.
    planned = []
    for part, rho_g in zip(pilot.groups, rho_for(float(m)), strict=True):
        tau2 = float(part.between or 0.0)
        planned.append(tau2 + float(np.mean(rho_g**2)) * (part.total - tau2))
    widest = int(np.argmax(planned))
    by = tuple((k, search(rho_for(float(k)))) for k in grid)
    unlimited = search(rho_for(math.inf))
    # A group whose τ² is truncated at 0 has no spread left with unlimited utterances (its
    # mean exact, the test all but certain): the unlimited plan is then a lower bound only.
    bound = unlimited.speakers is not None and any(p.truncated for p in pilot.groups)
    reach, reach_note = None, ""
    if unlimited.speakers is not None and all(p.speakers is None for _, p in by):
        reach, reach_note = _reach(
            lambda k: search(rho_for(float(k))),
            grid[-1],
            extend_to,
            power=power,
            top=int(sizes[-1]),
            floor=unlimited.speakers,
        )
        if reach is not None:
            by = tuple(sorted((*by, reach)))
    by, unlimited = _monotone(by, unlimited)
    limit = _limit(pilot, by, unlimited, m, relative=relative, top=int(sizes[-1]))
    return DesignPlan(
        goal, m, by, unlimited, widest, limit, reach=None if reach is None else reach[0],
        reach_note=reach_note, unlimited_is_bound=bound,
    )  # fmt: skip


def _monotone(
    by: Sequence[tuple[int, PlanResult]], unlimited: PlanResult
) -> tuple[tuple[tuple[int, PlanResult], ...], PlanResult]:
    """More utterances per speaker never need more speakers (each speaker's mean only gets
    less noisy), but simulated power near the goal can cross it back and forth between
    columns: each column takes at most the speakers of the column before it, and unlimited
    utterances at most the last column's."""
    out: list[tuple[int, PlanResult]] = []
    best: int | None = None
    for k, plan in sorted(by, key=lambda pair: pair[0]):
        if best is not None and (plan.speakers is None or plan.speakers > best):
            plan = replace(plan, speakers=best)
        best = plan.speakers
        out.append((k, plan))
    if best is not None and (unlimited.speakers is None or unlimited.speakers > best):
        unlimited = replace(unlimited, speakers=best)
    return tuple(out), unlimited


def _reach(
    search: Callable[[int], PlanResult],
    last: int,
    extend_to: int,
    *,
    power: float,
    top: int,
    floor: int,
) -> tuple[tuple[int, PlanResult] | None, str]:
    """The fewest utterances per speaker beyond ``last`` (none of whose designs reached the
    power) at which a design reaches it: doubling up to ``extend_to``, then halving the
    interval until its ends are within 5 % (at least 1) apart. Returns that design (``None``
    if none up to ``extend_to``) and a sentence saying from where the plan is feasible."""
    lo, hi = last, None
    k = last
    while k < extend_to:
        k = min(2 * k, extend_to)
        plan = search(k)
        if plan.speakers is not None:
            hi = (k, plan)
            break
        lo = k
    if hi is None:
        return None, (
            f"no design up to {max(extend_to, last)} utterances per speaker reaches "
            f"{power:.0%} power with {top} speakers per group or fewer; only unlimited "
            f"utterances do ({floor} speakers per group)"
        )
    while hi[0] - lo > max(1, round(0.05 * hi[0])):
        mid = (lo + hi[0]) // 2
        plan = search(mid)
        if plan.speakers is not None:
            hi = (mid, plan)
        else:
            lo = mid
    return hi, (
        f"the plan becomes feasible from {hi[0]} utterances per speaker ({hi[1].speakers} "
        f"speakers per group; {lo} need more than {top})"
    )
