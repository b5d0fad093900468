"""SQLite stores: the per-run item store and the user-wide transcript cache (WAL)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

__all__ = ["RunStore", "TranscriptCache", "default_cache_path"]


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class RunStore:
    """Items of one run, each committed as it completes (so a killed run resumes).

    One row per item id; writing an item twice keeps the first (nothing counted twice).
    """

    def __init__(self, path: Path):
        self.path = path
        self._conn = _connect(path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, seq INTEGER, "
            "record TEXT NOT NULL)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")

    def put(self, item_id: str, seq: int, record: dict[str, Any]) -> bool:
        """Store an item; False if it was already there."""
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO items (item_id, seq, record) VALUES (?, ?, ?)",
            (item_id, seq, json.dumps(record, sort_keys=True)),
        )
        return cur.rowcount == 1

    def done_among(self, item_ids: list[str]) -> set[str]:
        """Those of ``item_ids`` already stored (asked in batches: memory stays small)."""
        out: set[str] = set()
        for i in range(0, len(item_ids), 500):
            batch = item_ids[i : i + 500]
            marks = ",".join("?" * len(batch))
            rows = self._conn.execute(
                f"SELECT item_id FROM items WHERE item_id IN ({marks})", batch
            )
            out.update(row[0] for row in rows)
        return out

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def get(self, item_id: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT record FROM items WHERE item_id = ?", (item_id,)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def records(self) -> Iterator[dict[str, Any]]:
        """Items in plan order."""
        for (text,) in self._conn.execute("SELECT record FROM items ORDER BY seq"):
            yield json.loads(text)

    def set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def get_meta(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        self._conn.close()


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/lastmile/transcripts.sqlite`` (or the platform's cache folder)."""
    return Path(user_cache_dir("lastmile", appauthor=False)) / "transcripts.sqlite"


class TranscriptCache:
    """Content-keyed transcripts and render records: a hit skips rendering and decoding.

    It also keeps report figures keyed by the data they plot (``get_figures`` /
    ``put_figures``), so a rerun whose results did not change does not draw them again.
    """

    def __init__(self, path: Path | None = None):
        self.path = path or default_cache_path()
        self._conn = _connect(self.path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS transcripts (key TEXT NOT NULL, backend TEXT NOT NULL, "
            "record TEXT NOT NULL, created REAL DEFAULT (strftime('%s', 'now')), "
            "PRIMARY KEY (key, backend))"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS figures (key TEXT PRIMARY KEY, data BLOB NOT NULL, "
            "created REAL DEFAULT (strftime('%s', 'now')))"
        )

    def get(self, key: str, backend: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT record FROM transcripts WHERE key = ? AND backend = ?", (key, backend)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, backend: str, record: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO transcripts (key, backend, record) VALUES (?, ?, ?)",
            (key, backend, json.dumps(record, sort_keys=True)),
        )

    def get_figures(self, key: str) -> bytes | None:
        row = self._conn.execute("SELECT data FROM figures WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_figures(self, key: str, data: bytes) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO figures (key, data) VALUES (?, ?)", (key, sqlite3.Binary(data))
        )

    def info(self) -> dict[str, Any]:
        n, backends = self._conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT backend) FROM transcripts"
        ).fetchone()
        figures = self._conn.execute("SELECT COUNT(*) FROM figures").fetchone()[0]
        size = sum(
            p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file()
        )
        return {
            "path": str(self.path),
            "entries": n,
            "backends": backends,
            "figure_sets": figures,
            "bytes": size,
        }

    def clear(self) -> int:
        """Delete every transcript and figure; returns the number of transcripts."""
        n = self._conn.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]
        self._conn.execute("DELETE FROM transcripts")
        self._conn.execute("DELETE FROM figures")
        self._conn.execute("VACUUM")
        return int(n)

    def close(self) -> None:
        self._conn.close()
