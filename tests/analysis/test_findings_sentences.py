"""The findings' sentences for each verdict, from a real analysis of hand-built items."""

from lastmile.analysis import FairnessSettings, analyze
from lastmile.report.findings import findings

from ._items import grid_items

ERRORS = {
    "clean": {"a": [10] * 8, "b": [12] * 8},
    "loud": {"a": [20, 21, 19, 20, 22, 18, 20, 21], "b": [60, 61, 59, 60, 62, 58, 60, 61]},
    "soft": {"a": [20, 21, 19, 20, 22, 18, 20, 21], "b": [22, 21, 23, 22, 21, 23, 22, 22]},
    "mid": {"a": [10, 30, 15, 35, 20, 25, 12, 33], "b": [14, 32, 17, 40, 22, 27, 11, 36]},
}


def test_even_conditions_are_a_finding_and_a_small_unsure_gap_is_not_called_chance():
    analysis = analyze(
        grid_items(ERRORS), clean_condition_id="clean", settings=FairnessSettings(), seed=1
    )
    flags = {v.condition_id: v.flag for v in analysis.verdicts}
    assert flags == {"clean": None, "loud": "uneven", "soft": "even", "mid": "inconclusive"}
    text = findings({"analysis": analysis.to_dict(), "run": {"group_by": "accent"}})
    even = [s for s in text if s.startswith("Under soft")]
    assert even == [
        "Under soft, the accent groups are shown even: every gap between two groups lies "
        "within ± 5 WER points (90% intervals)."
    ]
    (mid,) = [s for s in text if s.startswith("Under mid")]
    assert "a gap of 0.4 WER points, under the threshold of 5" in mid
    assert "chance" not in mid
    (loud,) = [s for s in text if s.startswith("Under loud")]
    assert "unlikely to be chance" in loud


def test_an_inconclusive_gap_no_size_would_tell_says_so():
    analysis = analyze(
        grid_items(ERRORS), clean_condition_id="clean", settings=FairnessSettings(), seed=1
    )
    summary = {"analysis": analysis.to_dict(), "run": {}}
    (mid,) = [c for c in summary["analysis"]["conditions"] if c["id"] == "mid"]
    mid["speakers_needed_per_group"] = None
    mid["note"] = "largest gap ...; even 500 speakers per group would not show the groups even"
    (sentence,) = [s for s in findings(summary) if s.startswith("Under mid")]
    assert sentence.endswith(
        "; even 500 speakers per group would not tell at these utterances per speaker."
    )
