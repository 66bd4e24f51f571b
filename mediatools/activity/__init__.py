"""Who spoke when: speech activity per user inside its runs, talk-time figures, and exports
(RTTM, WebVTT, Audacity labels, CSV, JSON) that share one set of numbers.

``activity(source, outdir, ActivityOptions(...))`` → :class:`ActivityReport`. Detection
(:mod:`.detect`) streams each run, decoded in-process on worker processes (:mod:`.runs`),
into webrtcvad, or takes what a mix judged
as it decoded (:class:`SpeechTap`, :mod:`.tap`); :mod:`.smooth`, :mod:`.figures` and
:mod:`.exports` are pure functions on the turns.
"""
from typing import Any

from .api import activity
from .options import DETECTORS, EXPORTS, ActivityOptions, ActivityReport, Turn


def __getattr__(name: str) -> Any:
    if name == "SpeechTap":   # numpy and PyAV only when asked for
        from .tap import SpeechTap
        return SpeechTap
    raise AttributeError(name)


__all__ = ["DETECTORS", "EXPORTS", "ActivityOptions", "ActivityReport", "SpeechTap", "Turn", "activity"]
