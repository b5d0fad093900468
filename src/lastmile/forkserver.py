"""The fork server that run-engine worker pools start from.

Where the platform has it, a fork server imports the worker's modules (numpy, scipy, the
render engine, the backend's module) once; every pool worker forked from it starts with them
loaded instead of importing them again (about a second each), and a pool started again after
a worker crash starts at once. The server starts with one OpenMP/BLAS thread per worker
(see ``lastmile.tuning``), which its imports read. The CLI starts the server before it
imports the engine, so the two imports overlap. Elsewhere, spawn. This module is light to
import on purpose.

The server's first import arms it (``lastmile.run.lifeline``): on Linux it dies with the
process that started it, and the workers it forks die with it, so no process outlives a
killed run.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

__all__ = ["pool_context"]


def pool_context(spec: Any = "faster-whisper") -> Any:
    """The multiprocessing context for worker pools, its fork server started (preloading
    the worker and the backend ``spec``'s modules) where there is one, else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    preload = ["lastmile.run.lifeline", "lastmile.run.worker"]
    try:
        from lastmile.asr import backend_class, parse_backend_spec

        cls = backend_class(parse_backend_spec(spec).name)
        preload += [cls.__module__, *getattr(cls, "preload_modules", ())]
    except Exception:  # a bad spec is reported where the backend is built
        pass
    from lastmile.tuning import worker_environment

    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(preload)  # no effect once the server runs
    with worker_environment():  # one OpenMP/BLAS thread per worker, read as they load
        forkserver.ensure_running()
    return mp
