"""What ``process`` reports: one :class:`RecordingResult` per recording, gathered in a :class:`ProcessReport`.

Both are plain dataclasses (picklable: a Dask worker returns the result) with
``to_dict()`` for ``--json``. Nothing here holds a credential.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_SCHEMA = "mediatools.process-recording/1"
REPORT_SCHEMA = "mediatools.process/1"
STATUSES = ("processed", "skipped", "incomplete", "failed")


@dataclass
class RecordingResult:
    sid: str
    status: str = "failed"                 # processed | skipped | incomplete | failed
    cname: str | None = None
    source: str = ""
    dest: str | None = None                # where outputs go; None until the recording is found
    manifest: str | None = None            # key of the manifest (processed, skipped)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] | None = None   # {"passed": bool, "failed": [check names]}
    problems: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)   # why incomplete / skipped
    error: dict[str, str] | None = None    # {"code", "message"} when failed
    seconds: dict[str, float] = field(default_factory=dict)
    worker: str | None = None
    attempts: int = 1
    first_utc_ms: int | None = None
    retryable: bool = False

    schema: str = RESULT_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("retryable")
        return d


@dataclass
class ProcessReport:
    source: str
    dest: str | None
    cluster: str = ""                      # "local: N workers", "tcp://…", "in process"
    recordings: list[RecordingResult] = field(default_factory=list)
    seconds: float = 0.0
    schema: str = REPORT_SCHEMA

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.recordings) for s in STATUSES}

    @property
    def ok(self) -> bool:
        """Nothing failed (skipped and incomplete recordings are fine)."""
        return not any(r.status == "failed" for r in self.recordings)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "source": self.source, "dest": self.dest, "cluster": self.cluster,
                "ok": self.ok, "counts": self.counts, "seconds": round(self.seconds, 3),
                "recordings": [r.to_dict() for r in self.recordings]}
