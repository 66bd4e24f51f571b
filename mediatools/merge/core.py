"""``merge``: one playable file per user, copying the sender's audio where the codec allows.

AAC users going to m4a/aac/ts/mka are copied frame by frame (:mod:`mediatools.media.adts`), Opus
users going to ogg/opus/webm/mka packet by packet (:mod:`mediatools.merge.opus_copy`); everything
else (codec changes, other formats, ``--reencode``, ``--start/--end``) is transcoded
sample-exactly through :func:`mediatools.mix.render.render_mix`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..agora.names import iso_utc
from ..atomic import TMP_PREFIX, atomic_path, atomic_write
from ..errors import MediatoolsError, UsageError
from ..media.adts import FRAME, SilenceFrames, adts_output, copy_adts_frames, run_adts
from ..media.formats import FORMATS, OutputFormat
from ..mix.render import MixResult, render_mix
from ..progress import Progress
from ..recording.model import MediaInfo, Recording
from ..recording.prepare import prepare_recording
from ..timeline.contract import PlacedRun, Timeline, UserTimeline, build_timeline
from ..timeline.timespec import parse_time
from ..workers import as_completed
from .options import COPY_FORMATS, MergeOptions, MergeReport
from .opus_copy import copy_opus

log = logging.getLogger(__name__)

#: containers only merge writes (when it has to transcode into them)
_MERGE_ONLY = {
    "ts": OutputFormat("ts", "mpegts", "aac", "128k", priming=1024),
    "mka": OutputFormat("mka", "matroska", "aac", "128k"),   # written by way of ADTS: _transcode_mka
    "webm": OutputFormat("webm", "webm", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
}


def safe_name(uid: str, taken: set[str]) -> str:
    """A file-system-safe, unique stem for ``uid`` (no separators, dots-only or control chars)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", uid).lstrip(".")[:100] or "uid"
    name, i = stem, 2
    while name.lower() in taken:
        name, i = f"{stem}-{i}", i + 1
    taken.add(name.lower())
    return name


class _FixedSpan(Timeline):
    """A timeline whose span is fixed (session-aligned stems all last the session span)."""

    def __init__(self, origin_ms: int, users: list[UserTimeline], span: float):
        super().__init__(origin_ms, users, [])
        self._span = span

    @property
    def span_ms(self) -> float:  # type: ignore[override]
        return self._span


def _layout(ut: UserTimeline, gaps: str, align: str, session_span: float) -> tuple[UserTimeline, float, float]:
    """Where each run sits in the user's file: (runs re-placed, file start, file end) in session ms."""
    if gaps == "keep":
        runs = ut.runs
    else:
        pos = ut.first_offset_ms if align == "user" else 0.0
        runs = []
        for pr in ut.runs:
            runs.append(PlacedRun(pr.index, pr.start_ms, pos, pr.duration_ms, pr.run))
            pos += pr.duration_ms
    lt = UserTimeline(ut.uid, runs, [], ut.track)
    if align == "session":
        return lt, 0.0, session_span
    return lt, ut.first_offset_ms, lt.last_offset_ms


