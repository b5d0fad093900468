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
    """Utterances in manifest order, and where they came from.

    ``origins`` gives, for each utterance where the loader knows it, the file and row (or
    line) it was read from, for messages; it is empty for a corpus built otherwise.
    """

    manifest: Path
    utterances: tuple[Utterance, ...]
    group_by: str
    origins: tuple[tuple[str, int | None], ...] = field(default=(), compare=False, repr=False)

    def origin(self, index: int) -> tuple[str, int | None]:
        """(file, row) of the utterance at ``index``: where it was read, if known, else the
        manifest and the 1-based position."""
        if len(self.origins) == len(self.utterances):
            return self.origins[index]
        return str(self.manifest), index + 1

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
