"""The timing contract every stage shares: where each run of each user sits on the call's clock.

Pure functions, no I/O: :mod:`.contract` (runs, overlaps, the session origin, the
:class:`Timeline`), :mod:`.span` (time spans with crop / gaps / overlap), :mod:`.timespec`
(``--start`` / ``--end`` values).
"""
from .contract import DEFAULT_TOLERANCE_MS, Gap, PlacedRun, Timeline, UserTimeline, build_timeline
from .span import Span, gaps, overlap, support, total, window

__all__ = ["DEFAULT_TOLERANCE_MS", "Gap", "PlacedRun", "Timeline", "UserTimeline", "build_timeline",
           "Span", "gaps", "overlap", "support", "total", "window"]
