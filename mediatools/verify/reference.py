"""What a verify expects to hear, collected while the mix decodes (each run decoded once).

verify compares a mix with the sum of every run's band energies at its place. On its
own it decodes every run of every user for that sum, which is most of its time; a mix
has just decoded the very same runs. :class:`Reference` is handed to ``mix`` and then to
``verify``: the mix feeds each run's samples, as it reads them, through a :class:`RunTap`
(downmixed to mono, resampled to 16 kHz by libswresample, lead-delayed onto the 10 ms
grid, reduced to band energies as they stream, on a thread of its own) and verify takes the sum and each run's
dominant bands from here instead of decoding the recording again.

What stays independent: the runs' places come from the timing contract, not from where
the mix put them, and the mix file is decoded by ffmpeg on its own; so a run placed
wrongly, missing or damaged in the written file is found as before. What is shared is
the decoder, so this is what ``process`` uses right after its own mix; ``mediatools
verify`` on any file (Agora's included) decodes the recording itself.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .features import EDGES, HOP_MS, RATE, BandStream, add_at, run_frames

__all__ = ["Dominant", "Reference", "RunTap", "dominant", "grid_place"]

log = logging.getLogger(__name__)


@dataclass
class Dominant:
    """A run's energy over its dominant bands only (≥ 10% of its strongest band)."""
    bands: np.ndarray
    energy: np.ndarray      # frames × len(bands)
    frames: int


def dominant(f: np.ndarray) -> Dominant:
    prof = f.mean(axis=0) if len(f) else None
    if prof is None or prof.max() <= 0:
        return Dominant(np.zeros(0, int), np.zeros((len(f), 0), np.float32), len(f))
    bands = np.flatnonzero(prof >= 0.1 * prof.max())
    return Dominant(bands, np.ascontiguousarray(f[:, bands]), len(f))


def grid_place(offset_ms: float) -> tuple[int, int]:
    """(frame, lead): the 10 ms frame a run starts in, and its start past that frame's line
    in 16 kHz samples (the run's features are computed that much delayed, on the mix's grid)."""
    at = int(offset_ms // HOP_MS)
    return at, int(round((offset_ms - at * HOP_MS) * RATE / 1000.0))


class Reference:
    """The expected sum and each run's dominant bands, filled by the mix's decoders.

    Keyed by (uid, run index, session offset): verify uses an entry only for the run it
    has at that very place, and decodes any run not found here itself.

    The work (resampling, FFTs) runs on a thread of its own, fed through a short queue: the
    mix's decoding thread sets the encoders' pace, and numpy and libswresample do most of
    theirs without the GIL. A failure there never fails the mix: it is logged, the reference
    is left empty, and verify decodes the recording itself.
    """

    QUEUE = 32   # blocks in flight (about a second of audio each)

    def __init__(self) -> None:
        self.sum: np.ndarray | None = None
        self.runs: dict[tuple[str, int], tuple[float, int, Dominant]] = {}
        self.error: BaseException | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None

    def begin(self, span_ms: float) -> None:
        self.finish()
        self.sum = np.zeros((int(span_ms / HOP_MS) + 1, len(EDGES) - 1), np.float32)
        self.runs.clear()
        self.error = None
        self._queue = queue.Queue(self.QUEUE)
        self._thread = threading.Thread(target=self._work, name="verify-reference", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        if self._queue is not None:
            self._queue.put((fn, args))

    def finish(self) -> None:
        """Wait until everything submitted is done (the mix calls this when it ends)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread, self._queue = None, None
        if self.error is not None:
            self.sum = None
            self.runs.clear()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is None:
                fn, args = item
                try:
                    fn(*args)
                except BaseException as exc:   # never the mix's failure: verify decodes instead
                    log.warning("verify reference dropped (verify will decode the recording): %s", exc)
                    self.error = exc

    def tap(self, uid: str, index: int, offset_ms: float, duration_ms: float, rate: int) -> RunTap:
        if self.sum is None:
            raise RuntimeError("Reference.begin() first")
        return RunTap(self, (uid, index), offset_ms, duration_ms, rate)

    def get(self, uid: str, index: int, offset_ms: float) -> tuple[int, Dominant] | None:
        self.finish()
        hit = self.runs.get((uid, index))
        if hit is None or abs(hit[0] - offset_ms) > 1e-6:
            return None
        return hit[1], hit[2]

    def _add(self, key: tuple[str, int], offset_ms: float, f: np.ndarray) -> None:
        at, _ = grid_place(offset_ms)
        add_at(self.sum, at, f)
        self.runs[key] = (offset_ms, at, dominant(f))


class RunTap:
    """One run's samples, as the mix reads them, on their way to band energies."""

    def __init__(self, ref: Reference, key: tuple[str, int], offset_ms: float, duration_ms: float, rate: int):
        self.ref, self.key, self.offset_ms, self.duration_ms, self.rate = ref, key, offset_ms, duration_ms, rate
        self.bands = BandStream()
        _, lead = grid_place(offset_ms)
        if lead:
            self.bands.feed(np.zeros(lead, np.float32))
        self._resampler = None
        if rate != RATE:
            import av
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)

    def feed(self, x: np.ndarray) -> None:
        """``x``: (frames, channels) float32 at the mix's rate (not changed afterwards)."""
        self.ref.submit(self._feed, x)

    def close(self) -> None:
        """The run is complete: its features join the reference."""
        self.ref.submit(self._close)

    def _feed(self, x: np.ndarray) -> None:
        mono = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
        if self._resampler is None:
            self.bands.feed(np.ascontiguousarray(mono, np.float32))
            return
        import av
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono, np.float32).reshape(1, -1), format="flt",
                                           layout="mono")
        frame.sample_rate = self.rate
        self._put(self._resampler.resample(frame))

    def _put(self, frames: list) -> None:
        for f in frames:
            if f.samples:
                self.bands.feed(np.frombuffer(f.planes[0], np.float32, f.samples))

    def _close(self) -> None:
        if self._resampler is not None:
            self._put(self._resampler.resample(None))
            self._resampler = None
        self.ref._add(self.key, self.offset_ms, self.bands.finish()[: run_frames(self.duration_ms)])
