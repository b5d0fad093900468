"""Scoring: named normalizers and per-item counts (N, S, D, I) via jiwer."""

from lastmile.score.counts import WordCounts, pooled_wer, score_item
from lastmile.score.normalizers import NORMALIZERS, get_normalizer, normalize

__all__ = ["NORMALIZERS", "WordCounts", "get_normalizer", "normalize", "pooled_wer", "score_item"]
