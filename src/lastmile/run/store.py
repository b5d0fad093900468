"""SQLite stores: the per-run item store and the user-wide transcript cache (WAL).

Storage faults lose nothing and never pass for a finding:

- Every SQLite error in the run store becomes a :class:`StorageError` naming the file and the
  fix (a full disk: free space, then ``--resume``). A damaged store met on opening an existing
  run folder (``--resume``) is a :class:`~lastmile.errors.ConfigError` naming it.
- The transcript cache is only a cache: a damaged one (corrupt or truncated file, another
  program's database, a read-only file) is moved aside as ``NAME.broken-TIMESTAMP`` and a
  fresh one is started; when its folder cannot be written at all, the run goes on without a
  cache. Either is said once, as a warning on the ``lastmile`` logger.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from lastmile.errors import ConfigError, LastmileError

__all__ = [
    "RunStore",
    "StorageError",
    "TranscriptCache",
    "default_cache_path",
    "inspect_cache",
]

log = logging.getLogger(__name__)

_CORRUPT = 11  # SQLITE_CORRUPT
_NOTADB = 26  # SQLITE_NOTADB
_READONLY = 8  # SQLITE_READONLY (and its extended codes)
_FULL = 13  # SQLITE_FULL
_IOERR = 10  # SQLITE_IOERR

_RUN_TABLES = {"items": ("item_id", "seq", "record"), "meta": ("key", "value")}
_CACHE_TABLES = {
    "transcripts": ("key", "backend", "record", "created"),
    "figures": ("key", "data", "created"),
}


class StorageError(LastmileError):
    """A run store or cache file that cannot be read or written (a full or read-only disk,
    a damaged file): a runtime failure, exit code 3 on the command line."""


class _Damaged(Exception):
    """A database file that is not ours or not whole (internal)."""


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _is_damage(exc: BaseException) -> bool:
    return isinstance(exc, _Damaged) or (
        isinstance(exc, sqlite3.Error) and _code(exc) in (_CORRUPT, _NOTADB)
    )


def _hint(exc: BaseException, path: Path) -> str:
    """What to do about ``exc`` on ``path``."""
    if isinstance(exc, sqlite3.Error):
        code = _code(exc)
        if code in (_FULL, _IOERR):
            return (
                f"; free space on the disk that holds {path.parent} (or check it), "
                f"then continue the run with --resume {path.parent}"
            )
        if code == _READONLY:
            return f"; make {path} and its folder writable"
    if isinstance(exc, PermissionError):
        return f"; make {path.parent} writable"
    return ""


def _connect(
    path: Path, tables: dict[str, tuple[str, ...]], *, full_check: bool = False
) -> sqlite3.Connection:
    """Open ``path``; an existing file is checked before anything is written to it (not ours:
    :class:`_Damaged`; ``full_check`` also reads every page), and writing is tried (a read-only
    file opens and reads without complaint). Then WAL is switched on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    try:
        problem = _schema_problem(conn, tables)
        if problem is None and full_check:
            rows = conn.execute("PRAGMA quick_check(3)").fetchall()
            if [r[0] for r in rows] != ["ok"]:
                problem = " ".join(" ".join(str(r[0]) for r in rows).split())
        if problem is not None:
            raise _Damaged(problem)
        _probe_write(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _schema_problem(conn: sqlite3.Connection, tables: dict[str, tuple[str, ...]]) -> str | None:
    """Why the database is not one of ours (another program's tables, our tables with other
    columns), or None."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    foreign = sorted(n for n in names if n not in tables)
    if foreign:
        return f"it holds tables of another program ({', '.join(foreign[:5])})"
    for name in names:
        columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info('{name}')"))
        if columns != tables[name]:
            return (
                f"its table '{name}' has columns ({', '.join(columns)}), "
                f"expected ({', '.join(tables[name])})"
            )
    return None


def _probe_write(conn: sqlite3.Connection) -> None:
    """Raise SQLITE_READONLY now (a read-only file opens and reads without complaint)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE lastmile_write_probe (x)")
    finally:
        conn.execute("ROLLBACK")


def _sidecars(path: Path) -> list[Path]:
    """The database file and its WAL companions that exist."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


class RunStore:
    """Items of one run, each committed as it completes (so a killed run resumes).

    One row per item id; writing an item twice keeps the first (nothing counted twice).
    Opening an existing store (a resumed run) checks it whole first: a damaged or foreign
    file is a :class:`~lastmile.errors.ConfigError` naming it; any other SQLite failure is a
    :class:`StorageError` naming the file.
    """

    def __init__(self, path: Path):
        self.path = path
        existing = path.exists()
        try:
            conn = _connect(path, _RUN_TABLES, full_check=existing)
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, seq INTEGER, "
                    "record TEXT NOT NULL)"
                )
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        except (sqlite3.Error, _Damaged) as exc:
            raise self._open_error(exc, existing=existing) from None
        except OSError as exc:
            raise StorageError(
                f"{path}: cannot create the run store: {exc.strerror or exc}{_hint(exc, path)}"
            ) from None

    def _open_error(self, exc: BaseException, *, existing: bool) -> LastmileError:
        if existing and _is_damage(exc):
            return ConfigError(
                f"{self.path}: the run store is damaged ({exc}), so this run folder cannot be "
                f"resumed; start the run again with --out in a new folder (or move "
                f"{self.path.parent} aside)"
            )
        return StorageError(f"{self.path}: cannot open the run store: {exc}{_hint(exc, self.path)}")

    def _failed(self, exc: sqlite3.Error, action: str) -> StorageError:
        if _is_damage(exc):
            hint = "; the run store is damaged: start the run again with --out in a new folder"
        else:
            hint = _hint(exc, self.path)
        return StorageError(f"{self.path}: {action} failed: {exc}{hint}")

    def put(self, item_id: str, seq: int, record: dict[str, Any]) -> bool:
        """Store an item; False if it was already there."""
        try:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO items (item_id, seq, record) VALUES (?, ?, ?)",
                (item_id, seq, json.dumps(record, sort_keys=True)),
            )
        except sqlite3.Error as exc:
            raise self._failed(exc, f"storing item {item_id}") from None
        return cur.rowcount == 1

    def done_among(self, item_ids: list[str]) -> set[str]:
        """Those of ``item_ids`` already stored (asked in batches: memory stays small)."""
        out: set[str] = set()
        try:
            for i in range(0, len(item_ids), 500):
                batch = item_ids[i : i + 500]
                marks = ",".join("?" * len(batch))
                rows = self._conn.execute(
                    f"SELECT item_id FROM items WHERE item_id IN ({marks})", batch
                )
                out.update(row[0] for row in rows)
        except sqlite3.Error as exc:
            raise self._failed(exc, "reading finished items") from None
        return out

    def count(self) -> int:
        try:
            return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
        except sqlite3.Error as exc:
            raise self._failed(exc, "counting items") from None

    def get(self, item_id: str) -> dict[str, Any] | None:
        try:
            row = self._conn.execute(
                "SELECT record FROM items WHERE item_id = ?", (item_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(exc, f"reading item {item_id}") from None
        return None if row is None else json.loads(row[0])

    def records(self) -> Iterator[dict[str, Any]]:
        """Items in plan order."""
        try:
            for (text,) in self._conn.execute("SELECT record FROM items ORDER BY seq"):
                yield json.loads(text)
        except sqlite3.Error as exc:
            raise self._failed(exc, "reading items") from None

    def set_meta(self, key: str, value: Any) -> None:
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )
        except sqlite3.Error as exc:
            raise self._failed(exc, f"writing '{key}'") from None

    def get_meta(self, key: str) -> Any:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(exc, f"reading '{key}'") from None
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error as exc:
            raise self._failed(exc, "closing") from None


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/lastmile/transcripts.sqlite`` (or the platform's cache folder)."""
    return Path(user_cache_dir("lastmile", appauthor=False)) / "transcripts.sqlite"


def _set_aside_files(path: Path) -> list[Path]:
    """Damaged cache files moved aside earlier (``NAME.broken-*``), oldest first."""
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.glob(f"{path.name}.broken-*") if p.is_file())


