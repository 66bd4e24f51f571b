"""Speech activity judged on the mix's own decoding, so ``process --activity`` decodes each run once.

``activity`` on its own decodes every run with ffmpeg at 16 kHz, which is most of its
time; a mix has just decoded the very same runs. A :class:`SpeechTap` handed to
``mix(..., speech=tap)`` and then to ``activity(..., speech=tap)`` judges each run's samples
as the mix reads them (downmixed, resampled to 16 kHz by libswresample, converted to 16-bit
as ffmpeg converts them, on a thread of its own); activity takes the raw spans from here
and decodes only the runs it does not find (a run the mix could not read to its end, or a
tap that failed).
"""
from __future__ import annotations

import numpy as np

from ..media.tap import RATE, Mono16k, TapThread
from .detect import SpeechFrames
from .options import ActivityOptions

__all__ = ["SpeechTap"]


class SpeechTap:
    """Each run's raw speech spans (ms from the run's start), filled by the mix's decoders."""

    def __init__(self, options: ActivityOptions | None = None) -> None:
        o = options or ActivityOptions()
        self.detector = (o.detector, o.aggressiveness, o.frame_ms)
        self.runs: dict[tuple[str, int], tuple[float, list[tuple[float, float]]]] = {}
        self._worker = TapThread("activity-tap")

    @property
    def error(self) -> BaseException | None:
        return self._worker.error

    def begin(self, span_ms: float) -> None:
        self.finish()
        self.runs.clear()
        self._worker.start()

    def finish(self) -> None:
        self._worker.finish()
        if self.error is not None:
            self.runs.clear()

    def close(self) -> None:
        self.finish()
        self.runs.clear()

    def tap(self, uid: str, index: int, offset_ms: float, duration_ms: float, rate: int) -> RunSpeech:
        return RunSpeech(self, (uid, index), offset_ms, duration_ms, rate)

    def get(self, uid: str, index: int, offset_ms: float, o: ActivityOptions) -> list[tuple[float, float]] | None:
        """The run's raw spans if the mix judged it, at that place and with ``o``'s detector."""
        hit = self.runs.get((uid, index))
        if hit is None or abs(hit[0] - offset_ms) > 1e-6 or self.detector != (o.detector, o.aggressiveness,
                                                                              o.frame_ms):
            return None
        return hit[1]


class RunSpeech:
    """One run's samples, as the mix reads them, on their way to speech frames."""

    def __init__(self, tap: SpeechTap, key: tuple[str, int], offset_ms: float, duration_ms: float, rate: int):
        self.tap, self.key, self.offset_ms = tap, key, offset_ms
        self.left = int(round(duration_ms * RATE / 1000.0))    # as the decoder's atrim=end_sample
        self.mono = Mono16k(rate)
        self.frames = SpeechFrames(*tap.detector)

    def feed(self, x: np.ndarray) -> None:
        """``x``: (frames, channels) float32 at the mix's rate (not changed afterwards)."""
        self.tap._worker.submit(self._feed, x)

    def close(self) -> None:
        self.tap._worker.submit(self._close)

    def _feed(self, x: np.ndarray) -> None:
        self._put(self.mono(x))

    def _put(self, blocks: list[np.ndarray]) -> None:
        for b in blocks:
            b = b[: max(0, self.left)]
            if len(b):
                self.left -= len(b)
                # float → s16 as libswresample converts (lrintf(x · 32768), clipped)
                self.frames.feed(np.clip(np.rint(b * np.float32(32768.0)), -32768, 32767).astype("<i2").tobytes())

    def _close(self) -> None:
        self._put(self.mono.flush())
        self.tap.runs[self.key] = (self.offset_ms, self.frames.finish())
