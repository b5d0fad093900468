"""Synthetic runs with a known truth, rougher than ASR output usually is, to check the statistics.

The model is rougher than the binomial one the analysis was first checked on, so the analysis
is not checked against the model it was tuned on. Per group g, with its own speaker count,
speaker spread and clean WER (groups differ in all three):

* speaker s: logit effect b_s ~ N(0, sd_speaker_g²), shared by every condition;
* utterance u of s: difficulty v_u ~ N(0, sd_utterance²) and length N_u ~ 1 + Poisson(11),
  the same utterances (and lengths) under every condition;
* speaker × condition: e_sc ~ N(0, sd_speaker_condition²) (0 in the clean condition);
* substitutions + deletions: beta-binomial, N_u trials with mean p = expit(a_gc + b_s + v_u
  + e_sc) and intra-utterance correlation ``rho`` (overdispersed against a binomial);
* insertion bursts: with probability ``burst_rate`` an utterance gets 1 + Poisson(burst_mean −
  1) inserted words (a hallucinated phrase), independent of its length.

The truth a cell's estimators target is its population pooled WER E[Σ errors] / E[Σ N] =
E[p] + burst_rate · burst_mean / E[N]; ``a_gc`` is solved (Gauss–Hermite) so that this equals
the requested WER. Everything is drawn from the one generator passed in; arrays are built
vectorized, so thousands of runs take seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from lastmile.analysis.counts import CountTable
from lastmile.errors import ConfigError

__all__ = ["MEAN_WORDS", "GroupSpec", "SyntheticRun", "synthetic_items", "synthetic_table"]

MEAN_WORDS = 12.0
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _mean_p(location: float, sd: float) -> float:
    return float(np.dot(_WEIGHTS, expit(location + sd * _NODES)))


def _location(target: float, sd: float, *, where: str) -> float:
    if not 0.0 < target < 1.0:
        raise ConfigError(
            f"synthetic run: {where}: error rate from S+D must be in (0, 1), got {target:.4f}"
        )
    return float(brentq(lambda a: _mean_p(a, sd) - target, -30.0, 30.0))


@dataclass(frozen=True)
class GroupSpec:
    """One group: speakers, their logit spread, and its true pooled WER per condition (fraction)."""

    n_speakers: int
    wer: Sequence[float]  # per condition, the clean condition first
    sd_speaker: float = 0.6


@dataclass(frozen=True)
class SyntheticRun:
    """What to draw. ``groups`` maps a group name to its spec; every spec lists the same
    conditions (the clean one first). Logit SDs for utterances and speaker × condition effects
    are shared by the groups."""

    groups: Mapping[str, GroupSpec]
    n_utterances: int = 10
    sd_utterance: float = 0.6
    sd_speaker_condition: float = 0.3
    rho: float = 0.05
    burst_rate: float = 0.02
    burst_mean: float = 4.0
    condition_ids: tuple[str, ...] = field(default=())

    def conditions(self) -> tuple[str, ...]:
        """Condition ids: ``condition_ids`` or ``clean, c01, c02, …``."""
        n = len(next(iter(self.groups.values())).wer)
        if self.condition_ids:
            return self.condition_ids
        return ("clean", *(f"c{k:02d}" for k in range(1, n)))


def _draw(
    run: SyntheticRun, rng: np.random.Generator
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Per group, in name order: reference words and errors (S + D + I) per speaker ×
    utterance × condition, shape ``(n_speakers, n_utterances, n_conditions)`` each."""
    n_cond = len(run.conditions())
    burst_wer = run.burst_rate * run.burst_mean / MEAN_WORDS
    n_u = run.n_utterances
    kappa = (1.0 - run.rho) / run.rho
    for name in sorted(run.groups):
        spec = run.groups[name]
        if len(spec.wer) != n_cond:
            raise ConfigError(f"synthetic run: group {name!r}: expected {n_cond} WERs")
        n = spec.n_speakers
        sd_e = np.array([0.0] + [run.sd_speaker_condition] * (n_cond - 1))
        sd_total = np.sqrt(spec.sd_speaker**2 + run.sd_utterance**2 + sd_e**2)
        loc = np.array(
            [
                _location(w - burst_wer, s, where=f"group {name!r}, condition {c}")
                for c, (w, s) in enumerate(zip(spec.wer, sd_total, strict=True))
            ]
        )
        b = rng.normal(0.0, spec.sd_speaker, size=(n, 1, 1))
        v = rng.normal(0.0, run.sd_utterance, size=(n, n_u, 1))
        e = rng.normal(0.0, 1.0, size=(n, 1, n_cond)) * sd_e
        words = 1 + rng.poisson(MEAN_WORDS - 1.0, size=(n, n_u, 1))
        p = expit(loc + b + v + e)  # (n, U, C)
        q = rng.beta(p * kappa, (1.0 - p) * kappa)
        errors = rng.binomial(np.broadcast_to(words, p.shape), q)
        bursts = (rng.random(p.shape) < run.burst_rate) * (
            1 + rng.poisson(run.burst_mean - 1.0, size=p.shape)
        )
        yield name, np.broadcast_to(words, p.shape), errors + bursts


def synthetic_table(run: SyntheticRun, *, rng: np.random.Generator) -> CountTable:
    """One synthetic run folded into a :class:`CountTable` (speakers × conditions)."""
    conditions = run.conditions()
    groups = tuple(sorted(run.groups))
    blocks: list[np.ndarray] = []
    speakers: list[str] = []
    speaker_group: list[int] = []
    for g, (name, words, errors) in enumerate(_draw(run, rng)):
        blocks.append(np.stack([words.sum(axis=1), errors.sum(axis=1)]))  # (2, n, C)
        speakers.extend(f"{name}-s{i:03d}" for i in range(words.shape[0]))
        speaker_group.extend([g] * words.shape[0])
    table = np.concatenate(blocks, axis=1).astype(np.float64)
    zeros = np.zeros_like(table[0])
    n_items = np.full(table[0].shape, run.n_utterances, dtype=np.int64)
    arrays = [
        np.array(speaker_group, dtype=np.intp),
        table[0],
        table[1],  # all errors counted as substitutions: only S + D + I matters here
        zeros,
        zeros.copy(),
        n_items,
        np.zeros_like(n_items),
    ]
    for array in arrays:
        array.flags.writeable = False
    return CountTable(conditions, groups, tuple(speakers), *arrays)


def synthetic_items(run: SyntheticRun, *, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The same run item by item: one mapping per utterance × condition, as
    :func:`lastmile.analysis.analyze` and items.csv take them (utterance ``{speaker}-u{k:03d}``,
    every condition; all errors counted as substitutions). From the same generator state it
    draws what :func:`synthetic_table` draws: folding these items gives the same table."""
    conditions = run.conditions()
    items: list[dict[str, Any]] = []
    for name, words, errors in _draw(run, rng):
        for i in range(words.shape[0]):
            speaker = f"{name}-s{i:03d}"
            for u in range(words.shape[1]):
                for c, condition_id in enumerate(conditions):
                    items.append(
                        {
                            "condition_id": condition_id,
                            "utterance_id": f"{speaker}-u{u:03d}",
                            "speaker": speaker,
                            "group": name,
                            "n_ref": int(words[i, u, c]),
                            "substitutions": int(errors[i, u, c]),
                            "deletions": 0,
                            "insertions": 0,
                            "error": "",
                        }
                    )
    return items
