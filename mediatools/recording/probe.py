"""Probing a recording's runs: codec, sample rate and channels, found once per recording."""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import MediatoolsError, Problem
from .model import MediaInfo, Recording, Run

log = logging.getLogger(__name__)


def probe_runs(rec: Recording, *, quick: bool = False) -> list[Problem]:
    """Fill ``run.media`` by probing the first slice of each run (never every slice).

    ``quick``: read AAC-LC parameters straight from the first ADTS header in the TS
    (merge and mix need only codec, rate and channels; an ffmpeg start per run was most
    of merge's set-up time and idled a core before a mix). Anything else is probed by
    ffmpeg as usual.

    Idempotent: the recording remembers it was probed, so problems are found once however
    many stages run on it (a full probe after a quick one refines ``run.media`` but adds
    no problem already reported). Returns the problems newly found.
    """
    if rec.probed == "full" or (quick and rec.probed == "quick"):
        return []   # found once: a second stage on the same recording reports nothing twice
    problems = []
    for u in rec.users:
        seen = None
        for r in u.runs:
            s = r.slices[0]
            try:
                r.media = _media_of(s.path, quick=quick)
            except MediatoolsError as exc:
                problems.append(Problem("unreadable", s.name, exc.message, "reported", u.uid))
                continue
            sig = (r.media.codec, r.media.sample_rate, r.media.channels)
            if seen and sig != seen:
                problems.append(Problem("format_change", s.name,
                                        f"uid {u.uid} changes from {_fmt(seen)} to {_fmt(sig)}", "reported", u.uid))
            seen = sig
    rec.probed = "quick" if quick else "full"
    log.debug("recording %s probed (%s): %d problems", rec.sid, rec.probed, len(problems))
    new = [p for p in problems if p not in rec.problems]
    rec.problems.extend(new)
    return new


def _fmt(sig: tuple) -> str:
    return f"{sig[0]} {sig[1]} Hz {sig[2]} ch"


def run_channels(run: Run) -> int:
    """A run's channel count: from its probe (``run.media``), else from its first slice's ADTS
    header, else by ffprobe (verify asks this of every run: an ffprobe start each, ≈ 70 ms of
    CPU, was a sixth of a 10-minute verify's own CPU)."""
    if run.media is not None and run.media.channels:
        return int(run.media.channels)
    first = next((s.path for s in run.slices if s.path is not None), None)
    return (_media_of(first, quick=True).channels or 1) if first is not None else 1


def _media_of(path: Path, *, quick: bool) -> MediaInfo:
    """A slice's codec, rate and channels: with ``quick`` from its first ADTS header (no ffmpeg
    start) where it is AAC-LC, else by ffprobe."""
    from ..media.adts import adts_media
    from ..media.probe import probe
    return (adts_media(path) if quick else None) or probe(path)[0]
