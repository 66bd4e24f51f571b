"""What a merge is asked for, and what it reports (``merge.json``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import Problem, UsageError
from ..timeline.contract import DEFAULT_TOLERANCE_MS

MERGE_FORMATS = ("m4a", "aac", "mp3", "wav", "flac", "opus", "ogg", "ts", "mka", "webm")
#: codec → the containers its frames are copied into without re-encoding
COPY_FORMATS = {"aac": ("m4a", "aac", "ts", "mka"), "opus": ("ogg", "opus", "webm", "mka")}


@dataclass
class MergeOptions:
    sid: str | None = None
    uids: list[str] = field(default_factory=list)
    format: str | None = None          # default: m4a for AAC, ogg for Opus
    gaps: str = "keep"                 # keep | drop
    align: str = "user"                # user | session
    start: str | None = None
    end: str | None = None
    strict: bool = False
    reencode: bool = False
    tolerance_ms: float = DEFAULT_TOLERANCE_MS
    parallel: int | None = None        # users written at once; default: one per core, at most 4
    create_outdir: bool = False        # make the output folder (only once the inputs passed)

    def check(self) -> None:
        """Usage errors that need no recording to find."""
        if self.gaps not in ("keep", "drop"):
            raise UsageError("--gaps must be keep or drop")
        if self.align not in ("user", "session"):
            raise UsageError("--align must be user or session")
        if self.format and self.format not in MERGE_FORMATS:
            raise UsageError(f"unknown format {self.format!r} (use one of {', '.join(MERGE_FORMATS)})")


@dataclass
class MergeReport:
    """One entry per user: its file, copy or transcode and why, where each run sits (``merge.json``)."""
    schema: ClassVar[str] = "mediatools.merge/1"
    outdir: str
    sid: str
    cname: str
    origin_ms: int
    origin_utc: str
    span_ms: float
    gaps: str
    align: str
    users: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def files(self) -> dict[str, str | None]:
        """uid → its file name in ``outdir`` (None: nothing written for that user)."""
        return {u["uid"]: u["file"] for u in self.users}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "outdir": self.outdir, "sid": self.sid, "cname": self.cname,
                "origin_ms": self.origin_ms, "origin_utc": self.origin_utc, "span_ms": self.span_ms,
                "gaps": self.gaps, "align": self.align, "files": self.files, "users": self.users,
                "problems": [p.to_dict() for p in self.problems]}
