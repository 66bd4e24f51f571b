"""``mix``: every selected user on one wall-clock timeline, in one file.

The library call behind ``mediatools mix``; rendering lives in :mod:`mediatools.mix.render`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..agora.names import iso_utc
from ..errors import MediatoolsError, UsageError
from ..media.formats import check_rate, format_for
from ..progress import Progress
from ..recording.model import Recording
from ..recording.prepare import prepare_recording
from ..timeline.contract import build_timeline
from ..timeline.timespec import parse_time
from .options import NORMALIZE, MixOptions, MixReport
from .render import render_mix
from .split import can_split, render_mix_split, split_parts

if TYPE_CHECKING:
    from ..activity.tap import SpeechTap
    from ..verify.reference import Reference

log = logging.getLogger(__name__)

__all__ = ["NORMALIZE", "MixOptions", "MixReport", "mix"]


def mix(source: str | Path | Recording, out: str | Path, options: MixOptions | None = None, *,
        progress: Progress | None = None, reference: Reference | None = None,
        speech: SpeechTap | None = None) -> MixReport:
    """Mix ``source`` (a folder or a loaded :class:`~mediatools.recording.Recording`) into ``out``.

    t = 0 of ``out`` is the session origin (or ``options.start``); each run sits at its
    file-name UTC, sample-exactly. Written under a temporary name and renamed when complete.
    ``progress(done, total)`` counts output samples. Returns where everyone was placed.
    ``reference`` (a :class:`mediatools.verify.Reference`) collects, from the same decoding,
    what a verify of ``out`` needs, so that verify decodes only ``out``; ``speech`` (a
    :class:`mediatools.activity.SpeechTap`) judges speech activity as the runs are decoded, so
    that activity decodes nothing. Both need every user over the whole span (no
    ``start``/``end``).
    """
    o = options or MixOptions()
    o.check()
    fmt = format_for(out, o.format)
    check_rate(fmt, o.sample_rate)
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
    taps = [t for t in (reference, speech) if t is not None]
    if taps and (o.start or o.end or o.uids or o.exclude_uids):
        raise UsageError("a verify reference or speech tap is collected from a mix of every user over the whole span")
    if not any(ut.runs for ut in tl.users):
        raise MediatoolsError("no user has usable audio: nothing to mix (see inspect for why)", file=rec.sid,
                              code="no_audio")
    span = (tl.span_ms if end_ms is None else min(end_ms, tl.span_ms)) - start_ms
    if span <= 0:
        raise UsageError(f"--start lies at or past the end of the recording ({tl.span_ms / 1000:.3f} s)")
    samples = int(span * o.sample_rate / 1000)
    render = render_mix_split if can_split(fmt, o.normalize, samples, o.sample_rate) else render_mix
    log.info("mixing %s: %d users, %.3f s → %s (%s%s)", rec.sid, len(tl.users), span / 1000, out, fmt.name,
             f", {split_parts(samples)} encoders" if render is render_mix_split else "")
    res = render(tl, out, fmt=fmt, rate=o.sample_rate, channels=o.channels, bitrate=o.bitrate,
                 gains_db=o.gains_db, normalize=o.normalize, window_start_ms=start_ms,
                 window_end_ms=end_ms, progress=progress, taps=taps)
    return MixReport(
        output=str(res.output), format=res.format, sample_rate=res.sample_rate, channels=res.channels,
        bitrate=o.bitrate or fmt.bitrate, normalize=o.normalize, duration_ms=res.duration_ms, sid=rec.sid,
        cname=rec.cname, origin_ms=tl.origin_ms, origin_utc=iso_utc(tl.origin_ms), span_ms=round(tl.span_ms, 3),
        window={"start_ms": round(start_ms, 3), "end_ms": round(start_ms + res.duration_ms, 3)},
        users=res.users, problems=list(rec.problems))
