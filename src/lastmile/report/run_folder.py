"""Reading a run folder (run.json, items.csv, examples/index.json) written by the run engine."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastmile.corpus.loaders import MAX_FIELD_CHARS, csv_field_limit
from lastmile.errors import ConfigError
from lastmile.run.files import csv_uncell

__all__ = [
    "RUN_SCHEMA_VERSION",
    "Example",
    "RunFolder",
    "iter_items_csv",
    "load_examples",
    "load_run",
    "read_items_csv",
    "read_run_json",
]

RUN_SCHEMA_VERSION = 1
"""The newest run.json ``schema_version`` these reports understand."""

_INT_COLUMNS = ("n_ref", "substitutions", "deletions", "insertions")
_REQUIRED_COLUMNS = ("condition_id", "utterance_id", "speaker", "group", *_INT_COLUMNS, "error")
_REQUIRED_META = ("pack", "backend", "clean_condition_id", "conditions")


@dataclass(frozen=True)
class Example:
    """A rendered audio example listed in ``examples/index.json``; ``path`` is absolute."""

    condition_id: str
    utterance_id: str
    group: str
    speaker: str
    path: Path
    reference: str
    hypothesis: str


@dataclass(frozen=True)
class RunFolder:
    """A run folder's contents: ``meta`` is run.json, ``items`` the rows of items.csv (counts
    as int, ``error`` as ``None`` when empty), ``examples`` the listed audio examples."""

    path: Path
    meta: dict[str, Any]
    items: tuple[dict[str, Any], ...]
    examples: tuple[Example, ...]


def _fix_hint(run_dir: Path) -> str:
    return (
        f"rerun the pack (lastmile run PACK --out {run_dir}) or finish a killed run "
        f"(lastmile run PACK --resume {run_dir})"
    )


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """Parse and check ``run_dir/run.json``; raises :class:`ConfigError` naming the fix."""
    path = run_dir / "run.json"
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a folder; give the run folder that `lastmile run` wrote")
    if not path.is_file():
        raise ConfigError(
            f"{path}: missing, so {run_dir} is not a complete run folder; {_fix_hint(run_dir)}"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable JSON ({exc}); {_fix_hint(run_dir)}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    version = meta.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(
            f"{path}: schema_version: expected a whole number >= 1, got {version!r}; "
            f"{_fix_hint(run_dir)}"
        )
    if version > RUN_SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: schema_version {version} is newer than this lastmile supports "
            f"({RUN_SCHEMA_VERSION}); upgrade lastmile (pip install -U lastmile) to report on it"
        )
    missing = [key for key in _REQUIRED_META if key not in meta]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}; {_fix_hint(run_dir)}")
    if not isinstance(meta["conditions"], list):
        raise ConfigError(f"{path}: conditions: expected a list")
    return meta


def read_items_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of items.csv with counts as ``int`` and an empty ``error`` as ``None``.

    Raises :class:`ConfigError` naming the line and column of a bad value.
    """
    return list(iter_items_csv(path))


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Text that is not UTF-8 or not CSV is bad input naming the file, not a crash."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); {_fix_hint(path.parent)}"
        ) from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a readable CSV ({exc}); {_fix_hint(path.parent)}") from None


def iter_items_csv(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of :func:`read_items_csv` one at a time (memory does not grow with the run).

    A missing file or missing columns raise :class:`ConfigError` at once; a bad value when
    its row is reached.
    """
    if not path.is_file():
        raise ConfigError(
            f"{path}: missing, so {path.parent} is not a complete run folder; "
            f"{_fix_hint(path.parent)}"
        )
    fh = path.open(newline="", encoding="utf-8")
    reader = csv.DictReader(fh)
    try:
        with csv_field_limit(MAX_FIELD_CHARS), _readable(path):
            columns = reader.fieldnames or []
    except ConfigError:
        fh.close()
        raise
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        fh.close()
        raise ConfigError(
            f"{path}: missing column(s) {', '.join(missing)}; expected at least "
            f"{', '.join(_REQUIRED_COLUMNS)}; {_fix_hint(path.parent)}"
        )
    return _rows(path, fh, reader)


def _rows(path: Path, fh: Any, reader: csv.DictReader[str]) -> Iterator[dict[str, Any]]:
    # transcripts as long as the corpus allows (csv's own limit is 128 KiB a field)
    with fh, csv_field_limit(MAX_FIELD_CHARS), _readable(path):
        for row in reader:
            line = reader.line_num
            # text the engine guarded against spreadsheet formulas reads back as written
            item: dict[str, Any] = {
                k: csv_uncell(v) if isinstance(v, str) else v for k, v in row.items()
            }
            error = (row.get("error") or "").strip()
            item["error"] = error or None
            for column in _INT_COLUMNS:
                raw = (row.get(column) or "").strip()
                if raw == "" and error:
                    item[column] = 0  # a failed item may carry no counts
                    continue
                try:
                    item[column] = int(raw)
                except ValueError:
                    raise ConfigError(
                        f"{path}:{line}: {column}: expected a whole number, got {raw!r}"
                    ) from None
            yield item


def load_examples(run_dir: Path) -> list[Example]:
    """The audio examples listed in ``examples/index.json`` whose file exists inside the run
    folder; an absent index gives ``[]`` (examples are optional)."""
    index = run_dir / "examples" / "index.json"
    if not index.is_file():
        return []
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{index}: unreadable JSON ({exc}); delete it or rerun the pack") from exc
    if not isinstance(entries, list):
        raise ConfigError(f"{index}: expected a list of examples")
    root = run_dir.resolve()
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or "path" not in entry or "condition_id" not in entry:
            continue
        path = (run_dir / str(entry["path"])).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            continue  # only files inside the run folder; a missing file is skipped
        out.append(
            Example(
                condition_id=str(entry["condition_id"]),
                utterance_id=str(entry.get("utterance_id", "")),
                group=str(entry.get("group", "")),
                speaker=str(entry.get("speaker", "")),
                path=path,
                reference=str(entry.get("reference", "")),
                hypothesis=str(entry.get("hypothesis", "")),
            )
        )
    return out


def load_run(run_dir: str | Path) -> RunFolder:
    """Read a run folder; raises :class:`ConfigError` if run.json or items.csv is missing,
    malformed or from a newer lastmile."""
    path = Path(run_dir)
    meta = read_run_json(path)
    items = read_items_csv(path / "items.csv")
    return RunFolder(path, meta, tuple(items), tuple(load_examples(path)))