def merge(source: str | Path | Recording, outdir: str | Path, options: MergeOptions | None = None, *,
          progress: Progress | None = None) -> MergeReport:
    """Write ``<uid>.<ext>`` per selected user and ``merge.json`` into ``outdir``; return the report.

    Each file is written under a temporary name and renamed when complete; ``merge.json``
    last. ``progress(done, total)`` counts thousandths of runs written."""
    o = options or MergeOptions()
    o.check()
    outdir = Path(outdir)
    if not outdir.is_dir() and not o.create_outdir:
        raise MediatoolsError("output folder does not exist", file=str(outdir), code="no_output_dir")
    rec = prepare_recording(source, sid=o.sid, strict=o.strict, tolerance_ms=o.tolerance_ms)
    tl = build_timeline(rec, o.uids or None)
    start_ms = parse_time(o.start, tl.origin_ms) if o.start else None
    end_ms = parse_time(o.end, tl.origin_ms) if o.end else None
    if (start_ms is not None and start_ms < 0) or (start_ms is not None and end_ms is not None and end_ms <= start_ms):
        raise UsageError("--start/--end must satisfy 0 <= start < end")
    if start_ms is not None and start_ms >= tl.span_ms:
        raise UsageError(f"--start lies at or past the end of the recording ({tl.span_ms / 1000:.3f} s)")
    if not outdir.is_dir():  # only now: a strict failure above leaves nothing behind
        try:
            outdir.mkdir(parents=True)
        except OSError as exc:
            raise MediatoolsError(f"cannot create ({exc.strerror})", file=str(outdir), code="unwritable") from None
    taken: set[str] = {"merge"}
    slots: list[_Job | dict] = []   # per user, in order: its job, or its entry when there is nothing to write
    for ut in tl.users:
        stem = safe_name(ut.uid, taken)
        if not ut.runs:
            slots.append({"uid": ut.uid, "file": None, "mode": None, "reason": "no usable audio", "runs": []})
            continue
        sigs = {(r.media.codec, r.media.sample_rate, r.media.channels) for r in ut.track.runs if r.media}
        media = ut.track.media
        codec = media.codec if media else "aac"
        fmt_name = o.format or ("ogg" if codec == "opus" else "m4a")
        lt, f0, f1 = _layout(ut, o.gaps, o.align, tl.span_ms)
        if start_ms is not None:
            f0 = max(f0, start_ms)
        if end_ms is not None:
            f1 = min(f1, end_ms)
        reason = None
        if o.reencode:
            reason = "--reencode"
        elif len(sigs) > 1:
            reason = "codec or format changes inside the recording"
        elif fmt_name not in COPY_FORMATS.get(codec, ()):
            reason = (f"{codec} frame copy is not implemented yet" if codec not in COPY_FORMATS
                      else f"{codec} cannot be copied into {fmt_name}")
        elif start_ms is not None or end_ms is not None:
            reason = "--start/--end cut inside frames"
        elif any(s.damaged for r in ut.track.runs for s in r.slices):
            # a copy stops at the damage (AAC: "ADTS sync lost") or keeps its timestamp gap,
            # which players close up: every later run of the user played early (Opus)
            reason = "a slice is damaged inside (decoded, not copied)"
        slots.append(_Job(ut, lt, outdir / f"{stem}.{fmt_name}", fmt_name, codec, media, f0, f1, reason))
    jobs = [j for j in slots if isinstance(j, _Job)]
    for j in jobs:
        log.info("merging uid %s → %s (%s)", j.ut.uid, j.out.name, "copy" if j.reason is None else f"transcode: {j.reason}")
    with contextlib.closing(_run_jobs(jobs, o.parallel, progress)) as finished:   # closing: stop the rest on errors
        written = {id(job): result for job, result in finished}
    users = [_user_entry(j, written[id(j)], rec) if isinstance(j, _Job) else j for j in slots]
    report = MergeReport(outdir=str(outdir), sid=rec.sid, cname=rec.cname, origin_ms=tl.origin_ms,
                         origin_utc=iso_utc(tl.origin_ms), span_ms=round(tl.span_ms, 3), gaps=o.gaps,
                         align=o.align, users=users, problems=list(rec.problems))
    with atomic_write(outdir / "merge.json", part=False) as f:
        f.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False).encode())
    return report


def _user_entry(job: _Job, written: dict, rec: Recording) -> dict:
    """The user's part of merge.json."""
    ut, media = job.ut, job.media
    session = {pr.index: pr.offset_ms for pr in ut.runs}
    for r in written["runs"]:   # where the run sits in the file and where it sits in the call
        r["session_offset_ms"] = round(session[r["index"]], 3)
    return {"uid": ut.uid, "file": job.out.name, "mode": "copy" if job.reason is None else "transcode",
            "reason": job.reason, "codec": job.codec,
            "sample_rate": media.sample_rate if media else None,
            "channels": media.channels if media else None,
            "file_start_offset_ms": round(job.f0, 3), "duration_ms": written["duration_ms"],
            "runs": written["runs"],
            "gaps": [{"offset_ms": round(g.offset_ms, 3), "duration_ms": round(g.duration_ms, 3)}
                     for g in ut.gaps],
            "problems": [p.to_dict() for p in rec.problems if p.uid == ut.uid]}


