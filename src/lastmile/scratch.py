"""A run's scratch folder: where lastmile's own temporary files go while a run decodes.

The ``command`` backend and front end hand each clip to a program as a file, and the
``command-server`` backend keeps its requests and the program's log in a folder. A run that is
killed (``kill -9``) cannot remove them, so while a run decodes they are made under
``RUN_DIR/.scratch`` (:func:`lastmile.run.files.scratch_folder` sets it in the run's process,
pool workers take it from their initializer), and the programs started then get it as
``TMPDIR``. Outside a run, or on a Ray actor (whose node has its own), the system's temporary
folder is used as before. Python's own ``tempfile.tempdir`` is left alone: multiprocessing
keeps its sockets there for the life of the process, longer than a run.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["current", "program_env", "set_current"]

_CURRENT: list[Path | None] = [None]  # this process's scratch folder, while a run decodes


def current() -> Path | None:
    """The scratch folder of the run this process is decoding for (``None``: the system's
    temporary folder); pass it as ``dir=`` to ``tempfile``."""
    return _CURRENT[0]


def set_current(path: str | os.PathLike[str] | None) -> None:
    """Make ``path`` this process's scratch folder (``None``: none)."""
    _CURRENT[0] = None if path is None else Path(path)


def program_env() -> dict[str, str] | None:
    """The environment for a program started now: ``TMPDIR`` set to the scratch folder
    during a run (``None``, the inherited environment, otherwise)."""
    folder = _CURRENT[0]
    if folder is None:
        return None
    return {**os.environ, "TMPDIR": str(folder)}
