"""The plain dataclasses every stage shares: recording → users → runs → slices.

Times are Unix milliseconds (``*_ms``, ints where they come from file names, floats
for durations so EXTINF precision is kept). Offsets against the session origin live
in :mod:`mediatools.timeline.contract`, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem

#: Slice states. Only "ok" slices carry audio; the rest are reported and skipped.
SLICE_OK = "ok"
SLICE_MISSING = "missing"
SLICE_ZERO = "zero_bytes"
SLICE_GARBAGE = "garbage"
SLICE_TRUNCATED = "truncated"


@dataclass
class Slice:
    name: str                   # bare file name, as Agora named it
    utc_ms: int                 # start from the file name: where its first decoded sample plays
    duration_ms: float | None   # EXTINF (or measured, for unlisted slices)
    source: str = "original"    # playlist family: "original", "bak0", ...
    playlist: str | None = None  # the playlist file that listed it; None for orphans
    discontinuity: bool = False  # opened an #EXT-X-DISCONTINUITY
    event_ms: int | None = None  # the TIME of the #EXT-X-AGORA-TRACK-EVENT attached to it, if any
    path: Path | None = None     # local file, when present
    size: int | None = None
    status: str = SLICE_OK
    recounted: float = 0.0       # held other than its EXTINF (duration_ms is what it holds): the slack allowed
    aac_format: tuple[int, int, int] | None = None   # (profile, rate index, channels) of its first AAC frame
    damaged: bool = False       # packets lost or garbled inside (it looks whole): decoded, never frame-copied
    lost_ms: float = 0.0        # of a damaged slice: audio its timestamps say is gone (silence in place)

    @property
    def end_ms(self) -> float:
        return self.utc_ms + (self.duration_ms or 0.0)

    @property
    def usable(self) -> bool:
        return self.status == SLICE_OK and self.path is not None and self.duration_ms is not None


@dataclass
class MediaInfo:
    codec: str                  # "aac", "opus", ...
    sample_rate: int
    channels: int
    profile: str | None = None  # e.g. "LC"
    bitrate: int | None = None  # bits/s when known

    def to_dict(self) -> dict:
        return {"codec": self.codec, "sample_rate": self.sample_rate, "channels": self.channels,
                "profile": self.profile, "bitrate": self.bitrate}


@dataclass
class Run:
    """Slices that play back to back, sample-contiguously, from ``start_ms``.

    ``duration_ms`` can be shorter than the slices' sum when a failover overlap was
    cut from its end: consumers decode the slices in order and keep that much.
    """
    start_ms: int
    duration_ms: float
    slices: list[Slice]
    drift_ms: float = 0.0       # max |file-name UTC − (start + preceding durations)|
    media: MediaInfo | None = None

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_ms

    @property
    def sources(self) -> list[str]:
        return sorted({s.source for s in self.slices})

    @property
    def paths(self) -> list[str]:
        """The local files of its slices, in play order: what a decoder reads as one stream."""
        return [str(s.path) for s in self.slices if s.path is not None]

    @property
    def holes(self) -> list[str]:
        """The files of its damaged slices, whose lost audio a decoder plays as silence in place."""
        return [str(s.path) for s in self.slices if s.path is not None and s.damaged]


@dataclass
class UserTrack:
    uid: str
    track_type: str
    runs: list[Run]
    playlists: list[str] = field(default_factory=list)   # playlist files used
    slices: list[Slice] = field(default_factory=list)    # every slice seen, usable or not

    @property
    def first_ms(self) -> int | None:
        return self.runs[0].start_ms if self.runs else None

    @property
    def last_ms(self) -> float | None:
        return max(r.end_ms for r in self.runs) if self.runs else None

    @property
    def talk_ms(self) -> float:
        return sum(r.duration_ms for r in self.runs)

    @property
    def media(self) -> MediaInfo | None:
        for r in self.runs:
            if r.media:
                return r.media
        return None


@dataclass
class Recording:
    sid: str
    cname: str
    root: Path
    users: list[UserTrack]
    problems: list[Problem] = field(default_factory=list)
    #: results stored beside the recording (Agora's postpone mix, mediatools' outputs): names
    results: list[str] = field(default_factory=list)
    #: how far runs have been probed: None, "quick" (ADTS headers) or "full" (ffprobe)
    probed: str | None = None

    def user(self, uid: str) -> UserTrack:
        for u in self.users:
            if u.uid == uid:
                return u
        raise KeyError(uid)

    @property
    def uids(self) -> list[str]:
        return [u.uid for u in self.users]
