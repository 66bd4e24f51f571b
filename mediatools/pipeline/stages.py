"""The one adapter between ``process`` and the stage library (fetch, load, mix, verify, merge).

Every call returns a plain dict, whether the stage returns a dict or a report dataclass
with ``to_dict()`` today or after the stages are refactored: only this module changes then.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..recording.model import Recording


def _as_dict(r: Any) -> dict[str, Any]:
    return r.to_dict() if hasattr(r, "to_dict") else dict(r)


def run_fetch(bucket: str, prefix: str, dest: Path, *, settings: Any, sid: str, jobs: int = 16,
              retries: int = 5) -> dict[str, Any]:
    """Fetch one recording (by sid) from ``s3://bucket/prefix`` into ``dest``."""
    from ..storage import S3Location, Selection, fetch
    sel = Selection(sid=sid)
    return _as_dict(fetch(S3Location(bucket, prefix), dest, settings=settings, selection=sel, jobs=jobs,
                          retries=retries))


def load(folder: Path, sid: str) -> Recording:
    from ..recording.discovery import load_recording
    return load_recording(folder, sid=sid)


def run_mix(rec: Recording, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Mix ``rec`` into ``out`` with the effective format/rate/channels/bitrate/normalize."""
    from ..mix.api import MixOptions, mix
    o = MixOptions(sid=rec.sid, format=settings["format"], sample_rate=int(settings["sample_rate"]),
                   channels=int(settings["channels"]), bitrate=settings.get("bitrate"),
                   normalize=settings.get("normalize", "limit"))
    return _as_dict(mix(rec, out, o))


def run_verify(mix_path: Path, rec: Recording, transcode: dict[str, Any] | None) -> dict[str, Any]:
    """Verify the mix against the recording; ``transcode`` holds the expected format/rate/channels/bitrate."""
    from ..agora.transcode import TranscodeOptions
    from ..verify.checks import verify
    expected = TranscodeOptions(**transcode) if transcode else None
    return _as_dict(verify(mix_path, rec, expected=expected))


def run_merge(rec: Recording, outdir: Path, fmt: str) -> dict[str, Any]:
    """Per-user stems (copied where the codec allows) into ``outdir``."""
    from ..merge.core import MergeOptions, merge
    return _as_dict(merge(rec, outdir, MergeOptions(sid=rec.sid, format=fmt), create_outdir=True))


def versions() -> dict[str, str]:
    from .. import __version__
    from ..errors import MediatoolsError
    from ..media.ffmpeg import ffmpeg_version
    try:
        ff = ffmpeg_version()
    except MediatoolsError:
        ff = "unknown"
    return {"mediatools": __version__, "ffmpeg": ff}
