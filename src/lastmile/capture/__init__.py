"""Capture tooling: make noise and device profiles from recordings, and check them.

Rendering never imports this package; it reads the profiles it writes (:mod:`lastmile.profiles`).
Imports are lazy (``from lastmile.capture import make_sweep`` loads only what it needs).

Noise: :func:`capture_noise_profile` (recording → :class:`lastmile.profiles.NoiseProfile`,
tones, broadband envelope, periodic events), :func:`detect_speech` (is there speech in the
recording?), :func:`compare_profile` (how faithfully a profile reproduces its recording).

Devices: :func:`make_sweep` / :func:`write_sweep` / :func:`read_sweep` (an exponential sine
sweep with a sync marker), :func:`capture_device_from_sweep` and
:func:`capture_device_from_reference` (recording → :class:`lastmile.profiles.DeviceProfile`),
:func:`record_microphone` (the ``capture`` extra).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CaptureResult",
    "Fidelity",
    "SpeechReport",
    "SweepInfo",
    "capture_device_from_reference",
    "capture_device_from_sweep",
    "capture_noise_profile",
    "compare_profile",
    "detect_speech",
    "make_sweep",
    "read_sweep",
    "record_microphone",
    "write_sweep",
]

_WHERE = {
    "CaptureResult": "noise",
    "capture_noise_profile": "noise",
    "capture_device_from_reference": "device",
    "capture_device_from_sweep": "device",
    "Fidelity": "fidelity",
    "compare_profile": "fidelity",
    "SpeechReport": "speech",
    "detect_speech": "speech",
    "SweepInfo": "sweep",
    "make_sweep": "sweep",
    "read_sweep": "sweep",
    "write_sweep": "sweep",
    "record_microphone": "record",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lastmile.capture' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lastmile.capture.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from lastmile.capture.device import (
        capture_device_from_reference,
        capture_device_from_sweep,
    )
    from lastmile.capture.fidelity import Fidelity, compare_profile
    from lastmile.capture.noise import CaptureResult, capture_noise_profile
    from lastmile.capture.record import record_microphone
    from lastmile.capture.speech import SpeechReport, detect_speech
    from lastmile.capture.sweep import SweepInfo, make_sweep, read_sweep, write_sweep
