"""`lastmile capture`: sweeps at any rate, short recordings, profiles written where packs look."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from lastmile.capture.sweep import read_sweep
from lastmile.cli import cli
from lastmile.testing import write_pack

FS = 16000


def run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_a_sweep_at_16_khz_needs_no_hand_lowered_f2(tmp_path: Path):
    result = run(["capture", "sweep", "--out", str(tmp_path / "s.wav"), "--sample-rate", "16000"])
    assert result.exit_code == 0, result.output
    _, info = read_sweep(tmp_path / "s.wav")
    assert info.sample_rate == 16000 and info.f2_hz == 7200.0  # 0.45 × the rate
    result = run(["capture", "sweep", "--out", str(tmp_path / "w.wav")])
    assert result.exit_code == 0 and read_sweep(tmp_path / "w.wav")[1].f2_hz == 20000.0
    asked = run(
        ["capture", "sweep", "--out", str(tmp_path / "x.wav"), "--sample-rate", "16000",
         "--f2-hz", "9000"]
    )  # fmt: skip
    assert asked.exit_code == 2 and "--f2-hz 9000 is above 0.95 × Nyquist" in asked.output


def _hum_recording(path: Path, seconds: float) -> Path:
    rng = np.random.default_rng(9)
    t = np.arange(round(seconds * FS)) / FS
    hum = sum(np.sin(2 * np.pi * 60.0 * k * t) * 10 ** (-3 * k / 20) for k in range(1, 30))
    x = 0.05 * hum / np.max(np.abs(hum)) + 1e-4 * rng.standard_normal(t.size)
    sf.write(str(path), x.astype(np.float32), FS)
    return path


def test_a_short_recording_is_told_how_much_is_needed(tmp_path: Path):
    short = _hum_recording(tmp_path / "short.wav", 9.85)
    result = run(["capture", "noise", str(short), "--name", "x", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "short.wav: 9.85 s long; a noise profile needs at least 10 s" in result.output
    run(["capture", "sweep", "--out", str(tmp_path / "sweep.wav"), "--sample-rate", "16000"])
    result = run(
        ["capture", "device", "--sweep", str(tmp_path / "sweep.wav"), "--recording", str(short),
         "--name", "d", "--out", str(tmp_path)]
    )  # fmt: skip
    assert result.exit_code == 2
    assert "short.wav: 9.85 s long; a recording of this sweep needs at least 12.05 s" in (
        result.output
    )


def test_capture_noise_writes_where_the_pack_looks(tmp_path: Path, monkeypatch):
    from lastmile.render.engine import Renderer
    from lastmile.scenario.pack import load_pack

    recording = _hum_recording(tmp_path / "ward-hum.wav", 12.0)
    pack = write_pack(
        tmp_path / "site" / "ward.yaml",
        corpus={"manifest": "corpus.csv"},
        conditions=[{"noise": {"profile": "ward-hum"}, "snr_db": 10}],
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not where the pack is
    result = run(["capture", "noise", str(recording), "--name", "ward-hum", "--pack", str(pack)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "noise_profiles" / "ward-hum.yaml").is_file()
    assert not (elsewhere / "noise_profiles").exists()
    assert "add `noise: {profile: ward-hum}` to a condition" in result.output
    assert "speech detected: no" in result.output  # a hum is not speech
    loaded = load_pack(pack)
    renderer = Renderer(loaded, sample_rate=FS)
    generator = renderer.noise_generator(loaded.conditions[1])
    assert generator.name == "ward-hum"

    loose = run(["capture", "noise", str(recording), "--name", "h", "--out", str(tmp_path / "p")])
    assert loose.exit_code == 0
    assert "packs look in noise_profiles/ beside the pack file, not in" in loose.output
    both = run(
        ["capture", "noise", str(recording), "--name", "h", "--out", "x", "--pack", str(pack)]
    )
    assert both.exit_code == 2 and "--out or --pack, not both" in both.output
