"""Worker processes for decoding runs in-process (PyAV), shared by verify and activity.

Standalone ``verify`` and ``activity`` decode every run of every user: most of their work.
One ffmpeg per run piping samples into this process spent a third of the CPU moving bytes
and left every run's numpy work on this process's one interpreter. Here a few worker
processes each decode a run with the mix's own :class:`~mediatools.media.decode.Decoder`
and reduce it as it streams (band energies, speech frames); only small results come back.

Workers are forked from a fork server that has numpy, PyAV and the worker modules loaded:
they start at once and share those pages (a spawned worker imported them itself, 43 MB
each). Where processes cannot be started (a daemonic process, such as a Dask worker) the
same work runs on one thread here.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import signal
import sys
import types
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Iterator

from ..mix.split import usable_cores

__all__ = ["RunDecoders", "give_back", "in_worker"]

log = logging.getLogger(__name__)

#: modules every worker has loaded before its first job (the fork server imports them once)
PRELOAD = ["numpy", "av", "mediatools.verify.runs", "mediatools.activity.runs"]

_IN_WORKER = False


def in_worker() -> bool:
    """Whether this is one of :class:`RunDecoders`' worker processes."""
    return _IN_WORKER


def _quiet_worker() -> None:
    """A worker leaves Ctrl-C (and a closed terminal's SIGHUP) to its parent, which stops it
    (the whole process group gets them)."""
    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def give_back() -> None:
    """In a worker, hand the heap freed by a decode back to the system: glibc keeps it, and a
    3-hour mix file's index (~30 MB, freed when its container closed) stayed with the worker
    while verify's own alignment grew beside it. (malloc_trim is glibc's; elsewhere, nothing.)"""
    if _IN_WORKER:
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):   # pragma: no cover - not glibc
            pass


class RunDecoders:
    """Where runs are decoded: one process per core (at most 4, or ``workers``; from a fork
    server, :func:`_context`), or, without ``processes`` (a verify whose runs the mix decoded:
    the mix file is all there is) or in a daemonic process, one thread here. Leaving the block
    with an error stops the workers at once instead of waiting for their runs."""

    def __init__(self, *, processes: bool = True, workers: int | None = None, name: str = "decode") -> None:
        workers = workers or min(4, usable_cores())
        self.processes = processes and workers > 1 and not multiprocessing.current_process().daemon
        self.pool: Executor | None = None
        if self.processes:
            try:
                self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(),
                                                initializer=_quiet_worker)
            except (OSError, ImportError, NotImplementedError) as exc:
                # no working sem_open (a container without /dev/shm) or no way to start processes
                log.info("decoding on one thread: cannot start worker processes (%s)", exc)
                self.processes = False
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, fn: Callable[..., object], *args: object) -> Future:
        """``fn(*args)`` on a worker (a module-level function of picklable arguments)."""
        return self.pool.submit(fn, *args)

    def __enter__(self) -> RunDecoders:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None and self.processes:
            _stop_workers(self.pool)
        self.pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _no_main() -> Iterator[None]:
    """While a worker (or the fork server) is started, hide the caller's ``__main__``: the
    workers need only mediatools' modules, and multiprocessing would otherwise run the
    caller's script again in each of them, as ``__mp_main__``. A library user's script
    without an ``if __name__ == "__main__":`` guard then ran its own verify inside the fork
    server ("a decoding worker stopped unexpectedly"); a script read from stdin failed with
    FileNotFoundError."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class _StartsWithoutMain:
    """A multiprocessing Process that starts under :func:`_no_main`."""

    def start(self) -> None:
        with _no_main():
            super().start()   # type: ignore[misc]


class _SpawnProcess(_StartsWithoutMain, multiprocessing.context.SpawnProcess):
    pass


class _SpawnContext(multiprocessing.context.SpawnContext):
    Process = _SpawnProcess


if hasattr(multiprocessing.context, "ForkServerContext"):
    class _ForkServerProcess(_StartsWithoutMain, multiprocessing.context.ForkServerProcess):
        pass

    class _ForkServerContext(multiprocessing.context.ForkServerContext):
        Process = _ForkServerProcess


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server that has numpy, PyAV and the worker modules loaded. Not
    forked from here: verify and activity may run among threads, where a fork is unsafe."""
    if "forkserver" not in multiprocessing.get_all_start_methods():   # pragma: no cover - not POSIX
        return _SpawnContext()
    from multiprocessing import forkserver
    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    try:
        with _no_main():
            forkserver.ensure_running()
    except OSError:
        # Its socket lives under TMPDIR, and a socket's path holds at most 107 bytes: under a
        # long TMPDIR (a CI work tree, pytest's tmp_path) "AF_UNIX path too long". Spawned
        # workers are slower to start and import numpy and PyAV each; the results are the same.
        return _SpawnContext()
    return _ForkServerContext()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    stop = getattr(pool, "terminate_workers", None)   # Python 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
