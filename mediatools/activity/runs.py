"""One run's raw speech spans, decoded in-process, on :class:`~mediatools.media.processes.RunDecoders`' workers.

The same audio path as the mix's :class:`~mediatools.activity.SpeechTap`: the mix's own
:class:`~mediatools.media.decode.Decoder` at 48 kHz, :class:`~mediatools.media.tap.Mono16k`
(channels averaged, then averaged in threes to 16 kHz), :class:`~.detect.SpeechFrames` fed
floats. So ``activity`` on its own and ``process --activity`` give the same turns for the
same run, and no ffmpeg pipes 16 kHz samples into one interpreter per run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import MediatoolsError
from ..media.decode import DecodeError, Decoder
from ..media.processes import give_back
from ..media.tap import decode_16k
from ..media.thirds import RATE_IN
from .detect import SpeechFrames

__all__ = ["run_speech"]

def run_speech(slices: list[str], duration_ms: float, channels: int, detector: str, aggressiveness: int,
               frame_ms: int, holes: Sequence[str] = ()) -> list[tuple[float, float]]:
    """Raw speech spans (start, end: ms from the run's start) of one run, its slices decoded
    as one stream (``holes``: its damaged slices), ``duration_ms`` of it. Everything it takes
    and returns pickles."""
    frames = SpeechFrames(detector, aggressiveness, frame_ms, duration_ms=duration_ms)
    try:
        with Decoder(slices, RATE_IN, channels, length=int(round(duration_ms * RATE_IN / 1000.0)),
                     holes=holes) as dec:
            decode_16k(dec, frames.feed_float)
    except DecodeError as exc:
        raise MediatoolsError(f"decoding failed: {exc.message}", file=exc.file or Path(slices[0]).name,
                              code="decode_failed") from None
    give_back()
    return frames.finish()
