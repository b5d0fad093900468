"""Synthetic reverb: RT60 and direct-to-reverberant ratio of the impulse response."""

from __future__ import annotations

import numpy as np
import pytest

from lastmile.errors import ConfigError
from lastmile.render.reverb import (
    apply_reverb,
    draw_reverb,
    render_reverb,
    reverb_impulse_response,
)
from lastmile.scenario.specs import ReverbSpec
from lastmile.testing import speech_like

SAMPLE_RATE = 16000


def _t30_rt60_s(ir: np.ndarray, sample_rate: int) -> float:
    """RT60 from the Schroeder energy decay curve, fitted between -5 and -35 dB (T30)."""
    energy = ir[1:] ** 2  # the decay of the reverberant tail (direct path left out)
    edc = np.cumsum(energy[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t_s = np.arange(edc.size) / sample_rate
    fit = (edc_db <= -5.0) & (edc_db >= -35.0)
    slope_db_per_s = np.polyfit(t_s[fit], edc_db[fit], 1)[0]
    return -60.0 / slope_db_per_s


@pytest.mark.parametrize("rt60_s", [0.3, 0.8])
def test_impulse_response_decays_60_db_in_rt60(rt60_s: float) -> None:
    spec = ReverbSpec(rt60_s=rt60_s)
    ir = reverb_impulse_response(
        spec, draw_reverb(np.random.default_rng(1)), sample_rate=SAMPLE_RATE
    )
    assert _t30_rt60_s(ir, SAMPLE_RATE) == pytest.approx(rt60_s, rel=0.1)


@pytest.mark.parametrize("drr_db", [-10.0, 0.0, 12.0])
def test_direct_to_reverberant_ratio(drr_db: float) -> None:
    spec = ReverbSpec(rt60_s=0.5, direct_to_reverberant_db=drr_db)
    ir = reverb_impulse_response(spec, {"reverb_seed": 5}, sample_rate=SAMPLE_RATE)
    assert ir[0] == 1.0
    measured = 10 * np.log10(ir[0] ** 2 / np.sum(ir[1:] ** 2))
    assert measured == pytest.approx(drr_db, abs=0.01)


def test_apply_reverb_is_decide_then_do() -> None:
    x = speech_like(np.random.default_rng(2), duration_s=1.0, sample_rate=SAMPLE_RATE)
    spec = ReverbSpec(rt60_s=0.4, direct_to_reverberant_db=3.0)
    y, record = apply_reverb(x, spec, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(7))
    again, same_record = apply_reverb(
        x, spec, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(7)
    )
    other, other_record = apply_reverb(
        x, spec, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(8)
    )
    assert record == same_record and y.tobytes() == again.tobytes()
    assert record["reverb_seed"] != other_record["reverb_seed"]
    assert y.tobytes() != other.tobytes()
    replayed = render_reverb(
        x, spec, {"reverb_seed": record["reverb_seed"]}, sample_rate=SAMPLE_RATE
    )
    assert replayed.tobytes() == y.tobytes()
    assert y.dtype == np.float32 and y.shape == x.shape
    assert record["rt60_s"] == 0.4 and record["ir_duration_s"] == pytest.approx(0.6)


def test_direct_path_keeps_the_speech_aligned() -> None:
    x = speech_like(np.random.default_rng(3), duration_s=1.0, sample_rate=SAMPLE_RATE)
    spec = ReverbSpec(rt60_s=0.3, direct_to_reverberant_db=30.0)
    y, _ = apply_reverb(x, spec, sample_rate=SAMPLE_RATE, rng=np.random.default_rng(0))
    assert np.corrcoef(x, y)[0, 1] > 0.99


def test_render_needs_the_drawn_record() -> None:
    x = np.ones(100, dtype=np.float32)
    with pytest.raises(ConfigError, match="reverb_seed"):
        render_reverb(x, ReverbSpec(rt60_s=0.2), {}, sample_rate=SAMPLE_RATE)
