"""Noise and device profiles: capture, synthesis, comparison; noise generators and presets.

Imports are lazy (``from lastmile.profiles import ProfileNoise`` loads only what it needs).

Noise profiles: :func:`capture_noise_profile` (recording → :class:`NoiseProfile`),
:func:`load_noise_profile` / :func:`save_noise_profile` (YAML, ``schema_version: 1``),
:class:`ProfileNoise` (synthesis, the ``profile`` noise source) and :func:`profile_loader`
(for :func:`make_noise_generator`), :func:`compare_profile` (fidelity figures).

Device profiles: :func:`make_sweep` / :func:`write_sweep` / :func:`read_sweep`,
:func:`capture_device_from_sweep`, :func:`capture_device_from_reference`,
:class:`DeviceProfile`, :class:`MeasuredDeviceResponse` and :func:`resolve_device` (a
pack's ``device: NAME``: a profile or a preset).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "PRESET_NAMES",
    "CaptureResult",
    "DeviceProfile",
    "DeviceResponse",
    "Fidelity",
    "FirDeviceResponse",
    "MagnitudeTable",
    "MeasuredDeviceResponse",
    "NoiseGenerator",
    "NoiseProfile",
    "ProfileNoise",
    "ProfileNotFoundError",
    "SpeechReport",
    "SweepInfo",
    "apply_device",
    "capture_device_from_reference",
    "capture_device_from_sweep",
    "capture_noise_profile",
    "compare_profile",
    "detect_speech",
    "find_profile_file",
    "get_preset",
    "list_profile_files",
    "load_device_profile",
    "load_noise_profile",
    "make_noise_generator",
    "make_sweep",
    "minimum_phase_fir",
    "profile_loader",
    "profile_search_dirs",
    "read_sweep",
    "record_microphone",
    "resolve_device",
    "save_device_profile",
    "save_noise_profile",
    "write_sweep",
]

_WHERE = {
    "PRESET_NAMES": "presets",
    "DeviceResponse": "presets",
    "FirDeviceResponse": "presets",
    "MagnitudeTable": "presets",
    "apply_device": "presets",
    "get_preset": "presets",
    "NoiseGenerator": "generators",
    "make_noise_generator": "generators",
    "CaptureResult": "noise_capture",
    "capture_noise_profile": "noise_capture",
    "NoiseProfile": "noise_model",
    "ProfileNotFoundError": "noise_model",
    "find_profile_file": "noise_model",
    "list_profile_files": "noise_model",
    "load_noise_profile": "noise_model",
    "profile_search_dirs": "noise_model",
    "save_noise_profile": "noise_model",
    "ProfileNoise": "synthesis",
    "profile_loader": "synthesis",
    "Fidelity": "fidelity",
    "compare_profile": "fidelity",
    "SpeechReport": "speech",
    "detect_speech": "speech",
    "SweepInfo": "sweep",
    "make_sweep": "sweep",
    "read_sweep": "sweep",
    "write_sweep": "sweep",
    "DeviceProfile": "device_model",
    "MeasuredDeviceResponse": "device_model",
    "load_device_profile": "device_model",
    "minimum_phase_fir": "device_model",
    "save_device_profile": "device_model",
    "capture_device_from_reference": "device_capture",
    "capture_device_from_sweep": "device_capture",
    "resolve_device": "devices",
    "record_microphone": "record",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lastmile.profiles' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lastmile.profiles.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from lastmile.profiles.device_capture import (
        capture_device_from_reference,
        capture_device_from_sweep,
    )
    from lastmile.profiles.device_model import (
        DeviceProfile,
        MeasuredDeviceResponse,
        load_device_profile,
        minimum_phase_fir,
        save_device_profile,
    )
    from lastmile.profiles.devices import resolve_device
    from lastmile.profiles.fidelity import Fidelity, compare_profile
    from lastmile.profiles.generators import NoiseGenerator, make_noise_generator
    from lastmile.profiles.noise_capture import CaptureResult, capture_noise_profile
    from lastmile.profiles.noise_model import (
        NoiseProfile,
        ProfileNotFoundError,
        find_profile_file,
        list_profile_files,
        load_noise_profile,
        profile_search_dirs,
        save_noise_profile,
    )
    from lastmile.profiles.presets import (
        PRESET_NAMES,
        DeviceResponse,
        FirDeviceResponse,
        MagnitudeTable,
        apply_device,
        get_preset,
    )
    from lastmile.profiles.record import record_microphone
    from lastmile.profiles.speech import SpeechReport, detect_speech
    from lastmile.profiles.sweep import SweepInfo, make_sweep, read_sweep, write_sweep
    from lastmile.profiles.synthesis import ProfileNoise, profile_loader
