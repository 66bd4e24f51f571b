"""What every stage does first with its SOURCE: load it (unless given loaded), probe it once,
and apply the strictness policy to what was found."""
from __future__ import annotations

from pathlib import Path

from ..errors import Strictness
from ..timeline.contract import DEFAULT_TOLERANCE_MS
from .discovery import load_recording
from .model import Recording
from .probe import probe_runs


def prepare_recording(source: str | Path | Recording, *, sid: str | None = None, strict: bool = False,
                      tolerance_ms: float = DEFAULT_TOLERANCE_MS, quick: bool = True) -> Recording:
    """The recording a stage works on. Strict mode fails on the first problem (load's or the
    probe's); a recording already loaded is reused as it is and probed at most once."""
    rec = source if isinstance(source, Recording) else load_recording(source, sid=sid, tolerance_ms=tolerance_ms)
    probe_runs(rec, quick=quick)
    Strictness(strict).extend(rec.problems)
    return rec
