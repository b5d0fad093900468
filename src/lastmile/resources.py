"""Where shipped data lives: the demo corpus, noise/device profiles and scenario packs.

Installed (``pip install .``) they are package data under ``lastmile/_data``; in a source
checkout they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shipped_dir", "shipped_pack"]

_KINDS = ("scenarios", "noise_profiles", "demo_corpus")


def shipped_dir(kind: str) -> Path:
    """Folder of shipped data of ``kind`` (one of scenarios, noise_profiles, demo_corpus)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown shipped data kind {kind!r}; expected one of {_KINDS}")
    installed = Path(__file__).resolve().parent / "_data" / kind
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[2] / kind
    return checkout


def shipped_pack(name: str) -> Path:
    """Path of a shipped scenario pack by name (``demo`` → ``scenarios/demo.yaml``)."""
    return shipped_dir("scenarios") / f"{name}.yaml"
