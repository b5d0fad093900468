"""Process settings that decoding needs: one OpenMP thread per pool worker, large
buffers kept in the heap, and worker processes that die with the run.

Two costs that a plain decoding loop pays, measured with the default backend (Whisper
tiny.en in CTranslate2, one thread) on a 2-core machine:

- **Spinning OpenMP threads.** libgomp starts a team as wide as the machine for the odd
  parallel region that the backend's own thread setting does not cover, and its idle
  threads spin: a "one-thread" decoder used 1.13 cores. In a pool of one worker per core,
  each worker's spinners take cycles from the other workers. Pool workers therefore start
  with ``OMP_NUM_THREADS=1`` (and the BLAS twins) unless the user has set them: one worker,
  one core, the rule process pools such as loky follow.
- **Page faults on every buffer.** glibc serves allocations above its mmap threshold (at
  most 32 MB) with fresh pages from the kernel and gives them back on free, so a Whisper
  encoder pass, whose attention scores take about 54 MB, faults in and zeroes its buffers
  anew for every item: 27 % of a decode was kernel time. With mmap off for the heap and
  trimming deferred, freed buffers are reused: the same decodes took 4.1 s instead of 5.7 s,
  with identical transcripts. The heap keeps its peak size instead (a worker's working set).

Pool workers keep both settings for their life. The inline loop (``workers=1``) keeps large
buffers in the heap only while it decodes, then restores glibc's default thresholds and gives
the memory back; glibc's sliding mmap threshold, which any such setting turns off, stays off
in that process (allocations above 128 KB come from mmap, as before its first large free).
Elsewhere than glibc, the heap setting does nothing.

**No process outlives its run.** A pool worker waits for work on a pipe that it holds open
itself, and the fork server waits until every worker has gone, so after a ``kill -9`` of the
run they would wait forever. On Linux the fork server and each worker ask the kernel for
SIGKILL when their parent exits (``prctl(PR_SET_PDEATHSIG)``, :func:`die_with_parent`): the
run's death kills the fork server, whose death kills the workers; the resource tracker then
reads the end of its pipe and exits. Elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

__all__ = [
    "LIFELINE_ENV",
    "WORKER_THREAD_ENV",
    "arm_fork_server",
    "configure_worker",
    "decoding_heap",
    "die_with_parent",
    "keep_large_buffers",
    "worker_environment",
]

# thread-count variables read by OpenMP and BLAS runtimes when they load
WORKER_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# glibc mallopt parameters and their defaults
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_KEEP_TRIM_THRESHOLD = 1 << 30  # give memory back to the kernel only above 1 GiB free

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
LIFELINE_ENV = "LASTMILE_LIFELINE_PID"
"""Set while a fork server starts: the pid of the process it must die with."""


@cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@cache
def _linux_libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def die_with_parent(expected_parent: int | None = None) -> bool:
    """Have the kernel SIGKILL this process when the thread that started it exits (Linux
    ``prctl(PR_SET_PDEATHSIG)``; cleared in children, so each process asks for itself).
    Returns whether it took effect. With ``expected_parent``, a process whose parent is
    already gone (it was re-parented before it could ask) kills itself at once."""
    libc = _linux_libc()
    if libc is None:
        return False
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def _set_heap(*, keep: bool) -> bool:
    libc = _glibc()
    if libc is None:
        return False
    trim = _KEEP_TRIM_THRESHOLD if keep else _DEFAULT_TRIM_THRESHOLD
    mmap_max = 0 if keep else _DEFAULT_MMAP_MAX
    ok = libc.mallopt(_M_TRIM_THRESHOLD, trim) == 1
    ok = libc.mallopt(_M_MMAP_MAX, mmap_max) == 1 and ok
    if not keep:
        libc.malloc_trim(0)
    return ok


def keep_large_buffers() -> bool:
    """For the rest of this process, serve large allocations from the heap and keep freed
    memory for reuse (glibc); returns whether the setting took effect."""
    return _set_heap(keep=True)


@contextmanager
def decoding_heap() -> Iterator[None]:
    """Keep large buffers in the heap while the block runs; afterwards restore glibc's
    defaults and return the freed memory to the system."""
    changed = keep_large_buffers()
    try:
        yield
    finally:
        if changed:
            _set_heap(keep=False)


def _one_thread_unless_set() -> list[str]:
    """Set the thread-count variables the user has not set to 1; returns those set."""
    added = [name for name in WORKER_THREAD_ENV if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    return added


@contextmanager
def worker_environment() -> Iterator[None]:
    """While the block runs, set the thread-count variables the user has not set to 1, so a
    process started inside it (a fork server, a spawned worker) runs one thread per worker;
    this process's environment is restored afterwards.

    Started from the main thread, such a process also finds :data:`LIFELINE_ENV` (this
    process's pid): a fork server reads it to die with this process (a death signal is tied
    to the thread that started the process, so never from another thread)."""
    added = _one_thread_unless_set()
    lifeline = threading.current_thread() is threading.main_thread()
    if lifeline:
        os.environ[LIFELINE_ENV] = str(os.getpid())
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
        if lifeline:
            os.environ.pop(LIFELINE_ENV, None)


def configure_worker() -> None:
    """Settings for a pool worker, called in the worker before its backend is built: it dies
    with its parent (a fork server has already asked for it at the fork), the thread-count
    variables the user has not set become 1 (libraries loaded from now on read them; a fork
    server has set them before its imports), and large buffers stay in the heap."""
    die_with_parent()
    _one_thread_unless_set()
    keep_large_buffers()


def arm_fork_server() -> bool:
    """In a fork server started inside :func:`worker_environment`: die with the process that
    started it, and have every process it forks (the pool workers) die with the server, from
    the moment of the fork. Returns whether the server was armed (Linux, and started from the
    main thread); :data:`LIFELINE_ENV` is removed, so the workers' own children do not see
    it."""
    parent = os.environ.pop(LIFELINE_ENV, None)
    if parent is None or not parent.isdigit() or not die_with_parent(int(parent)):
        return False
    server = os.getpid()
    forker = [server]  # the process forking now, set just before each fork

    def before() -> None:
        forker[0] = os.getpid()

    def after_in_child() -> None:
        # The handlers are inherited: a worker's own children (a front-end program started
        # with a preexec_fn, which runs them) are not the server's and must not die for that.
        if forker[0] == server:
            die_with_parent(server)

    os.register_at_fork(before=before, after_in_child=after_in_child)
    return True
