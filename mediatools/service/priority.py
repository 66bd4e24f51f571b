"""The local Dask workers run below the service's priority, so mixing never delays an answer.

The workers share the machine with the event loop that answers NCS (which resends after
10 s, and whose p99 the load benchmark holds under 100 ms). At nice 10 the kernel gives a
busy worker about a tenth of the CPU a runnable receiver gets: a burst of notifications is
answered at full speed while a mix runs, and the mix loses only what the receiver uses.
A cluster given with ``--scheduler`` is left as its operator set it up.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


def lower_priority(nice: int) -> int:
    """Raise every thread of this process to at least ``nice``; returns the niceness in force.

    Linux keeps a priority per thread (``setpriority`` on the process id changes one
    thread), so each thread is set; threads and ffmpeg processes started later inherit
    it from the thread that starts them. Elsewhere, the process's own call is used.
    """
    tasks = Path(f"/proc/{os.getpid()}/task")
    ids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in ids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
        except OSError:   # a thread that ended meanwhile
            pass
    return os.getpriority(os.PRIO_PROCESS, 0)


class LowerPriority(WorkerPlugin):
    """Applies :func:`lower_priority` on each worker as it starts (a restarted one too)."""

    name = "mediatools-nice"

    def __init__(self, nice: int) -> None:
        self.nice = nice

    def setup(self, worker: Any) -> None:
        lower_priority(self.nice)
