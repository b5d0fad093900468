"""Scenario packs: schema, condition expansion, per-item seeds."""

from lastmile.scenario.specs import (
    ChannelSpec,
    DeviceSpec,
    FileNoiseSpec,
    HumNoiseSpec,
    NoiseSpec,
    ProfileNoiseSpec,
    ReverbSpec,
)

__all__ = [
    "ChannelSpec",
    "DeviceSpec",
    "FileNoiseSpec",
    "HumNoiseSpec",
    "NoiseSpec",
    "ProfileNoiseSpec",
    "ReverbSpec",
]
