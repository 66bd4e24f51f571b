"""Band-energy streams spooled to disk, so verify's memory is flat in the recording's length.

An hour of 10 ms band energies is ~35 MB per stream; a 3-hour call with 8 users holds
25 of them, plus the mix and the expected sum. verify needs them twice or three times
(global offset, then every run's place, then silence) but never all at once: each stream
is written once to a file of raw float32 rows (frames × 24) as it is computed, with the
few per-band sums the checks need kept in memory, and read back by row ranges. The files
live in a temporary folder that is removed when the store is closed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .features import EDGES

BANDS = len(EDGES) - 1
ROW_BYTES = BANDS * 4


@dataclass
class Stream:
    """One spooled stream: ``frames`` rows of band energies in ``path``; ``energy`` and ``amp``
    are the per-band sums of the energies and of their square roots (band amplitudes)."""
    path: Path
    frames: int = 0
    energy: np.ndarray = field(default_factory=lambda: np.zeros(BANDS))
    amp: np.ndarray = field(default_factory=lambda: np.zeros(BANDS))

    def rows(self, start: int, stop: int, bands: np.ndarray | None = None) -> np.ndarray:
        """Rows [start, stop) as float32 (frames × bands); rows outside the stream are zero."""
        n = max(0, stop - start)
        out = np.zeros((n, BANDS if bands is None else len(bands)), np.float32)
        a, b = max(start, 0), min(stop, self.frames)
        if b > a:
            with open(self.path, "rb") as fh:
                fh.seek(a * ROW_BYTES)
                got = np.fromfile(fh, np.float32, (b - a) * BANDS).reshape(-1, BANDS)
            out[a - start:a - start + len(got)] = got if bands is None else got[:, bands]
        return out

    def blocks(self, size: int = 6000):
        """(start, rows) over the whole stream, ``size`` rows at a time."""
        for a in range(0, self.frames, size):
            yield a, self.rows(a, min(a + size, self.frames))

    def profile(self) -> np.ndarray:
        """Mean energy per band."""
        return self.energy / self.frames if self.frames else np.zeros(BANDS)


class StreamWriter:
    """Appends rows to a :class:`Stream`, keeping at most ``limit`` of them (a run's length).

    The file is opened at the first rows and closed by :meth:`close`: a mix sets up a writer
    per run at its start, and a call may have hundreds of runs."""

    def __init__(self, stream: Stream, limit: int | None = None):
        self.stream, self.limit = stream, limit
        self._fh = None

    def __call__(self, rows: np.ndarray) -> None:
        s = self.stream
        if self.limit is not None:
            rows = rows[: max(0, self.limit - s.frames)]
        if not len(rows):
            return
        rows = np.ascontiguousarray(rows, np.float32)
        if self._fh is None:
            self._fh = open(s.path, "wb")
        self._fh.write(rows.tobytes())
        s.frames += len(rows)
        s.energy += rows.sum(axis=0, dtype=np.float64)
        s.amp += np.sqrt(np.maximum(rows, 0)).sum(axis=0, dtype=np.float64)

    def close(self) -> Stream:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        return self.stream


class FeatureStore:
    """A temporary folder of spooled streams; ``close()`` (or the context) removes it."""

    def __init__(self, parent: str | Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="mediatools-verify-", dir=parent))
        self._n = 0

    def writer(self, name: str, limit: int | None = None) -> StreamWriter:
        return StreamWriter(Stream(self.path(name)), limit)

    def path(self, name: str) -> Path:
        """A new file's path in the store, named after ``name``."""
        self._n += 1
        safe = "".join(c if c.isalnum() else "_" for c in name)[:40]
        return self.dir / f"{self._n:05d}-{safe}.f32"

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a store dropped without close() still leaves nothing behind
        if os.path.isdir(getattr(self, "dir", "")):
            self.close()
