"""Writing into a run folder safely: nothing escapes it, no link is followed.

A run folder's files are written as regular files through a fresh temporary file (created
with ``O_EXCL | O_NOFOLLOW``) and a rename, which replaces a directory entry without
following it. A name in the folder that is a symbolic link is refused outright with a
:class:`~lastmile.errors.ConfigError` naming it, so a link planted in ``--out`` is never
followed and its target never changes. Names derived from ids, speakers or groups go through
:func:`safe_component`, so a manifest cannot write outside the folder (``..``, absolute
paths, NUL, very long names). Text that a spreadsheet would run as a formula is neutralized
by :func:`csv_cell`.

The report writers use the same calls: :func:`write_text_atomic`, :func:`write_bytes_atomic`,
:func:`open_atomic` (streamed text), :func:`write_with` (a library that writes to a path),
:func:`ensure_dir`, :func:`confined_path`, :func:`refuse_symlink`, :func:`csv_cell` and its
inverse :func:`csv_uncell`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TextIO

from lastmile.errors import ConfigError, LastmileError

__all__ = [
    "FORMULA_START",
    "MAX_COMPONENT",
    "confined_path",
    "csv_cell",
    "csv_uncell",
    "ensure_dir",
    "open_atomic",
    "refuse_symlink",
    "safe_component",
    "scratch_folder",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_with",
]

MAX_COMPONENT = 100
"""Longest file-name component :func:`safe_component` makes (bytes, ASCII)."""

SCRATCH = ".scratch"
"""A run folder's temporary folder while it decodes (:func:`scratch_folder`)."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_DIGEST_CHARS = 10


def safe_component(name: str, *, max_len: int = MAX_COMPONENT) -> str:
    """A file-name component made from ``name`` (an id, a speaker, a group): ASCII letters,
    digits and ``._+-`` only, not starting with a dot, at most ``max_len`` characters. Names
    that had to change (``../x``, ``a/b``, NUL, non-ASCII, too long) get a digest of the
    original appended, so different names stay different files: ``a/b`` → ``a_b-3f2a...``.
    """
    clean = _UNSAFE.sub("_", name)
    if clean.startswith("."):
        clean = "_" + clean[1:]
    if clean == name and 0 < len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
    keep = max(1, max_len - _DIGEST_CHARS - 1)
    return f"{clean[:keep] or '_'}-{digest}"


def _symlink_error(path: Path) -> ConfigError:
    return ConfigError(
        f"{path}: is a symbolic link; lastmile writes a run folder's files only as regular "
        "files inside the folder and does not follow links. Remove the link or choose "
        "another --out"
    )


def refuse_symlink(path: Path) -> None:
    """Raise :class:`ConfigError` if ``path`` exists as a symbolic link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise _symlink_error(path)


def confined_path(root: Path, *names: str, suffix: str = "") -> Path:
    """``root / safe(name) / ... `` with ``suffix`` added to the last component; raises
    :class:`ConfigError` if the result would not lie inside ``root``."""
    if not names:
        raise ValueError("confined_path needs at least one name")
    parts = [safe_component(n) for n in names]
    parts[-1] = safe_component(names[-1], max_len=MAX_COMPONENT - len(suffix)) + suffix
    path = root.joinpath(*parts)
    base = os.path.abspath(root)
    if os.path.commonpath([base, os.path.abspath(path)]) != base:
        raise ConfigError(f"{root}: the name {names!r} would lead outside the folder")
    return path


def ensure_dir(root: Path, *names: str) -> Path:
    """Create ``root / name / ...`` folder by folder (each name made safe) and return it;
    raises :class:`ConfigError` if one of them exists as a symbolic link or as a file."""
    path = root
    for name in names:
        path = path / safe_component(name)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise _symlink_error(path)
        if not stat.S_ISDIR(mode):
            raise ConfigError(f"{path}: expected a folder, found a file; remove it")
    return path


@cache
def _file_mode() -> int:
    """0o666 less this process's umask (read without changing it where Linux tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def _write_error(path: Path, exc: OSError) -> LastmileError:
    return LastmileError(
        f"{path}: cannot be written ({exc.strerror or exc}); check the folder's free space "
        "and permissions, then resume the run"
    )


@contextlib.contextmanager
def _replacing(path: Path, *, suffix: str = ".tmp") -> Iterator[tuple[int, str]]:
    """A fresh temporary file beside ``path`` (its descriptor, which the block closes, and
    its name); when the block ends without an error it is renamed to ``path``, else
    removed. A link at ``path`` is refused; a full or read-only disk is named."""
    refuse_symlink(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        yield fd, tmp
        os.chmod(tmp, _file_mode())
        refuse_symlink(path)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise


@contextlib.contextmanager
def open_atomic(path: Path, *, encoding: str = "utf-8", newline: str = "") -> Iterator[TextIO]:
    """Open a fresh temporary file beside ``path`` for writing text; when the block ends
    without an error it replaces ``path`` (a rename: a link there is not followed), else it is
    removed. Raises :class:`ConfigError` if ``path`` is a symbolic link, and
    :class:`LastmileError` naming ``path`` if the disk refuses the write."""
    with (
        _replacing(Path(path)) as (fd, _),
        os.fdopen(fd, "w", encoding=encoding, newline=newline) as fh,
    ):
        yield fh


def write_text_atomic(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` as :func:`open_atomic` does; returns ``path``."""
    with open_atomic(path, encoding=encoding, newline="") as fh:
        fh.write(text)
    return Path(path)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fresh temporary file and a rename (no link
    followed; a link at ``path`` refused); returns ``path``."""
    path = Path(path)
    with _replacing(path) as (fd, _), os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def write_with(path: Path, write: Callable[[Path], object]) -> Path:
    """Have ``write`` (a library call that takes a path: soundfile, matplotlib) write a
    fresh temporary file beside ``path`` (same suffix), then rename it to ``path``; a link at
    ``path`` is refused, never followed. Returns ``path``."""
    path = Path(path)
    with _replacing(path, suffix=path.suffix) as (fd, tmp):
        os.close(fd)
        write(Path(tmp))
    return path


def csv_cell(text: str) -> str:
    """``text`` made safe for a spreadsheet: a cell starting with ``= + - @``, a tab or a
    carriage return gets a leading ``'`` (read as text, not run as a formula). Numbers are
    not text: write them as numbers and they stay numbers (a negative SNR included)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_uncell(text: str) -> str:
    """The inverse of :func:`csv_cell` for reading items.csv back."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


@contextlib.contextmanager
def scratch_folder(run_dir: Path) -> Iterator[Path]:
    """``run_dir/.scratch`` as this process's scratch folder (:mod:`lastmile.scratch`) while
    the block runs: emptied when it starts (what a killed attempt left), removed when it ends.
    """
    from lastmile import scratch as scratch_module

    scratch = run_dir / SCRATCH
    refuse_symlink(scratch)
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    previous = scratch_module.current()
    scratch_module.set_current(scratch)
    try:
        yield scratch
    finally:
        scratch_module.set_current(previous)
        shutil.rmtree(scratch, ignore_errors=True)
