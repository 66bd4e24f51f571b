"""One error type and one problem record shared by every stage.

Expected failures raise :class:`MediatoolsError` (the CLI prints its message on one
line and exits 1); recoverable oddities become :class:`Problem` records that travel
with the data so tolerant runs can report exactly what they skipped or repaired.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/:\s@\"'<>]*):[^/\s@\"'<>]*@")


def redact_urls(text: str) -> str:
    """``text`` with the password of every URL in it hidden, as SQLAlchemy shows one
    (``user:***@``): an ``--endpoint-url http://user:pass@host`` came back whole in botocore's
    "Could not connect" message."""
    return _PASSWORD.sub(r"\1:***@", text)


class MediatoolsError(Exception):
    """An expected failure with a one-line, user-facing message naming the file."""

    def __init__(self, message: str, *, file: str | None = None, code: str = "error"):
        message, file = redact_urls(message), redact_urls(file) if file else file
        self.file = file
        self.code = code
        self.message = message   # without the file: for reports that name the file themselves
        super().__init__(f"{file}: {message}" if file else message)


class UsageError(MediatoolsError):
    """Bad arguments: the CLI exits 2."""

    def __init__(self, message: str, *, file: str | None = None, code: str = "usage"):
        super().__init__(message, file=file, code=code)


@dataclass(frozen=True)
class Problem:
    """Something wrong with the input, what it affects and what was done about it."""

    code: str        # stable identifier, e.g. "missing_slice"
    file: str        # the file (name, not full path) the problem is about
    message: str     # human text, no file prefix
    action: str = "reported"  # "skipped", "repaired", "reported", ...
    uid: str | None = None

    def __str__(self) -> str:
        return f"{self.file}: {self.message} ({self.action})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Strictness:
    """Collects problems; in strict mode the first one becomes a MediatoolsError."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.problems: list[Problem] = []

    def add(self, problem: Problem) -> None:
        if self.strict:
            raise MediatoolsError(problem.message, file=problem.file, code=problem.code)
        if problem not in self.problems:
            self.problems.append(problem)

    def extend(self, problems: "list[Problem]") -> None:
        for p in problems:
            self.add(p)
