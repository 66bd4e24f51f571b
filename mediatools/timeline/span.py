"""Time spans and the operations every stage needs on them, in the spirit of pyannote.core's
Segment and Timeline: crop to a window, the gaps between spans, where spans overlap.

Pure functions on half-open intervals [start, end) in milliseconds (floats); no I/O.
Used by the timing contract (gaps, failover overlaps), by mix (runs cropped to the
window), and by the speech-activity figures (overlap between speakers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, order=True)
class Span:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def __bool__(self) -> bool:
        """Empty spans (end ≤ start) are false."""
        return self.end > self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def crop(self, window: Span) -> Span | None:
        """The part of this span inside ``window``; None when nothing is."""
        s = Span(max(self.start, window.start), min(self.end, window.end))
        return s if s else None

    def shift(self, by: float) -> Span:
        return Span(self.start + by, self.end + by)

    def contains(self, other: Span) -> bool:
        return self.start <= other.start and other.end <= self.end


EVERYTHING = Span(-math.inf, math.inf)


def window(start: float | None = None, end: float | None = None) -> Span:
    """A crop window; an open side is unbounded."""
    return Span(-math.inf if start is None else start, math.inf if end is None else end)


def support(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans`` as sorted, disjoint spans (touching spans join)."""
    out: list[Span] = []
    for s in sorted((x for x in spans if x), key=_key):   # a tuple key: 10× faster than the dataclass order
        if out and s.start <= out[-1].end:
            if s.end > out[-1].end:
                out[-1] = Span(out[-1].start, s.end)
        else:
            out.append(s)
    return out


def _key(s: Span) -> tuple[float, float]:
    return (s.start, s.end)


def gaps(spans: Iterable[Span], within: Span | None = None) -> list[Span]:
    """Where none of ``spans`` is, between the first start and the last end (or inside
    ``within``, edges included)."""
    joined = support(spans)
    out: list[Span] = []
    if within is not None:
        joined = [c for s in joined if (c := s.crop(within))]
        edges = [Span(within.start, within.start)] + joined + [Span(within.end, within.end)]
    else:
        edges = joined
    for a, b in zip(edges, edges[1:]):
        if b.start > a.end:
            out.append(Span(a.end, b.start))
    return out


def overlap(spans: Iterable[Span]) -> list[Span]:
    """Where two or more of ``spans`` are at once, as sorted, disjoint spans."""
    events = sorted([(s.start, 1) for s in spans if s] + [(s.end, -1) for s in spans if s],
                    key=lambda e: (e[0], e[1]))
    out: list[Span] = []
    depth, opened = 0, 0.0
    for t, d in events:
        if d > 0:
            depth += 1
            if depth == 2:
                opened = t
        else:
            if depth == 2 and t > opened:
                out.append(Span(opened, t))
            depth -= 1
    return support(out)


def total(spans: Iterable[Span]) -> float:
    """Time covered by ``spans`` (overlaps counted once)."""
    return sum(s.duration for s in support(spans))
