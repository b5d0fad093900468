"""Check a scenario pack before running it: every problem at once.

:func:`validate_pack` loads the pack, checks its corpus (every row and every audio file),
builds what each condition needs (noise files and generators, profiles, devices, front ends
at the rate they run at) and builds the backend exactly as a run builds it, so it fails
where a run would. ``lastmile validate``, the pytest plugin and Python users call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lastmile.errors import LastmileError

if TYPE_CHECKING:
    from lastmile.corpus import Corpus
    from lastmile.scenario.pack import LoadedPack

__all__ = ["PackReport", "validate_pack"]


@dataclass(frozen=True)
class PackReport:
    """What :func:`validate_pack` found.

    ``problems`` each name the file, row or field and stop a run; ``warnings`` are fixed on
    load but said loudly (stereo audio downmixed, another rate resampled). The counts are
    those of the corpus as read (0 and no groups when it could not be read).
    """

    pack: Path
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    n_conditions: int
    corpus_read: bool
    n_utterances: int
    n_speakers: int
    groups: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No problem, and the corpus was read."""
        return not self.problems and self.corpus_read


def validate_pack(pack: str | Path, *, asr: str | None = None) -> PackReport:
    """Check ``pack`` and everything it refers to, listing every problem at once.

    ``asr`` checks this backend spec instead of the pack's (as ``--asr`` does for a run).
    A pack file that cannot be read or fails its schema raises :class:`ConfigError`
    (nothing else can be checked then); every other problem is collected in the report.
    """
    from lastmile.asr import build_backend
    from lastmile.corpus import check_corpus
    from lastmile.render.engine import Renderer
    from lastmile.scenario.pack import load_pack

    problems: list[str] = []
    warnings: list[str] = []
    loaded = load_pack(pack)  # schema errors stop here: nothing else can be checked
    rate = loaded.pack.render_sample_rate
    corpus = None
    try:  # metadata and audio problems together, even when the manifest has some
        corpus, found = check_corpus(
            loaded.manifest_path,
            format=loaded.pack.corpus.format,
            columns=loaded.pack.corpus.columns,
            group_by=loaded.pack.group_by,
            normalizer=loaded.pack.normalizer,
            quoting=loaded.pack.corpus.quoting,
            sample_rate=rate,
        )
        for p in found:
            (warnings if p.severity == "warning" else problems).append(str(p))
    except LastmileError as exc:
        problems.append(str(exc))
    if corpus is not None:
        warnings.extend(_group_warnings(corpus, loaded))
    renderer = Renderer(loaded, sample_rate=rate, render_rate=rate)
    for index, cond in enumerate(loaded.conditions):
        try:
            renderer.validate_condition(cond)
        except LastmileError as exc:
            problems.append(f"{loaded.path}: condition '{cond.id}' (#{index}): {exc}")
    try:  # built exactly as `lastmile run` builds it, so it fails exactly where run would
        build_backend(asr if asr is not None else loaded.pack.asr)
    except LastmileError as exc:
        where = "--asr" if asr is not None else f"{loaded.path}: asr"
        problems.append(f"{where}: {exc}")
    return PackReport(
        pack=Path(pack),
        problems=tuple(problems),
        warnings=tuple(warnings),
        n_conditions=len(loaded.conditions),
        corpus_read=corpus is not None,
        n_utterances=len(corpus) if corpus is not None else 0,
        n_speakers=len(corpus.speakers) if corpus is not None else 0,
        groups=tuple(corpus.groups) if corpus is not None else (),
    )


def _group_warnings(corpus: Corpus, loaded: LoadedPack) -> list[str]:
    """A corpus whose groups cannot give verdicts: one group only, or groups with fewer
    speakers than ``fairness.min_speakers`` (every condition is then insufficient-data)."""
    speakers: dict[str, set[str]] = {}
    for utt in corpus.utterances:
        speakers.setdefault(utt.group, set()).add(utt.speaker)
    column = loaded.pack.group_by
    if len(speakers) == 1:
        (group,) = speakers
        return [
            f"{loaded.path}: group_by '{column}' puts every speaker in one group ({group!r}); "
            "lastmile compares groups, so every condition's verdict will be insufficient-data: "
            "add the other groups' speakers, or set group_by to a column that names each "
            "speaker's accent or dialect"
        ]
    least = loaded.pack.fairness.min_speakers
    short = sorted((g, len(s)) for g, s in speakers.items() if len(s) < least)
    if not short:
        return []
    named = ", ".join(f"{g!r} has {n}" for g, n in short)
    verb = "has" if len(short) == 1 else "have"
    return [
        f"{loaded.path}: {len(short)} of {len(speakers)} groups {verb} fewer speakers than "
        f"fairness.min_speakers ({least}): {named}; every condition's verdict will be "
        "insufficient-data until they have more: add speakers, merge groups, or lower "
        "fairness.min_speakers knowingly (intervals need 3 speakers per group)"
    ]
