"""The run store and the transcript cache under storage faults: damaged, foreign, truncated,
unwritable and full files. Nothing is lost, nothing is counted twice, every failure names
the file."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lastmile.errors import ConfigError
from lastmile.run.store import RunStore, StorageError, TranscriptCache, inspect_cache


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("lastmile")
    ]


def _filled_cache(path: Path, n: int = 60) -> None:
    cache = TranscriptCache(path)
    for i in range(n):
        cache.put(f"k{i}", "backend-a", {"hypothesis_raw": f"text {i}", "pad": "x" * 300})
    cache.put_figures("fig", b"\x89PNG" * 100)
    cache.close()


def _damage(path: Path, how: str) -> None:
    if how == "corrupt":
        path.write_bytes(os.urandom(6000))
    elif how == "truncated":
        _filled_cache(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "foreign-schema":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE transcripts (id INTEGER PRIMARY KEY, text TEXT)")
    elif how == "another-program":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, blob BLOB)")
    else:
        raise ValueError(how)


# -- run store -------------------------------------------------------------------------------


def test_run_store_keeps_the_first_write_and_plan_order(tmp_path: Path):
    store = RunStore(tmp_path / "run" / "store.sqlite")
    assert store.put("b", 2, {"item_id": "b"}) and store.put("a", 1, {"item_id": "a"})
    assert not store.put("a", 1, {"item_id": "a", "changed": True})
    store.set_meta("plan", {"items": 2})
    store.close()
    again = RunStore(tmp_path / "run" / "store.sqlite")  # an existing store is checked, then used
    assert [r["item_id"] for r in again.records()] == ["a", "b"]
    assert again.get("a") == {"item_id": "a"} and again.get_meta("plan") == {"items": 2}
    assert again.done_among(["a", "c"]) == {"a"} and again.count() == 2


@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign-schema", "another-program"])
def test_a_damaged_existing_store_is_bad_input_naming_it_and_is_left_alone(
    how: str, tmp_path: Path
):
    path = tmp_path / "store.sqlite"
    if how == "truncated":
        store = RunStore(path)
        for i in range(300):
            store.put(f"item{i}", i, {"pad": "x" * 400})
        store.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        _damage(path, how)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        RunStore(path)
    message = str(info.value)
    assert message.startswith(f"{path}: the run store is damaged")
    assert "cannot be resumed" in message and "--out" in message
    assert "\n" not in message
    assert path.read_bytes() == before  # not even switched to WAL


def test_a_store_that_cannot_be_created_is_a_storage_error_naming_it(tmp_path: Path):
    (tmp_path / "a-file").write_text("x")
    path = tmp_path / "a-file" / "run" / "store.sqlite"
    with pytest.raises(StorageError) as info:
        RunStore(path)
    assert str(info.value).startswith(f"{path}: cannot create the run store")


@pytest.mark.timeout(60)
def test_a_full_disk_fails_the_write_naming_the_store_and_loses_nothing(tmp_path: Path):
    path = tmp_path / "store.sqlite"
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from lastmile.run.store import RunStore, StorageError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))
        store = RunStore(Path({str(path)!r}))
        done = 0
        try:
            for i in range(1000):
                store.put(f"item{{i}}", i, {{"pad": "x" * 2000}})
                done += 1
        except StorageError as exc:
            print(done)
            print(exc)
            sys.exit(0)
        sys.exit("the disk never filled up")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    done_text, message = proc.stdout.splitlines()[:2]
    done = int(done_text)
    assert 0 < done < 1000
    assert message.startswith(f"{path}: storing item item{done} failed:")
    assert "free space" in message and f"--resume {path.parent}" in message
    # space freed: every item committed before the failure is there, and only once
    store = RunStore(path)
    assert store.count() == done
    added = sum(store.put(f"item{i}", i, {"pad": "x" * 2000}) for i in range(done + 5))
    assert added == 5 and store.count() == done + 5


# -- transcript cache ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign-schema", "another-program"])
def test_a_damaged_cache_is_moved_aside_once_and_a_fresh_one_works(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "transcripts.sqlite"
    _damage(path, how)
    damaged = path.read_bytes()
    caplog.set_level(logging.WARNING)
    cache = TranscriptCache(path)
    assert cache.disabled is None
    assert len(cache.set_aside) == 1 and cache.set_aside[0].read_bytes() == damaged
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "moved it aside" in warnings[0]
    assert cache.get("k1", "backend-a") is None
    cache.put("k1", "backend-a", {"hypothesis_raw": "fresh"})
    cache.put_figures("fig", b"png")
    assert cache.get("k1", "backend-a") == {"hypothesis_raw": "fresh"}
    assert cache.get_figures("fig") == b"png"
    assert len(_warnings(caplog)) == 1  # said once
    info = cache.info()
    assert info["state"] == "ok" and info["entries"] == 1 and len(info["set_aside"]) == 1


def test_a_cache_damaged_while_in_use_is_replaced_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "transcripts.sqlite"
    _filled_cache(path)
    cache = TranscriptCache(path)
    with path.open("r+b") as fh:  # everything after the first page is overwritten
        fh.seek(4096)
        fh.write(os.urandom(path.stat().st_size - 4096))
    caplog.set_level(logging.WARNING)
    assert cache.get("k5", "backend-a") is None
    assert len(_warnings(caplog)) == 1 and "moved it aside" in _warnings(caplog)[0]
    cache.put("k5", "backend-a", {"hypothesis_raw": "again"})
    assert cache.get("k5", "backend-a") == {"hypothesis_raw": "again"}
    assert len(_warnings(caplog)) == 1


def test_a_cache_that_cannot_be_created_is_switched_off_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    (tmp_path / "a-file").write_text("x")
    path = tmp_path / "a-file" / "transcripts.sqlite"
    caplog.set_level(logging.WARNING)
    cache = TranscriptCache(path)
    assert cache.disabled is not None
    cache.put("k", "b", {"hypothesis_raw": "x"})
    cache.put_figures("f", b"x")
    assert cache.get("k", "b") is None and cache.get_figures("f") is None
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "goes on without a cache" in warnings[0]
    assert str(path) in warnings[0]
    with pytest.raises(StorageError, match="cannot clear the transcript cache"):
        cache.clear()


@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign-schema", "another-program"])
def test_inspect_reports_damage_without_changing_anything(how: str, tmp_path: Path):
    path = tmp_path / "transcripts.sqlite"
    _damage(path, how)
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    info = inspect_cache(path)
    assert info["state"].startswith("damaged: "), info
    assert info["entries"] == 0 and info["bytes"] == path.stat().st_size
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before


def test_inspect_counts_a_healthy_cache_and_a_missing_one(tmp_path: Path):
    path = tmp_path / "transcripts.sqlite"
    assert inspect_cache(path)["state"] == "missing"
    _filled_cache(path, n=7)
    info = inspect_cache(path)
    assert (info["state"], info["entries"], info["backends"], info["figure_sets"]) == (
        "ok",
        7,
        1,
        1,
    )


def test_clear_empties_the_cache_and_removes_damaged_files_set_aside(tmp_path: Path):
    path = tmp_path / "transcripts.sqlite"
    _damage(path, "corrupt")
    TranscriptCache(path).close()  # moved aside
    _filled_cache(path, n=5)
    assert len(inspect_cache(path)["set_aside"]) == 1
    cache = TranscriptCache(path)
    assert cache.clear() == 5
    info = inspect_cache(path)
    assert info["entries"] == 0 and info["figure_sets"] == 0 and info["set_aside"] == []
    assert sorted(p.name for p in tmp_path.iterdir() if "broken" in p.name) == []
