"""Manifest loaders: CSV, TSV and JSONL, with a column mapping.

Every problem is collected with its file, row and field; :class:`CorpusProblems` carries
them all so ``lastmile validate`` can show every one at once.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lastmile.corpus.model import Corpus, Utterance
from lastmile.errors import ConfigError

__all__ = [
    "DEFAULT_COLUMNS",
    "CorpusProblems",
    "Problem",
    "load_manifest",
    "read_manifest_rows",
]

DEFAULT_COLUMNS: Mapping[str, str] = {
    "id": "id",
    "audio": "audio",
    "text": "text",
    "speaker": "speaker",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the corpus: where (file, row, field), what, and the fix."""

    file: str
    row: int | None
    field: str | None
    message: str
    severity: str = "error"  # "error" stops a run; "warning" is fixed on load, said loudly

    def __str__(self) -> str:
        where = ("warning: " if self.severity == "warning" else "") + self.file
        if self.row is not None:
            where += f": row {self.row}"
        if self.field:
            where += f": {self.field}"
        return f"{where}: {self.message}"


class CorpusProblems(ConfigError):
    """The manifest has problems; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the corpus:\n  {shown}{more}")


def read_manifest_rows(manifest: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV/TSV/JSONL manifest as (row number, mapping of column → text).

    Row numbers are 1-based data rows (the header of CSV/TSV is not counted; JSONL counts
    lines).
    """
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: manifest not found; check corpus.manifest in the pack")
    suffix = manifest.suffix.lower()
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{manifest}: cannot be read as UTF-8 text ({exc})") from exc
    rows: list[tuple[int, dict[str, str]]] = []
    if suffix in {".csv", ".tsv"}:
        delimiter = "\t" if suffix == ".tsv" else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
        if not reader.fieldnames:
            raise ConfigError(f"{manifest}: empty manifest; expected a header row")
        for number, row in enumerate(reader, start=1):
            if None in row:
                raise ConfigError(
                    f"{manifest}: row {number}: more fields than the header has columns; "
                    f"quote fields that contain '{delimiter}'"
                )
            rows.append((number, {k: (v or "") for k, v in row.items()}))
    elif suffix in {".jsonl", ".json"}:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{manifest}: line {number}: invalid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise ConfigError(f"{manifest}: line {number}: expected a JSON object per line")
            rows.append((number, {str(k): "" if v is None else str(v) for k, v in obj.items()}))
    else:
        raise ConfigError(
            f"{manifest}: unsupported manifest format '{suffix}'; use .csv, .tsv or .jsonl"
        )
    return rows


def load_manifest(
    manifest: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    check_audio: bool = True,
) -> Corpus:
    """Load a manifest into a :class:`Corpus`, collecting every problem before raising.

    ``columns`` maps our fields (id, audio, text, speaker, and the ``group_by`` attribute)
    to the manifest's column names. Audio paths are relative to the manifest's folder.
    With ``check_audio`` each audio path must exist (contents are checked by
    :func:`lastmile.corpus.validate_corpus`).
    """
    manifest = Path(manifest)
    mapping = {**DEFAULT_COLUMNS, group_by: group_by, **(columns or {})}
    rows = read_manifest_rows(manifest)
    file = str(manifest)
    problems: list[Problem] = []
    if not rows:
        raise CorpusProblems([Problem(file, None, None, "the manifest has no rows")])
    present = set().union(*(r.keys() for _, r in rows))
    for ours in ("id", "audio", "text", "speaker", group_by):
        theirs = mapping[ours]
        if theirs not in present:
            hint = f"map it with corpus.columns: {{{ours}: <your column>}}"
            problems.append(
                Problem(
                    file,
                    None,
                    theirs,
                    f"required column '{theirs}' is missing (have: {', '.join(sorted(present))}); "
                    + hint,
                )
            )
    if problems:
        raise CorpusProblems(problems)
    reserved = {mapping[k] for k in ("id", "audio", "text", "speaker", group_by)}
    seen: dict[str, int] = {}
    utterances: list[Utterance] = []
    base = manifest.parent
    for number, row in rows:
        values = {ours: row.get(mapping[ours], "").strip() for ours in mapping}
        bad = False
        for ours in ("id", "audio", "text", "speaker", group_by):
            if not values[ours]:
                fix = {
                    "text": "every utterance needs its reference transcript",
                    "speaker": "analysis clusters by speaker; give every row a speaker id",
                }.get(ours, "fill it in or remove the row")
                problems.append(Problem(file, number, mapping[ours], f"empty; {fix}"))
                bad = True
        uid = values["id"]
        if uid:
            if uid in seen:
                problems.append(
                    Problem(
                        file,
                        number,
                        mapping["id"],
                        f"duplicate id '{uid}' (first at row {seen[uid]}); ids must be unique",
                    )
                )
                bad = True
            else:
                seen[uid] = number
        audio_path = (base / values["audio"]) if values["audio"] else base
        if values["audio"] and check_audio and not audio_path.is_file():
            problems.append(
                Problem(
                    file,
                    number,
                    mapping["audio"],
                    f"audio file '{values['audio']}' not found (resolved to {audio_path}); "
                    "paths are relative to the manifest",
                )
            )
            bad = True
        if bad:
            continue
        extra = tuple(sorted((k, v) for k, v in row.items() if k not in reserved))
        utterances.append(
            Utterance(
                id=uid,
                audio=audio_path,
                text=values["text"],
                speaker=values["speaker"],
                group=values[group_by],
                attributes=extra,
            )
        )
    if problems:
        raise CorpusProblems(problems)
    return Corpus(manifest=manifest, utterances=tuple(utterances), group_by=group_by)
