"""Who spoke when: speech activity per user inside its runs, talk-time figures, and exports
(RTTM, WebVTT, Audacity labels, CSV, JSON) that share one set of numbers.

``activity(source, outdir, ActivityOptions(...))`` → :class:`ActivityReport`. Detection
(:mod:`.detect`) streams each run through ffmpeg into webrtcvad; :mod:`.smooth`,
:mod:`.figures` and :mod:`.exports` are pure functions on the turns.
"""
from .api import activity
from .options import DETECTORS, EXPORTS, ActivityOptions, ActivityReport, Turn

__all__ = ["DETECTORS", "EXPORTS", "ActivityOptions", "ActivityReport", "Turn", "activity"]
