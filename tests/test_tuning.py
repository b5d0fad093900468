"""Process settings for decoding: measured page faults, and the workers' thread variables."""

from __future__ import annotations

import ctypes
import os
import resource
from concurrent.futures import ProcessPoolExecutor

import pytest

from lastmile.forkserver import pool_context
from lastmile.tuning import WORKER_THREAD_ENV, _glibc, decoding_heap, worker_environment

_BUFFER = 64 << 20  # above glibc's largest mmap threshold (32 MB), like Whisper's attention


def _faults_for_one_buffer() -> int:
    """Minor page faults taken to allocate, fill and free one large buffer with malloc."""
    libc = _glibc()
    assert libc is not None
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ptr = libc.malloc(_BUFFER)
    assert ptr
    ctypes.memset(ptr, 1, _BUFFER)
    libc.free(ptr)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(_glibc() is None, reason="the heap setting applies to glibc only")
def test_decoding_heap_reuses_large_buffers_and_restores_the_default_after() -> None:
    pages = _BUFFER // resource.getpagesize()
    assert _faults_for_one_buffer() > pages // 2  # glibc's default: fresh pages every time
    with decoding_heap():
        _faults_for_one_buffer()  # the heap grows once
        assert _faults_for_one_buffer() < pages // 20  # then the buffer is reused
    assert _faults_for_one_buffer() > pages // 2  # memory given back, defaults restored


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
