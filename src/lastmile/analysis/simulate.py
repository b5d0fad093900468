"""Simulated runs from a known truth, to check the analysis (tests and ``benchmarks/``).

Model (per group g, condition c; logit scale): speaker s has a clean effect b_s ~ N(0, σ_b²)
and its own degradation e_sc ~ N(0, σ_e²) (e = 0 in the clean condition); utterance u of s
has a difficulty v_u ~ N(0, σ_v²) shared by all conditions. Its error probability is
p = expit(a_gc + b_s + e_sc + v_u), and its errors are Binomial(N_u, p) with N_u ~ 1 +
Poisson(mean_words − 1) reference words, split into S/D/I.

The truth the estimators target is the *population* pooled WER of a cell,
E[Σ errors] / E[Σ N] = E[p] (lengths are independent of p), i.e. the WER pooled over
infinitely many speakers and utterances of the group. ``a_gc`` is solved so that this equals
the requested ``population_wer[c][g]`` exactly (Gauss–Hermite quadrature), so Δ and
pairwise contrasts of the truth follow from the requested table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from lastmile.analysis.counts import CountTable
from lastmile.errors import ConfigError

__all__ = [
    "SimulationSpec",
    "logit_location",
    "population_mean_wer",
    "simulate_items",
    "simulate_table",
]

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def population_mean_wer(location: float, sd: float) -> float:
    """E[expit(location + sd · Z)], Z ~ N(0, 1), by 80-node Gauss–Hermite quadrature."""
    return float(np.dot(_WEIGHTS, expit(location + sd * _NODES)))


def logit_location(target_wer: float, sd: float) -> float:
    """The location a with E[expit(a + sd · Z)] = ``target_wer`` (0 < target < 1)."""
    if not 0.0 < target_wer < 1.0:
        raise ConfigError(f"simulation: population WER must be in (0, 1), got {target_wer}")
    return float(brentq(lambda a: population_mean_wer(a, sd) - target_wer, -30.0, 30.0))


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate. ``population_wer[condition][group]`` is the true pooled WER (fraction).

    ``n_speakers`` per group, ``n_utterances`` per speaker; the σ are logit-scale standard
    deviations of the speaker, speaker × condition and utterance effects.
    """

    population_wer: Mapping[str, Mapping[str, float]]
    clean_condition_id: str = "clean"
    n_speakers: int = 20
    n_utterances: int = 10
    mean_words: float = 12.0
    sd_speaker_logit: float = 0.5
    sd_speaker_condition_logit: float = 0.3
    sd_utterance_logit: float = 0.5
    failure_rate: float = 0.0

    def sd_total(self, condition_id: str) -> float:
        """Marginal logit SD of p in a condition (no speaker × condition effect when clean)."""
        sd_e = 0.0 if condition_id == self.clean_condition_id else self.sd_speaker_condition_logit
        return float(np.sqrt(self.sd_speaker_logit**2 + sd_e**2 + self.sd_utterance_logit**2))


@dataclass(frozen=True, eq=False)
class _Draw:
    """Per-utterance draws of one group in one condition, arrays of shape (speakers, utts)."""

    group: str
    condition_id: str
    words: np.ndarray
    sdi: np.ndarray  # (speakers, utts, 3): substitutions, deletions, insertions
    failed: np.ndarray


def _draws(spec: SimulationSpec, rng: np.random.Generator) -> list[_Draw]:
    if spec.clean_condition_id not in spec.population_wer:
        raise ConfigError(
            f"simulation: population_wer has no clean condition {spec.clean_condition_id!r}"
        )
    conditions = list(spec.population_wer)
    groups = list(spec.population_wer[spec.clean_condition_id])
    n_s, n_u = spec.n_speakers, spec.n_utterances
    out = []
    for group in groups:
        b = rng.normal(0.0, spec.sd_speaker_logit, size=(n_s, 1))
        v = rng.normal(0.0, spec.sd_utterance_logit, size=(n_s, n_u))
        words = 1 + rng.poisson(spec.mean_words - 1.0, size=(n_s, n_u))
        for cond in conditions:
            a = logit_location(spec.population_wer[cond][group], spec.sd_total(cond))
            sd_e = 0.0 if cond == spec.clean_condition_id else spec.sd_speaker_condition_logit
            e = rng.normal(0.0, sd_e, size=(n_s, 1)) if sd_e > 0 else np.zeros((n_s, 1))
            errs = rng.binomial(words, expit(a + b + e + v))
            sdi = rng.multinomial(errs.ravel(), [0.6, 0.25, 0.15]).reshape(n_s, n_u, 3)
            failed = rng.random((n_s, n_u)) < spec.failure_rate
            out.append(_Draw(group, cond, words, sdi, failed))
    return out


def _speaker(group: str, i: int) -> str:
    return f"{group}-spk{i:03d}"


def simulate_items(spec: SimulationSpec, *, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Items (the :func:`lastmile.analysis.analyze` contract) drawn from ``spec``.

    Every utterance appears in every condition with the same reference length.
    Returns ``n_groups × n_speakers × n_utterances × n_conditions`` mappings.
    """
    items: list[dict[str, Any]] = []
    for draw in _draws(spec, rng):
        sdi = draw.sdi.tolist()
        words = draw.words.tolist()
        failed = draw.failed.tolist()
        for i in range(spec.n_speakers):
            speaker = _speaker(draw.group, i)
            for j in range(spec.n_utterances):
                s, d, ins = sdi[i][j]
                items.append(
                    {
                        "condition_id": draw.condition_id,
                        "utterance_id": f"{speaker}-u{j:03d}",
                        "speaker": speaker,
                        "group": draw.group,
                        "n_ref": words[i][j],
                        "substitutions": s,
                        "deletions": d,
                        "insertions": ins,
                        "error": "simulated failure" if failed[i][j] else None,
                    }
                )
    return items


def simulate_table(spec: SimulationSpec, *, rng: np.random.Generator) -> CountTable:
    """The :class:`CountTable` of the items :func:`simulate_items` draws with the same ``rng``
    state (vectorized: no per-item mappings; for large simulation studies)."""
    draws = _draws(spec, rng)
    conditions = tuple(spec.population_wer)
    conditions = (
        spec.clean_condition_id,
        *(c for c in conditions if c != spec.clean_condition_id),
    )
    groups = tuple(sorted(spec.population_wer[spec.clean_condition_id]))
    n_s = spec.n_speakers
    g_index = {g: k for k, g in enumerate(groups)}
    c_index = {c: j for j, c in enumerate(conditions)}
    speakers = tuple(_speaker(g, i) for g in groups for i in range(n_s))
    shape = (len(speakers), len(conditions))
    sums = np.zeros((6, *shape), dtype=np.int64)
    for draw in draws:
        rows = slice(g_index[draw.group] * n_s, (g_index[draw.group] + 1) * n_s)
        col = c_index[draw.condition_id]
        ok = ~draw.failed
        sums[0, rows, col] = (draw.words * ok).sum(axis=1)
        for k in range(3):
            sums[1 + k, rows, col] = (draw.sdi[:, :, k] * ok).sum(axis=1)
        sums[4, rows, col] = spec.n_utterances
        sums[5, rows, col] = draw.failed.sum(axis=1)
    speaker_group = np.repeat(np.arange(len(groups), dtype=np.intp), n_s)
    arrays = [speaker_group, *(sums[k].astype(np.float64) for k in range(4)), sums[4], sums[5]]
    for array in arrays:
        array.flags.writeable = False
    return CountTable(conditions, groups, speakers, *arrays)
