"""The sources rendering uses: noise generators and profiles, device presets and profiles.

Imports are lazy (``from lastmile.profiles import ProfileNoise`` loads only what it needs).
Making profiles from recordings is :mod:`lastmile.capture`'s work; this package reads them.

Noise: :func:`make_noise_generator` (a pack's ``noise:`` spec → a generator),
:func:`load_noise_profile` / :func:`save_noise_profile` (YAML, ``schema_version: 1``),
:class:`ProfileNoise` (synthesis, the ``profile`` noise source) and :func:`profile_loader`
(for :func:`make_noise_generator`).

Devices: :func:`get_preset` and :func:`apply_device` (response, AGC, clipping),
:class:`DeviceProfile`, :class:`MeasuredDeviceResponse` and :func:`resolve_device` (a
pack's ``device: NAME``: a profile or a preset).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "PRESET_NAMES",
    "DeviceProfile",
    "DeviceResponse",
    "FirDeviceResponse",
    "MagnitudeTable",
    "MeasuredDeviceResponse",
    "NoiseGenerator",
    "NoiseProfile",
    "ProfileNoise",
    "ProfileNotFoundError",
    "apply_device",
    "find_profile_file",
    "get_preset",
    "list_profile_files",
    "load_device_profile",
    "load_noise_profile",
    "make_noise_generator",
    "minimum_phase_fir",
    "profile_loader",
    "profile_search_dirs",
    "resolve_device",
    "save_device_profile",
    "save_noise_profile",
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
    "NoiseProfile": "noise_model",
    "ProfileNotFoundError": "noise_model",
    "find_profile_file": "noise_model",
    "list_profile_files": "noise_model",
    "load_noise_profile": "noise_model",
    "profile_search_dirs": "noise_model",
    "save_noise_profile": "noise_model",
    "ProfileNoise": "synthesis",
    "profile_loader": "synthesis",
    "DeviceProfile": "device_model",
    "MeasuredDeviceResponse": "device_model",
    "load_device_profile": "device_model",
    "minimum_phase_fir": "device_model",
    "save_device_profile": "device_model",
    "resolve_device": "devices",
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
    from lastmile.profiles.device_model import (
        DeviceProfile,
        MeasuredDeviceResponse,
        load_device_profile,
        minimum_phase_fir,
        save_device_profile,
    )
    from lastmile.profiles.devices import resolve_device
    from lastmile.profiles.generators import NoiseGenerator, make_noise_generator
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
    from lastmile.profiles.synthesis import ProfileNoise, profile_loader
