"""Speech activity judged on the mix's own decoding, so ``process --activity`` decodes each run once.

``activity`` on its own decodes every run (:mod:`.runs`), which is most of its
time; a mix has just decoded the very same runs. A :class:`SpeechTap` handed to
``mix(..., speech=tap)`` and then to ``activity(..., speech=tap)`` judges each run's samples
as the mix reads them (downmixed, brought to 16 kHz by averaging in threes as verify does,
converted to 16-bit as ffmpeg converts them, on a thread of its own, which a verify Reference
of the same mix shares: each run is brought down once for both); activity takes the raw
spans from here and decodes only the runs it does not find (a run the mix could not read to
its end, or a tap that failed).
"""
from __future__ import annotations

import numpy as np

from ..media.tap import Tap16k
from .detect import SpeechFrames
from .options import ActivityOptions

__all__ = ["SpeechTap"]


class SpeechTap(Tap16k):
    """Each run's raw speech spans (ms from the run's start), filled by the mix's decoders."""

    def __init__(self, options: ActivityOptions | None = None) -> None:
        super().__init__("activity-tap")
        o = options or ActivityOptions()
        self.detector = (o.detector, o.aggressiveness, o.frame_ms)
        self.runs: dict[tuple[str, int], tuple[float, list[tuple[float, float]]]] = {}

    def begin(self, span_ms: float) -> None:
        self.finish()
        self.runs.clear()
        super().begin(span_ms)

    def finish(self) -> None:
        super().finish()
        if self.error is not None:
            self.runs.clear()

    def close(self) -> None:
        self.finish()
        self.runs.clear()

    def run16k(self, uid: str, index: int, offset_ms: float, duration_ms: float) -> RunSpeech:
        return RunSpeech(self, (uid, index), offset_ms, duration_ms)

    def get(self, uid: str, index: int, offset_ms: float, o: ActivityOptions) -> list[tuple[float, float]] | None:
        """The run's raw spans if the mix judged it, at that place and with ``o``'s detector."""
        hit = self.runs.get((uid, index))
        if hit is None or abs(hit[0] - offset_ms) > 1e-6 or self.detector != (o.detector, o.aggressiveness,
                                                                              o.frame_ms):
            return None
        return hit[1]


class RunSpeech:
    """One run's 16 kHz samples, as the mix reads them, on their way to speech frames."""

    def __init__(self, tap: SpeechTap, key: tuple[str, int], offset_ms: float, duration_ms: float):
        self.tap, self.key, self.offset_ms = tap, key, offset_ms
        self.frames = SpeechFrames(*tap.detector, duration_ms=duration_ms)

    def put(self, x: np.ndarray) -> None:
        self.frames.feed_float(x)

    def end(self) -> None:
        self.tap.runs[self.key] = (self.offset_ms, self.frames.finish())
