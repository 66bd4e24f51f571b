"""An interrupt that must not be lost inside a C callback.

The CLI turns Ctrl-C and SIGTERM into KeyboardInterrupt. When the signal lands while PyAV
is calling back into Python to read a slice (``SliceChain.read``), PyAV reports the
exception as "ignored", the read fails, and the decode goes on: a mix interrupted there
would finish and exit 0. So the CLI's handlers also :func:`note` the interrupt here, and
code that runs such callbacks :func:`check` between them, raising it again where it counts.
"""
from __future__ import annotations

import sys
from typing import Any

_pending = False
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


def note() -> None:
    """An interrupt arrived (called from the signal handler, before it raises)."""
    global _pending
    _pending = True


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived and may have been swallowed."""
    if _pending:
        raise KeyboardInterrupt
