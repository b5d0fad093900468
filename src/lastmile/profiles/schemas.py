"""JSON Schemas of the profile files, from the pydantic models (shipped in lastmile/schemas)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "device_profile_json_schema",
    "noise_profile_json_schema",
    "schema_texts",
    "write_profile_schemas",
]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def noise_profile_json_schema() -> dict[str, Any]:
    """JSON Schema of a noise profile file (``kind: noise``, ``schema_version: 1``)."""
    from lastmile.profiles.noise_model import NoiseProfile

    return {"$schema": _DRAFT, **NoiseProfile.model_json_schema()}


def device_profile_json_schema() -> dict[str, Any]:
    """JSON Schema of a device profile file (``kind: device``, ``schema_version: 1``)."""
    from lastmile.profiles.device_model import DeviceProfile

    return {"$schema": _DRAFT, **DeviceProfile.model_json_schema()}


def schema_texts() -> dict[str, str]:
    """File name → text of each schema file, as shipped."""
    return {
        "noise_profile.schema.json": json.dumps(noise_profile_json_schema(), indent=2) + "\n",
        "device_profile.schema.json": json.dumps(device_profile_json_schema(), indent=2) + "\n",
    }


def write_profile_schemas(folder: str | Path) -> list[Path]:
    """Write both schema files into ``folder`` (``src/lastmile/schemas`` in a checkout)."""
    from lastmile.profiles.files import atomic_write_text

    return [atomic_write_text(Path(folder) / name, text) for name, text in schema_texts().items()]
