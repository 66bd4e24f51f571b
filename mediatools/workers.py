"""The one cancel-on-first-error worker pool that fetch and merge (and the pipeline) share.

Work items run on threads; results come back as each completes. The first error, Ctrl-C
or SIGTERM sets ``stop`` (workers check it between their steps and give up), cancels what
has not started, waits for what is running, and re-raises in the caller.
"""
from __future__ import annotations

import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _run_pending_signal_handlers() -> None:
    """A signal caught while workers run Python code may not reach the main thread's handler
    (and so KeyboardInterrupt) until all of them are done. pthread_sigmask with nothing to
    change is the stdlib call that runs pending handlers (PyErr_CheckSignals). POSIX only."""
    if hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, ())


def as_completed(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], *,
                 stop: threading.Event, tick: Callable[[], None] | None = None,
                 poll_s: float = 0.1) -> Iterator[tuple[T, R]]:
    """Run ``fn(item)`` on ``pool`` for every item; yield ``(item, result)`` as each completes.

    ``tick`` is called from the caller's thread every ``poll_s`` (progress). Closing the
    generator early, an error in any item or an interrupt stops the rest as described above.
    """
    futures: dict[Future, T] = {}
    running = _Running()
    try:
        for item in items:   # inside the try: workers start (and may be interrupted) at once
            futures[pool.submit(running.call, fn, item, stop)] = item
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
            _run_pending_signal_handlers()
            if tick:
                tick()
            for fut in finished:
                yield futures[fut], fut.result()
    except BaseException:
        stop.set()
        for fut in futures:
            fut.cancel()
        wait(futures)
        running.wait_idle()   # an interrupt between submit() and storing its future: wait for that one too
        raise


class _Running:
    """Counts the calls in progress. The futures dict alone is not enough: Ctrl-C can land
    after ``pool.submit`` returned but before its future was stored, and that call (already
    writing its temporary file) would then outlive the interrupted run."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = threading.Condition()

    def call(self, fn: Callable[[T], R], item: T, stop: threading.Event) -> R:
        with self.idle:
            self.count += 1
        try:
            if stop.is_set():   # submitted, not yet started when the run was stopped
                raise KeyboardInterrupt
            return fn(item)
        finally:
            with self.idle:
                self.count -= 1
                self.idle.notify_all()

    def wait_idle(self) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.count == 0)


def run_all(pool: ThreadPoolExecutor, fn: Callable[[T], object], items: Iterable[T], *,
            stop: threading.Event) -> None:
    """:func:`as_completed` for work whose results are kept by the workers themselves."""
    for _ in as_completed(pool, fn, items, stop=stop):
        pass
