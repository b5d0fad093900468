import pytest
from pydantic import ValidationError

from lastmile.analysis import FairnessSettings


def test_defaults_match_design():
    s = FairnessSettings()
    assert (s.threshold_pts, s.alpha, s.min_speakers, s.metric) == (5.0, 0.05, 3, "absolute")
    assert s.threshold_rel is None and s.threshold == pytest.approx(0.05)
    assert (s.n_bootstrap, s.n_permutations, s.ci_level, s.tolerance_pts) == (
        2000,
        2000,
        0.95,
        2.0,
    )


def test_frozen_and_unknown_keys_rejected():
    s = FairnessSettings()
    with pytest.raises(ValidationError):
        s.alpha = 0.1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        FairnessSettings(treshold_pts=5)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "field, value",
    [
        ("alpha", 0.0),
        ("alpha", 1.0),
        ("min_speakers", 1),
        ("threshold_pts", -1),
        ("n_bootstrap", 10),
        ("n_permutations", 5),
        ("ci_level", 1.0),
        ("metric", "ratio"),
        ("threshold_pts", float("nan")),
    ],
)
def test_ranges(field, value):
    with pytest.raises(ValidationError):
        FairnessSettings(**{field: value})


def test_round_trips_from_yaml_mapping():
    s = FairnessSettings.model_validate({"threshold_pts": 5, "alpha": 0.05, "min_speakers": 3})
    assert FairnessSettings.model_validate(s.model_dump()) == s


def test_relative_metric_takes_a_relative_threshold():
    s = FairnessSettings(metric="relative")
    assert (s.threshold_rel, s.threshold_pts, s.threshold) == (0.25, None, 0.25)
    assert FairnessSettings(metric="relative", threshold_rel=0.1).threshold == pytest.approx(0.1)
    assert FairnessSettings.model_validate(s.model_dump()) == s
    with pytest.raises(ValidationError, match="metric relative takes threshold_rel"):
        FairnessSettings(metric="relative", threshold_pts=5)
    with pytest.raises(ValidationError, match="threshold_rel applies to metric relative"):
        FairnessSettings(threshold_rel=0.2)
    assert "0.25 relative" in s.threshold_text()
    assert FairnessSettings().threshold_text() == "5 WER points"


def test_a_percentage_typed_as_a_relative_threshold_is_refused_with_the_fraction():
    assert FairnessSettings(metric="relative", threshold_rel=5).threshold == 5.0
    with pytest.raises(ValidationError, match="2500 %.*did you mean 0.25[?]"):
        FairnessSettings(metric="relative", threshold_rel=25)
