"""The CLI's one adapter from the library's progress protocol to a terminal bar."""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator

import click

from ..progress import Progress

STEPS = 1000


class _Bar:
    """click's progress bar over thousandths of the work; safe from worker threads."""

    def __init__(self, label: str):
        self.label = label
        self._lock = threading.Lock()
        self._shown = 0
        self._bar = click.progressbar(length=STEPS, label=label, file=click.get_text_stream("stderr"),
                                      show_eta=True)

    def __call__(self, done: int, total: int, note: str | None = None) -> None:
        with self._lock:
            pos = min(STEPS, int(STEPS * done / max(total, 1)))
            if note:
                self._bar.label = f"{self.label} {note}"
            if pos > self._shown:
                self._bar.update(pos - self._shown)
                self._shown = pos

    def __enter__(self) -> _Bar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)


def show_progress(quiet: bool) -> bool:
    """A bar only for a person watching: not with --quiet, not when stderr is a file or pipe."""
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(label: str, *, quiet: bool = False) -> Iterator[Progress | None]:
    """A :class:`~mediatools.progress.Progress` drawing a bar on stderr, or None when no one watches."""
    if not show_progress(quiet):
        yield None
        return
    with _Bar(label) as bar:
        yield bar