@dataclass
class _Job:
    """One user's file, decided up front so users can be written side by side."""
    ut: UserTimeline
    lt: UserTimeline          # runs as placed in the file
    out: Path
    fmt: str
    codec: str
    media: MediaInfo | None
    f0: float                 # the file's span on the session timeline (ms)
    f1: float
    reason: str | None        # why it is transcoded; None: copied


def _write(job: _Job, cancelled: threading.Event, fraction: Callable[[float], None]) -> dict:
    def check(done: int | None = None, total: int | None = None) -> None:
        """Between runs / blocks: say how far this user is; another user's failure or Ctrl-C stops it."""
        if cancelled.is_set():
            raise KeyboardInterrupt
        if done is not None and total:
            fraction(done / total)
    m = job.media
    if job.reason is None and job.codec == "opus":
        return _copy_opus(job.lt, job.out, job.fmt, m.channels, job.f0, job.f1, check)  # type: ignore[union-attr]
    if job.reason is None:
        return _copy(job.lt, job.out, job.fmt, m.sample_rate, m.channels, job.f0, job.f1, check)  # type: ignore[union-attr]
    return _transcode(job.lt, job.out, job.fmt, m, job.f0, job.f1, check)


def _run_jobs(jobs: list[_Job], parallel: int | None,
              progress: Callable[[int, int], None] | None) -> Iterator[tuple[_Job, dict]]:
    """Write the users' files, several at once (each is one ffmpeg pipeline that uses about
    one core), yielding each as it completes. A failure or an interrupt stops the others at
    their next run or block, and each removes its own temporary file.

    ``progress(done, total)`` counts thousandths of runs, so a long run moves it too; it is
    called from the calling thread only (workers just record their fraction)."""
    cancelled = threading.Event()
    done = {id(job): 0.0 for job in jobs}
    total = sum(len(j.ut.runs) for j in jobs) or 1

    def tell() -> None:
        if progress:
            progress(int(sum(done.values()) * 1000), total * 1000)

    def fraction_of(job: _Job, inline: bool) -> Callable[[float], None]:
        def record(f: float) -> None:
            done[id(job)] = f * len(job.ut.runs)
            if inline:
                tell()
        return record

    workers = min(len(jobs), parallel or min(4, os.cpu_count() or 1))
    if workers <= 1:
        for job in jobs:
            written = _write(job, cancelled, fraction_of(job, True))
            done[id(job)] = len(job.ut.runs)
            tell()
            yield job, written
        return
    def finished(job: _Job) -> None:
        done[id(job)] = len(job.ut.runs)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        write = lambda job: _write(job, cancelled, fraction_of(job, False))  # noqa: E731
        for job, written in as_completed(pool, write, jobs, stop=cancelled, tick=tell):
            finished(job)
            tell()
            yield job, written


