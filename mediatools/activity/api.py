"""``activity``: who spoke when, per user, inside each user's runs.

The library call behind ``mediatools activity``. Each run is decoded as one stream and
judged frame by frame (:mod:`.detect`), bursts become turns (:mod:`.smooth`), turns give
the figures (:mod:`.figures`) and the exports (:mod:`.exports`). Runs are decoded side by
side on worker processes (:mod:`.runs`), each streaming, so memory is flat in length.
"""
from __future__ import annotations

import logging
from concurrent.futures import as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from ..agora.names import iso_utc
from ..errors import MediatoolsError, UsageError
from ..media.processes import RunDecoders
from ..progress import Progress
from ..recording.model import Recording
from ..recording.prepare import prepare_recording
from ..recording.probe import run_channels
from ..timeline.contract import PlacedRun, Timeline, build_timeline
from ..timeline.span import Span
from .detect import RATE
from .exports import write_exports
from .figures import figures
from .options import ActivityOptions, ActivityReport
from .runs import run_speech
from .smooth import place, smooth

if TYPE_CHECKING:
    from .tap import SpeechTap

log = logging.getLogger(__name__)

__all__ = ["ActivityOptions", "ActivityReport", "activity", "detector_name"]


def detector_name(o: ActivityOptions) -> str:
    if o.detector == "webrtc":
        try:
            import webrtcvad  # noqa: F401
            return "webrtcvad"
        except ImportError:  # pragma: no cover
            return "energy"
    return "energy"


def activity(source: str | Path | Recording, out: str | Path | None = None, options: ActivityOptions | None = None,
             *, progress: Progress | None = None, speech: SpeechTap | None = None) -> ActivityReport:
    """Speech activity of ``source`` (a folder or a loaded recording); the exports go into the folder
    ``out`` (none when None). ``progress(done, total)`` counts ms of audio judged. ``speech``: what
    a mix of the same recording judged as it decoded (:class:`mediatools.activity.SpeechTap`);
    runs found there are not decoded again."""
    o = options or ActivityOptions()
    o.check()
    rec = prepare_recording(source, sid=o.sid, strict=o.strict, tolerance_ms=o.tolerance_ms)
    tl = build_timeline(rec, o.uids or None, exclude=o.exclude_uids or None)
    if not tl.users:
        raise UsageError("no user left after --uid/--exclude-uid")
    if not any(u.runs for u in tl.users):   # no origin either: the exports would say 1970
        raise MediatoolsError("no user has usable audio: no speech to find (see inspect for why)", file=rec.sid,
                              code="no_audio")
    outdir = _outdir(out, o.create_outdir)
    turns = detect_timeline(tl, o, progress=progress, speech=speech)
    presence = {u.uid: [Span(round(r.offset_ms), round(r.end_offset_ms)) for r in u.runs] for u in tl.users}
    span_ms = float(round(tl.span_ms))
    figs = figures(presence, turns, span_ms, interruption_ms=o.interruption_ms, silence_ms=o.silence_ms)
    users = [{"uid": u.uid, "presence": [[s.start, s.end] for s in presence[u.uid]],
              "presence_utc": [[iso_utc(tl.origin_ms + int(s.start)), iso_utc(tl.origin_ms + int(s.end))]
                               for s in presence[u.uid]],
              "turns": [[s.start, s.end] for s in turns[u.uid]],
              "turns_utc": [[iso_utc(tl.origin_ms + int(s.start)), iso_utc(tl.origin_ms + int(s.end))]
                            for s in turns[u.uid]]}
             for u in tl.users]
    rep = ActivityReport(sid=rec.sid, cname=rec.cname, origin_ms=tl.origin_ms, origin_utc=iso_utc(tl.origin_ms),
                         span_ms=span_ms,
                         detector={"name": detector_name(o), "aggressiveness": o.aggressiveness,
                                   "frame_ms": o.frame_ms, "rate": RATE, "hangover_ms": o.hangover_ms,
                                   "min_turn_ms": o.min_turn_ms, "interruption_ms": o.interruption_ms,
                                   "silence_ms": o.silence_ms},
                         users=users, figures=figs, problems=list(rec.problems))
    if outdir is not None:
        write_exports(rep, outdir, o.exports)
    return rep


def _outdir(out: str | Path | None, create: bool) -> Path | None:
    if out is None:
        return None
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise UsageError("not a folder", file=str(d))
    if not d.exists():
        if not create:
            raise MediatoolsError("output folder does not exist", file=str(d), code="no_output_dir")
        try:
            d.mkdir(parents=True)
        except OSError as exc:
            raise MediatoolsError(f"cannot create ({exc.strerror})", file=str(d), code="unwritable") from None
    return d


def detect_timeline(tl: Timeline, o: ActivityOptions, *, progress: Progress | None = None,
                    speech: SpeechTap | None = None) -> dict[str, list[Span]]:
    """uid → turns (ms from the origin, whole ms), every run of every user judged once (by the
    mix, through ``speech``, or here)."""
    if speech is not None:
        speech.finish()   # the mix's last runs may still be on their way
    judged = {}
    for u in tl.users:
        for pr in u.runs:
            raw = speech.get(u.uid, pr.index, pr.offset_ms, o) if speech is not None else None
            if raw is not None:
                judged[(u.uid, pr.index)] = raw
    jobs = [(u.uid, pr) for u in tl.users for pr in u.runs if (u.uid, pr.index) not in judged]
    total = int(sum(pr.duration_ms for _, pr in jobs)) or 1
    turns: dict[str, list[Span]] = {u.uid: [] for u in tl.users}
    runs = {(u.uid, pr.index): pr for u in tl.users for pr in u.runs}
    for (uid, index), raw in judged.items():
        turns[uid].extend(_turns(raw, runs[(uid, index)], o))
    if not jobs:
        return {u: sorted(ts) for u, ts in turns.items()}
    with RunDecoders(workers=o.parallel or None, name="activity-decode") as pool:
        log.info("speech activity: %d users, %d runs (%d judged by the mix), %.1f s of audio to decode, %s",
                 len(tl.users), len(jobs) + len(judged), len(judged), total / 1000,
                 "in worker processes" if pool.processes else "on one thread")
        # the longest runs first: the last to finish is then a short one
        order = sorted(jobs, key=lambda j: -j[1].duration_ms)
        futures = {pool.submit(run_speech, pr.run.paths, pr.duration_ms, min(2, run_channels(pr.run)),
                               o.detector, o.aggressiveness, o.frame_ms, pr.run.holes): (uid, pr)
                   for uid, pr in order}
        done = 0.0
        for fut in as_completed(futures):
            uid, pr = futures[fut]
            turns[uid].extend(_turns(fut.result(), pr, o))
            done += pr.duration_ms
            if progress:
                progress(int(done), total)
    return {u: sorted(ts) for u, ts in turns.items()}


def _turns(raw: list[tuple[float, float]], pr: PlacedRun, o: ActivityOptions) -> list[Span]:
    """A run's raw speech spans → its turns on the session clock (whole ms)."""
    spans = place(smooth(raw, hangover_ms=o.hangover_ms, min_turn_ms=o.min_turn_ms), pr.offset_ms, pr.span)
    return [Span(round(s.start), round(s.end)) for s in spans if round(s.end) > round(s.start)]