def _bytes(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            continue
    return total


def inspect_cache(path: Path | None = None) -> dict[str, Any]:
    """What the cache at ``path`` holds, without changing it: ``path``, ``state`` (``ok``,
    ``missing``, ``damaged: why``, ``unreadable: why``), ``entries``, ``backends``,
    ``figure_sets``, ``bytes`` and the damaged files set aside earlier (``set_aside``)."""
    path = path or default_cache_path()
    info: dict[str, Any] = {
        "path": str(path),
        "state": "ok",
        "entries": 0,
        "backends": 0,
        "figure_sets": 0,
        "bytes": _bytes(_sidecars(path)),
        "set_aside": [str(p) for p in _set_aside_files(path)],
        "set_aside_bytes": _bytes(_set_aside_files(path)),
    }
    if not path.exists():
        info["state"] = "missing"
        return info
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    except sqlite3.Error as exc:
        info["state"] = f"unreadable: {exc}"
        return info
    try:
        problem = _schema_problem(conn, _CACHE_TABLES)
        if problem is not None:
            raise _Damaged(problem)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "transcripts" in tables:
            n, backends = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT backend) FROM transcripts"
            ).fetchone()
            info.update(entries=int(n), backends=int(backends))
        if "figures" in tables:
            info["figure_sets"] = int(conn.execute("SELECT COUNT(*) FROM figures").fetchone()[0])
    except (sqlite3.Error, _Damaged) as exc:
        info["state"] = f"{'damaged' if _is_damage(exc) else 'unreadable'}: {exc}"
    finally:
        conn.close()
    return info


