"""The corpus record: one utterance of clean speech."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Corpus", "Utterance"]


@dataclass(frozen=True)
class Utterance:
    """One clean utterance.

    ``group`` is the value of the pack's ``group_by`` attribute (default ``accent``);
    ``attributes`` holds every other manifest column, as text.
    """

    id: str
    audio: Path
    text: str
    speaker: str
    group: str
    attributes: tuple[tuple[str, str], ...] = field(default=())

    def attribute(self, name: str) -> str | None:
        """The value of a manifest column, or None."""
        return dict(self.attributes).get(name)


@dataclass(frozen=True)
class Corpus:
    """Utterances in manifest order, and where they came from."""

    manifest: Path
    utterances: tuple[Utterance, ...]
    group_by: str

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def groups(self) -> list[str]:
        return sorted({u.group for u in self.utterances})

    @property
    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def by_id(self, utterance_id: str) -> Utterance:
        for u in self.utterances:
            if u.id == utterance_id:
                return u
        raise KeyError(utterance_id)
