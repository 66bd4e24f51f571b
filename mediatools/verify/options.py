"""What a verification is asked for and what it finds (``verify --json``); no numpy here."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from ..agora.transcode import TranscodeOptions

SCHEMA = "mediatools.verify/1"


@dataclass
class VerifyOptions:
    sid: str | None = None                    # which recording, when the folder holds several
    tolerance_ms: float = 40.0                # allowed misplacement of the mix and of each run
    expected: TranscodeOptions | None = None  # what the mix was asked for (format, rate, channels, bitrate)



@dataclass
class Check:
    name: str
    passed: bool
    measured: object
    expected: object
    message: str

    def __post_init__(self) -> None:
        # numpy scalars leak in from the measurements; the JSON report wants plain types
        self.passed = bool(self.passed)
        for f in ("measured", "expected"):
            v = getattr(self, f)
            if hasattr(v, "item"):
                setattr(self, f, v.item())


@dataclass
class VerifyReport:
    """Each check passed or failed with what was measured; ``passed`` when all did."""
    schema: ClassVar[str] = SCHEMA
    mix: str
    sid: str
    checks: list[Check] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    # where the expected picture came from: "recording" (every run decoded here), "mix" (the
    # mix's own decoding, handed over as a Reference), or "mix+recording"
    reference: str = "recording"

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {"schema": self.schema, "mix": self.mix, "sid": self.sid, "passed": self.passed,
                "reference": self.reference, "checks": [asdict(c) for c in self.checks], "runs": self.runs}
