"""The hunt's split, search and confirmation logic, over a surface evaluator (scored items
drawn from a known per-group error rate), and the `hunt:` section of a pack."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lastmile.analysis import FairnessSettings
from lastmile.errors import ConfigError
from lastmile.hunt.search import UttRef, budget_plan, run_hunt, split_speakers
from lastmile.hunt.settings import HuntSettings
from lastmile.hunt.space import Candidate, Space, build_space
from lastmile.scenario.pack import load_pack
from lastmile.testing import write_pack

GROUPS = ("a", "b", "c")
FAIR = FairnessSettings(threshold_pts=5, alpha=0.05, min_speakers=3)


def corpus(speakers: int = 8, utts: int = 4, groups: Sequence[str] = GROUPS) -> list[UttRef]:
    return [
        UttRef(group=g, speaker=f"{g}{s}", id=f"{g}{s}-{u}")
        for g in groups
        for s in range(speakers)
        for u in range(utts)
    ]


def small_space() -> Space:
    return build_space(
        HuntSettings.model_validate(
            {
                "snr_db": [0, 30],
                "snr_step_db": 5,
                "noise": ["white", "pink", {"type": "hum"}],
                "hum_fundamental_hz": [50, 400],
                "hum_steps_per_octave": 2,
                "hum_harmonics": ["falling", "odd"],
            }
        )
    )


class Surface:
    """Errors ~ Binomial(12, p): p rises as SNR falls; with ``planted``, group ``b`` loses
    25 more points under hum within half an octave of 200 Hz at SNR <= 10 dB. Records every
    call (stage, candidate ids, utterance ids)."""

    def __init__(self, space: Space, *, planted: bool, seed: int = 0) -> None:
        self.space, self.planted, self.seed = space, planted, seed
        self.calls: list[tuple[str, list[str], list[UttRef]]] = []

    def _rng(self, *parts: str) -> np.random.Generator:
        digest = hashlib.sha256("/".join([str(self.seed), *parts]).encode()).hexdigest()
        return np.random.default_rng(np.random.SeedSequence(entropy=int(digest, 16)))

    def p(self, c: Candidate | None, u: UttRef) -> float:
        speaker = float(self._rng("speaker", u.speaker).normal(0, 0.3))
        if c is None:
            return 1 / (1 + math.exp(-(-2.5 + speaker)))
        params = self.space.params(c)
        extra = 2.5 / (1 + math.exp((params["snr_db"] - 5) / 4))
        p = 1 / (1 + math.exp(-(-2.5 + speaker + extra)))
        f = params["fundamental_hz"]
        near = f is not None and abs(math.log2(f / 200)) <= 0.5
        if self.planted and u.group == "b" and near and params["snr_db"] <= 10:
            p = min(0.95, p + 0.25)
        return p

    def __call__(
        self, stage: str, cands: Sequence[Candidate], utts: Sequence[UttRef]
    ) -> list[dict[str, Any]]:
        ids = [self.space.condition_id(c) for c in cands]
        self.calls.append((stage, ids, list(utts)))
        out = []
        for cid, c in [("clean", None), *zip(ids, cands, strict=True)]:
            for u in utts:
                errors = int(self._rng(cid, u.id).binomial(12, self.p(c, u)))
                out.append(
                    {
                        "condition_id": cid,
                        "utterance_id": u.id,
                        "speaker": u.speaker,
                        "group": u.group,
                        "n_ref": 12,
                        "substitutions": errors,
                        "deletions": 0,
                        "insertions": 0,
                        "error": None,
                    }
                )
        return out


def hunt(surface: Surface, utts: list[UttRef], **kw: Any) -> Any:
    args: dict[str, Any] = {"budget": 4000, "seed": 11, "fairness": FAIR, "top": 3}
    args.update(kw)
    return run_hunt(space=surface.space, utterances=utts, evaluate=surface, **args)


# --- the split ---------------------------------------------------------------------------


def test_split_is_stratified_seeded_and_disjoint():
    utts = corpus(speakers=8)
    split = split_speakers(utts, seed=5, confirm_share=0.5, min_speakers=3)
    disc, conf = split.speakers("discovery"), split.speakers("confirmation")
    assert not disc & conf
    assert disc | conf == {u.speaker for u in utts}
    for g in GROUPS:  # stratified: half of every group on each side
        assert len({s for s in disc if s.startswith(g)}) == 4
        assert len({s for s in conf if s.startswith(g)}) == 4
    again = split_speakers(utts, seed=5, confirm_share=0.5, min_speakers=3)
    assert again == split
    others = [split_speakers(utts, seed=s, confirm_share=0.5, min_speakers=3) for s in range(6)]
    assert len({o.confirmation for o in others}) > 1  # the seed decides who is held out
    # every utterance of a speaker goes with the speaker
    assert {u.speaker for u in split.confirmation} == conf
    assert len(split.discovery) + len(split.confirmation) == len(utts)


def test_split_raises_the_confirmation_half_to_min_speakers_and_says_so():
    split = split_speakers(corpus(speakers=4), seed=1, confirm_share=0.5, min_speakers=3)
    assert len(split.speakers("confirmation")) == 9 and len(split.speakers("discovery")) == 3
    assert any("3 of 4 speakers held out" in n for n in split.notes)


def test_a_group_too_small_to_split_is_refused():
    utts = corpus(speakers=6) + [UttRef("d", f"d{s}", f"d{s}-0") for s in range(3)]
    with pytest.raises(ConfigError, match=r"group 'd' has 3 speaker\(s\), too few to split"):
        split_speakers(utts, seed=1, confirm_share=0.5, min_speakers=3)


# --- the search ----------------------------------------------------------------------------


def test_the_search_never_evaluates_a_confirmation_speaker():
    surface = Surface(small_space(), planted=True)
    utts = corpus()
    result = hunt(surface, utts)
    conf = result.split.speakers("confirmation")
    disc = result.split.speakers("discovery")
    search_calls = [c for c in surface.calls if c[0].startswith("search-")]
    assert len(search_calls) >= 3
    for _stage, _ids, refs in search_calls:
        assert {u.speaker for u in refs} <= disc
    (confirm,) = [c for c in surface.calls if c[0] == "confirm"]
    assert {u.speaker for u in confirm[2]} == conf
    assert len(confirm[1]) == 3  # the top 3, nothing else


def test_the_hunt_finds_and_confirms_the_planted_region_within_budget():
    space = small_space()
    surface = Surface(space, planted=True)
    utts = corpus()
    result = hunt(surface, utts, budget=3000)
    assert result.decodes <= 3000
    n_disc = len(result.split.discovery)
    assert result.search_decodes < space.size * n_disc / 2  # fewer than half a grid search
    assert result.confirmed, [f.to_dict() for f in result.findings]
    best = result.confirmed[0]
    assert best.worst_group == "b"
    assert best.params["noise"] == "hum"
    assert abs(math.log2(best.params["fundamental_hz"] / 200)) <= 0.5
    assert best.params["snr_db"] <= 10
    # intervals come with the finding (points): the gap's interval excludes 0
    assert best.disparity_pts["ci_low"] is not None and best.disparity_pts["ci_low"] > 0
    assert best.q_value is not None and best.q_value <= FAIR.alpha


def test_with_a_target_the_hunt_looks_for_that_group():
    surface = Surface(small_space(), planted=True)
    result = hunt(surface, corpus(), budget=3000, target="b")
    assert result.confirmed and all(f.worst_group == "b" for f in result.confirmed)
    assert result.target == "b"


def test_on_an_even_surface_nothing_is_confirmed():
    surface = Surface(small_space(), planted=False, seed=3)
    result = hunt(surface, corpus(), budget=3000)
    assert len(result.findings) == 3
    assert not result.confirmed


def test_same_seed_same_trace_and_another_seed_another():
    utts = corpus()
    one = hunt(Surface(small_space(), planted=True), utts, budget=2000)
    two = hunt(Surface(small_space(), planted=True), utts, budget=2000)
    assert one.trace == two.trace
    assert [f.to_dict() for f in one.findings] == [f.to_dict() for f in two.findings]
    other = hunt(Surface(small_space(), planted=True), utts, budget=2000, seed=12)
    assert other.trace != one.trace


def test_a_budget_too_small_for_one_round_is_refused_before_any_decode():
    surface = Surface(small_space(), planted=True)
    utts = corpus()
    split = split_speakers(utts, seed=11, confirm_share=0.5, min_speakers=3)
    need = budget_plan(split, 3)["minimum"]
    with pytest.raises(ConfigError, match=rf"--budget {need - 1} is too small.*--budget {need}"):
        hunt(surface, utts, budget=need - 1)
    assert surface.calls == []
    assert hunt(surface, utts, budget=need).decodes <= need


def test_an_unknown_target_group_is_refused():
    surface = Surface(small_space(), planted=True)
    with pytest.raises(ConfigError, match=r"--target 'zz' is not a group.*groups: a, b, c"):
        hunt(surface, corpus(), target="zz")
    assert surface.calls == []


# --- the space and the pack's hunt: section ---------------------------------------------


def test_space_grid_and_ids():
    space = small_space()
    points = list(space.grid())
    # (white, pink) + hum × 4 fundamentals (50..400 at 2 per octave is 7) × 2 shapes
    assert space.fundamental_hz == (50.0, 70.7, 100.0, 141.4, 200.0, 282.8, 400.0)
    assert space.snr_db == (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    assert len(points) == space.size == (2 + 7 * 2) * 7
    ids = {space.condition_id(c) for c in points}
    assert len(ids) == len(points)
    hum = next(c for c in points if space.is_hum(c.noise) and c.fundamental == 4)
    entry = space.condition(hum)
    assert entry["noise"]["fundamental_hz"] == 200.0
    assert entry["noise"]["harmonics_db"] in ([0, -6, -10, -14], [0, -40, -3, -40, -6, -40, -9])


def test_hunt_section_defaults_come_from_the_pack(tmp_path: Path):
    from lastmile.hunt.engine import space_of_pack

    pack = write_pack(
        tmp_path / "p.yaml",
        corpus={"manifest": "m.csv"},
        conditions=[
            {"noise": "pink", "snr_db": [20, 5], "device": "narrowband-handset"},
            {
                "noise": {"type": "hum", "fundamental_hz": 50},
                "snr_db": 10,
                "channel": {"codec": "g711-ulaw"},
                "reverb": {"rt60_s": 0.6},
            },
        ],
    )
    space = space_of_pack(load_pack(pack))
    assert [n["type"] for n in space.noises] == ["pink", "hum"]
    assert space.snr_db[0] == 5.0 and space.snr_db[-1] == 20.0
    assert [d.name if d else None for d in space.devices] == [None, "narrowband-handset"]
    assert [c.codec if c else None for c in space.channels] == [None, "g711-ulaw"]
    assert space.reverbs == (None, 0.6)


@pytest.mark.parametrize(
    ("hunt_section", "message"),
    [
        ({"snr": [0, 10]}, r"hunt\.snr: unknown key"),
        ({"snr_db": [20, 0]}, r"hunt\.snr_db: expected \[low, high\]"),
        ({"noise": []}, r"noise: an empty list"),
        ({"reverb_rt60_s": [9]}, r"reverberation times in \(0, 5\]"),
        ({"hum_harmonics": ["square"]}, r"hunt\.hum_harmonics\[0\]"),
    ],
)
def test_bad_hunt_sections_are_refused_naming_the_field(
    tmp_path: Path, hunt_section: dict[str, Any], message: str
):
    pack = write_pack(tmp_path / "p.yaml", corpus={"manifest": "m.csv"}, hunt=hunt_section)
    with pytest.raises(ConfigError, match=message):
        load_pack(pack)
