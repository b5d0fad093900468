"""Corpus formats people already have: Kaldi data dir, NeMo manifest, Common Voice TSV,
folder of wav+txt; and :func:`load_corpus`, which picks the loader.

Every loader returns the same :class:`Corpus` and collects every problem as a
:class:`Problem` (file, line or row, field, what was found and the fix) before raising
:class:`CorpusProblems`, as :func:`load_manifest` does. Nothing is converted on load:
piped ``wav.scp`` commands, ``segments`` and NeMo ``offset`` (parts of longer recordings)
are refused with the command that makes them files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lastmile.corpus.loaders import (
    AudioRef,
    CorpusProblems,
    Problem,
    load_manifest,
    read_delimited,
    read_manifest_rows,
    transcript_problem,
)
from lastmile.corpus.model import Corpus, Utterance
from lastmile.errors import ConfigError

__all__ = [
    "FORMATS",
    "detect_format",
    "load_commonvoice",
    "load_corpus",
    "load_folder",
    "load_kaldi",
    "load_nemo",
]

FORMATS = ("auto", "csv", "tsv", "jsonl", "kaldi", "nemo", "commonvoice", "folder")
"""Values of ``format`` (the pack's ``corpus.format``)."""

_AUDIO_SUFFIXES = (".wav", ".flac")
_MANIFEST_SUFFIXES = {"csv": (".csv",), "tsv": (".tsv",), "jsonl": (".jsonl", ".json")}
_ARK_OFFSET = re.compile(r"\.ark:\d+$")


@dataclass(frozen=True)
class _At:
    """Where one field of an utterance was read: file, 1-based line or row, field name."""

    file: str
    row: int | None
    field: str


@dataclass(frozen=True)
class _Draft:
    """An utterance as read, before checks. A value of None was missing and is already
    reported; an empty string is reported by :func:`_assemble`."""

    id: str
    audio: Path | None
    text: str | None
    speaker: str | None
    group: str | None
    at: Mapping[str, _At]
    attributes: tuple[tuple[str, str], ...] = ()


_FIXES = {
    "id": "every utterance needs an id",
    "audio": "give the audio file's path",
    "text": "every utterance needs its reference transcript",
    "speaker": "analysis clusters by speaker; give every utterance a speaker id",
    "group": "every utterance needs a group value; fill it in or remove the utterance",
}


def _assemble(
    source: Path,
    drafts: list[_Draft],
    problems: list[Problem],
    *,
    group_by: str,
    check_audio: bool,
    normalizer: str | None = "default",
    fixes: Mapping[str, str] | None = None,
    audio_hint: str = "",
) -> Corpus:
    """Check drafts (empty fields, duplicate ids, transcripts with no words after
    ``normalizer``, audio present) and build the corpus, or raise with every problem
    (``problems`` already found by the loader come first)."""
    fix = {**_FIXES, **(fixes or {})}
    seen: dict[str, _At] = {}
    utterances: list[Utterance] = []
    origins: list[tuple[str, int | None]] = []
    found: list[AudioRef] = []
    for d in drafts:
        bad = False
        values = {"id": d.id, "text": d.text, "speaker": d.speaker, "group": d.group}
        for ours, value in values.items():
            if value is None:
                bad = True
            elif not value.strip():
                at = d.at[ours]
                problems.append(Problem(at.file, at.row, at.field, f"empty; {fix[ours]}"))
                bad = True
        if d.id:
            at = d.at["id"]
            if d.id in seen:
                first = seen[d.id]
                where = (
                    f"{first.file} row {first.row}" if first.file != at.file else f"row {first.row}"
                )
                problems.append(
                    Problem(
                        at.file,
                        at.row,
                        at.field,
                        f"duplicate id '{d.id}' (first at {where}); ids must be unique",
                    )
                )
                bad = True
            else:
                seen[d.id] = at
        if d.text and "text" in d.at:
            at = d.at["text"]
            empty_text = transcript_problem(
                d.text, normalizer, file=at.file, row=at.row, field=at.field
            )
            if empty_text is not None:
                problems.append(empty_text)
                bad = True
        if d.audio is not None and d.audio.is_file():
            at = d.at["audio"] if "audio" in d.at else d.at["id"]
            found.append(AudioRef(at.file, at.row, d.id, d.audio))
        if d.audio is None:
            bad = True
        elif check_audio and not d.audio.is_file():
            at = d.at["audio"]
            problems.append(
                Problem(at.file, at.row, at.field, f"audio file not found: {d.audio}{audio_hint}")
            )
            bad = True
        if bad or d.audio is None:
            continue
        utterances.append(
            Utterance(
                id=d.id,
                audio=d.audio,
                text=" ".join((d.text or "").split()),
                speaker=(d.speaker or "").strip(),
                group=(d.group or "").strip(),
                attributes=d.attributes,
            )
        )
        at = d.at["audio"] if "audio" in d.at else d.at["id"]
        origins.append((at.file, at.row))
    if not drafts and not problems:
        problems.append(Problem(str(source), None, None, "no utterances found"))
    if problems:
        raise CorpusProblems(sorted(problems, key=lambda p: (p.file, p.row or 0)), found)
    return Corpus(
        manifest=source, utterances=tuple(utterances), group_by=group_by, origins=tuple(origins)
    )


def _check_columns(
    columns: Mapping[str, str] | None, allowed: set[str], *, fmt: str, source: Path
) -> dict[str, str]:
    cols = dict(columns or {})
    unknown = sorted(set(cols) - allowed)
    if unknown:
        have = ", ".join(sorted(allowed)) if allowed else "none"
        raise ConfigError(
            f"{source}: corpus.columns: {', '.join(unknown)} cannot be mapped in the {fmt} "
            f"format (mappable: {have}); remove them"
        )
    return cols


def _no_quoting(quoting: str | None, *, fmt: str, source: Path) -> None:
    if quoting is not None:
        raise ConfigError(
            f"{source}: corpus.quoting applies to CSV and TSV files, not to the {fmt} format; "
            "remove it"
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc


# --- Kaldi data dir ------------------------------------------------------------------


def _kaldi_table(
    path: Path, problems: list[Problem], *, key_name: str
) -> dict[str, tuple[int, str]]:
    """``key rest-of-line`` lines of a Kaldi table as key → (line, rest); duplicate keys are
    problems (the first is kept). ``key_name`` names the first column in messages."""
    table: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        key, _, rest = line.strip().partition(" ")
        if "\t" in key:
            key, _, more = key.partition("\t")
            rest = f"{more} {rest}".strip()
        if key in table:
            problems.append(
                Problem(
                    str(path),
                    number,
                    key_name,
                    f"duplicate key '{key}' (first at line {table[key][0]}); keep one line",
                )
            )
            continue
        table[key] = (number, rest.strip())
    return table


def load_kaldi(
    data_dir: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    check_audio: bool = True,
    normalizer: str | None = "default",
    quoting: str | None = None,
) -> Corpus:
    """Load a Kaldi data dir: ``wav.scp`` (utterance → audio file), ``text`` (utterance →
    transcript), ``utt2spk`` (utterance → speaker), the group from ``utt2<group_by>`` or
    ``spk2<group_by>`` (e.g. ``spk2accent``), and ``spk2gender`` (optional) as the
    attribute ``gender``.

    Utterances are in ``wav.scp`` order. Relative audio paths are read relative to the data
    dir (Kaldi reads them relative to the recipe folder: write absolute paths if so).
    Piped commands (``... |``), archive offsets (``x.ark:123``) and ``segments`` are
    refused: materialize each utterance as its own file. Keys in ``text``, ``utt2spk`` or
    ``utt2<group_by>`` that are not in ``wav.scp`` are problems. ``columns`` has nothing to
    map here (the file names are fixed) and must be empty.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; a Kaldi data dir is a folder with wav.scp")
    _check_columns(columns, set(), fmt="kaldi", source=root)
    _no_quoting(quoting, fmt="kaldi", source=root)
    problems: list[Problem] = []
    needed = {
        "wav.scp": "utterance path",
        "text": "utterance transcript",
        "utt2spk": "utterance speaker",
    }
    for name, lines in needed.items():
        if not (root / name).is_file():
            problems.append(
                Problem(
                    str(root / name),
                    None,
                    None,
                    f"missing; a Kaldi data dir needs wav.scp, text and utt2spk ('{lines}' "
                    "per line)",
                )
            )
    if (root / "segments").is_file():
        problems.append(
            Problem(
                str(root / "segments"),
                None,
                None,
                "segments (parts of longer recordings) are not supported; cut each segment "
                "into its own file (e.g. `sox rec.wav utt.wav trim START =END`), list those "
                "files in wav.scp and remove segments",
            )
        )
    utt_group, spk_group = root / f"utt2{group_by}", root / f"spk2{group_by}"
    if utt_group.is_file() and spk_group.is_file():
        problems.append(
            Problem(
                str(root),
                None,
                group_by,
                f"both utt2{group_by} and spk2{group_by} are present; keep one",
            )
        )
    elif not utt_group.is_file() and not spk_group.is_file():
        problems.append(
            Problem(
                str(spk_group),
                None,
                group_by,
                f"missing; the group comes from spk2{group_by} ('speaker {group_by}' per line) "
                f"or utt2{group_by} ('utterance {group_by}' per line)",
            )
        )
    if problems:
        raise CorpusProblems(problems)

    wav = _kaldi_table(root / "wav.scp", problems, key_name="utterance")
    text = _kaldi_table(root / "text", problems, key_name="utterance")
    utt2spk = _kaldi_table(root / "utt2spk", problems, key_name="utterance")
    by_utt = utt_group.is_file()
    group_file = utt_group if by_utt else spk_group
    groups = _kaldi_table(group_file, problems, key_name="utterance" if by_utt else "speaker")
    gender_file = root / "spk2gender"
    genders = (
        _kaldi_table(gender_file, problems, key_name="speaker")
        if gender_file.is_file() and gender_file != group_file
        else {}
    )
    wav_file, text_file, spk_file = (str(root / n) for n in ("wav.scp", "text", "utt2spk"))
    for table, file in ((text, text_file), (utt2spk, spk_file)) + (
        ((groups, str(group_file)),) if by_utt else ()
    ):
        for key, (number, _) in table.items():
            if key not in wav:
                problems.append(
                    Problem(
                        file,
                        number,
                        "utterance",
                        f"utterance '{key}' is not in wav.scp; add its audio there or remove "
                        "the line (Kaldi's utils/fix_data_dir.sh keeps only utterances in "
                        "every file)",
                    )
                )

    drafts: list[_Draft] = []
    for uid, (line, entry) in wav.items():
        audio: Path | None = None
        if not entry:
            problems.append(Problem(wav_file, line, "path", "empty; give the audio file's path"))
        elif entry.endswith("|"):
            problems.append(
                Problem(
                    wav_file,
                    line,
                    "path",
                    f"a piped command ('{entry[:40]}{'...' if len(entry) > 40 else ''}'), not a "
                    f"file; lastmile reads audio files: materialize it (`{entry[:-1].strip()} "
                    f"> wavs/{uid}.wav`) and list that file here",
                )
            )
        elif _ARK_OFFSET.search(entry):
            problems.append(
                Problem(
                    wav_file,
                    line,
                    "path",
                    f"an offset into a Kaldi archive ('{entry}'), not a file; write each "
                    "utterance to its own .wav file and list that file here",
                )
            )
        else:
            path = Path(entry)
            audio = path if path.is_absolute() else root / path
        at = {
            "id": _At(wav_file, line, "utterance"),
            "audio": _At(wav_file, line, "path"),
        }
        transcript: str | None = None
        if uid in text:
            tline, transcript = text[uid]
            at["text"] = _At(text_file, tline, "transcript")
        else:
            problems.append(
                Problem(
                    text_file,
                    None,
                    "transcript",
                    f"utterance '{uid}' (wav.scp line {line}) has no line; add "
                    f"'{uid} <transcript>'",
                )
            )
        speaker: str | None = None
        if uid in utt2spk:
            sline, speaker = utt2spk[uid]
            at["speaker"] = _At(spk_file, sline, "speaker")
        else:
            problems.append(
                Problem(
                    spk_file,
                    None,
                    "speaker",
                    f"utterance '{uid}' (wav.scp line {line}) has no line; add '{uid} <speaker>'",
                )
            )
        group: str | None = None
        group_key = uid if by_utt else speaker
        if group_key is not None and group_key in groups:
            gline, group = groups[group_key]
            at["group"] = _At(str(group_file), gline, group_by)
        elif group_key:
            kind = "utterance" if by_utt else "speaker"
            problems.append(
                Problem(
                    str(group_file),
                    None,
                    group_by,
                    f"{kind} '{group_key}' has no line; add '{group_key} <{group_by}>'",
                )
            )
        attributes: tuple[tuple[str, str], ...] = ()
        if speaker and speaker in genders:
            attributes = (("gender", genders[speaker][1]),)
        drafts.append(
            _Draft(
                id=uid,
                audio=audio,
                text=transcript,
                speaker=speaker,
                group=group,
                at=at,
                attributes=attributes,
            )
        )
    return _assemble(
        root,
        drafts,
        problems,
        group_by=group_by,
        check_audio=check_audio,
        normalizer=normalizer,
        audio_hint=" (relative paths are read relative to the data dir; write absolute paths)",
    )


# --- NeMo manifest -------------------------------------------------------------------


def load_nemo(
    manifest: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    check_audio: bool = True,
    normalizer: str | None = "default",
    quoting: str | None = None,
) -> Corpus:
    """Load a NeMo manifest (one JSON object per line with ``audio_filepath``, ``text``,
    ``duration``). Speaker and group come from the keys ``speaker`` and ``group_by``, or the
    keys mapped by ``columns`` (``{speaker: spk, accent: region}``; ``audio``, ``text`` and
    ``id`` may be mapped too). The id is the audio file's name without extension unless
    ``columns`` maps ``id`` to a key. Relative audio paths are relative to the manifest.
    ``duration`` must be a positive number where given; a non-zero ``offset`` (a part of a
    longer recording) is refused. Other keys become attributes.
    """
    manifest = Path(manifest)
    cols = _check_columns(
        columns, {"id", "audio", "text", "speaker", group_by}, fmt="nemo", source=manifest
    )
    _no_quoting(quoting, fmt="nemo", source=manifest)
    keys = {"audio": "audio_filepath", "text": "text", "speaker": "speaker", "group": group_by}
    keys.update({("group" if k == group_by else k): v for k, v in cols.items()})
    id_key = cols.get("id")
    rows = read_manifest_rows(manifest)
    file = str(manifest)
    if not rows:
        raise CorpusProblems([Problem(file, None, None, "the manifest has no lines")])
    problems: list[Problem] = []
    present = set().union(*(r.keys() for _, r in rows))
    required = {**keys, **({"id": id_key} if id_key else {})}
    for ours, theirs in required.items():
        if theirs not in present:
            name = group_by if ours == "group" else ours
            problems.append(
                Problem(
                    file,
                    None,
                    theirs,
                    f"required key '{theirs}' is missing from every line (have: "
                    f"{', '.join(sorted(present)) or 'none'}); map it with corpus.columns: "
                    f"{{{name}: <your key>}}",
                )
            )
    if problems:
        raise CorpusProblems(problems)
    reserved = set(required.values())
    drafts: list[_Draft] = []
    for number, row in rows:
        at = {ours: _At(file, number, theirs) for ours, theirs in required.items()}
        written = row.get(keys["audio"], "").strip()
        audio: Path | None = None
        if not written:
            problems.append(Problem(file, number, keys["audio"], "empty; give the audio path"))
        else:
            audio = manifest.parent / written
        uid = row.get(id_key, "") if id_key else Path(written).stem
        if not id_key:
            at["id"] = _At(file, number, keys["audio"])
        for name in ("duration", "offset"):
            raw = row.get(name, "").strip()
            if not raw:
                continue
            try:
                seconds = float(raw)
            except ValueError:
                seconds = float("nan")
            if name == "duration" and not seconds > 0:
                problems.append(
                    Problem(
                        file, number, name, f"expected a positive number of seconds, got '{raw}'"
                    )
                )
                audio = None
            elif name == "offset" and seconds != 0:
                problems.append(
                    Problem(
                        file,
                        number,
                        name,
                        f"offset {raw} s (a part of a longer recording) is not supported; cut "
                        f"it into its own file (`sox in.wav out.wav trim {raw} <duration>`) and "
                        "drop offset",
                    )
                )
                audio = None
        drafts.append(
            _Draft(
                id=uid.strip(),
                audio=audio,
                text=row.get(keys["text"], ""),
                speaker=row.get(keys["speaker"], ""),
                group=row.get(keys["group"], ""),
                at=at,
                attributes=tuple(sorted((k, v) for k, v in row.items() if k not in reserved)),
            )
        )
    return _assemble(
        manifest,
        drafts,
        problems,
        group_by=group_by,
        check_audio=check_audio,
        normalizer=normalizer,
        fixes={"id": "map an id key with corpus.columns: {id: <key>} or fill it in"},
        audio_hint=" (relative paths are relative to the manifest)",
    )


# --- Common Voice TSV ----------------------------------------------------------------


def load_commonvoice(
    tsv: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    check_audio: bool = True,
    normalizer: str | None = "default",
    quoting: str | None = None,
) -> Corpus:
    """Load a Common Voice TSV (``validated.tsv``, ``test.tsv``, ...): ``client_id`` is the
    speaker, ``path`` the clip under ``clips/`` beside the TSV, ``sentence`` the text and
    the id the clip name without extension. The group is the ``accents`` column (``accent``
    in older releases) for ``group_by: accent``, else the column named ``group_by`` (e.g.
    ``gender``, ``variant``); ``columns`` may map any of these. Values are read verbatim
    (Common Voice does not quote its TSVs). An empty accent is a problem: Common Voice
    leaves it empty for speakers who gave none, so keep only rows with one.
    """
    tsv = Path(tsv)
    cols = _check_columns(
        columns, {"id", "audio", "text", "speaker", group_by}, fmt="commonvoice", source=tsv
    )
    if not tsv.is_file():
        raise ConfigError(f"{tsv}: Common Voice TSV not found; check corpus.manifest in the pack")
    text = _read_text(tsv)
    if not text.strip():
        raise ConfigError(f"{tsv}: empty file; expected a header row (client_id, path, ...)")
    header, records = read_delimited(tsv, text, delimiter="\t", quoting=quoting or "none")
    file = str(tsv)
    if group_by in cols:
        group_col = cols[group_by]
    elif group_by == "accent":
        group_col = next((c for c in ("accents", "accent") if c in header), "accents")
    else:
        group_col = group_by
    keys = {
        "audio": cols.get("audio", "path"),
        "text": cols.get("text", "sentence"),
        "speaker": cols.get("speaker", "client_id"),
        "group": group_col,
    }
    if "id" in cols:
        keys["id"] = cols["id"]
    problems = [
        Problem(
            file,
            None,
            theirs,
            f"required column '{theirs}' is missing (have: {', '.join(header)}); map it with "
            f"corpus.columns: {{{group_by if ours == 'group' else ours}: <your column>}}",
        )
        for ours, theirs in keys.items()
        if theirs not in header
    ]
    if problems:
        raise CorpusProblems(problems)
    reserved = set(keys.values())
    clips = tsv.parent / "clips"
    drafts: list[_Draft] = []
    for number, fields in records:
        if not any(f.strip() for f in fields):
            continue
        row = dict(zip(header, fields, strict=True))
        written = row[keys["audio"]].strip()
        at = {ours: _At(file, number, theirs) for ours, theirs in keys.items()}
        if "id" not in keys:
            at["id"] = _At(file, number, keys["audio"])
        drafts.append(
            _Draft(
                id=(row[keys["id"]] if "id" in keys else Path(written).stem).strip(),
                audio=clips / written if written else None,
                text=row[keys["text"]],
                speaker=row[keys["speaker"]],
                group=row[group_col],
                at=at,
                attributes=tuple(sorted((k, v) for k, v in row.items() if k not in reserved)),
            )
        )
        if not written:
            problems.append(Problem(file, number, keys["audio"], "empty; give the clip's name"))
    return _assemble(
        tsv,
        drafts,
        problems,
        group_by=group_by,
        check_audio=check_audio,
        normalizer=normalizer,
        fixes={
            "group": f"Common Voice leaves {group_col} empty when the speaker gave none; keep "
            f"only rows with a value in {group_col} (or choose another group_by)",
            "speaker": "every row needs its client_id",
        },
        audio_hint=" (clips are read from clips/ beside the TSV)",
    )


# --- Folder of wav+txt ---------------------------------------------------------------


def load_folder(
    folder: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    check_audio: bool = True,
    normalizer: str | None = "default",
    quoting: str | None = None,
) -> Corpus:
    """Load a folder of ``x.wav`` (or ``x.flac``) files, each with its transcript ``x.txt``
    beside it, found recursively (hidden files and folders skipped). The speaker is the
    first folder under ``folder`` (``spk07/day1/x.wav`` → ``spk07``); the id is the path
    under ``folder`` without extension (``spk07/day1/x``). ``speakers.csv`` at the top
    gives each speaker's group: columns ``speaker`` and ``group_by`` (rename with
    ``columns``); its other columns become attributes of the speaker's utterances. Every
    ``.txt`` file is a transcript: one without its audio is a problem. ``check_audio`` has
    nothing to check (the audio is what is found).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    cols = _check_columns(columns, {"speaker", group_by}, fmt="folder", source=root)
    speaker_col = cols.get("speaker", "speaker")
    group_col = cols.get(group_by, group_by)
    problems: list[Problem] = []
    table = root / "speakers.csv"
    speakers: dict[str, tuple[int, dict[str, str]]] = {}
    table_ok = False  # speakers.csv present with its columns: folders are checked against it
    if not table.is_file():
        problems.append(
            Problem(
                str(table),
                None,
                None,
                f"missing; write speakers.csv with columns {speaker_col},{group_col} (one row "
                "per speaker folder)",
            )
        )
    else:
        rows = read_manifest_rows(table, quoting=quoting or "csv")
        have = set().union(*(r.keys() for _, r in rows)) if rows else set()
        for col, ours in ((speaker_col, "speaker"), (group_col, group_by)):
            if col not in have:
                problems.append(
                    Problem(
                        str(table),
                        None,
                        col,
                        f"required column '{col}' is missing (have: "
                        f"{', '.join(sorted(have)) or 'none'}); map it with corpus.columns: "
                        f"{{{ours}: <your column>}}",
                    )
                )
        table_ok = not problems
        if table_ok:
            for number, row in rows:
                name = row[speaker_col].strip()
                if not name:
                    problems.append(
                        Problem(str(table), number, speaker_col, "empty; name a speaker folder")
                    )
                elif name in speakers:
                    problems.append(
                        Problem(
                            str(table),
                            number,
                            speaker_col,
                            f"duplicate speaker '{name}' (first at row {speakers[name][0]}); "
                            "keep one row",
                        )
                    )
                else:
                    speakers[name] = (number, row)

    def visible(p: Path) -> bool:
        return not any(part.startswith(".") for part in p.relative_to(root).parts)

    files = sorted(p for p in root.rglob("*") if p.is_file() and visible(p))
    audio_files = [p for p in files if p.suffix.lower() in _AUDIO_SUFFIXES]
    stems = {p.with_suffix("") for p in audio_files}
    for p in files:
        if p.suffix.lower() == ".txt" and p.with_suffix("") not in stems:
            problems.append(
                Problem(
                    str(p),
                    None,
                    "audio",
                    f"a transcript without audio: no {p.stem}.wav beside it; add the audio, "
                    "or move other text files out of the corpus folder",
                )
            )
    unknown: dict[str, int] = {}
    drafts: list[_Draft] = []
    for audio in audio_files:
        rel = audio.relative_to(root)
        uid = rel.with_suffix("").as_posix()
        transcript_path = audio.with_suffix(".txt")
        at = {
            "id": _At(str(audio), None, "id"),
            "text": _At(str(transcript_path), None, "transcript"),
        }
        text: str | None = None
        if transcript_path.is_file():
            text = _read_text(transcript_path)
        else:
            problems.append(
                Problem(
                    str(audio),
                    None,
                    "transcript",
                    f"no transcript: write the reference text in {transcript_path.name} beside it",
                )
            )
        if len(rel.parts) < 2:
            problems.append(
                Problem(
                    str(audio),
                    None,
                    "speaker",
                    "directly in the corpus folder; put each speaker's files in a folder named "
                    "after the speaker",
                )
            )
            continue
        speaker = rel.parts[0]
        group: str | None = None
        attributes: tuple[tuple[str, str], ...] = ()
        if speaker in speakers:
            number, row = speakers[speaker]
            group = row[group_col]
            at["group"] = _At(str(table), number, group_col)
            attributes = tuple(
                sorted((k, v) for k, v in row.items() if k not in {speaker_col, group_col})
            )
        elif table_ok:
            unknown[speaker] = unknown.get(speaker, 0) + 1
        drafts.append(
            _Draft(
                id=uid,
                audio=audio,
                text=text,
                speaker=speaker,
                group=group,
                at=at,
                attributes=attributes,
            )
        )
    for speaker, count in unknown.items():
        problems.append(
            Problem(
                str(table),
                None,
                speaker_col,
                f"speaker folder '{speaker}' ({count} utterance(s)) has no row; add "
                f"'{speaker},<{group_by}>'",
            )
        )
    return _assemble(
        root, drafts, problems, group_by=group_by, check_audio=check_audio, normalizer=normalizer
    )


# --- dispatch ------------------------------------------------------------------------


def _first_json_keys(path: Path) -> set[str]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    return set(obj) if isinstance(obj, dict) else set()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return set()
    return set()


def _tsv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            return fh.readline().rstrip("\r\n").split("\t")
    except (OSError, UnicodeDecodeError):
        return []


def detect_format(source: str | Path) -> str:
    """The format ``auto`` picks: a folder with ``wav.scp`` → ``kaldi``; another folder →
    ``folder``; a ``.tsv`` whose header has ``client_id`` → ``commonvoice``; a ``.json`` or
    ``.jsonl`` whose first object has ``audio_filepath`` → ``nemo``; else by extension
    (``csv``, ``tsv``, ``jsonl``)."""
    source = Path(source)
    if source.is_dir():
        return "kaldi" if (source / "wav.scp").is_file() else "folder"
    suffix = source.suffix.lower()
    if suffix == ".tsv" and "client_id" in _tsv_header(source):
        return "commonvoice"
    if suffix in {".json", ".jsonl"}:
        return "nemo" if "audio_filepath" in _first_json_keys(source) else "jsonl"
    if suffix in {".csv", ".tsv"}:
        return suffix[1:]
    raise ConfigError(
        f"{source}: cannot tell the corpus format from '{suffix or source.name}'; use a .csv, "
        ".tsv or .jsonl manifest, a Kaldi data dir or a folder, or set corpus.format "
        f"(one of {', '.join(FORMATS[1:])})"
    )


_LOADERS: dict[str, Callable[..., Corpus]] = {
    "kaldi": load_kaldi,
    "nemo": load_nemo,
    "commonvoice": load_commonvoice,
    "folder": load_folder,
}


def load_corpus(
    source: str | Path,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    group_by: str = "accent",
    check_audio: bool = True,
    normalizer: str | None = "default",
    quoting: str | None = None,
) -> Corpus:
    """Load a corpus in any supported format (see :data:`FORMATS`); ``auto`` picks one with
    :func:`detect_format`. ``csv``, ``tsv`` and ``jsonl`` are :func:`load_manifest`
    manifests; ``kaldi`` and ``folder`` take a folder, the others a file.

    ``normalizer`` is the pack's: a transcript with no words after it is a problem (None
    skips the check). ``quoting`` (``csv`` or ``none``) is how CSV and TSV files are quoted;
    None is the format's convention: ``csv`` for manifests and ``speakers.csv``, ``none``
    for Common Voice TSVs. It is refused for the formats that have no such files.
    """
    source = Path(source)
    if format not in FORMATS:
        raise ConfigError(
            f"{source}: corpus.format: expected one of {', '.join(FORMATS)}, got '{format}'"
        )
    if not source.exists():
        raise ConfigError(f"{source}: not found; check corpus.manifest in the pack")
    fmt = detect_format(source) if format == "auto" else format
    wants_dir = fmt in {"kaldi", "folder"}
    if source.is_dir() != wants_dir:
        kind = "a folder" if wants_dir else "a file"
        raise ConfigError(f"{source}: corpus.format '{fmt}' reads {kind}; this is not one")
    if fmt in _MANIFEST_SUFFIXES:
        if source.suffix.lower() not in _MANIFEST_SUFFIXES[fmt]:
            raise ConfigError(
                f"{source}: corpus.format '{fmt}' but the file ends in '{source.suffix}'; "
                f"rename it to {' or '.join(_MANIFEST_SUFFIXES[fmt])} or change corpus.format"
            )
        if fmt == "jsonl":
            _no_quoting(quoting, fmt="jsonl", source=source)
        return load_manifest(
            source,
            columns=columns,
            group_by=group_by,
            check_audio=check_audio,
            normalizer=normalizer,
            quoting=quoting or "csv",
        )
    return _LOADERS[fmt](
        source,
        columns=columns,
        group_by=group_by,
        check_audio=check_audio,
        normalizer=normalizer,
        quoting=quoting,
    )
