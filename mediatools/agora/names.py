"""Agora individual-mode file names: the one place that parses and formats them.

Grammar (AGORA_FORMAT.md)::

    [bak<n>_]<sid>_<cname>__uid_s_<uid>__uid_e_<type>.m3u8
    [bak<n>_]<sid>_<cname>__uid_s_<uid>__uid_e_<type>_<tick>_<index>.m3u8   (re-uploaded)
    [bak<n>_]<sid>_<cname>__uid_s_<uid>__uid_e_<type>_<utc>.ts|.webm

and the names of results stored next to a recording (:func:`parse_result_name`)::

    <sid>_<cname>_<index>.mp3|m4a|aac          Agora's postpone mix (mediatools writes it too)
    <sid>_<cname>.mediatools.<ext>             mediatools' manifest and reports
    <sid>_<cname>_stems/<uid>.<ext>            mediatools' per-user stems (a folder)

``<sid>`` has no underscore; ``<cname>`` may hold ``-`` and ``_``; ``<uid>`` is numeric or
a user account string; ``<utc>`` is ``YYYYMMDDHHMMSSmmm``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import MediatoolsError

TRACK_TYPES = ("audio", "video")
_STEM = (
    r"(?:bak(?P<bak>\d+)_)?"
    r"(?P<sid>[A-Za-z0-9]+)_(?P<cname>.+?)"
    r"__uid_s_(?P<uid>.+?)__uid_e_(?P<type>audio|video)"
)
_SLICE_RE = re.compile(_STEM + r"_(?P<utc>\d{17})\.(?P<ext>ts|webm)\Z")
_PLAYLIST_RE = re.compile(_STEM + r"(?:_(?P<tick>\d+)_(?P<index>\d+))?\.m3u8\Z")
#: Agora's postpone-mix container formats (``transcodeOptions.container.format``)
RESULT_FORMATS = ("mp3", "m4a", "aac")
_RESULT_RE = re.compile(r"(?P<sid>[A-Za-z0-9]+)_(?P<cname>.+)_(?P<index>\d+)\.(?P<ext>mp3|m4a|aac)\Z")
_OWN_RE = re.compile(r"(?P<sid>[A-Za-z0-9]+)_(?P<cname>.+?)\.mediatools\.(?P<ext>[a-z0-9.]+)\Z")
#: mediatools' manifest beside a recording, and the claim written before its outputs
MANIFEST_SUFFIX = ".mediatools.json"
PENDING_SUFFIX = ".mediatools.pending.json"
_STEMS_RE = re.compile(r"(?P<sid>[A-Za-z0-9]+)_(?P<cname>.+)_stems\Z")


class NameError_(MediatoolsError):
    """A file name that is not an Agora individual-mode name."""


@dataclass(frozen=True)
class AgoraName:
    sid: str
    cname: str
    uid: str
    track_type: str
    kind: str                 # "playlist" or "slice"
    bak: int | None = None    # n of a bak<n>_ failover file
    utc_ms: int | None = None  # slice start, Unix ms (slices only)
    ext: str = "m3u8"
    tick: int | None = None   # re-uploaded playlist: <tick>
    index: int | None = None  # re-uploaded playlist: <index>, higher is newer

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Which user track this file belongs to."""
        return (self.sid, self.cname, self.uid, self.track_type)

    @property
    def source(self) -> str:
        """Which playlist family: 'original' or 'bak<n>'."""
        return "original" if self.bak is None else f"bak{self.bak}"

    def format(self) -> str:
        return format_name(self)


def parse_utc(text: str) -> int:
    """``YYYYMMDDHHMMSSmmm`` → Unix ms. Raises ValueError on impossible dates."""
    if len(text) != 17 or not text.isdigit():
        raise ValueError(f"not a YYYYMMDDHHMMSSmmm time: {text!r}")
    dt = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1000 + int(text[14:])


def format_utc(ms: int) -> str:
    """Unix ms → ``YYYYMMDDHHMMSSmmm``."""
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y%m%d%H%M%S") + f"{ms % 1000:03d}"


def iso_utc(ms: int) -> str:
    """Unix ms → ISO 8601 with milliseconds, for humans and JSON."""
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_name(name: str) -> AgoraName:
    """Parse a bare file name (no folders). Raises :class:`NameError_` with the reason."""
    if "/" in name or "\\" in name:
        raise NameError_("expected a bare file name, not a path", file=name, code="bad_name")
    m = _SLICE_RE.match(name)
    if m:
        try:
            utc = parse_utc(m["utc"])
        except ValueError:
            raise NameError_(f"impossible UTC time {m['utc']!r} in slice name", file=name,
                             code="bad_utc") from None
        return AgoraName(sid=m["sid"], cname=m["cname"], uid=m["uid"], track_type=m["type"],
                         kind="slice", bak=_int(m["bak"]), utc_ms=utc, ext=m["ext"])
    m = _PLAYLIST_RE.match(name)
    if m:
        return AgoraName(sid=m["sid"], cname=m["cname"], uid=m["uid"], track_type=m["type"],
                         kind="playlist", bak=_int(m["bak"]), ext="m3u8",
                         tick=_int(m["tick"]), index=_int(m["index"]))
    raise NameError_(_why_not(name), file=name, code="bad_name")


