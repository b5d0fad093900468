"""Per-item word counts through jiwer: keep raw counts, pool later."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

from lastmile.errors import ConfigError
from lastmile.score.normalizers import get_normalizer

__all__ = ["WordCounts", "pooled_wer", "score_item"]


@dataclass(frozen=True)
class WordCounts:
    """Alignment counts of one item after normalization.

    ``n_ref`` = hits + substitutions + deletions (reference words).
    """

    n_ref: int
    hits: int
    substitutions: int
    deletions: int
    insertions: int
    reference: str
    hypothesis: str
    normalizer: str

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float | None:
        """This item's WER, or None when the reference has no words."""
        return self.errors / self.n_ref if self.n_ref else None


def score_item(reference: str, hypothesis: str, *, normalizer: str = "default") -> WordCounts:
    """Normalize both texts with the named preset and align them with jiwer.

    A reference with no words after normalization (``"..."``, or ``"um"`` under ``whisper``)
    raises :class:`~lastmile.errors.ConfigError`: its insertions would count against its
    group with no words to weigh them. An empty hypothesis is scored (all deletions).
    """
    norm = get_normalizer(normalizer)
    ref = norm(reference)
    hyp = norm(hypothesis)
    ref_words = ref.split()
    hyp_words = hyp.split()
    if not ref_words:
        raise ConfigError(
            f"reference transcript {reference!r} has no words after the '{normalizer}' "
            "normalizer, so it cannot be scored; write the words spoken in the manifest, or "
            "remove the utterance"
        )
    if not hyp_words:
        return WordCounts(
            n_ref=len(ref_words),
            hits=0,
            substitutions=0,
            deletions=len(ref_words),
            insertions=0,
            reference=ref,
            hypothesis=hyp,
            normalizer=normalizer,
        )
    out = jiwer.process_words(ref, hyp)
    return WordCounts(
        n_ref=out.hits + out.substitutions + out.deletions,
        hits=out.hits,
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        reference=ref,
        hypothesis=hyp,
        normalizer=normalizer,
    )


def pooled_wer(counts: list[WordCounts]) -> float | None:
    """Σ(S+D+I) / ΣN over items — never the mean of per-item WERs. None if ΣN = 0."""
    n = sum(c.n_ref for c in counts)
    return sum(c.errors for c in counts) / n if n else None
