"""numpy's OpenBLAS runs on one thread while srnsz works and gets the caller's setting back afterwards."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import smooth_field
from threadpoolctl import threadpool_info, threadpool_limits

import srnsz


def openblas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info()
            if lib["internal_api"] == "openblas" and "torch" not in lib["filepath"]]


pytestmark = pytest.mark.skipif(not openblas_threads(), reason="numpy is not linked to OpenBLAS here")


def test_one_blas_thread_inside_and_the_callers_setting_after():
    data = smooth_field((40, 50), seed=3).astype(np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        seen: list[list[int]] = []
        stream = srnsz.compress(data, 1e-3, progress=lambda n: seen.append(openblas_threads()))
        assert seen and all(threads == [1] * len(threads) for threads in seen)
        assert set(openblas_threads()) == {2}
        inside: list[list[int]] = []
        srnsz.decompress(stream, progress=lambda n: inside.append(openblas_threads()))
        assert inside and all(threads == [1] * len(threads) for threads in inside)
        assert set(openblas_threads()) == {2}


def test_concurrent_calls_restore_the_setting_once_all_are_done():
    fields = [smooth_field((30, 40), seed=s).astype(np.float32) for s in range(6)]
    with threadpool_limits(limits=2, user_api="blas"):
        with ThreadPoolExecutor(3) as pool:
            streams = list(pool.map(lambda f: srnsz.compress(f, 1e-3), fields))
            list(pool.map(srnsz.decompress, streams))
        assert set(openblas_threads()) == {2}


def test_the_setting_comes_back_after_an_error():
    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(srnsz.InvalidInputError):
            srnsz.compress(np.zeros((4, 4), np.int32), 1e-3)
        with pytest.raises(srnsz.StreamFormatError):
            srnsz.decompress(b"not a stream")
        assert set(openblas_threads()) == {2}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_child_forked_while_the_lock_is_held_still_compresses():
    from srnsz import blas_threads

    data = smooth_field((30, 40), seed=1).astype(np.float32)
    context = multiprocessing.get_context("fork")
    with blas_threads._LOCK:  # as if another thread were entering compress at the fork
        child = context.Process(target=srnsz.compress, args=(data, 1e-3), daemon=True)
        child.start()
    child.join(timeout=60)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung and child.exitcode == 0
