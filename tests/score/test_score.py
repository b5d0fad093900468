from __future__ import annotations

import pytest

from lastmile.errors import ConfigError
from lastmile.score import NORMALIZERS, normalize, pooled_wer, score_item


def test_default_normalizer_makes_numbers_comparable():
    a = score_item("Take two tablets twice a day.", "take 2 tablets twice a day")
    assert (a.n_ref, a.errors) == (6, 0)
    assert normalize("The patient's chart, isn't it?") == "the patient's chart isn't it"
    assert normalize("'Quoted'  text\u2014here") == "quoted text here"
    assert normalize("Ｆｕｌｌ width") == "full width"


def test_counts_worked_by_hand():
    # ref: the cat sat on the mat (6 words)
    # hyp: the cat sit on mat mat today → sat→sit (S), the→mat (S), + today (I)
    c = score_item("the cat sat on the mat", "the cat sit on mat mat today", normalizer="basic")
    assert c.n_ref == 6
    assert c.substitutions + c.deletions + c.insertions == 3
    assert c.hits == 4
    assert c.wer == pytest.approx(0.5)
    d = score_item("one two three four", "one four", normalizer="basic")
    assert (d.deletions, d.substitutions, d.insertions) == (2, 0, 0)


def test_empty_hypothesis_is_scored_as_deletions():
    c = score_item("hello there", "")
    assert (c.n_ref, c.deletions, c.insertions, c.hits) == (2, 2, 0, 0)
    assert c.wer == pytest.approx(1.0)
    assert score_item("hello there", "...").deletions == 2  # nothing left of it either


@pytest.mark.parametrize(
    ("reference", "normalizer"),
    [("", "default"), ("...", "default"), ("  ?! -- ", "basic"), ("Um, uh.", "whisper")],
)
def test_reference_without_words_is_refused(reference: str, normalizer: str):
    # never scored with 0 reference words (its insertions would count against its group)
    with pytest.raises(ConfigError, match="no words after the '" + normalizer + "' normalizer"):
        score_item(reference, "noise words", normalizer=normalizer)


def test_punctuation_reference_counts_under_the_none_normalizer():
    c = score_item("...", "...", normalizer="none")
    assert (c.n_ref, c.hits) == (1, 1)


def test_pooled_wer_is_not_the_mean_of_item_wers():
    short = score_item("yes", "no", normalizer="basic")  # 1/1
    long = score_item("a b c d e f g h i j", "a b c d e f g h i j", normalizer="basic")  # 0/10
    assert pooled_wer([short, long]) == pytest.approx(1 / 11)
    assert (short.wer + long.wer) / 2 == pytest.approx(0.5)
    assert pooled_wer([]) is None


def test_normalizer_name_is_recorded_and_unknown_refused():
    assert score_item("a", "a", normalizer="whisper").normalizer == "whisper"
    assert set(NORMALIZERS) >= {"default", "basic", "whisper", "none"}
    with pytest.raises(ValueError, match="unknown normalizer"):
        score_item("a", "a", normalizer="nope")
