"""Where the CLI's Ctrl-C / SIGTERM may land, and where it must not.

The CLI turns Ctrl-C and SIGTERM into KeyboardInterrupt, raised by its signal handlers in
the main thread at whatever line it is running. Three places must not take it there:

- **PyAV's C callbacks.** When the signal lands while PyAV calls back into Python to read a
  slice (``SliceChain.read``), PyAV reports the exception as "ignored", the read fails, and
  the decode goes on: a mix interrupted there would finish and exit 0. So the handlers
  :func:`note` the interrupt here, and code that runs such callbacks :func:`check` between
  them, raising it again where it counts.
- **The standard library's lock code.** ``threading.Condition.__enter__`` is Python: an
  interrupt raised just after its lock is taken leaves the lock held for ever, and the next
  ``queue.get`` (the encoder's feeding thread, then the cleanup's own) waits on it: an
  interrupted mix hung until the watchdog ended it. :func:`note` therefore does not raise in
  a frame of ``threading``, ``queue``, ``logging`` or ``concurrent.futures``; it asks for
  SIGALRM a moment later and the handler tries again (a wait blocked there for longer than
  :data:`RETRY_FOR_S` is interrupted anyway: a blocked acquire is safe to leave).
- **Blocks that start a child or create a file** (:func:`deferred`).
"""
from __future__ import annotations

import concurrent.futures._base
import concurrent.futures.thread
import contextlib
import logging
import queue
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Iterator

_pending = False
_holding = 0      # deferred() blocks open
_held = False     # an interrupt arrived inside one
_retrying: float | None = None   # when note() first put off raising in lock code (None: not waiting)

#: how often a put-off interrupt is tried again, and for how long at most
RETRY_S, RETRY_FOR_S = 0.01, 0.5

#: the files (as their code objects name them) of the standard library's lock code
_LOCK_CODE = frozenset(m.__file__ for m in (threading, queue, logging, concurrent.futures._base,
                                            concurrent.futures.thread))
_default_unraisable = sys.unraisablehook
_default_except = sys.excepthook


def install() -> None:
    """Keep PyAV's report of a swallowed interrupt off stderr: Cython prints the traceback
    (through ``sys.excepthook``) and then "Exception ignored in ..." (``sys.unraisablehook``).
    The interrupt is raised again by :func:`check`, and the CLI says "interrupted" once.
    Also SIGALRM's handler, which raises an interrupt :func:`note` put off (main thread only)."""
    sys.unraisablehook = _unraisable
    sys.excepthook = _except
    signal.signal(signal.SIGALRM, _retry)


def uninstall() -> None:
    """Cancel a retry still pending and ignore SIGALRM from here on: the CLI calls it once its
    command has ended. An interrupt put off in lock code near the end would otherwise fire after
    the interpreter restored SIGALRM's default action, killing a finished run with exit 142."""
    global _retrying
    _retrying = None
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)


def _retry(signum: int, frame: FrameType | None) -> None:
    if _retrying is not None and note(frame):
        raise KeyboardInterrupt


def _unraisable(info: Any) -> None:
    if isinstance(info.exc_value, KeyboardInterrupt) and _pending:
        return
    _default_unraisable(info)


def _except(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt) and _pending:
        return
    _default_except(kind, value, tb)


def note(frame: FrameType | None = None) -> bool:
    """An interrupt arrived (called from the signal handler with the frame it interrupted):
    whether the handler may raise it now. False while a :func:`deferred` block holds interrupts
    back (the block's end raises it), and while ``frame`` is in the standard library's lock
    code (SIGALRM tries again in :data:`RETRY_S`)."""
    global _pending, _held, _retrying
    _pending = True
    if _holding:
        _held = True
        _stop_retrying()
        return False
    if frame is not None and _in_lock_code(frame):
        now = time.monotonic()
        if _retrying is None:
            _retrying = now
        if now - _retrying < RETRY_FOR_S:
            signal.setitimer(signal.ITIMER_REAL, RETRY_S)
            return False
    _stop_retrying()
    return True


def _in_lock_code(frame: FrameType, depth: int = 3) -> bool:
    """``frame`` or one of its ``depth - 1`` callers runs in the standard library's lock code."""
    f: FrameType | None = frame
    while f is not None and depth:
        if f.f_code.co_filename in _LOCK_CODE:
            return True
        f, depth = f.f_back, depth - 1
    return False


def _stop_retrying() -> None:
    global _retrying
    if _retrying is not None:
        _retrying = None
        signal.setitimer(signal.ITIMER_REAL, 0)


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived and may have been swallowed."""
    if _pending:
        _stop_retrying()
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold the CLI's Ctrl-C / SIGTERM back for the block: a block that starts a child or creates
    a file and keeps hold of it cannot be cut between the two, which would leave an encoder
    running with nobody to stop it, or a temporary file nobody removes. An interrupt that
    arrived meanwhile is raised when the block ends: put the block inside the ``try`` that
    cleans up. (The signal mask is not used: children would inherit it.) Only the main thread,
    where Python runs signal handlers, holds anything: elsewhere this is a plain block (worker
    threads stop on their pool's stop event, not on KeyboardInterrupt)."""
    global _holding, _held
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
        if _held and not _holding:
            _held = False
            _stop_retrying()
            raise KeyboardInterrupt   # also when the block failed: the interrupt is what counts
