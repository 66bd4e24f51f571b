"""What a mix's taps share: a worker thread off the decoding path, and 16 kHz mono samples.

A tap (verify's :class:`~mediatools.verify.Reference`, activity's
:class:`~mediatools.activity.SpeechTap`) sees every run's samples as the mix decodes them, so
the stages after the mix need not decode the recording again. Its work runs on a thread of
its own, fed through a short queue (numpy and libswresample do most of theirs without the
GIL), and a failure there never fails the mix: it is kept, later work is skipped, and the
stage that wanted the tap's result decodes for itself.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Protocol

import numpy as np

log = logging.getLogger(__name__)

RATE = 16000


class RunTap(Protocol):
    def feed(self, x: np.ndarray) -> None: ...   # (frames, channels) float32 at the mix's rate
    def close(self) -> None: ...                 # the run was read to its end


class MixTap(Protocol):
    """What ``mix`` hands each run's samples to: ``begin`` when it starts, a :class:`RunTap` per
    run, ``finish`` when it ends."""
    def begin(self, span_ms: float) -> None: ...
    def tap(self, uid: str, index: int, offset_ms: float, duration_ms: float, rate: int) -> RunTap: ...
    def finish(self) -> None: ...


class TapThread:
    """One worker thread running submitted calls in order; ``error`` is the first failure."""

    QUEUE = 32   # blocks in flight (about a second of audio each)

    def __init__(self, name: str) -> None:
        self.name = name
        self.error: BaseException | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.finish()
        self.error = None
        self._queue = queue.Queue(self.QUEUE)
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        if self._queue is not None:
            self._queue.put((fn, args))

    def finish(self) -> None:
        """Wait until everything submitted is done."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread, self._queue = None, None

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is None:
                fn, args = item
                try:
                    fn(*args)
                except BaseException as exc:   # never the mix's failure
                    log.warning("%s dropped (the stage after the mix decodes for itself): %s", self.name, exc)
                    self.error = exc


class Mono16k:
    """A run's samples, (frames × channels) float32 at ``rate``, as 16 kHz mono float32 blocks:
    channels averaged (as ffmpeg's ``-ac 1`` does), resampled by libswresample."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = None
        if rate != RATE:
            import av
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        mono = np.ascontiguousarray(x[:, 0] if x.shape[1] == 1 else x.mean(axis=1), np.float32)
        if self._resampler is None:
            return [mono]
        import av
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.rate
        return self._arrays(self._resampler.resample(frame))

    def flush(self) -> list[np.ndarray]:
        if self._resampler is None:
            return []
        out = self._arrays(self._resampler.resample(None))
        self._resampler = None
        return out

    @staticmethod
    def _arrays(frames: list) -> list[np.ndarray]:
        return [np.frombuffer(f.planes[0], np.float32, f.samples) for f in frames if f.samples]
