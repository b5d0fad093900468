"""Device profiles: a sweep (or a reference microphone) through known scipy filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal as ss

from lastmile.capture.device import (
    capture_device_from_reference,
    capture_device_from_sweep,
)
from lastmile.capture.sweep import make_sweep, read_sweep, write_sweep
from lastmile.errors import AudioError, ConfigError
from lastmile.profiles.device_model import (
    DeviceProfile,
    MeasuredDeviceResponse,
    load_device_profile,
    save_device_profile,
)
from lastmile.profiles.devices import resolve_device
from lastmile.profiles.presets import DeviceResponse, SpecDeviceResponse

FS = 16000
LATENCY_S = 0.0371
# ITU-T telephone-handset-like band: 4th-order Butterworth band-pass 300-3400 Hz
HANDSET = ss.butter(4, [300, 3400], "bandpass", fs=FS, output="sos")
PASSBAND_HZ = (300.0, 3400.0)


def _through(sos: np.ndarray, sweep: np.ndarray, *, cubic: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    y = ss.sosfilt(sos, sweep.astype(np.float64))
    y = y + cubic * y**3
    y = np.concatenate([rng.normal(0, 1e-4, round(LATENCY_S * FS)), 0.5 * y])
    return y + rng.normal(0, 1e-4, y.size)


def _true_db(sos: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    _, h = ss.sosfreqz(sos, worN=freqs, fs=FS)
    g = 20 * np.log10(np.abs(h))
    return g - float(np.interp(np.log(1000.0), np.log(freqs), g))


@pytest.fixture(scope="module")
def sweep():
    return make_sweep(sample_rate=FS, f1_hz=50.0, f2_hz=7000.0, seconds=4.0)


@pytest.fixture(scope="module")
def handset(sweep) -> DeviceProfile:
    samples, info = sweep
    rec = _through(HANDSET, samples, cubic=0.2)
    return capture_device_from_sweep(rec, samples.astype(np.float64), info, name="handset")


def _in_passband(profile: DeviceProfile) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(profile.response.freqs_hz)
    g = np.asarray(profile.response.gain_db)
    sel = (f >= PASSBAND_HZ[0]) & (f <= PASSBAND_HZ[1])
    return f[sel], g[sel]


def test_sweep_recovers_the_filter_within_1_db_over_the_passband(handset):
    f, g = _in_passband(handset)
    assert f.size > 30
    assert float(np.max(np.abs(g - _true_db(HANDSET, f)))) <= 1.0
    lo, hi = handset.usable_band_hz
    assert 150 <= lo <= 300 and 3400 <= hi <= 5000


def test_latency_noise_floor_and_distortion(handset):
    assert abs(handset.source.latency_s - LATENCY_S) <= 0.002  # plus the filter's delay
    assert -86 <= handset.noise_floor_dbfs <= -74  # the 1e-4 RMS floor is -80 dBFS
    # y + 0.2·y³ at amplitude A = 0.5 (the sweep at -6 dBFS, unity gain at 1 kHz):
    # third harmonic 0.2·A³/4 over a fundamental A + 3·0.2·A³/4
    amp = 0.5
    expected = 100 * (0.2 * amp**3 / 4) / (amp + 3 * 0.2 * amp**3 / 4)
    thd = dict(zip(handset.distortion.freqs_hz, handset.distortion.values, strict=True))
    assert abs(thd[1000.0] - expected) <= 0.15 * expected


def test_the_measured_response_replays_within_1_db(handset, sweep):
    device = MeasuredDeviceResponse(handset)
    assert isinstance(device, DeviceResponse)
    f, g = _in_passband(handset)
    for rate in (8000, 16000, 48000):
        _, h = ss.freqz(device.taps(sample_rate=rate), worN=f, fs=rate)
        assert float(np.max(np.abs(20 * np.log10(np.abs(h)) - g))) <= 1.0, rate
    # and measured again through the replayed filter, the response comes back
    samples, info = sweep
    replayed = device.apply(samples, sample_rate=FS)
    again = capture_device_from_sweep(
        np.concatenate([np.zeros(800), replayed]), samples.astype(np.float64), info, name="x"
    )
    _, g2 = _in_passband(again)
    assert float(np.max(np.abs(g2 - g))) <= 1.0
    out = device.apply(np.ones(500, np.float32), sample_rate=FS)
    assert out.dtype == np.float32 and out.shape == (500,)


def test_reference_microphone_method_recovers_the_filter_with_coherence():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal(15 * FS) * 0.1
    device = ss.sosfilt(HANDSET, reference)
    device = np.concatenate([np.zeros(123), device])[: reference.size]
    device = device + rng.normal(0, 1e-3, device.size)
    profile = capture_device_from_reference(device, reference, sample_rate=FS, name="ref")
    f, g = _in_passband(profile)
    assert float(np.max(np.abs(g - _true_db(HANDSET, f)))) <= 1.0
    assert profile.method == "reference" and profile.distortion is None
    coh = dict(zip(profile.coherence.freqs_hz, profile.coherence.values, strict=True))
    assert coh[1000.0] > 0.99
    assert abs(profile.source.latency_s * FS - 123) <= 8


def test_no_sync_marker_is_a_clear_error(sweep):
    samples, info = sweep
    noise = np.random.default_rng(2).normal(0, 0.05, samples.size + FS)
    with pytest.raises(AudioError, match="rec.wav: no sync marker found.*does not contain the"):
        capture_device_from_sweep(
            noise, samples.astype(np.float64), info, name="x", recording_name="rec.wav"
        )


def test_truncated_and_clipped_recordings_are_refused(sweep):
    samples, info = sweep
    rec = _through(HANDSET, samples)
    short = rec[: info.sweep_offset + FS]  # 2.55 s of a 7.55 s sweep file
    with pytest.raises(AudioError, match=r"2\.55 s long; .* needs at least 6\.05 s"):
        capture_device_from_sweep(short, samples, info, name="x")
    late = np.concatenate([np.zeros(5 * FS), short])  # long enough, but started too late
    with pytest.raises(AudioError, match="stops .* before the sweep ends"):
        capture_device_from_sweep(late, samples, info, name="x")
    with pytest.raises(AudioError, match="clipped"):
        capture_device_from_sweep(np.clip(rec * 20, -1, 1), samples, info, name="x")


def test_sweep_file_round_trip_and_foreign_files(sweep, tmp_path: Path):
    samples, info = sweep
    path = write_sweep(tmp_path / "sweep.wav", samples, info)
    again, info2 = read_sweep(path)
    assert info2 == info and np.array_equal(again.astype(np.float32), samples)
    import soundfile as sf

    sf.write(str(tmp_path / "plain.wav"), samples, FS)
    with pytest.raises(ConfigError, match="plain.wav: not a lastmile sweep file"):
        read_sweep(tmp_path / "plain.wav")
    with pytest.raises(ConfigError, match="f2-hz"):
        make_sweep(sample_rate=FS, f2_hz=7900.0)


def test_profile_file_round_trip_and_resolution(handset, tmp_path: Path, known_capture):
    path = save_device_profile(handset, tmp_path / "handset.yaml")
    assert load_device_profile(path) == handset
    assert "kind: device" in path.read_text()
    found = resolve_device("handset", search_dirs=[tmp_path])
    assert isinstance(found, MeasuredDeviceResponse) and found.name == "handset"
    preset = resolve_device("narrowband-handset", search_dirs=[tmp_path])
    assert isinstance(preset, SpecDeviceResponse)
    # a site's own profile overrides the preset of the same name
    save_device_profile(
        handset.model_copy(update={"name": "speakerphone"}), tmp_path / "speakerphone.yaml"
    )
    assert isinstance(
        resolve_device("speakerphone", search_dirs=[tmp_path]), MeasuredDeviceResponse
    )
    with pytest.raises(ConfigError, match="no such preset.*capture device"):
        resolve_device("walkie-talkie", search_dirs=[tmp_path])
    from lastmile.profiles.noise_model import save_noise_profile

    save_noise_profile(known_capture.profile, tmp_path / "ward.yaml")
    with pytest.raises(ConfigError, match="ward.yaml: kind: expected 'device'"):
        resolve_device("ward", search_dirs=[tmp_path])


def test_shipped_device_profiles_resolve():
    from lastmile.profiles.noise_model import profile_search_dirs

    for name in ("handset-narrowband", "headset", "conference-speakerphone"):
        device = resolve_device(name, search_dirs=profile_search_dirs())
        assert isinstance(device, MeasuredDeviceResponse)
        gain = device.magnitude_db(np.array([1000.0]), sample_rate=16000)
        assert abs(float(gain[0])) < 0.5
