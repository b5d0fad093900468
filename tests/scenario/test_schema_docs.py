"""Every field of the pack's JSON Schema says what it is."""

from __future__ import annotations

from typing import Any

from lastmile.scenario.pack import pack_json_schema


def _fields(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property of every object in the schema, $defs included."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            out.append((f"{path}.{name}", prop))
        for key, value in node.items():
            out += _fields(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _fields(value, f"{path}[{index}]")
    return out


def test_every_schema_field_has_a_description():
    fields = _fields(pack_json_schema())
    assert len(fields) > 50  # the pack, corpus, conditions, grid, noise kinds, device, ...
    missing = [path for path, prop in fields if len(prop.get("description", "").strip()) < 10]
    assert missing == []


def test_descriptions_state_the_path_rule():
    schema = pack_json_schema()
    defs = schema["$defs"]
    assert "relative to the pack file" in defs["CorpusRef"]["properties"]["manifest"]["description"]
    assert "relative to the pack file" in defs["FileNoiseSpec"]["properties"]["file"]["description"]
    profile = defs["ProfileNoiseSpec"]["properties"]["profile"]["description"]
    assert "noise_profiles/ beside the pack file, then the shipped profiles" in profile
    assert "relative to the pack file" in schema["properties"]["asr"]["description"]
