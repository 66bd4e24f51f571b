"""The one progress protocol every stage takes.

A stage calls ``progress(done, total)`` as it advances, in units of its own (fetch: bytes,
mix: output samples fed to the encoder, merge: thousandths of runs, verify: runs decoded);
``done / total`` is the share finished. ``note`` may say what in words ("12/400 files").
It may be called from worker threads, so an implementation must be thread-safe; it must
be quick, since it runs inside the work.
"""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, note: str | None = None) -> None: ...
