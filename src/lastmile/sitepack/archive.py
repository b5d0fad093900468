"""Export a scenario pack as one archive, and import such an archive safely.

The archive is a gzip-compressed tar file whose first member is ``lastmile-pack.json``:

.. code-block:: json

    {"format": "lastmile-pack", "version": 1, "pack": "site.yaml",
     "corpus_manifest": "corpus/manifest.csv", "audio_included": false, "audio_files": 280,
     "created_by": "lastmile 0.1.0",
     "members": [{"path": "site.yaml", "size": 812, "sha256": "..."}, ...]}

Then the pack (paths rewritten: the corpus is ``corpus/manifest.csv``, noise files are under
``noise/``), the profiles it uses under ``noise_profiles/`` (where a pack looks for them),
the corpus manifest (CSV: id, audio, text, speaker, the group column, ``audio_sha256`` and the
other attributes) and, with ``with_audio``, the audio under ``corpus/``.

Import trusts nothing in the archive. Before a byte is written, each member must be named in
the archive's manifest, be a plain file (links, devices, FIFOs and folders are refused)
with a relative name free of ``..``, within :class:`ImportLimits`; tarfile's ``data`` filter
checks it again. Members are written into a staging folder inside the target, their size and
SHA-256 checked against the manifest, and only when every check has passed are they moved
into place; any failure leaves the target as it was. Nothing in the archive is executed.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from lastmile.errors import ConfigError

__all__ = [
    "ARCHIVE_MANIFEST",
    "AUDIO_SHA_COLUMN",
    "FORMAT_VERSION",
    "ExportResult",
    "ImportLimits",
    "ImportResult",
    "export_pack",
    "import_pack",
]

ARCHIVE_MANIFEST = "lastmile-pack.json"
"""Name of the archive's first member: what the archive holds, with sizes and checksums."""

FORMAT_VERSION = 1
"""Archive format version this lastmile writes and reads."""

AUDIO_SHA_COLUMN = "audio_sha256"
"""Column of the exported corpus manifest holding each audio file's SHA-256."""

