"""The split between rendering's sources (lastmile.profiles), capture tooling
(lastmile.capture) and the channel: facades resolve, and the runtime keeps its direction."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import lastmile.capture
import lastmile.profiles


@pytest.mark.parametrize("package", [lastmile.profiles, lastmile.capture])
def test_every_facade_name_resolves(package):
    for name in package.__all__:
        value = getattr(package, name)
        home = getattr(value, "__module__", None)  # constants (PRESET_NAMES) have none
        if home is not None:
            assert home.startswith(f"{package.__name__}."), name
            assert getattr(importlib.import_module(home), name) is value, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        package.nope  # noqa: B018


def test_capture_names_live_in_capture_only():
    assert not set(lastmile.profiles.__all__) & set(lastmile.capture.__all__)
    for name in lastmile.capture.__all__:
        assert getattr(lastmile.capture, name).__module__.startswith("lastmile.capture."), name
    with pytest.raises(AttributeError):
        lastmile.profiles.capture_noise_profile  # noqa: B018


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.timeout(180)
def test_rendering_never_loads_capture_and_the_channel_never_loads_profiles(tmp_path: Path):
    channel = _modules_after("import lastmile.channel")
    assert not any(m.startswith("lastmile.profiles") for m in channel)
    pack = tmp_path / "p.yaml"
    code = f"""
from pathlib import Path
import numpy as np
from lastmile.render.engine import Renderer
from lastmile.scenario.pack import load_pack
from lastmile.testing import speech_like, write_corpus, write_pack
rows = [{{"id": "u0", "audio": "u0.wav", "text": "x", "speaker": "s", "accent": "a",
         "samples": speech_like(np.random.default_rng(0), duration_s=1.0, sample_rate=16000)}}]
write_corpus(Path({str(tmp_path)!r}), rows)
write_pack(Path({str(pack)!r}), corpus={{"manifest": "manifest.csv"}}, conditions=[
    {{"noise": {{"profile": "icu-monitors"}}, "snr_db": 5, "device": "headset",
      "channel": {{"codec": "g711-ulaw", "clip_dbfs": -1}}}}])
loaded = load_pack({str(pack)!r})
renderer = Renderer(loaded, sample_rate=16000, render_rate=16000)
speech, _ = renderer.load_speech({str(tmp_path / "u0.wav")!r})
for cond in loaded.conditions:
    renderer.render(speech, cond, utterance_id="u0")
"""
    rendered = _modules_after(code)
    assert "lastmile.profiles.synthesis" in rendered  # the profile was really synthesized
    assert "lastmile.profiles.device_model" in rendered  # and the device profile loaded
    assert not any(m.startswith("lastmile.capture") for m in rendered)
    assert "sitesim" not in rendered
