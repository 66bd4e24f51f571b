"""What the report is asked for, and what making it reports."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..activity.options import ActivityOptions
from ..errors import Problem


@dataclass
class ReportOptions:
    sid: str | None = None
    uids: list[str] = field(default_factory=list)
    exclude_uids: list[str] = field(default_factory=list)
    mix: str | None = None              # the mix to play; default: the one process published beside the recording
    find_mix: bool = True               # look for that published mix when ``mix`` is None
    mix_src: str | None = None          # the player's URL as the page will find it (process: the published name)
    activity: ActivityOptions = field(default_factory=ActivityOptions)
    strict: bool = False


@dataclass
class ReportReport:
    """``report --json``: where the page went and what it shows."""
    schema: ClassVar[str] = "mediatools.report/1"
    output: str
    sid: str
    cname: str
    users: int
    turns: int
    markers: int
    size_bytes: int
    mix: str | None
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "output": self.output, "sid": self.sid, "cname": self.cname,
                "users": self.users, "turns": self.turns, "markers": self.markers, "size_bytes": self.size_bytes,
                "mix": self.mix, "problems": [p.to_dict() for p in self.problems]}
