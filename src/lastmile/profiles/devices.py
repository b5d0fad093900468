"""Resolve a pack's ``device: NAME`` to a device response: a measured profile or a preset.

A device profile file ``NAME.yaml`` (``kind: device``) in the search folders wins over a
built-in preset of the same name, so a site's own measurement overrides the generic one
(the shipped ``speakerphone`` profile is a measurement of the ``speakerphone`` preset's
design, so the two agree within a dB).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import yaml

from lastmile.errors import ConfigError
from lastmile.profiles.device_model import MeasuredDeviceResponse, load_device_profile
from lastmile.profiles.presets import PRESET_NAMES, DeviceResponse, get_preset

__all__ = ["resolve_device"]

log = logging.getLogger(__name__)


def _kind_of(path: Path) -> object:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def resolve_device(name: str, *, search_dirs: Sequence[str | Path] = ()) -> DeviceResponse:
    """The device response called ``name``: the first ``NAME.yaml`` device profile in
    ``search_dirs``, else the built-in preset.

    Raises :class:`ConfigError` listing the presets and folders when neither exists, or
    naming the file when the profile is broken or is a noise profile.
    """
    for folder in search_dirs:
        path = Path(folder) / f"{name}.yaml"
        if not path.is_file():
            continue
        if _kind_of(path) == "noise" and name in PRESET_NAMES:
            continue  # a noise profile that happens to share a preset's name
        profile = load_device_profile(path)
        if name in PRESET_NAMES:
            log.info("device %r: the profile %s is used instead of the preset", name, path)
        return MeasuredDeviceResponse(profile)
    if name in PRESET_NAMES:
        return get_preset(name)
    folders = ", ".join(str(d) for d in search_dirs) or "(no folders)"
    raise ConfigError(
        f"device {name!r}: no such preset ({', '.join(PRESET_NAMES)}) and no device profile "
        f"{name}.yaml in {folders}; measure one with `lastmile capture device` or pick a preset"
    )
