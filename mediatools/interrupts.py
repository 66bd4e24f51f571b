"""An interrupt that must not be lost inside a C callback.

The CLI turns Ctrl-C and SIGTERM into KeyboardInterrupt. When the signal lands while PyAV
is calling back into Python to read a slice (``SliceChain.read``), PyAV reports the
exception as "ignored", the read fails, and the decode goes on: a mix interrupted there
would finish and exit 0. So the CLI's handlers also :func:`note` the interrupt here, and
code that runs such callbacks :func:`check` between them, raising it again where it counts.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Iterator

_pending = False
_holding = 0      # deferred() blocks open
_held = False     # an interrupt arrived inside one
_default_unraisable = sys.unraisablehook
_default_except = sys.excepthook


def install() -> None:
    """Keep PyAV's report of a swallowed interrupt off stderr: Cython prints the traceback
    (through ``sys.excepthook``) and then "Exception ignored in ..." (``sys.unraisablehook``).
    The interrupt is raised again by :func:`check`, and the CLI says "interrupted" once."""
    sys.unraisablehook = _unraisable
    sys.excepthook = _except


def _unraisable(info: Any) -> None:
    if isinstance(info.exc_value, KeyboardInterrupt) and _pending:
        return
    _default_unraisable(info)


def _except(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt) and _pending:
        return
    _default_except(kind, value, tb)


def note() -> bool:
    """An interrupt arrived (called from the signal handler): False while a :func:`deferred`
    block holds interrupts back (the handler must not raise; the block's end will)."""
    global _pending, _held
    _pending = True
    if _holding:
        _held = True
        return False
    return True


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived and may have been swallowed."""
    if _pending:
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
            raise KeyboardInterrupt   # also when the block failed: the interrupt is what counts
