"""The one adapter between ``process`` and the stage library (fetch, load, mix, verify, merge).

Every call returns the stage report's ``to_dict()``: the manifest and the batch report
hold plain JSON, and a change in a stage's signature touches only this module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..recording.model import Recording


def run_fetch(location: Any, dest: Path, *, settings: Any, sid: str, jobs: int = 16,
              retries: int = 5) -> dict[str, Any]:
    """Fetch one recording (by sid) from ``location`` (an S3 or Azure location, from the store) into ``dest``."""
    from ..storage import FetchOptions, Selection, fetch
    opts = FetchOptions(selection=Selection(sid=sid), settings=settings, jobs=jobs, retries=retries)
    return fetch(location, dest, opts).to_dict()


def load(folder: Path, sid: str) -> Recording:
    from ..recording.discovery import load_recording
    return load_recording(folder, sid=sid)


def new_reference(scratch: Path | None = None) -> Any:
    """What the mix collects for the verify after it (:class:`mediatools.verify.Reference`):
    every run is then decoded once, by the mix, instead of again by verify. Its spool goes
    under ``scratch``."""
    from ..verify import Reference
    return Reference(scratch)


def new_speech_tap() -> Any:
    """What the mix judges for the activity stage after it (:class:`mediatools.activity.SpeechTap`):
    runs are then decoded once, by the mix, instead of again by activity."""
    from ..activity import SpeechTap
    return SpeechTap()


def run_mix(rec: Recording, out: Path, settings: dict[str, Any], *, reference: Any = None,
            speech: Any = None) -> dict[str, Any]:
    """Mix ``rec`` into ``out`` with the effective format/rate/channels/bitrate/normalize."""
    from ..mix import MixOptions, mix
    o = MixOptions(sid=rec.sid, format=settings["format"], sample_rate=int(settings["sample_rate"]),
                   channels=int(settings["channels"]), bitrate=settings.get("bitrate"),
                   normalize=settings.get("normalize", "limit"))
    return mix(rec, out, o, reference=reference, speech=speech).to_dict()


def run_verify(mix_path: Path, rec: Recording, transcode: dict[str, Any] | None, *,
               reference: Any = None) -> dict[str, Any]:
    """Verify the mix against the recording; ``transcode`` holds the expected format/rate/channels/bitrate;
    ``reference`` is what :func:`run_mix` collected, if it was given one."""
    from ..agora.transcode import TranscodeOptions
    from ..verify import VerifyOptions, verify
    expected = TranscodeOptions(**transcode) if transcode else None
    return verify(mix_path, rec, VerifyOptions(expected=expected), reference=reference).to_dict()


def run_merge(rec: Recording, outdir: Path, fmt: str) -> dict[str, Any]:
    """Per-user stems (copied where the codec allows) into ``outdir``, each on the session clock
    as the mix is (t = 0 the session origin, gaps kept): they line up with it and each other."""
    from ..merge import MergeOptions, merge
    return merge(rec, outdir, MergeOptions(sid=rec.sid, format=fmt, align="session", gaps="keep",
                                           create_outdir=True)).to_dict()


def run_activity(rec: Recording, outdir: Path | None, report: Path | None, mix_src: str | None, *,
                 speech: Any = None) -> dict[str, Any]:
    """Speech activity (exports into ``outdir`` when given) and the HTML report (``report``, its player
    pointing at ``mix_src``, a URL relative to the page) from one detection pass; ``speech`` is what
    :func:`run_mix` judged, if it was given a tap."""
    from ..activity import ActivityOptions, activity
    from ..report import ReportOptions
    from ..report import report as make_report
    act = activity(rec, outdir, ActivityOptions(sid=rec.sid), speech=speech)
    out: dict[str, Any] = {"activity": act.to_dict()}
    if report is not None:
        out["report"] = make_report(rec, report, ReportOptions(sid=rec.sid, find_mix=False, mix_src=mix_src),
                                    act=act).to_dict()
    return out


def versions() -> dict[str, str]:
    from .. import __version__
    from ..errors import MediatoolsError
    from ..media.ffmpeg import ffmpeg_version
    try:
        ff = ffmpeg_version()
    except MediatoolsError:
        ff = "unknown"
    return {"mediatools": __version__, "ffmpeg": ff}
