"""Real ASR plugins for run-engine tests, installed through the ``lastmile.asr`` entry-point
group (a dist-info folder on ``sys.path`` and ``PYTHONPATH``, as pip would leave it)."""

from __future__ import annotations

from pathlib import Path

import pytest

RAISES = '''
class Raises:
    """A plugin whose decoder raises on every item (a dead recognizer)."""

    name = "raises"
    sample_rate = 16000

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def fingerprint(self):
        return "raises/1"

    def transcribe(self, batch):
        raise RuntimeError("the model file is corrupt")
'''

SLOW = '''
import time


class Slow:
    """A plugin that takes SLOW_S seconds per item (a slow decoder on a busy machine)."""

    name = "slow"
    sample_rate = 16000
    seconds = SLOW_S

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def fingerprint(self):
        return "slow/1"

    def transcribe(self, batch):
        time.sleep(self.seconds * len(batch))
        return ["take one capsule twice a day"] * len(batch)
'''

HANGS = '''
import time
import numpy as np


class Hangs:
    """A plugin whose decoder hangs for a minute on noisy audio (a stuck decoder)."""

    name = "hangs"
    sample_rate = 16000

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def fingerprint(self):
        return "hangs/1"

    def transcribe(self, batch):
        for audio in batch:
            if np.sqrt(np.mean(audio[:640] ** 2)) > 1e-3:
                time.sleep(60.0)
        return ["take one capsule twice a day"] * len(batch)
'''


def install_plugin(
    site: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str, class_name: str
) -> None:
    """Install ``source`` as module ``<name>_asr`` registering backend ``name``."""
    module = f"{name}_asr"
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[lastmile.asr]\n{name} = {module}:{class_name}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