def _copy(lt: UserTimeline, out: Path, fmt: str, rate: int, channels: int, f0: float, f1: float,
          check: Callable[[int, int], None]) -> dict:
    """Splice copied run frames and silence frames; placement quantised to ±half a frame.

    A run keeps its last, partly used frame unless that would push the next run (or the
    file's end) off its place: runs that touch (a failover joined, ``--gaps drop``) then
    stay within half a frame instead of drifting a frame per run.
    Frames stream into the muxing ffmpeg as each run is read, so reading and muxing overlap.
    """
    frame_ms = FRAME * 1000.0 / rate
    pos = 0  # frames written
    runs = []

    def remux_failed(why: str) -> MediatoolsError:
        return MediatoolsError(f"remux failed ({why})", file=out.name, code="remux_failed")

    def at(ms: float) -> float:   # session ms → frames from the file start
        return (ms - f0) * rate / 1000.0 / FRAME

    sil = SilenceFrames(rate, channels)
    limits = [at(pr.offset_ms) for pr in lt.runs[1:]] + [at(f1)]
    with atomic_path(out) as tmp, adts_output(tmp, fmt, remux_failed) as put:
        for i, (pr, limit) in enumerate(zip(lt.runs, limits)):
            check(i, len(lt.runs))
            n = max(0, int(round(at(pr.offset_ms) - pos)))
            put(b"".join(sil.take(n)))
            pos += n
            frames = run_adts(pr.run, rate, put, max_frames=max(1, int(round(limit - pos))))
            runs.append({"index": pr.index, "start_utc": iso_utc(pr.start_ms),
                         "file_offset_ms": round(pos * frame_ms, 3), "duration_ms": round(pr.duration_ms, 3),
                         "placement_error_ms": round(pos * frame_ms - (pr.offset_ms - f0), 3),
                         "frames": frames})
            pos += frames
        tail = int(round(at(f1) - pos))
        if tail > 0:
            put(b"".join(sil.take(tail)))
            pos += tail
    return {"duration_ms": round(pos * frame_ms, 3), "runs": runs}


def _copy_opus(lt: UserTimeline, out: Path, fmt: str, channels: int, f0: float, f1: float,
               check: Callable[[int, int], None]) -> dict:
    res = copy_opus([(pr.run, pr.offset_ms, pr.duration_ms) for pr in lt.runs], out, fmt, channels, f0, f1,
                    check=check)
    for pr, r in zip(lt.runs, res["runs"]):
        r.update({"index": pr.index, "start_utc": iso_utc(pr.start_ms), "duration_ms": round(pr.duration_ms, 3)})
    return res


def _transcode(lt: UserTimeline, out: Path, fmt_name: str, media: MediaInfo | None, f0: float, f1: float,
               check: Callable[[int, int], None]) -> dict:
    fmt = _MERGE_ONLY.get(fmt_name) or FORMATS[fmt_name]
    rate = media.sample_rate if media else 48000
    if fmt.rates and rate not in fmt.rates:
        rate = 48000
    channels = media.channels if media else 1
    tl = _FixedSpan(0, [lt], f1)
    if fmt_name == "mka":
        res = _transcode_mka(tl, out, rate, channels, f0, f1, check)
    else:
        res = render_mix(tl, out, fmt=fmt, rate=rate, channels=channels, normalize="none",
                         window_start_ms=f0, window_end_ms=f1, progress=check)
    segs = res.users[0]["runs"] if res.users else []
    runs = [{"index": pr.index, "start_utc": iso_utc(pr.start_ms), "file_offset_ms": s["offset_ms"], "duration_ms": s["duration_ms"],
             "placement_error_ms": 0.0} for pr, s in zip([r for r in lt.runs if r.end_offset_ms > f0 and r.offset_ms < f1], segs)]
    return {"duration_ms": res.duration_ms, "runs": runs}


def _transcode_mka(tl: Timeline, out: Path, rate: int, channels: int, f0: float, f1: float,
                   check: Callable[[int, int], None]) -> MixResult:
    """AAC into Matroska by way of raw ADTS, then remuxed frame by frame.

    Matroska signals the encoder's 1024-sample priming as CodecDelay, which ffmpeg 9 writes
    and reads but ffmpeg 5.1 neither writes nor reads: encoded straight into mka, 5.1 puts
    every run 21.3 ms late. ADTS fed past its priming (as for ts) carries no CodecDelay from
    either ffmpeg, so the file starts on time in every player."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=TMP_PREFIX) as td:
        adts = Path(td) / "a.aac"
        res = render_mix(tl, adts, fmt=FORMATS["aac"], rate=rate, channels=channels, normalize="none",
                         window_start_ms=f0, window_end_ms=f1, progress=check)

        def remux_failed(why: str) -> MediatoolsError:
            return MediatoolsError(f"remux failed ({why})", file=out.name, code="remux_failed")

        with atomic_path(out) as tmp, adts_output(tmp, "mka", remux_failed) as put, open(adts, "rb") as f:
            copy_adts_frames(f, put)
    res.output, res.format = out, "mka"
    return res
