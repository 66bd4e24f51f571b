"""The timing contract merge, mix and verify share — pure functions, no I/O.

* A slice's first decoded sample plays at its file-name UTC.
* Within a run, slices follow each other sample-contiguously.
* A run starts at a discontinuity, after a missing or broken slice, or where a slice's
  UTC differs from the previous slice's end by more than ``tolerance_ms``.
* Overlapping runs (failover ``bak<n>`` copies) keep one copy of each instant: the
  earlier run is cut where the later one starts.
* The session origin is the earliest run start of any user (whichever are selected), unless given.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Problem
from ..recording.model import Recording, Run, Slice, UserTrack
from .span import Span
from .span import gaps as span_gaps

DEFAULT_TOLERANCE_MS = 250.0
#: a slice whose audio differs from its EXTINF by more than this (or 1.5 of its frames, if more)
#: is taken at what it holds, and the next slice joins its run only if it starts within that of
#: where the audio ends (``Slice.recounted``)
CONTENT_TOLERANCE_MS = 50.0


def split_runs(slices: list[Slice], tolerance_ms: float = DEFAULT_TOLERANCE_MS) -> list[Run]:
    """Group time-ordered slices into runs. Unusable slices end a run and are left out."""
    runs: list[Run] = []
    cur: list[Slice] = []

    def close() -> None:
        if cur:
            runs.append(make_run(list(cur)))
            cur.clear()

    for s in slices:
        if not s.usable:
            close()
            continue
        if cur:
            prev = cur[-1]
            # after a slice taken at what it holds (not its EXTINF), the next slice must start
            # where that audio ends: played on as one stream, the rest would be that much off
            limit = min(tolerance_ms, prev.recounted) if prev.recounted else tolerance_ms
            changed = s.aac_format is not None and prev.aac_format is not None and s.aac_format != prev.aac_format
            if s.discontinuity or abs(s.utc_ms - prev.end_ms) > limit or changed:
                close()   # (a new AAC format: another decoder, another copy; see discovery's format_change)
        cur.append(s)
    close()
    return runs


def make_run(slices: list[Slice]) -> Run:
    start = slices[0].utc_ms
    pos = float(start)
    drift = 0.0
    for s in slices:
        drift = max(drift, abs(s.utc_ms - pos))
        pos += s.duration_ms or 0.0
    return Run(start_ms=start, duration_ms=pos - start, slices=slices, drift_ms=drift)


def resolve_overlaps(runs: list[Run], uid: str | None = None) -> tuple[list[Run], list[Problem]]:
    """Order runs by start and cut overlaps so each instant is kept once."""
    problems: list[Problem] = []
    out: list[Run] = []
    for r in sorted(runs, key=lambda r: (r.start_ms, -r.duration_ms)):
        if out and r.start_ms < out[-1].end_ms:
            prev = out[-1]
            first = r.slices[0].name
            if r.end_ms <= prev.end_ms:
                problems.append(Problem("overlap_dropped", first,
                                        f"run {_span(r)} lies inside run {_span(prev)} already kept",
                                        "skipped", uid))
                continue
            cut = prev.end_ms - r.start_ms
            prev.duration_ms = float(r.start_ms - prev.start_ms)
            prev.slices = [s for s in prev.slices if s.utc_ms < r.start_ms] or prev.slices[:1]
            problems.append(Problem("overlap_cut", first,
                                    f"overlaps the previous run by {cut:.0f} ms; earlier run cut at "
                                    f"{r.start_ms - prev.start_ms:.0f} ms", "repaired", uid))
        out.append(r)
    return out, problems


def _span(r: Run) -> str:
    return f"{r.start_ms}+{r.duration_ms:.0f}ms"


@dataclass
class PlacedRun:
    index: int
    start_ms: int          # absolute UTC ms
    offset_ms: float       # from the session origin
    duration_ms: float
    run: Run

    @property
    def end_offset_ms(self) -> float:
        return self.offset_ms + self.duration_ms

    @property
    def span(self) -> Span:
        """Where the run sits, in ms from the session origin."""
        return Span(self.offset_ms, self.end_offset_ms)


@dataclass
class Gap:
    offset_ms: float       # from the session origin
    duration_ms: float


@dataclass
class UserTimeline:
    uid: str
    runs: list[PlacedRun]
    gaps: list[Gap]
    track: UserTrack

    @property
    def talk_ms(self) -> float:
        return sum(r.duration_ms for r in self.runs)

    @property
    def first_offset_ms(self) -> float:
        return self.runs[0].offset_ms if self.runs else 0.0

    @property
    def last_offset_ms(self) -> float:
        return max((r.end_offset_ms for r in self.runs), default=0.0)


@dataclass
class Timeline:
    origin_ms: int
    users: list[UserTimeline]
    problems: list[Problem] = field(default_factory=list)
    session_span_ms: float = 0.0   # the whole recording's, when only some users are placed

    @property
    def span_ms(self) -> float:
        """From the origin to the last instant anyone in the recording was recorded."""
        return max(max((u.last_offset_ms for u in self.users), default=0.0), self.session_span_ms)

    def user(self, uid: str) -> UserTimeline:
        for u in self.users:
            if u.uid == uid:
                return u
        raise KeyError(uid)


def select_users(recording: Recording, uids: list[str] | None = None,
                 exclude: list[str] | None = None) -> list[UserTrack]:
    from ..errors import UsageError

    users = recording.users
    if uids:
        known = {u.uid for u in users}
        unknown = [u for u in uids if u not in known]
        if unknown:
            raise UsageError(f"uid {', '.join(unknown)} not in recording {recording.sid} "
                             f"(uids: {', '.join(sorted(known)) or 'none'})")
        users = [u for u in users if u.uid in uids]
    if exclude:
        users = [u for u in users if u.uid not in exclude]
    return users


def build_timeline(recording: Recording, uids: list[str] | None = None, *,
                   exclude: list[str] | None = None, origin_ms: int | None = None) -> Timeline:
    """Place every run of the selected users against one origin: the session's (the earliest
    run start of *any* user), so one user's file, stem or mix lines up with everybody's, and
    lasts as long (a review session found ``merge --uid X --align session`` starting at X's
    own first word, 9 s late against the session's)."""
    users = [u for u in select_users(recording, uids, exclude)]
    everyone = [r for u in recording.users for r in u.runs]
    if origin_ms is None:
        origin_ms = min((r.start_ms for r in everyone), default=0)
    end = max((r.start_ms + r.duration_ms for r in everyone), default=origin_ms)
    out: list[UserTimeline] = []
    for u in users:
        placed = [PlacedRun(i, r.start_ms, float(r.start_ms - origin_ms), r.duration_ms, r)
                  for i, r in enumerate(u.runs)]
        gaps = [Gap(g.start, g.duration) for g in span_gaps(p.span for p in placed)]
        out.append(UserTimeline(u.uid, placed, gaps, u))
    return Timeline(origin_ms=origin_ms, users=out, problems=list(recording.problems),
                    session_span_ms=max(0.0, float(end - origin_ms)))