def track_slice(name: str, track: tuple[str, str, str, str] | None) -> AgoraName | None:
    """``name`` parsed when it is a slice of ``track`` (its ``key``; ``None``: any track), else
    ``None`` (another track's or sid's slice, or a playlist). A playlist entry counts only
    then: the loader skips the rest, and the completeness check must not wait for it.
    Raises :class:`NameError_` for a name that is no Agora name (an empty entry included)."""
    n = parse_name(name)
    return n if n.kind == "slice" and (track is None or n.key == track) else None


def format_name(n: AgoraName) -> str:
    """Inverse of :func:`parse_name`."""
    stem = f"{'' if n.bak is None else f'bak{n.bak}_'}{n.sid}_{n.cname}__uid_s_{n.uid}__uid_e_{n.track_type}"
    if n.kind == "slice":
        if n.utc_ms is None:
            raise ValueError("a slice name needs utc_ms")
        return f"{stem}_{format_utc(n.utc_ms)}.{n.ext}"
    if n.tick is not None and n.index is not None:
        return f"{stem}_{n.tick}_{n.index}.m3u8"
    return f"{stem}.m3u8"


def slice_name(sid: str, cname: str, uid: str, utc_ms: int, *, track_type: str = "audio",
               bak: int | None = None, ext: str = "ts") -> str:
    return format_name(AgoraName(sid, cname, uid, track_type, "slice", bak=bak, utc_ms=utc_ms, ext=ext))


def playlist_name(sid: str, cname: str, uid: str, *, track_type: str = "audio", bak: int | None = None,
                  tick: int | None = None, index: int | None = None) -> str:
    return format_name(AgoraName(sid, cname, uid, track_type, "playlist", bak=bak, tick=tick, index=index))


@dataclass(frozen=True)
class ResultName:
    """A result stored next to a recording: not part of the recording itself."""
    sid: str
    cname: str
    kind: str                 # "mix" (Agora's postpone-mix name), "mediatools" (manifest, reports), "stems"
    ext: str = ""
    index: int | None = None  # mix: Agora's <index>, from 0


def parse_result_name(name: str) -> ResultName | None:
    """The result a bare file (or folder) name stands for, or None for anything else."""
    if "__uid_s_" in name or "/" in name or "\\" in name:
        return None
    if m := _OWN_RE.match(name):
        return ResultName(m["sid"], m["cname"], "mediatools", m["ext"])
    if m := _RESULT_RE.match(name):
        return ResultName(m["sid"], m["cname"], "mix", m["ext"], int(m["index"]))
    if m := _STEMS_RE.match(name):
        return ResultName(m["sid"], m["cname"], "stems")
    return None


def result_name(sid: str, cname: str, ext: str = "m4a", index: int = 0) -> str:
    """Agora's postpone-mix name: ``<sid>_<cname>_<index>.<ext>``."""
    return f"{sid}_{cname}_{index}.{ext}"


def manifest_name(sid: str, cname: str) -> str:
    """mediatools' manifest beside the recording: ``<sid>_<cname>.mediatools.json``."""
    return f"{sid}_{cname}{MANIFEST_SUFFIX}"


def stems_folder(sid: str, cname: str) -> str:
    """mediatools' per-user stems folder beside the recording: ``<sid>_<cname>_stems``."""
    return f"{sid}_{cname}_stems"


def looks_like_agora(name: str) -> bool:
    """Cheap filter for discovery: does this name claim to be an Agora file?"""
    return "__uid_s_" in name and "__uid_e_" in name


def _int(s: str | None) -> int | None:
    return None if s is None else int(s)


def _why_not(name: str) -> str:
    if not looks_like_agora(name):
        return "not an Agora individual-mode name (no __uid_s_<uid>__uid_e_<type>)"
    if not re.search(r"__uid_e_(audio|video)", name):
        return "track type after __uid_e_ must be 'audio' or 'video'"
    if name.endswith((".ts", ".webm")):
        return "slice name must end in _<YYYYMMDDHHMMSSmmm>.ts"
    if name.endswith(".m3u8"):
        return "playlist name must end in __uid_e_<type>.m3u8 or _<tick>_<index>.m3u8"
    return "unknown extension (expected .m3u8, .ts or .webm)"
