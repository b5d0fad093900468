"""Manifest loaders: CSV, TSV and JSONL, with a column mapping.

Every problem is collected with its file, row and field; :class:`CorpusProblems` carries
them all so ``lastmile validate`` can show every one at once.

Quoting (``quoting``, the pack's ``corpus.quoting``): ``csv`` (the default) reads CSV and TSV
manifests as RFC 4180 quotes them (a field may be wrapped in ``"``; a ``"`` inside it is
written ``""``), strictly: a quote that does not close where a field ends is an error, and so
is a quoted field that runs over several lines, which is how a stray ``"`` merges rows.
``none`` reads every character literally (fields can then hold no delimiter and no newline),
as Common Voice and most TSV tools write them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lastmile.corpus.model import Corpus, Utterance
from lastmile.errors import ConfigError

__all__ = [
    "DEFAULT_COLUMNS",
    "MAX_FIELD_CHARS",
    "QUOTING",
    "AudioRef",
    "CorpusProblems",
    "Problem",
    "csv_field_limit",
    "load_manifest",
    "read_manifest_rows",
    "transcript_problem",
]

QUOTING = ("csv", "none")
"""Values of ``quoting`` (the pack's ``corpus.quoting``)."""

MAX_FIELD_CHARS = 16 * 1024 * 1024
"""The longest manifest cell read (Python's csv stops at 128 KiB unless told otherwise)."""

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


@dataclass(frozen=True)
class AudioRef:
    """An audio file that a corpus entry names and that exists, and where the entry is."""

    file: str
    row: int | None
    id: str
    path: Path


class CorpusProblems(ConfigError):
    """The manifest has problems; ``problems`` lists every one. ``audio`` lists the audio
    files the manifest's entries name that exist (also of entries with other problems), so
    their contents can be checked too."""

    def __init__(self, problems: list[Problem], audio: Sequence[AudioRef] = ()):
        self.problems = problems
        self.audio = tuple(audio)
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the corpus:\n  {shown}{more}")


def transcript_problem(
    text: str, normalizer: str | None, *, file: str, row: int | None, field: str
) -> Problem | None:
    """A problem when ``text`` has no words after the pack's ``normalizer`` (``"..."``, or
    ``"um"`` under ``whisper``): it could not be scored. None when it has words, or when
    ``normalizer`` is None (no check)."""
    if normalizer is None or not text.strip():
        return None
    from lastmile.score.normalizers import get_normalizer

    try:
        norm = get_normalizer(normalizer)
    except ValueError as exc:
        raise ConfigError(f"normalizer: {exc}") from None
    if norm(text).split():
        return None
    return Problem(
        file,
        row,
        field,
        f"{text!r} has no words after the '{normalizer}' normalizer, so it cannot be scored; "
        "write the words spoken, or remove the row",
    )


@contextmanager
def csv_field_limit(chars: int) -> Iterator[None]:
    """Python's csv field size limit raised to ``chars`` while reading, then put back."""
    before = csv.field_size_limit()
    csv.field_size_limit(max(before, chars))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def read_delimited(
    path: Path, text: str, *, delimiter: str, quoting: str = "csv"
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the records of a CSV or TSV text as (row number, fields); blank lines
    are skipped and rows are numbered from 1 after the header. Raises
    :class:`CorpusProblems` listing every record that is malformed: a quoted field running
    over several lines (rows merged by a stray quote), a quote that does not close where a
    field ends, a field count that differs from the header's, a field over
    :data:`MAX_FIELD_CHARS`."""
    file = str(path)
    if quoting not in QUOTING:
        raise ConfigError(
            f"{file}: corpus.quoting: expected one of {', '.join(QUOTING)}, got {quoting!r}"
        )
    literal = quoting == "none"
    name = "TSV" if delimiter == "\t" else "CSV"
    sep = "tab" if delimiter == "\t" else f"'{delimiter}'"
    fix = (
        f"a {name} field read with corpus.quoting: none can hold no {sep} and no line break"
        if literal
        else "quote the field properly (wrap it in '\"' and write a '\"' inside it as "
        "'\"\"'), or set corpus.quoting: none in the pack if the quotes in this file are "
        "literal text"
    )
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if literal else csv.QUOTE_MINIMAL,
        strict=not literal,
    )
    problems: list[Problem] = []
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    number = 0
    last_line = 0
    with csv_field_limit(MAX_FIELD_CHARS):
        while True:
            first_line = last_line + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if header is not None:
                    number += 1
                where = f"line {first_line}"
                if "field larger than field limit" in str(exc):
                    message = (
                        f"{where}: a field longer than {MAX_FIELD_CHARS:,} characters; a "
                        "manifest cell holds one transcript or value (check the quoting)"
                    )
                elif "unexpected end of data" in str(exc):
                    message = (
                        f"{where}: a '\"' opens a quoted field that never closes (it runs to "
                        f"the end of the file, line {reader.line_num}); {fix}"
                    )
                else:
                    message = f"{where}: malformed {name} quoting ({exc}); {fix}"
                row = number if header is not None else None
                problems.append(Problem(file, row, None, message))
                last_line = reader.line_num
                continue
            last_line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if header is None:
                header = fields
                continue
            number += 1
            if last_line > first_line:
                problems.append(
                    Problem(
                        file,
                        number,
                        None,
                        f"lines {first_line}–{last_line} were read as one row: a quoted field "
                        f"opened on line {first_line} runs over {last_line - first_line + 1} "
                        f"lines (a stray '\"' merges the rows after it); {fix}",
                    )
                )
            elif len(fields) != len(header):
                more = len(fields) > len(header)
                problems.append(
                    Problem(
                        file,
                        number,
                        None,
                        f"line {first_line}: {len(fields)} field(s), the header has "
                        f"{len(header)}; "
                        + (
                            f"quote fields that contain {sep}"
                            if more and not literal and delimiter == ","
                            else f"a {sep} inside a value, or a truncated line"
                            if more
                            else "a truncated line, or a field missing"
                        ),
                    )
                )
            else:
                records.append((number, fields))
    if header is None and not problems:
        raise ConfigError(f"{file}: empty manifest; expected a header row")
    if problems:
        raise CorpusProblems(problems)
    return header or [], records


def read_manifest_rows(manifest: Path, *, quoting: str = "csv") -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV/TSV/JSONL manifest as (row number, mapping of column → text).

    Row numbers are 1-based data rows (the header of CSV/TSV and blank lines are not
    counted; JSONL counts lines). ``quoting`` is how CSV and TSV fields are quoted (see the
    module's docstring); malformed rows raise :class:`CorpusProblems` naming each one.
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
        header, records = read_delimited(manifest, text, delimiter=delimiter, quoting=quoting)
        rows = [(number, dict(zip(header, fields, strict=True))) for number, fields in records]
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
    normalizer: str | None = "default",
    quoting: str = "csv",
) -> Corpus:
    """Load a manifest into a :class:`Corpus`, collecting every problem before raising.

    ``columns`` maps our fields (id, audio, text, speaker, and the ``group_by`` attribute)
    to the manifest's column names. Audio paths are relative to the manifest's folder.
    With ``check_audio`` each audio path must exist (contents are checked by
    :func:`lastmile.corpus.validate_corpus`). A transcript with no words after
    ``normalizer`` (the pack's; None skips the check) is a problem. ``quoting`` is how CSV
    and TSV fields are quoted: ``csv`` or ``none`` (see the module's docstring).
    """
    manifest = Path(manifest)
    mapping = {**DEFAULT_COLUMNS, group_by: group_by, **(columns or {})}
    rows = read_manifest_rows(manifest, quoting=quoting)
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
    origins: list[tuple[str, int | None]] = []
    found: list[AudioRef] = []
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
        empty_text = transcript_problem(
            values["text"], normalizer, file=file, row=number, field=mapping["text"]
        )
        if empty_text is not None:
            problems.append(empty_text)
            bad = True
        audio_path = (base / values["audio"]) if values["audio"] else base
        if values["audio"] and audio_path.is_file():
            found.append(AudioRef(file, number, uid, audio_path))
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
        origins.append((file, number))
    if problems:
        raise CorpusProblems(problems, found)
    return Corpus(
        manifest=manifest,
        utterances=tuple(utterances),
        group_by=group_by,
        origins=tuple(origins),
    )
