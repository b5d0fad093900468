"""The plugin checks a pack with validate_pack before running it: every problem at once."""

from __future__ import annotations

import sys

import numpy as np
import pytest

# Imported before any pytester session (see test_pytest_plugin.py): numpy's FFT extension
# cannot be loaded twice in one process.
import lastmile.analysis
import lastmile.report
import lastmile.run  # noqa: F401
from lastmile.testing import speech_like, write_corpus, write_pack

pytest_plugins = ["pytester"]


@pytest.mark.timeout(120)
def test_a_broken_pack_fails_its_items_listing_every_problem(pytester: pytest.Pytester):
    folder = pytester.path / "scenarios"
    rng = np.random.default_rng(5)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"a/u{i}.wav",
            "text": "take one capsule",
            "speaker": f"s{i}",
            "accent": "us",
            "samples": speech_like(rng, duration_s=1.0, sample_rate=16000),
        }
        for i in range(2)
    ]
    write_corpus(folder, rows)
    (folder / "a/u1.wav").unlink()
    script = pytester.path / "asr.py"
    script.write_text("print('take one capsule')\n")
    pack = write_pack(
        folder / "broken.yaml",
        corpus={"manifest": "manifest.csv"},
        asr=f"command:{sys.executable} {script} {{wav}}",
        conditions=[{"device": "no-such-device"}],
    )
    runs = pytester.path / "runs"
    result = pytester.runpytest("--lastmile", str(pack), f"--lastmile-out={runs}")
    result.assert_outcomes(failed=3)  # clean, the device condition, fairness
    result.stdout.fnmatch_lines(
        ["*a/u1.wav*not found*", "*condition 'no-such-device'*", "*2 problem(s) found in*"]
    )
    assert not (runs / "broken").exists()  # nothing ran
