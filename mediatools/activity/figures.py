"""Talk-time figures from turns: pure functions on spans, no I/O.

Every figure comes from the same turns (ms from the session origin), so the exports, the
report and ``activity.json`` agree to the millisecond. Definitions:

* present: time inside the user's runs (unmuted and in the call);
* talk: time inside the user's turns; share: talk over the sum of every user's talk;
* overlap: time the user speaks while at least one other user does;
* interruption: B starts while A speaks and A stops within ``interruption_ms`` of B's start
  (counted once per pair of turns; ``interruptions`` made by B, ``interrupted`` suffered by A);
* call talk: time anyone speaks; call overlap: time two or more speak at once;
* silence: a stretch of the call (origin to the last recorded instant) where nobody speaks
  for more than ``silence_ms``.
"""
from __future__ import annotations

import bisect
from typing import Any

from ..timeline.span import Span, gaps, overlap, support, total


def interruptions(turns: dict[str, list[Span]], within_ms: float = 1000.0) -> list[dict[str, Any]]:
    """Every (interrupter, interrupted) pair of turns, by the interrupter's start."""
    events = []
    starts = {u: [s.start for s in ts] for u, ts in turns.items()}
    for b_uid, b_turns in turns.items():
        for b in b_turns:
            for a_uid, a_turns in turns.items():
                if a_uid == b_uid:
                    continue
                i = bisect.bisect_left(starts[a_uid], b.start) - 1   # the last A turn starting before B
                if i >= 0:
                    a = a_turns[i]
                    if a.start < b.start < a.end <= b.start + within_ms:
                        events.append({"at_ms": b.start, "by": b_uid, "of": a_uid, "overlap_ms": a.end - b.start})
    return sorted(events, key=lambda e: (e["at_ms"], e["by"], e["of"]))


def overlaps(turns: dict[str, list[Span]]) -> dict[str, float]:
    """uid → time that user speaks while at least one other does: one sweep over every turn
    (each user's turns disjoint), so a 20-user, 3-hour call costs one sort."""
    events = sorted([(s.start, 1, u) for u, ts in turns.items() for s in ts] +
                    [(s.end, -1, u) for u, ts in turns.items() for s in ts])
    out = {u: 0.0 for u in turns}
    active: set[str] = set()
    last = 0.0
    for t, d, u in events:
        if len(active) >= 2 and t > last:
            for a in active:
                out[a] += t - last
        last = t
        if d > 0:
            active.add(u)
        else:
            active.discard(u)
    return out


def user_figures(uid: str, presence: list[Span], turns: dict[str, list[Span]], all_talk_ms: float,
                 events: list[dict[str, Any]], overlap_ms: float) -> dict[str, Any]:
    mine = turns.get(uid, [])
    talk = total(mine)
    return {"uid": uid, "present_ms": _ms(total(presence)), "talk_ms": _ms(talk),
            "share": round(talk / all_talk_ms, 4) if all_talk_ms > 0 else 0.0,
            "turns": len(mine), "longest_turn_ms": _ms(max((s.duration for s in mine), default=0.0)),
            "overlap_ms": _ms(overlap_ms),
            "interruptions": sum(1 for e in events if e["by"] == uid),
            "interrupted": sum(1 for e in events if e["of"] == uid)}


def figures(presence: dict[str, list[Span]], turns: dict[str, list[Span]], span_ms: float, *,
            interruption_ms: float = 1000.0, silence_ms: float = 5000.0) -> dict[str, Any]:
    """Per-user and per-call figures. ``presence`` and ``turns`` map uid → spans (ms)."""
    turns = {u: support(ts) for u, ts in turns.items()}
    events = interruptions(turns, interruption_ms)
    every = [s for ts in turns.values() for s in ts]
    all_talk = sum(total(ts) for ts in turns.values())
    quiet = [g for g in gaps(every, within=Span(0.0, span_ms)) if g.duration > silence_ms]
    each = overlaps(turns)
    users = [user_figures(u, presence.get(u, []), turns, all_talk, events, each.get(u, 0.0)) for u in presence]
    call = {"span_ms": _ms(span_ms), "talk_ms": _ms(total(every)), "overlap_ms": _ms(total(overlap(every))),
            "turns": len(every), "interruptions": len(events),
            "silences": [[_ms(g.start), _ms(g.end)] for g in quiet],
            "silence_ms": _ms(sum(g.duration for g in quiet))}
    return {"users": users, "call": call, "interruption_events": events}


def _ms(x: float) -> float:
    """Figures to the millisecond (ints where whole, as the turns are)."""
    r = round(float(x), 3)
    return int(r) if r == int(r) else r
