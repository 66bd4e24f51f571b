"""Raw speech frames → turns: pure functions, no I/O.

A detector's speech frames come in bursts (syllables, words) separated by short pauses,
with the odd click or breath in between. A *turn* is what a listener would call one go
at speaking: bursts whose pauses are shorter than ``hangover_ms`` join into one, and
what is left shorter than ``min_turn_ms`` is dropped. Ends are not padded, so a turn ends
where the last speech frame does (boundary errors stay those of the detector).
"""
from __future__ import annotations

from typing import Iterable

from ..timeline.span import Span


def smooth(spans: Iterable[tuple[float, float]], *, hangover_ms: float, min_turn_ms: float) -> list[Span]:
    """Join bursts closer than ``hangover_ms``, then drop turns shorter than ``min_turn_ms``."""
    joined: list[list[float]] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if joined and a - joined[-1][1] < hangover_ms:
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    return [Span(a, b) for a, b in joined if b - a >= min_turn_ms]


def place(spans: Iterable[Span], offset_ms: float, within: Span | None = None) -> list[Span]:
    """Run-relative spans onto the session clock, cropped to the run (``within``)."""
    out = []
    for s in spans:
        moved = s.shift(offset_ms)
        c = moved.crop(within) if within is not None else moved
        if c:
            out.append(c)
    return out
