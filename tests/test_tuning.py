"""Process settings for decoding: measured page faults, and the workers' thread variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from lastmile.forkserver import pool_context
from lastmile.tuning import WORKER_THREAD_ENV, _glibc, worker_environment

_MEASURE = r"""
import ctypes, json, resource
from lastmile.tuning import _glibc, decoding_heap

BUFFER = 64 << 20  # above glibc's largest mmap threshold (32 MB), like Whisper's attention
libc = _glibc()
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]


def faults():
    # minor page faults taken to allocate, fill and free one large buffer with malloc
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ptr = libc.malloc(BUFFER)
    assert ptr
    ctypes.memset(ptr, 1, BUFFER)
    libc.free(ptr)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


default = faults()
with decoding_heap():
    faults()  # the heap grows once
    kept = faults()
after = faults()
print(json.dumps({"pages": BUFFER // resource.getpagesize(), "default": default,
                  "kept": kept, "after": after}))
"""


@pytest.mark.skipif(_glibc() is None, reason="the heap setting applies to glibc only")
def test_decoding_heap_reuses_large_buffers_and_restores_the_default_after() -> None:
    # Measured in a fresh process: the test process's own heap carries whatever earlier
    # tests (and the libraries they loaded) left in it.
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    pages = seen["pages"]
    assert seen["default"] > pages // 2  # glibc's default: fresh pages every time
    assert seen["kept"] < pages // 20  # in the block the buffer is reused
    assert seen["after"] > pages // 2  # memory given back, defaults restored


def test_worker_environment_sets_unset_thread_variables_for_the_block_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in WORKER_THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the user's own setting is kept
    with worker_environment():
        assert os.environ["OMP_NUM_THREADS"] == "1"
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
        assert os.environ["MKL_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in os.environ
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    assert os.environ["MKL_NUM_THREADS"] == "3"


def test_pool_workers_run_one_openmp_thread_unless_the_user_said_otherwise() -> None:
    expected = os.environ.get("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(1, mp_context=pool_context("faster-whisper")) as pool:
        assert pool.submit(os.getenv, "OMP_NUM_THREADS").result() == expected
    assert os.environ.get("OMP_NUM_THREADS", "1") == expected  # this process unchanged
