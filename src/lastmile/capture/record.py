"""Record from a microphone (``lastmile capture record``) through the optional sounddevice.

``pip install 'lastmile[capture]'`` installs sounddevice (PortAudio). It is imported only
here, only when recording.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from lastmile.errors import AudioError, ConfigError

__all__ = ["CAPTURE_EXTRA_HINT", "input_devices", "record_microphone"]

CAPTURE_EXTRA_HINT = "pip install 'lastmile[capture]'"


def _sounddevice() -> ModuleType:
    try:
        return importlib.import_module("sounddevice")
    except ImportError as exc:
        raise ConfigError(
            f"recording needs the optional sounddevice package ({exc}); install it with "
            f"`{CAPTURE_EXTRA_HINT}` (it also needs the PortAudio library, e.g. "
            "`apt install libportaudio2`)"
        ) from None
    except OSError as exc:  # sounddevice present but PortAudio missing
        raise ConfigError(
            f"sounddevice cannot load PortAudio ({exc}); install it (e.g. `apt install "
            f"libportaudio2`) and `{CAPTURE_EXTRA_HINT}`"
        ) from None


def input_devices() -> list[dict[str, Any]]:
    """The audio input devices sounddevice sees (``name``, ``index``, channels, rate)."""
    sd = _sounddevice()
    devices = []
    for index, dev in enumerate(sd.query_devices()):
        if int(dev.get("max_input_channels", 0)) > 0:
            devices.append({**dict(dev), "index": index})
    return devices


def record_microphone(
    *, seconds: float, sample_rate: int = 48000, device: int | str | None = None
) -> np.ndarray:
    """Record ``seconds`` of mono audio (float32, shape ``(n,)``) from an input device.

    Raises :class:`ConfigError` when sounddevice is not installed or no input device exists
    (naming the fix), and :class:`AudioError` when the recording fails.
    """
    if not 0 < seconds <= 3600:
        raise ConfigError(f"record: --seconds must be in (0, 3600], got {seconds}")
    sd = _sounddevice()
    if not input_devices():
        raise ConfigError(
            "record: no audio input device found; plug in a microphone (or check the "
            "system's privacy settings), then list devices with `python -m sounddevice`"
        )
    try:
        frames = round(seconds * sample_rate)
        data = sd.rec(frames, samplerate=sample_rate, channels=1, dtype="float32", device=device)
        sd.wait()
    except Exception as exc:  # PortAudioError and friends: sounddevice has no common base
        raise AudioError(
            f"record: recording failed ({exc}); check --device and --sample-rate"
        ) from exc
    samples = np.asarray(data, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(samples)):
        raise AudioError("record: the device returned non-finite samples")
    return samples
