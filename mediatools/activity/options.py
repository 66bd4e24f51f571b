"""What speech activity is asked for, and what it reports: the ``activity`` stage's options and report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import Problem, UsageError
from ..timeline.contract import DEFAULT_TOLERANCE_MS

DETECTORS = ("webrtc", "energy")
EXPORTS = ("rttm", "vtt", "audacity", "csv", "json")


@dataclass
class ActivityOptions:
    sid: str | None = None
    uids: list[str] = field(default_factory=list)
    exclude_uids: list[str] = field(default_factory=list)
    detector: str = "webrtc"            # webrtcvad; "energy" is the fallback (also used when webrtcvad is missing)
    aggressiveness: int = 2             # webrtcvad mode 0–3 (3 misses soft onsets; see the README)
    frame_ms: int = 10                  # 10, 20 or 30 (webrtcvad's frame sizes)
    hangover_ms: float = 300.0          # pauses shorter than this stay inside a turn
    min_turn_ms: float = 100.0          # shorter bursts (clicks, breaths) are not turns
    interruption_ms: float = 1000.0     # B starts while A speaks and A stops within this: an interruption
    silence_ms: float = 5000.0          # nobody speaking for longer than this is a silence
    exports: list[str] = field(default_factory=lambda: list(EXPORTS))
    strict: bool = False
    tolerance_ms: float = DEFAULT_TOLERANCE_MS
    parallel: int | None = None         # runs decoded at once (default: cores, at most 4)
    create_outdir: bool = True

    def check(self) -> None:
        """Usage errors that need no recording to find."""
        if self.detector not in DETECTORS:
            raise UsageError(f"--detector must be one of {', '.join(DETECTORS)}")
        if self.aggressiveness not in (0, 1, 2, 3):
            raise UsageError("--aggressiveness must be 0, 1, 2 or 3")
        if self.frame_ms not in (10, 20, 30):
            raise UsageError("--frame-ms must be 10, 20 or 30")
        for name in ("hangover_ms", "min_turn_ms", "interruption_ms", "silence_ms"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_ms', '').replace('_', '-')} must not be negative")
        bad = [e for e in self.exports if e not in EXPORTS]
        if bad:
            raise UsageError(f"unknown export {', '.join(bad)} (known: {', '.join(EXPORTS)})")


@dataclass
class Turn:
    """One turn of one user, in ms from the session origin."""
    uid: str
    start_ms: float
    end_ms: float

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms


@dataclass
class ActivityReport:
    """Who spoke when (``activity --json``, and ``activity.json`` in the output folder).

    Times in ms from the session origin (``origin_ms``, Unix ms; ``origin_utc``) unless
    named ``*_utc``. ``figures`` are :func:`mediatools.activity.figures.figures`' output."""
    schema: ClassVar[str] = "mediatools.activity/1"
    sid: str
    cname: str
    origin_ms: int
    origin_utc: str
    span_ms: float
    detector: dict[str, Any]
    users: list[dict[str, Any]]          # uid, presence [[start, end]], turns [[start, end]]
    figures: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)   # export → file written
    problems: list[Problem] = field(default_factory=list)

    def turns(self) -> list[Turn]:
        """Every turn of every user, by start time."""
        out = [Turn(u["uid"], a, b) for u in self.users for a, b in u["turns"]]
        return sorted(out, key=lambda t: (t.start_ms, t.uid))

    def to_dict(self) -> dict[str, Any]:
        from .exports import export_names
        return {"schema": self.schema, "sid": self.sid, "cname": self.cname, "origin_ms": self.origin_ms,
                "origin_utc": self.origin_utc, "span_ms": self.span_ms, "detector": dict(self.detector),
                "users": self.users, "figures": self.figures, "names": export_names(self),
                "files": dict(self.files), "problems": [p.to_dict() for p in self.problems]}