CORPUS_MANIFEST = "corpus/manifest.csv"
_FORMAT = "lastmile-pack"
_CHUNK = 1 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_SAFE_PART = re.compile(r"^[A-Za-z0-9._+@=,-][A-Za-z0-9._+@=, ()-]*$")


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on what an archive may unpack to: each member, all members together, how many."""

    max_member_bytes: int = 4 * 1024**3
    max_total_bytes: int = 64 * 1024**3
    max_members: int = 500_000
    max_manifest_bytes: int = 64 * 1024**2


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_pack` wrote: the archive, its member count and uncompressed size,
    the corpus's audio file count, whether the audio is inside, and warnings to show."""

    path: Path
    members: int
    total_bytes: int
    audio_files: int
    audio_included: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_pack` made: the pack file, the member count, the audio still missing
    (paths as in the corpus manifest's audio column), the audio copied from ``audio_from``, and
    warnings to show."""

    pack_path: Path
    corpus_manifest: Path
    members: int
    audio_files: int
    missing_audio: tuple[str, ...] = ()
    audio_copied: int = 0
    warnings: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- helpers


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _safe_relpath(name: object, *, what: str) -> str:
    """``name`` if it is a relative POSIX path of plain parts (no ``..``, no absolute path,
    no backslash or drive letter), else :class:`ConfigError` naming ``what``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{what}: expected a relative path, got {name!r}")
    if "\x00" in name or "\\" in name:
        raise ConfigError(f"{what}: {name!r} holds a NUL or a backslash; refused")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ConfigError(
            f"{what}: {name!r} is an absolute path; refused (members must be "
            "relative to the folder they are imported into)"
        )
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ConfigError(
                f"{what}: {name!r} has an empty, '.' or '..' part; refused (it could reach "
                "outside the folder it is imported into)"
            )
        if not _SAFE_PART.match(part) or len(part) > 200:
            raise ConfigError(
                f"{what}: {name!r}: the part {part!r} has characters other than letters, "
                "digits, space and ._+@=,()- (or is over 200 long); refused"
            )
    return name


def _archive_name(text: str) -> str:
    """A safe single path part made from ``text``."""
    cleaned = re.sub(r"[^A-Za-z0-9._+@=,-]+", "-", text).strip("-.") or "file"
    return cleaned[:150]


def _command_program(spec: str | Mapping[str, Any]) -> str | None:
    """The program of a ``command:`` backend spec, or None for other backends."""
    if isinstance(spec, Mapping):
        if spec.get("name") != "command":
            return None
        argument = spec.get("argument")
    else:
        name, _, argument = spec.strip().partition(":")
        if name != "command":
            return None
    try:
        words = shlex.split(str(argument or ""))
    except ValueError:
        return None
    return words[0] if words else None


# --------------------------------------------------------------------------- export


class _Dumper(yaml.SafeDumper):
    """Lists of plain numbers on one line (``snr_db: [10, 0]``), mappings in block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, int | float) and not isinstance(v, bool) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)  # type: ignore[arg-type]


def _noise_entries(raw: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The raw noise mappings of a pack that name a file (conditions and grid)."""
    for entry in raw.get("conditions") or []:
        noise = entry.get("noise") if isinstance(entry, dict) else None
        if isinstance(noise, dict) and "file" in noise:
            yield noise
    grid = raw.get("grid")
    if isinstance(grid, dict):
        for noise in grid.get("noise") or []:
            if isinstance(noise, dict) and "file" in noise:
                yield noise


def _profile_files(loaded: Any) -> dict[str, Path]:
    """Profile name → file of every noise and device profile the pack's conditions use."""
    from lastmile.profiles.devices import _kind_of
    from lastmile.profiles.noise_model import find_profile_file, profile_search_dirs
    from lastmile.profiles.presets import PRESET_NAMES

    dirs = profile_search_dirs(base_dir=loaded.base_dir)
    found: dict[str, Path] = {}
    for cond in loaded.conditions:
        if cond.noise is not None and cond.noise.type == "profile":
            found[cond.noise.profile] = find_profile_file(cond.noise.profile, dirs)
        if cond.device is not None:
            name = cond.device.name
            for folder in dirs:
                path = Path(folder) / f"{name}.yaml"
                if path.is_file() and not (_kind_of(path) == "noise" and name in PRESET_NAMES):
                    found[name] = path
                    break
    return found


def _corpus_rows(loaded: Any) -> tuple[list[str], list[dict[str, str]], dict[str, Path]]:
    """The corpus as CSV columns and rows (audio paths relative to the exported manifest,
    each with its SHA-256), and archive path → audio file."""
    group_by = loaded.pack.group_by
    corpus = loaded.load_corpus(check_audio=True)
    reserved = ["id", "audio", "text", "speaker", group_by, AUDIO_SHA_COLUMN]
    if len(set(reserved)) != len(reserved):
        raise ConfigError(
            f"{loaded.path}: group_by: '{group_by}' is also one of id, audio, text, speaker, "
            f"{AUDIO_SHA_COLUMN}; the corpus cannot be exported as one manifest"
        )
    root = loaded.manifest_path if loaded.manifest_path.is_dir() else loaded.manifest_path.parent
    root = root.resolve()
    extra: list[str] = []
    rows: list[dict[str, str]] = []
    audio: dict[str, Path] = {}
    digests: dict[Path, str] = {}
    for utt in corpus.utterances:
        path = utt.audio.resolve()
        if path not in digests:
            digests[path] = _sha256_file(path)[0]
        sha = digests[path]
        try:
            parts = path.relative_to(root).parts
            rel = "/".join(_archive_name(p) for p in parts)
        except ValueError:  # outside the corpus folder
            rel = f"external/{sha[:16]}/{_archive_name(path.name)}"
        member = f"corpus/{rel}"
        if member in audio and audio[member] != path:
            rel = f"external/{sha[:16]}/{_archive_name(path.name)}"
            member = f"corpus/{rel}"
        audio[member] = path
        row = {
            "id": utt.id,
            "audio": rel,
            "text": utt.text,
            "speaker": utt.speaker,
            group_by: utt.group,
            AUDIO_SHA_COLUMN: sha,
        }
        for key, value in utt.attributes:
            if key in reserved:
                raise ConfigError(
                    f"{loaded.manifest_path}: utterance '{utt.id}': the attribute '{key}' has "
                    "the name of a column the exported manifest writes; rename it"
                )
            if key not in extra:
                extra.append(key)
            row[key] = value
        rows.append(row)
    return [*reserved, *sorted(extra)], rows, audio


def _leading_comments(lines: list[str]) -> list[str]:
    """The comment lines at the top of a YAML file (what the pack says about itself)."""
    out = []
    for line in lines:
        if not line.startswith("#"):
            break
        out.append(line)
    return out


def _csv_bytes(columns: list[str], rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue().encode("utf-8")


def export_pack(
    pack: str | Path, *, out: str | Path, with_audio: bool = False, force: bool = False
) -> ExportResult:
    """Write ``pack`` and everything it uses as one archive at ``out`` (see the module doc).

    The pack is loaded and its conditions built first (a broken pack is refused with the same
    errors as ``lastmile validate``); every corpus audio file must exist, as its checksum is
    recorded. ``with_audio`` puts the speech audio in the archive too. Raises
    :class:`ConfigError` when ``out`` exists (unless ``force``) or anything is missing.
    """
    from lastmile import __version__
    from lastmile.render.engine import Renderer
    from lastmile.scenario.pack import load_pack

    out = Path(out)
    if out.exists() and not force:
        raise ConfigError(f"{out}: already exists; choose another --out, or pass --force")
    if out.exists() and not out.is_file():
        raise ConfigError(f"{out}: not a file; give the archive's file name")
    loaded = load_pack(pack)
    renderer = Renderer(loaded, sample_rate=16000, render_rate=loaded.pack.render_sample_rate)
    for cond in loaded.conditions:
        try:
            renderer.validate_condition(cond)
        except ConfigError as exc:
            raise ConfigError(f"{loaded.path}: condition '{cond.id}': {exc}") from exc
    raw = yaml.safe_load(loaded.path.read_text(encoding="utf-8"))
    sources: dict[str, Path | bytes] = {}
    warnings: list[str] = []

    for name, path in sorted(_profile_files(loaded).items()):
        sources[f"noise_profiles/{name}.yaml"] = path
    by_source: dict[Path, str] = {}
    for noise in _noise_entries(raw):
        src = (loaded.base_dir / str(noise["file"])).resolve()
        if src not in by_source:
            member = f"noise/{_archive_name(src.name)}"
            if member in sources:
                sha = _sha256_file(src)[0]
                member = f"noise/{sha[:12]}-{_archive_name(src.name)}"
            sources[member] = src
            by_source[src] = member
        noise["file"] = by_source[src]

    columns, rows, audio = _corpus_rows(loaded)
    sources[CORPUS_MANIFEST] = _csv_bytes(columns, rows)
    if with_audio:
        for member, path in audio.items():
            sources[member] = path
    corpus_raw: dict[str, Any] = {"manifest": CORPUS_MANIFEST, "format": "csv"}
    if loaded.pack.corpus.per_speaker is not None:
        corpus_raw["per_speaker"] = loaded.pack.corpus.per_speaker
    raw["corpus"] = corpus_raw
    if "group_by" not in raw:
        raw["group_by"] = loaded.pack.group_by

    program = _command_program(loaded.pack.asr)
    if program is not None and ("/" in program or "\\" in program):
        warnings.append(
            f"asr: the command's program {program!r} is not in the archive (an archive carries "
            "no programs); whoever imports the pack provides it, at that path relative to "
            "the pack file"
        )

    pack_name = loaded.path.name if _SAFE_PART.match(loaded.path.name) else "pack.yaml"
    if not pack_name.endswith((".yaml", ".yml")):
        pack_name = "pack.yaml"
    header = (
        f"# Exported by lastmile {__version__} from {loaded.path.name}: the corpus, noise files\n"
        "# and profiles now point inside this folder (corpus/, noise/, noise_profiles/).\n"
    )
    original = loaded.path.read_text(encoding="utf-8").splitlines()
    leading = _leading_comments(original)
    if leading:
        header += "#\n" + "".join(f"{line}\n" for line in leading)
    text = header + yaml.dump(raw, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    sources[pack_name] = text.encode("utf-8")

    entries: list[dict[str, Any]] = []
    for member, content in sorted(sources.items()):
        _safe_relpath(member, what=f"archive member {member!r}")
        if isinstance(content, bytes):
            sha, size = hashlib.sha256(content).hexdigest(), len(content)
        else:
            sha, size = _sha256_file(content)
        entries.append({"path": member, "size": size, "sha256": sha})
    manifest = {
        "format": _FORMAT,
        "version": FORMAT_VERSION,
        "pack": pack_name,
        "corpus_manifest": CORPUS_MANIFEST,
        "audio_included": bool(with_audio),
        "audio_files": len(audio),
        "created_by": f"lastmile {__version__}",
        "members": entries,
    }
    _write_archive(out, manifest, sources)
    return ExportResult(
        path=out,
        members=len(entries),
        total_bytes=sum(e["size"] for e in entries),
        audio_files=len(audio),
        audio_included=bool(with_audio),
        warnings=tuple(warnings),
    )


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _write_archive(out: Path, manifest: dict[str, Any], sources: dict[str, Path | bytes]) -> None:
    """The archive, byte-identical for the same content: fixed times, owners and order;
    written to a temporary file beside ``out`` and renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with (
            os.fdopen(fd, "wb") as raw_out,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw_out, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            head = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
            tar.addfile(_tarinfo(ARCHIVE_MANIFEST, len(head)), io.BytesIO(head))
            sizes = {e["path"]: e["size"] for e in manifest["members"]}
            for member in sorted(sources):
                src = sources[member]
                if isinstance(src, bytes):
                    tar.addfile(_tarinfo(member, len(src)), io.BytesIO(src))
                    continue
                if src.stat().st_size != sizes[member]:
                    raise ConfigError(f"{src}: changed while being exported; export again")
                with src.open("rb") as handle:
                    tar.addfile(_tarinfo(member, sizes[member]), handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class _Entry:
    path: str
    size: int
    sha256: str


def _parse_manifest(data: bytes, *, archive: Path, limits: ImportLimits) -> dict[str, Any]:
    where = f"{archive}: {ARCHIVE_MANIFEST}"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc}); the archive is damaged") from exc
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ConfigError(f"{where}: not a lastmile pack manifest (format is not {_FORMAT!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"{where}: version: expected a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"{where}: version {version} was written by a newer lastmile (this one reads "
            f"version {FORMAT_VERSION}); upgrade lastmile"
        )
    members = doc.get("members")
    if not isinstance(members, list):
        raise ConfigError(f"{where}: members: expected a list")
    if len(members) > limits.max_members:
        raise ConfigError(
            f"{where}: lists {len(members)} members, above the limit of {limits.max_members}; "
            "refused"
        )
    entries: dict[str, _Entry] = {}
    total = 0
    for index, item in enumerate(members):
        at = f"{where}: members[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a mapping with path, size, sha256")
        path = _safe_relpath(item.get("path"), what=f"{at}.path")
        if path == ARCHIVE_MANIFEST or path in entries:
            raise ConfigError(f"{at}.path: {path!r} is listed twice; the manifest is damaged")
        size, sha = item.get("size"), item.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigError(f"{at}.size: expected a byte count, got {size!r}")
        if size > limits.max_member_bytes:
            raise ConfigError(
                f"{at}: {path!r} is {size} bytes, above the per-member limit of "
                f"{limits.max_member_bytes}; refused"
            )
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise ConfigError(f"{at}.sha256: expected 64 lowercase hex digits, got {sha!r}")
        total += size
        entries[path] = _Entry(path, size, sha)
    if total > limits.max_total_bytes:
        raise ConfigError(
            f"{where}: its members add up to {total} bytes, above the limit of "
            f"{limits.max_total_bytes}; refused"
        )
    for key in ("pack", "corpus_manifest"):
        value = _safe_relpath(doc.get(key), what=f"{where}: {key}")
        if value not in entries:
            raise ConfigError(f"{where}: {key} {value!r} is not among the members")
    if not str(doc["pack"]).endswith((".yaml", ".yml")):
        raise ConfigError(f"{where}: pack {doc['pack']!r}: expected a .yaml file")
    doc["_entries"] = entries
    return doc


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.isdir():
        return "a folder entry"
    if member.issparse():
        return "a sparse file"
    return f"of tar type {member.type!r}"


def _check_member(
    member: tarfile.TarInfo,
    *,
    archive: Path,
    entries: Mapping[str, _Entry],
    seen: set[str],
    total: int,
    limits: ImportLimits,
) -> _Entry:
    """Our own checks of one member, before tarfile's data filter and before any write."""
    what = f"{archive}: member {member.name!r}"
    name = _safe_relpath(member.name, what=what)
    if not member.isreg() or member.issparse():
        raise ConfigError(f"{what} is {_member_kind(member)}; only plain files are accepted")
    if member.size > limits.max_member_bytes:
        raise ConfigError(
            f"{what} declares {member.size} bytes, above the per-member limit of "
            f"{limits.max_member_bytes}; refused"
        )
    if total + member.size > limits.max_total_bytes:
        raise ConfigError(
            f"{what}: the members add up to more than the limit of {limits.max_total_bytes} "
            "bytes; refused"
        )
    if name in seen:
        raise ConfigError(f"{what} appears twice in the archive; refused")
    entry = entries.get(name)
    if entry is None:
        raise ConfigError(f"{what} is not listed in {ARCHIVE_MANIFEST}; refused")
    if member.size != entry.size:
        raise ConfigError(
            f"{what} is {member.size} bytes but {ARCHIVE_MANIFEST} says {entry.size}; the "
            "archive was altered or damaged"
        )
    return entry


def _write_member(stream: IO[bytes], dest: Path, entry: _Entry, *, what: str) -> None:
    """Copy exactly ``entry.size`` bytes to a new file ``dest``, checking the checksum."""
    digest = hashlib.sha256()
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(dest, flags, 0o644)
    with os.fdopen(fd, "wb") as handle:
        while written < entry.size:
            chunk = stream.read(min(_CHUNK, entry.size - written))
            if not chunk:
                break
            digest.update(chunk)
            handle.write(chunk)
            written += len(chunk)
    if written != entry.size:
        raise ConfigError(f"{what}: ends after {written} of {entry.size} bytes; damaged archive")
    if digest.hexdigest() != entry.sha256:
        raise ConfigError(
            f"{what}: checksum mismatch (sha256 {digest.hexdigest()[:16]}…, the manifest says "
            f"{entry.sha256[:16]}…); the archive was altered or damaged: get it again"
        )


def _extract(archive: Path, staging: Path, limits: ImportLimits) -> dict[str, Any]:
    """Check and write every member under ``staging``; the archive's manifest."""
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ConfigError(
            f"{archive}: not a lastmile pack archive ({exc}); make one with `lastmile pack export`"
        ) from exc
    with tar:
        try:
            first = tar.next()
            if first is None or first.name != ARCHIVE_MANIFEST:
                raise ConfigError(
                    f"{archive}: the first member must be {ARCHIVE_MANIFEST}; this is not an "
                    "archive written by `lastmile pack export`"
                )
            if not first.isreg() or first.size > limits.max_manifest_bytes:
                raise ConfigError(
                    f"{archive}: {ARCHIVE_MANIFEST} is {_member_kind(first)} or over "
                    f"{limits.max_manifest_bytes} bytes; refused"
                )
            stream = tar.extractfile(first)
            if stream is None:
                raise ConfigError(f"{archive}: {ARCHIVE_MANIFEST} cannot be read")
            doc = _parse_manifest(stream.read(first.size), archive=archive, limits=limits)
            entries: dict[str, _Entry] = doc["_entries"]
            seen: set[str] = set()
            total = 0
            count = 0
            while (member := tar.next()) is not None:
                count += 1
                if count > limits.max_members:
                    raise ConfigError(f"{archive}: more than {limits.max_members} members; refused")
                entry = _check_member(
                    member,
                    archive=archive,
                    entries=entries,
                    seen=seen,
                    total=total,
                    limits=limits,
                )
                tarfile.data_filter(member, str(staging))  # the stdlib's own checks, again
                dest = staging / entry.path
                what = f"{archive}: member {entry.path!r}"
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    if source is None:
                        raise ConfigError(f"{what}: cannot be read")
                    _write_member(source, dest, entry, what=what)
                except OSError as exc:
                    raise ConfigError(f"{what}: cannot be written ({exc}); refused") from exc
                seen.add(entry.path)
                total += entry.size
        except tarfile.FilterError as exc:
            raise ConfigError(f"{archive}: refused by tarfile's data filter: {exc}") from exc
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ConfigError(f"{archive}: damaged archive ({exc}); get it again") from exc
    absent = sorted(set(entries) - seen)
    if absent:
        raise ConfigError(
            f"{archive}: {len(absent)} member(s) listed in {ARCHIVE_MANIFEST} are missing "
            f"(e.g. {absent[0]!r}); the archive is incomplete"
        )
    return doc


def _audio_rows(manifest: Path) -> list[tuple[int, str, str]]:
    """(row, audio path, sha256) of every row of an imported corpus manifest, paths checked."""
    from lastmile.corpus import read_manifest_rows

    out = []
    for number, row in read_manifest_rows(manifest):
        audio = _safe_relpath(row.get("audio", ""), what=f"{manifest}: row {number}: audio")
        sha = row.get(AUDIO_SHA_COLUMN, "")
        if not _SHA_RE.match(sha):
            raise ConfigError(
                f"{manifest}: row {number}: {AUDIO_SHA_COLUMN}: expected 64 hex digits, got {sha!r}"
            )
        out.append((number, audio, sha))
    return out


def import_pack(
    archive: str | Path,
    *,
    into: str | Path,
    audio_from: str | Path | None = None,
    limits: ImportLimits | None = None,
) -> ImportResult:
    """Unpack ``archive`` (from :func:`export_pack`) into the folder ``into``, which must be
    new or empty; see the module doc for the checks. ``audio_from``: a folder holding the
    corpus audio under the paths of the manifest's audio column (the folder the original
    manifest was in); each file found there is checked against its SHA-256 and copied in.

    Raises :class:`ConfigError` naming the member and what is wrong; then ``into`` is left as
    it was (a folder it created is removed).
    """
    from lastmile.scenario.pack import load_pack

    archive, into = Path(archive), Path(into)
    limits = limits or ImportLimits()
    if not archive.is_file():
        raise ConfigError(f"{archive}: archive not found; give the .lmpack file to import")
    if into.exists() and (not into.is_dir() or into.is_symlink() or any(into.iterdir())):
        raise ConfigError(
            f"{into}: exists and is not an empty folder; import into a new or empty folder"
        )
    if audio_from is not None and not Path(audio_from).is_dir():
        raise ConfigError(f"--audio-from {audio_from}: not a folder")
    created = not into.exists()
    into.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".lastmile-import-", dir=into))
    moved: list[Path] = []
    try:
        doc = _extract(archive, staging, limits)
        corpus_manifest = staging / doc["corpus_manifest"]
        corpus_dir = corpus_manifest.parent
        rows = _audio_rows(corpus_manifest)
        copied = 0
        mismatched: list[str] = []
        for _number, audio, sha in rows:
            dest = corpus_dir / audio
            if dest.exists() or audio_from is None:
                continue
            src = Path(audio_from) / audio
            if not src.is_file():
                continue
            if _sha256_file(src)[0] != sha:
                mismatched.append(str(src))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o644)
            copied += 1
        if mismatched:
            raise ConfigError(
                f"--audio-from {audio_from}: {len(mismatched)} file(s) differ from the "
                f"exported audio (checksum mismatch), e.g. {mismatched[0]}; point at the "
                "corpus the pack was exported from"
            )
        missing = tuple(sorted({a for _n, a, _s in rows if not (corpus_dir / a).is_file()}))
        load_pack(staging / doc["pack"])  # the pack itself must load with this lastmile
        for item in sorted(staging.iterdir()):
            target = into / item.name
            os.replace(item, target)
            moved.append(target)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for target in moved:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        if created:
            shutil.rmtree(into, ignore_errors=True)
        raise
    warnings: list[str] = []
    pack_path = into / doc["pack"]
    loaded = load_pack(pack_path)
    program = _command_program(loaded.pack.asr)
    if program is not None:
        warnings.append(
            f"asr: the pack runs the program {program!r} (command backend); it is not in the "
            "archive and nothing was run: provide it and read it before `lastmile run`"
        )
    return ImportResult(
        pack_path=pack_path,
        corpus_manifest=into / doc["corpus_manifest"],
        members=len(doc["_entries"]),
        audio_files=len({a for _n, a, _s in rows}),
        missing_audio=missing,
        audio_copied=copied,
        warnings=tuple(warnings),
    )
