"""``--start/--end`` values: an offset from the session origin or an absolute UTC time."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..agora.names import parse_utc
from ..errors import UsageError

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)s?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def iso_utc_us(text: str) -> int:
    """An ISO 8601 time (``Z`` or an offset; none is UTC) → Unix microseconds, exactly (a float
    timestamp can be a microsecond off). ValueError for anything else."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // _MICROSECOND


def parse_time(value: str, origin_ms: int) -> float:
    """→ ms from the origin. Accepts ``90``, ``90.5s``, ``1:30``, ``0:01:30.500``,
    ``2026-03-14T09:27:00.000Z`` and ``YYYYMMDDHHMMSSmmm``."""
    v = value.strip()
    try:
        if re.fullmatch(r"\d{17}", v):
            return float(parse_utc(v) - origin_ms)
        if "T" in v or re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", v):
            return iso_utc_us(v) / 1000.0 - origin_ms
        m = _CLOCK.match(v)
        if m:
            h, mi, s = int(m[1] or 0), int(m[2]), float(m[3])
            if s >= 60 or (m[1] is not None and mi >= 60):
                raise ValueError("minutes and seconds must be below 60")
            return (h * 3600 + mi * 60 + s) * 1000.0
        m = _SECONDS.match(v)
        if m is None:   # float() would take nan, inf, 1e3 and -5
            raise ValueError("not a time")
        return float(m[1]) * 1000.0
    except (ValueError, OverflowError):
        raise UsageError(f"cannot read time {value!r} (use seconds, H:MM:SS.mmm, ISO 8601 UTC or "
                         "YYYYMMDDHHMMSSmmm)") from None