class TranscriptCache:
    """Content-keyed transcripts and render records: a hit skips rendering and decoding.

    It also keeps report figures keyed by the data they plot (``get_figures`` /
    ``put_figures``), so a rerun whose results did not change does not draw them again.

    The cache never stops a run. A damaged file (corrupt, truncated, another program's
    database, read-only), found on opening or later, is moved aside and a fresh cache is
    started; a cache that cannot be written at all (its folder read-only, the disk full) is
    switched off for the rest of the run (``disabled`` says why). Each is said once, as a
    warning.
    """

    def __init__(self, path: Path | None = None):
        self.path = path or default_cache_path()
        self.disabled: str | None = None
        self.set_aside: list[Path] = []
        self._conn: sqlite3.Connection | None = None
        self._open(retry=True)

    # -- opening and repair ------------------------------------------------------------

    def _open(self, *, retry: bool) -> None:
        try:
            conn = _connect(self.path, _CACHE_TABLES)
        except OSError as exc:
            self._disable(f"cannot create it: {exc.strerror or exc}")
            return
        except (sqlite3.Error, _Damaged) as exc:
            self._trouble(exc, retry=retry)
            return
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS transcripts (key TEXT NOT NULL, "
                "backend TEXT NOT NULL, record TEXT NOT NULL, "
                "created REAL DEFAULT (strftime('%s', 'now')), PRIMARY KEY (key, backend))"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS figures (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
                "created REAL DEFAULT (strftime('%s', 'now')))"
            )
        except sqlite3.Error as exc:
            conn.close()
            self._trouble(exc, retry=retry)
            return
        self._conn = conn

    def _trouble(self, exc: BaseException, *, retry: bool) -> None:
        """A cache that failed: move a damaged or read-only file aside and start afresh
        (once); otherwise switch the cache off."""
        movable = _is_damage(exc) or (
            isinstance(exc, sqlite3.Error)
            and _code(exc) == _READONLY
            and os.access(self.path.parent, os.W_OK)
            and getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY_DIRECTORY"
        )
        if retry and movable and self.path.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            aside = self.path.with_name(f"{self.path.name}.broken-{stamp}")
            try:
                for part in _sidecars(self.path):
                    os.replace(part, Path(str(aside) + str(part)[len(str(self.path)) :]))
            except OSError as err:
                self._disable(f"{exc}; it could not be moved aside either ({err.strerror})")
                return
            self.set_aside.append(aside)
            log.warning(
                "the transcript cache %s was unusable (%s); moved it aside to %s and started a "
                "fresh cache",
                self.path,
                exc,
                aside.name,
            )
            self._open(retry=False)
            return
        self._disable(str(exc))

    def _disable(self, reason: str) -> None:
        self.disabled = reason
        self._conn = None
        log.warning(
            "the transcript cache %s cannot be used (%s); this run goes on without a cache "
            "(nothing is read from it or written to it)",
            self.path,
            reason,
        )

    def _failed(self, exc: sqlite3.Error) -> None:
        """An operation on an open cache failed: repair (damage) or switch off."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None
        if _is_damage(exc) or _code(exc) == _READONLY:
            self._trouble(exc, retry=True)
        else:
            self._disable(str(exc))

    # -- the cache -------------------------------------------------------------------------

    def get(self, key: str, backend: str) -> dict[str, Any] | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT record FROM transcripts WHERE key = ? AND backend = ?", (key, backend)
            ).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        return None if row is None else json.loads(row[0])

    def put(self, key: str, backend: str, record: dict[str, Any]) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO transcripts (key, backend, record) VALUES (?, ?, ?)",
                (key, backend, json.dumps(record, sort_keys=True)),
            )
        except sqlite3.Error as exc:
            self._failed(exc)

    def get_figures(self, key: str) -> bytes | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute("SELECT data FROM figures WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        return None if row is None else bytes(row[0])

    def put_figures(self, key: str, data: bytes) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO figures (key, data) VALUES (?, ?)",
                (key, sqlite3.Binary(data)),
            )
        except sqlite3.Error as exc:
            self._failed(exc)

    def info(self) -> dict[str, Any]:
        """See :func:`inspect_cache`; ``disabled`` says why this cache is switched off."""
        return {**inspect_cache(self.path), "disabled": self.disabled}

    def clear(self) -> int:
        """Delete every transcript and figure, and the damaged files set aside earlier;
        returns the number of transcripts deleted. A cache that cannot be opened for writing
        is a :class:`StorageError` naming it."""
        if self._conn is None:
            raise StorageError(
                f"{self.path}: cannot clear the transcript cache: {self.disabled}; make its "
                f"folder {self.path.parent} writable, or delete the folder"
            )
        try:
            n = self._conn.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]
            self._conn.execute("DELETE FROM transcripts")
            self._conn.execute("DELETE FROM figures")
            self._conn.execute("VACUUM")
        except sqlite3.Error as exc:
            raise StorageError(
                f"{self.path}: cannot clear the transcript cache: {exc}{_hint(exc, self.path)}"
            ) from None
        for old in _set_aside_files(self.path):
            try:
                old.unlink()
            except OSError as exc:
                raise StorageError(
                    f"{old}: cannot delete a damaged cache file set aside earlier: "
                    f"{exc.strerror or exc}{_hint(exc, old)}"
                ) from None
        return int(n)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
