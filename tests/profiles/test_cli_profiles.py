"""`lastmile capture …` and `lastmile profiles …` through click's runner (exceptions propagate)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import click
import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf
from click.testing import CliRunner
from sitesim import speech_like

from lastmile.cli import cli
from lastmile.cli.capture import command as capture_group
from lastmile.cli.profiles import command as profiles_group
from lastmile.profiles.device_model import load_device_profile
from lastmile.profiles.noise_model import load_noise_profile

from .conftest import FS


def run(args: list[str], cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, args, catch_exceptions=False)
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(cli, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def recording(tmp_path_factory, known) -> Path:
    path = tmp_path_factory.mktemp("rec") / "site.flac"
    sf.write(str(path), known.samples, FS, subtype="PCM_24")
    return path


@pytest.fixture(scope="module")
def captured(tmp_path_factory, recording) -> Path:
    out = tmp_path_factory.mktemp("profiles")
    result = run(
        [
            "capture",
            "noise",
            str(recording),
            "--name",
            "site",
            "--out",
            str(out),
            "--description",
            "test site",
        ]
    )
    assert result.exit_code == 0, result.output
    return out


def test_every_command_has_an_example():
    for group in (capture_group, profiles_group):
        assert "Example" in (group.help or "")
        for name, cmd in group.commands.items():
            assert isinstance(cmd, click.Command)
            assert "Example:" in (cmd.help or ""), f"{group.name} {name}"
            assert f"lastmile {group.name} {name}" in cmd.help


def test_capture_noise_writes_the_profile_and_says_what_it_found(captured, recording):
    profile = load_noise_profile(captured / "site.yaml")
    assert profile.description == "test site" and profile.source.file == "site.flac"
    assert profile.source.clip_file is None
    assert sorted(p.name for p in captured.iterdir()) == ["site.yaml"]  # no audio copied
    again = run(["capture", "noise", str(recording), "--name", "site", "--out", str(captured)])
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output


def test_keep_clip_is_refused_for_speech_unless_allowed(tmp_path: Path):
    rng = np.random.default_rng(3)
    n = 12 * FS
    talk = speech_like(rng, n_samples=n, sample_rate=FS, level_dbfs=-30)
    path = tmp_path / "talk.wav"
    sf.write(str(path), (talk + rng.normal(0, 0.003, n)).astype(np.float32), FS)
    out = tmp_path / "out"
    refused = run(
        ["capture", "noise", str(path), "--name", "talk", "--out", str(out), "--keep-clip", "3"]
    )
    assert refused.exit_code == 2
    assert "SPEECH" in refused.output and "--allow-speech" in refused.output
    assert not out.exists() or not any(out.iterdir())  # nothing written
    allowed = run(
        [
            "capture",
            "noise",
            str(path),
            "--name",
            "talk",
            "--out",
            str(out),
            "--keep-clip",
            "3",
            "--allow-speech",
        ]
    )
    assert allowed.exit_code == 0, allowed.output
    clip, rate = sf.read(str(out / "talk.clip.flac"))
    assert rate == FS and clip.size == 3 * FS
    profile = load_noise_profile(out / "talk.yaml")
    assert profile.source.speech_detected and profile.source.clip_file == "talk.clip.flac"


def test_bad_recordings_exit_2_with_the_reason(tmp_path: Path):
    short = tmp_path / "short.wav"
    sf.write(str(short), np.random.default_rng(0).normal(0, 0.01, 5 * FS), FS)
    result = run(["capture", "noise", str(short), "--name", "x", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "at least 10 s" in result.output
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.random.default_rng(0).normal(0, 0.01, (11 * FS, 2)), FS)
    result = run(["capture", "noise", str(stereo), "--name", "st", "--out", str(tmp_path)])
    assert result.exit_code == 0 and "downmixed 2 channels" in result.output
    assert load_noise_profile(tmp_path / "st.yaml").source.notes[0].startswith("downmixed")
    result = run(["capture", "noise", str(stereo), "--name", "no/slash", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--name" in result.output
    missing = run(["capture", "noise", str(tmp_path / "nope.wav"), "--name", "x"])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_profiles_list_show_render(captured, tmp_path: Path):
    listed = run(["profiles", "list", "--profiles-dir", str(captured)])
    assert listed.exit_code == 0
    for name in ("site", "icu-monitors", "handset-narrowband", "narrowband-handset"):
        assert name in listed.output
    shown = run(["profiles", "show", "site", "--profiles-dir", str(captured)])
    assert shown.exit_code == 0 and re.search(r"tones f0 (59\.9|60\.0)", shown.output)
    assert "events every 0.31" in shown.output
    raw = run(["profiles", "show", "site", "--yaml", "--profiles-dir", str(captured)])
    assert raw.output.startswith("# lastmile noise profile")
    device = run(["profiles", "show", "headset"])
    assert device.exit_code == 0 and "device profile (sweep)" in device.output
    preset = run(["profiles", "show", "laptop-mic"])
    assert preset.exit_code == 0 and "built-in device preset" in preset.output
    out = tmp_path / "x.wav"
    rendered = run(
        [
            "profiles",
            "render",
            "site",
            "--seconds",
            "2.5",
            "--seed",
            "4",
            "--out",
            str(out),
            "--profiles-dir",
            str(captured),
        ]
    )
    assert rendered.exit_code == 0, rendered.output
    audio, rate = sf.read(str(out))
    assert rate == 16000 and audio.size == 40000
    again = tmp_path / "y.wav"
    run(
        [
            "profiles",
            "render",
            "site",
            "--seconds",
            "2.5",
            "--seed",
            "4",
            "--out",
            str(again),
            "--profiles-dir",
            str(captured),
        ]
    )
    assert out.read_bytes() == again.read_bytes()
    not_noise = run(["profiles", "render", "headset", "--seconds", "1", "--out", str(out)])
    assert not_noise.exit_code == 2 and "device profile" in not_noise.output
    unknown = run(["profiles", "show", "nowhere"])
    assert unknown.exit_code == 2 and "not found" in unknown.output


def test_profiles_compare_prints_key_value_lines(captured, recording):
    result = run(["profiles", "compare", "site", str(recording), "--profiles-dir", str(captured)])
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.output.strip().splitlines())
    assert float(values["lsd_db"]) <= 1.5
    assert values["tones_matched"] == "5/5"
    assert float(values["max_tone_freq_err_hz"]) <= 0.1
    assert float(values["max_tone_level_err_db"]) <= 1.0
    assert float(values["event_period_err_pct"]) <= 2.0
    # with the real default backend on two demo utterances
    with_asr = run(
        [
            "profiles",
            "compare",
            "site",
            str(recording),
            "--asr",
            "faster-whisper",
            "--utterances",
            "2",
            "--snr-db",
            "20",
            "--profiles-dir",
            str(captured),
        ]
    )
    assert with_asr.exit_code == 0, with_asr.output
    wers = dict(line.split("=", 1) for line in with_asr.output.strip().splitlines())
    assert 0.0 <= float(wers["wer_recording"]) < 0.8
    assert 0.0 <= float(wers["wer_synth"]) < 0.8


def test_capture_sweep_then_device(tmp_path: Path):
    sweep = tmp_path / "sweep.wav"
    result = run(
        [
            "capture",
            "sweep",
            "--out",
            str(sweep),
            "--sample-rate",
            "16000",
            "--f1-hz",
            "50",
            "--f2-hz",
            "7000",
            "--seconds",
            "3",
        ]
    )
    assert result.exit_code == 0, result.output
    played, rate = sf.read(str(sweep))
    sos = ss.butter(4, [300, 3400], "bandpass", fs=rate, output="sos")
    rec = np.concatenate([np.zeros(500), ss.sosfilt(sos, played) * 0.5])
    rec = rec + np.random.default_rng(1).normal(0, 1e-4, rec.size)
    sf.write(str(tmp_path / "rec.wav"), rec.astype(np.float32), rate)
    out = tmp_path / "profiles"
    result = run(
        [
            "capture",
            "device",
            "--sweep",
            str(sweep),
            "--recording",
            str(tmp_path / "rec.wav"),
            "--name",
            "phone",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "usable band" in result.output and "THD" in result.output
    profile = load_device_profile(out / "phone.yaml")
    assert profile.method == "sweep" and profile.source.recording == "rec.wav"
    both = run(["capture", "device", "--recording", str(tmp_path / "rec.wav"), "--name", "x"])
    assert both.exit_code == 2 and "exactly one of --sweep" in both.output
    noise_only = tmp_path / "noise.wav"
    sf.write(str(noise_only), np.random.default_rng(2).normal(0, 0.05, 6 * rate), rate)
    nosync = run(
        [
            "capture",
            "device",
            "--sweep",
            str(sweep),
            "--recording",
            str(noise_only),
            "--name",
            "y",
            "--out",
            str(out),
        ]
    )
    assert nosync.exit_code == 2 and "no sync marker" in nosync.output
    assert not (out / "y.yaml").exists()


def test_capture_device_with_a_reference_microphone(tmp_path: Path):
    rng = np.random.default_rng(4)
    ref = rng.standard_normal(12 * FS) * 0.1
    sos = ss.butter(2, [200, 5000], "bandpass", fs=FS, output="sos")
    sf.write(str(tmp_path / "ref.wav"), ref.astype(np.float32), FS)
    sf.write(str(tmp_path / "dev.wav"), ss.sosfilt(sos, ref).astype(np.float32), FS)
    result = run(
        [
            "capture",
            "device",
            "--reference",
            str(tmp_path / "ref.wav"),
            "--recording",
            str(tmp_path / "dev.wav"),
            "--name",
            "mic",
            "--out",
            str(tmp_path),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "coherence" in result.output
    assert load_device_profile(tmp_path / "mic.yaml").method == "reference"


def test_capture_record_needs_sounddevice_and_an_input(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if not installed
    result = run(["capture", "record", "--seconds", "1", "--out", str(tmp_path / "a.wav")])
    assert result.exit_code == 2 and "pip install 'lastmile[capture]'" in result.output

    fake = types.ModuleType("sounddevice")
    fake.query_devices = lambda: [{"name": "speaker", "max_input_channels": 0}]
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    result = run(["capture", "record", "--seconds", "1", "--out", str(tmp_path / "a.wav")])
    assert result.exit_code == 2 and "no audio input device" in result.output

    fake.query_devices = lambda: [{"name": "mic", "max_input_channels": 1}]
    fake.rec = lambda frames, samplerate, channels, dtype, device: np.full(
        (frames, 1), 0.01, dtype=np.float32
    )
    fake.wait = lambda: None
    result = run(
        [
            "capture",
            "record",
            "--seconds",
            "0.5",
            "--out",
            str(tmp_path / "a.wav"),
            "--sample-rate",
            "8000",
        ]
    )
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(str(tmp_path / "a.wav"))
    assert rate == 8000 and audio.size == 4000
