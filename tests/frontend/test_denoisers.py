"""Spectral gate (noisereduce) and RNNoise (pyrnnoise) on known stems: demo speech plus
generated noise at 5 dB SNR; SNR measured against the known clean speech."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from lastmile.audio import mix_at_snr, rms_dbfs
from lastmile.frontend import RnnoiseSpec, SpectralGateSpec, build_stage
from lastmile.frontend.rnnoise import DELAY_SAMPLES, RNNOISE_RATE, denoise_48k

from ._signals import RATE, demo_speech, measured_snr_db, profile_noise

# These need the extra lastmile[frontends] (noisereduce, pyrnnoise); CI installs it.


def _stems(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(mix, clean speech as mixed) at 5 dB SNR."""
    speech = demo_speech()
    rng = np.random.default_rng(7)
    if kind == "white":
        noise = rng.standard_normal(speech.size).astype(np.float32)
    elif kind == "pink":  # Kellet's pink filter
        b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
        a = [1, -2.494956002, 2.017265875, -0.522189400]
        noise = signal.lfilter(b, a, rng.standard_normal(speech.size)).astype(np.float32)
    else:
        noise = profile_noise(kind, n_samples=speech.size)
    mixed = mix_at_snr(speech, noise, snr_db=5.0, sample_rate=RATE)
    return mixed.mix, mixed.speech


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_spectral_gate_raises_measured_snr(kind: str) -> None:
    mix, clean = _stems(kind)
    before = measured_snr_db(mix, clean)
    assert before == pytest.approx(5.0, abs=0.2)
    out = build_stage(SpectralGateSpec(type="spectral-gate")).apply(mix, sample_rate=RATE)
    assert out.shape == mix.shape and out.dtype == np.float32
    assert measured_snr_db(out, clean) - before >= 0.8


def test_spectral_gate_parameters_change_the_output_as_documented() -> None:
    mix, _ = _stems("white")

    def run(**kw: object) -> np.ndarray:
        return build_stage(SpectralGateSpec(type="spectral-gate", **kw)).apply(  # type: ignore[arg-type]
            mix, sample_rate=RATE
        )

    # prop_decrease 0 lowers nothing (what differs is the STFT round trip, 30 dB down);
    # 0.5 takes away less energy than 1.0
    assert rms_dbfs(run(prop_decrease=0.0) - mix) < rms_dbfs(mix) - 30.0
    level = {p: rms_dbfs(run(prop_decrease=p)) for p in (0.5, 1.0)}
    assert level[1.0] < level[0.5] - 0.5 < rms_dbfs(mix) - 1.0
    # a higher threshold gates more: less energy passes
    assert rms_dbfs(run(n_std_thresh=3.0)) < rms_dbfs(run(n_std_thresh=1.5)) - 1.0
    # the non-stationary gate is a different algorithm: a different output
    assert np.max(np.abs(run(stationary=False) - run(stationary=True))) > 1e-2


@pytest.mark.parametrize("kind", ["white", "pink", "hospital-imaging-suite"])
def test_rnnoise_raises_measured_snr(kind: str) -> None:
    mix, clean = _stems(kind)
    before = measured_snr_db(mix, clean)
    out = build_stage(RnnoiseSpec(type="rnnoise")).apply(mix, sample_rate=RATE)
    assert measured_snr_db(out, clean) - before >= 4.0


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_rnnoise_keeps_length_rate_and_timing(rate: int) -> None:
    speech = demo_speech(sample_rate=rate)[: int(1.234567 * rate)]  # not a whole frame
    out = build_stage(RnnoiseSpec(type="rnnoise")).apply(speech, sample_rate=rate)
    assert out.shape == speech.shape and out.dtype == np.float32
    lag = np.argmax(signal.correlate(out, speech, mode="full")) - (speech.size - 1)
    assert lag == 0  # the denoiser's delay is taken back out


def test_rnnoise_delay_constant_is_what_the_library_does() -> None:
    speech = demo_speech(sample_rate=RNNOISE_RATE)
    out = denoise_48k(speech)
    raw = np.zeros_like(speech)
    raw[DELAY_SAMPLES:] = out[:-DELAY_SAMPLES]  # undo our shift: the library's raw output
    lag = np.argmax(signal.correlate(raw, speech, mode="full")) - (speech.size - 1)
    assert lag == DELAY_SAMPLES


def test_denoisers_are_byte_identical_on_the_same_input() -> None:
    mix, _ = _stems("pink")
    for spec in (SpectralGateSpec(type="spectral-gate"), RnnoiseSpec(type="rnnoise")):
        a = build_stage(spec).apply(mix, sample_rate=RATE)
        b = build_stage(spec).apply(mix.copy(), sample_rate=RATE)
        assert a.tobytes() == b.tobytes()


def test_missing_extras_name_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    from lastmile.errors import ConfigError
    from lastmile.frontend import rnnoise

    monkeypatch.setitem(sys.modules, "noisereduce", None)  # import noisereduce -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'lastmile\[frontends\]'"):
        build_stage(SpectralGateSpec(type="spectral-gate"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyrnnoise" else real(name, *a),
    )
    rnnoise._library.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"pip install 'lastmile\[frontends\]'"):
            build_stage(RnnoiseSpec(type="rnnoise"))
    finally:
        monkeypatch.undo()
        rnnoise._library.cache_clear()
    assert build_stage(RnnoiseSpec(type="rnnoise")).name == "rnnoise"
