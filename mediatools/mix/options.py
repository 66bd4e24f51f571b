"""What a mix is asked for, and what it reports: the ``mix`` stage's options and report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import Problem, UsageError
from ..media.formats import check_bitrate
from ..timeline.contract import DEFAULT_TOLERANCE_MS

NORMALIZE = ("none", "limit", "ebu")


@dataclass
class MixOptions:
    sid: str | None = None
    uids: list[str] = field(default_factory=list)
    exclude_uids: list[str] = field(default_factory=list)
    format: str | None = None          # default: from the output suffix
    sample_rate: int = 48000
    channels: int = 2
    bitrate: str | None = None         # e.g. "128k"; default per format
    gains_db: dict[str, float] = field(default_factory=dict)
    normalize: str = "limit"
    start: str | None = None           # offset or UTC
    end: str | None = None
    strict: bool = False
    tolerance_ms: float = DEFAULT_TOLERANCE_MS

    def check(self) -> None:
        """Usage errors that need no recording to find."""
        if self.normalize not in NORMALIZE:
            raise UsageError(f"--normalize must be one of {', '.join(NORMALIZE)}")
        if self.channels not in (1, 2):
            raise UsageError("--channels must be 1 or 2")
        check_bitrate(self.bitrate)


@dataclass
class MixReport:
    """Where everyone landed in the mix (``mix --json``). Offsets in ms from the window start."""
    schema: ClassVar[str] = "mediatools.mix/1"
    output: str
    format: str
    sample_rate: int
    channels: int
    bitrate: str | None
    normalize: str
    duration_ms: float
    sid: str
    cname: str
    origin_ms: int
    origin_utc: str
    span_ms: float
    window: dict[str, float]
    users: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "output": self.output, "format": self.format,
                "sample_rate": self.sample_rate, "channels": self.channels, "bitrate": self.bitrate,
                "normalize": self.normalize, "duration_ms": self.duration_ms, "sid": self.sid,
                "cname": self.cname, "origin_ms": self.origin_ms, "origin_utc": self.origin_utc,
                "span_ms": self.span_ms, "window": dict(self.window), "users": self.users,
                "problems": [p.to_dict() for p in self.problems]}
