"""numpy's BLAS held to one thread while srnsz compresses or decompresses.

srnsz's numpy linear algebra is small (blend and restoration fits on a few columns), but a multi-threaded BLAS
(OpenBLAS, numpy's) keeps its threads spinning after each call, on the cores that the network's threads (torch) and
the chunked workers need: on this 2-core machine the HAT inference that followed an interp compression ran 1.7-2x
slower (2026-12-01: pico network, 13 planes of 17 x 29, 20-24 ms against 11-12 ms with OPENBLAS_NUM_THREADS=1).
threadpoolctl (the library scikit-learn and joblib use for this) sets the limit on the OpenBLAS libraries loaded
outside torch (whose own threads serve the network); the outermost call restores the caller's setting, and nested or
concurrent calls (chunks on several threads) share one limit.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

Function = TypeVar("Function", bound=Callable[..., Any])

_LOCK = threading.Lock()
_active = 0  # calls inside one_blas_thread, all threads together
_limiter: Any = None  # threadpoolctl's handle while any is


def _fresh_after_fork() -> None:
    """A forked child (chunked worker processes) starts with its own lock and count: the parent's lock may have been
    held by another thread at the fork, and the parent's calls do not run in the child."""
    global _LOCK, _active, _limiter
    _LOCK, _active, _limiter = threading.Lock(), 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_after_fork)


@functools.cache
def _numpy_blas() -> Any:
    from threadpoolctl import ThreadpoolController

    libraries = ThreadpoolController().select(internal_api="openblas")
    return libraries.select(filepath=[lib["filepath"] for lib in libraries.info() if "torch" not in lib["filepath"]])


def one_blas_thread(function: Function) -> Function:
    """``function`` run with numpy's BLAS limited to one thread (see the module docstring)."""

    @functools.wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        global _active, _limiter
        with _LOCK:
            if _active == 0:
                _limiter = _numpy_blas().limit(limits=1)
            _active += 1
        try:
            return function(*args, **kwargs)
        finally:
            with _LOCK:
                _active -= 1
                if _active == 0:
                    _limiter.restore_original_limits()
                    _limiter = None

    return limited  # type: ignore[return-value]
