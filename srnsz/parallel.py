"""Work spread over the cores: the cores available, pools of worker threads or processes, results in order.

The streams srnsz writes never depend on how many workers made them: callers cut their work by the data's shape
alone and put the results together in submission order (:func:`in_order`). Threads where the compiled coder does the
work (it releases the GIL); worker processes (fork) where Python and numpy would hold it (tuning, prediction).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from srnsz.errors import InvalidInputError


def available_cores() -> int:
    """The CPU cores this process may run on (the default thread count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_threads(threads: int | None) -> int:
    """``threads`` checked (a whole number >= 1), or the cores available for None."""
    if threads is None:
        return available_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"threads must be a whole number >= 1, got {threads!r}")
    return threads


@contextmanager
def workers(threads: int, processes: bool) -> Iterator[Executor | None]:
    """None for one thread; else a pool of ``threads`` workers: processes where Python and numpy would hold the
    GIL (compressing: tuning trials on small samples), threads where the compiled coder releases it (decoding).
    Leaving by an exception (an error, Ctrl-C, SIGTERM under the CLI) cancels what has not started and stops worker
    processes at once instead of waiting for their chunks. A daemonic process (a worker of multiprocessing.Pool or of
    a Dask cluster) may not start processes: it gets threads."""
    if threads == 1:
        yield None
        return
    if not processes or multiprocessing.current_process().daemon:
        with ThreadPoolExecutor(threads) as pool:
            try:
                yield pool
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # threads cannot be stopped: their chunks finish
                raise
        return
    # fork: the workers need no re-import of the caller's script (spawn would require its __main__ guard)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(threads, mp_context=multiprocessing.get_context(method), initializer=_worker_setup,
                               initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_workers(pool, before)
        raise
    pool.shutdown(wait=True)


DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back within (delivered on leaving): submitting to a process pool forks, and an
    exception a handler raises in fork's own callbacks is printed and dropped, so the interrupt would be lost."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_workers(pool: ProcessPoolExecutor, before: set[Any]) -> None:
    """Terminate the pool's worker processes (the executor's own call where Python has it, 3.14 on; else the child
    processes started since ``before``) and wait for them."""
    terminate = getattr(pool, "terminateworkers", None)
    if terminate is not None:
        terminate()
        return
    workers = [p for p in multiprocessing.active_children() if p not in before]
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=5)


def _worker_setup(parent: int) -> None:
    """In each worker process: signals left to the parent (SIGINT ignored: Ctrl-C reaches the whole process group and
    the parent stops the workers; SIGTERM fatal, not the parent's handler that fork copied), an end with the parent
    however it ends (Linux: a worker started while the parent was being interrupted is on no list to stop), and one
    BLAS thread (the workers already share the cores: BLAS threads of their own, in the blend fits, oversubscribe
    them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # forked while the parent held them back (_signals_deferred)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, DEFERRED_SIGNALS)
    _end_with_parent(parent)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when the thread that forked it ends


def _end_with_parent(parent: int) -> None:
    """Have this process get SIGTERM when its parent ends (Linux prctl; elsewhere nothing), or end it now if the
    parent has already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def in_order(pool: Executor | None, tasks: Iterator[tuple[Callable[..., Any], tuple]], window: int
              ) -> Iterator[Any]:
    """Results of ``tasks`` (function, arguments) in submission order, at most ``window`` running at once (memory
    stays a few chunks); in this thread when ``pool`` is None."""
    if pool is None:
        for function, args in tasks:
            yield function(*args)
        return
    running: deque[Future] = deque()
    for function, args in tasks:
        with _signals_deferred():
            running.append(pool.submit(function, *args))
        if len(running) > window:
            yield running.popleft().result()
    while running:
        yield running.popleft().result()
