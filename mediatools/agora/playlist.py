"""Agora M3U8 playlists, parsed with the ``m3u8`` library plus Agora's own tags.

Agora writes HLS v3 with ``#EXT-X-AGORA-TRACK-EVENT`` (run starts) and, for video,
``#EXT-X-AGORA-ROTATE``. EXTINF may lack the comma; TRACK-EVENT TIME may be
``YYYYMMDDHHMMSSmmm`` or Unix ms. Anything m3u8 chokes on becomes a
:class:`PlaylistError` naming the file, never a stray exception.
"""
from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote

import m3u8

from ..errors import MediatoolsError, Problem
from .names import parse_utc

#: EXTINF above this is treated as absurd (Agora slices are ~15 s).
MAX_EXTINF_S = 3600.0
_TRACK_EVENT = "#EXT-X-AGORA-TRACK-EVENT:"
_ROTATE = "#EXT-X-AGORA-ROTATE"


class PlaylistError(MediatoolsError):
    """A playlist that cannot be used at all."""


@dataclass
class PlaylistEntry:
    uri: str
    extinf_s: float | None         # None when EXTINF was unusable (reported)
    discontinuity: bool = False
    event_time_ms: int | None = None  # TRACK-EVENT TIME attached to this entry
    event: str | None = None          # e.g. "START"


@dataclass
class Playlist:
    name: str
    entries: list[PlaylistEntry]
    endlist: bool
    target_duration: float | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def start_time_ms(self) -> int | None:
        """The first TRACK-EVENT TIME: the uid's recording start, per Agora."""
        for e in self.entries:
            if e.event_time_ms is not None:
                return e.event_time_ms
        return None


def entry_name(uri: str) -> str:
    """The file name a playlist entry names. Agora writes bare names; a path before it (either
    slash) is dropped, and a query string only when the entry is a URL: a string user account
    may hold a ``?`` (``who?`` is a uid), so a bare name is never cut there, nor unquoted (a
    cname may hold ``%``)."""
    uri = uri.replace("\\", "/")
    if "://" in uri:   # a URL's path is percent-encoded: "room%201" names "room 1"
        return unquote(posixpath.basename(uri.split("?", 1)[0].split("#", 1)[0]))
    return posixpath.basename(uri)


def parse_event_time(text: str) -> int:
    """TRACK-EVENT TIME in either documented form → Unix ms."""
    text = text.strip()
    if len(text) == 17 and text.isdigit():
        return parse_utc(text)
    if 11 <= len(text) <= 14 and text.isdigit():
        return int(text)
    raise ValueError(f"unrecognised TIME {text!r}")


def _attrs(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().upper()] = v.strip()
    return out


def _sanitize_extinf(text: str, name: str, problems: list[Problem]) -> str:
    """m3u8 rejects a whole playlist on one non-numeric EXTINF; mark such entries unusable instead."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("#EXTINF:"):
            value = line[len("#EXTINF:"):].split(",", 1)[0].strip()
            try:
                ok = math.isfinite(float(value))
            except ValueError:
                ok = False
            if not ok:
                problems.append(Problem("bad_extinf", name, f"line {lineno}: EXTINF {value!r} is not a number",
                                        "ignored"))
                line = "#EXTINF:nan"
        out.append(line)
    return "\n".join(out) + "\n"


def parse_playlist(text: str | bytes, name: str = "<playlist>") -> Playlist:
    """Parse playlist text. Raises :class:`PlaylistError`; soft issues go to ``problems``."""
    problems: list[Problem] = []
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = text.decode("utf-8", errors="replace")
            problems.append(Problem("non_utf8", name, f"not valid UTF-8 at byte {exc.start}; "
                                    "undecodable bytes replaced", "repaired"))
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise PlaylistError("empty playlist", file=name, code="empty_playlist")
    if not text.lstrip().startswith("#EXTM3U"):
        raise PlaylistError("not an M3U8 playlist (no #EXTM3U header)", file=name, code="not_m3u8")

    events: list[tuple[int, str | None, int | None]] = []  # (segment index, event, time)
    text = _sanitize_extinf(text, name, problems)

    def agora_tags(line: str, lineno: int, data: dict, state: dict) -> bool:
        if line.startswith(_TRACK_EVENT):
            attrs = _attrs(line[len(_TRACK_EVENT):])
            if attrs.get("TRACK_TYPE", "AUDIO").upper() not in ("AUDIO", "VIDEO"):
                problems.append(Problem("bad_track_event", name,
                                        f"line {lineno}: unknown TRACK_TYPE in {line.strip()!r}"))
            t: int | None = None
            if "TIME" in attrs:
                try:
                    t = parse_event_time(attrs["TIME"])
                except ValueError as exc:
                    problems.append(Problem("bad_track_event", name, f"line {lineno}: {exc}", "ignored"))
            events.append((len(data.get("segments", [])), attrs.get("EVENT"), t))
            return True
        return line.startswith(_ROTATE)

    try:
        data = m3u8.parse(text, strict=False, custom_tags_parser=agora_tags)
    except ValueError as exc:
        raise PlaylistError(f"bad EXTINF or tag value ({exc})", file=name, code="bad_playlist") from None
    except Exception as exc:  # m3u8 raises assorted errors on malformed input
        raise PlaylistError(f"unreadable playlist ({type(exc).__name__}: {exc})", file=name,
                            code="bad_playlist") from None

    entries: list[PlaylistEntry] = []
    for i, seg in enumerate(data.get("segments", [])):
        uri = str(seg.get("uri") or "").strip()
        dur = seg.get("duration")
        extinf: float | None
        if not isinstance(dur, (int, float)) or not math.isfinite(dur):
            extinf = None  # already reported by _sanitize_extinf
        elif dur <= 0 or dur > MAX_EXTINF_S:
            extinf = None
            problems.append(Problem("bad_extinf", name, f"entry {uri}: EXTINF {dur:g} s is out of range "
                                    f"(0, {MAX_EXTINF_S:g}]", "ignored"))
        else:
            extinf = float(dur)
        entries.append(PlaylistEntry(uri=uri, extinf_s=extinf, discontinuity=bool(seg.get("discontinuity"))))
    for idx, event, t in events:
        if idx < len(entries):
            entries[idx].event = event
            entries[idx].event_time_ms = t
    endlist = bool(data.get("is_endlist"))
    if not endlist:
        problems.append(Problem("no_endlist", name, "no #EXT-X-ENDLIST: recording still running or cut off"))
    if not entries:
        problems.append(Problem("empty_playlist", name, "playlist lists no slices"))
    td = data.get("targetduration")
    return Playlist(name=name, entries=entries, endlist=endlist,
                    target_duration=float(td) if isinstance(td, (int, float)) else None, problems=problems)


def format_playlist(entries: list[PlaylistEntry], *, endlist: bool = True, comma: bool = False,
                    target_duration: int = 18, time_format: str = "utc") -> str:
    """Write a playlist exactly as Agora does (used by the synthesizer and tests)."""
    from .names import format_utc

    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-ALLOW-CACHE:YES",
             f"#EXT-X-TARGETDURATION:{target_duration}"]
    for e in entries:
        if e.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if e.event_time_ms is not None:
            t = format_utc(e.event_time_ms) if time_format == "utc" else str(e.event_time_ms)
            lines.append(f"#EXT-X-AGORA-TRACK-EVENT:EVENT={e.event or 'START'},TRACK_TYPE=AUDIO,TIME={t}")
        lines.append(f"#EXTINF:{e.extinf_s:.6f}{',' if comma else ''}")
        lines.append(e.uri)
    if endlist:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
