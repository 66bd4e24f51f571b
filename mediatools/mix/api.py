"""``mix``: every selected user on one wall-clock timeline, in one file.

The library call behind ``mediatools mix``; rendering lives in :mod:`mediatools.mix.render`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..media.formats import format_for
from .render import render_mix
from .split import can_split, render_mix_split
from ..recording.model import Recording
from ..agora.names import iso_utc
from ..recording.prepare import prepare_recording
from ..timeline.contract import DEFAULT_TOLERANCE_MS, build_timeline
from ..timeline.timespec import parse_time

SCHEMA = "mediatools.mix/1"
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


def mix(source: str | Path | Recording, out: str | Path, options: MixOptions | None = None, *,
        progress: Callable[[int, int], None] | None = None) -> dict:
    """Mix ``source`` (a folder or a loaded Recording) into ``out``; returns the report."""
    o = options or MixOptions()
    if o.normalize not in NORMALIZE:
        raise UsageError(f"--normalize must be one of {', '.join(NORMALIZE)}")
    if o.channels not in (1, 2):
        raise UsageError("--channels must be 1 or 2")
    fmt = format_for(out, o.format)
    rec = prepare_recording(source, sid=o.sid, strict=o.strict, tolerance_ms=o.tolerance_ms)
    unknown = [u for u in o.gains_db if u not in rec.uids]
    if unknown:
        raise UsageError(f"--gain for unknown uid {', '.join(unknown)}")
    tl = build_timeline(rec, o.uids or None, exclude=o.exclude_uids or None)
    if not tl.users:
        raise UsageError("no user left to mix after --uid/--exclude-uid")
    start_ms = parse_time(o.start, tl.origin_ms) if o.start else 0.0
    end_ms = parse_time(o.end, tl.origin_ms) if o.end else None
    if start_ms < 0 or (end_ms is not None and end_ms <= start_ms):
        raise UsageError("--start/--end must satisfy 0 <= start < end")
    span = (tl.span_ms if end_ms is None else min(end_ms, tl.span_ms)) - start_ms
    render = render_mix_split if can_split(fmt, o.normalize, int(span * o.sample_rate / 1000), o.sample_rate) \
        else render_mix
    res = render(tl, out, fmt=fmt, rate=o.sample_rate, channels=o.channels, bitrate=o.bitrate,
                 gains_db=o.gains_db, normalize=o.normalize, window_start_ms=start_ms,
                 window_end_ms=end_ms, progress=progress)
    return {
        "schema": SCHEMA, "output": str(res.output), "format": res.format, "sample_rate": res.sample_rate,
        "channels": res.channels, "bitrate": o.bitrate or fmt.bitrate, "normalize": o.normalize,
        "duration_ms": res.duration_ms, "sid": rec.sid, "cname": rec.cname,
        "origin_ms": tl.origin_ms, "origin_utc": iso_utc(tl.origin_ms), "span_ms": round(tl.span_ms, 3),
        "window": {"start_ms": round(start_ms, 3), "end_ms": round(start_ms + res.duration_ms, 3)},
        "users": res.users, "problems": [p.to_dict() for p in rec.problems],
    }
