"""Discovery: a folder of Agora files → :class:`~mediatools.recording.model.Recording` objects.

The rules for abnormal uploads (AGORA_FORMAT.md) live here and each repair is reported:
re-uploaded playlists (the larger of the unsuffixed and the highest-index version wins),
``bak<n>`` failover playlists joined to their user, slices listed nowhere kept by their
file-name time, users with no playlist rebuilt from slice names, duplicate and
out-of-order entries, and slices that are missing, empty or not MPEG-TS.
Playlist entries are only ever used as *names* to look up in the folder index, so an
entry can never point outside the folder.
"""
from __future__ import annotations

import logging
import os
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..agora.names import AgoraName, NameError_, looks_like_agora, parse_name, parse_result_name, track_slice
from ..agora.playlist import PlaylistError, entry_name, parse_playlist
from ..agora.reupload import chosen_version, newest_reupload
from ..errors import MediatoolsError, Problem, Strictness, UsageError
from ..media.ts_audio import held
from ..timeline.contract import CONTENT_TOLERANCE_MS, DEFAULT_TOLERANCE_MS, resolve_overlaps, split_runs
from .model import SLICE_GARBAGE, SLICE_MISSING, SLICE_OK, SLICE_TRUNCATED, SLICE_ZERO, Recording, Slice, UserTrack

log = logging.getLogger(__name__)

#: A slice whose file-name time is this far from every other slice of its user is an outlier (a
#: recording may run 720 h, and a user may be away for hours: only a lone slice is suspect).
OUTLIER_MS = 12 * 3600 * 1000
TS_PACKET = 188

Measure = Callable[[Path], float]


@dataclass
class _Track:
    """Everything found on disk for one (sid, cname, uid, type)."""
    playlists: dict[int | None, list[tuple[AgoraName, Path]]] = field(default_factory=lambda: defaultdict(list))
    slices: dict[str, tuple[AgoraName, Path]] = field(default_factory=dict)


def scan(root: Path, problems: list[Problem], results: list[str] | None = None
         ) -> dict[tuple[str, str, str, str], _Track]:
    """Index every Agora-named file below ``root`` by user track. Results stored beside the
    recording (Agora's postpone mix, mediatools' outputs) are no problem: their paths
    relative to ``root`` go to ``results``; other files are not Agora's and are ignored."""
    if not root.exists():
        raise MediatoolsError("no such folder", file=str(root), code="not_found")
    if not root.is_dir():
        raise MediatoolsError("not a folder", file=str(root), code="not_a_folder")
    tracks: dict[tuple[str, str, str, str], _Track] = defaultdict(_Track)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for d in dirnames:   # a stems folder (its files are not Agora-named, so skipped below)
            if results is not None and parse_result_name(d):
                results.append((Path(dirpath) / d).relative_to(root).as_posix() + "/")
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            if not looks_like_agora(fn):
                if results is not None and parse_result_name(fn):
                    results.append((Path(dirpath) / fn).relative_to(root).as_posix())
                continue
            path = Path(dirpath) / fn
            try:
                n = parse_name(fn)
            except NameError_ as exc:
                problems.append(Problem(exc.code, fn, exc.message, "skipped"))
                continue
            t = tracks[n.key]
            if n.kind == "playlist":
                t.playlists[n.bak].append((n, path))
            elif fn in t.slices:
                problems.append(Problem("duplicate_file", fn, f"also found at {path.relative_to(root)}; "
                                        "first copy used", "skipped"))
            else:
                t.slices[fn] = (n, path)
    return tracks


def choose_playlist(versions: list[tuple[AgoraName, Path]]) -> tuple[AgoraName, Path, list[Problem]]:
    """Documented rule (:func:`~mediatools.agora.reupload.chosen_version`): the highest-index
    re-upload against the unsuffixed one; larger wins. More than one version is reported."""
    newest = newest_reupload([n for n, _ in versions])
    if newest is None:
        return versions[0][0], versions[0][1], []
    sizes = [_size(p) for _, p in versions]
    chosen = versions[chosen_version([(n, size) for (n, _), size in zip(versions, sizes)])]
    plain = [i for i, (n, _) in enumerate(versions) if n.index is None]
    if not plain:
        why = "no unsuffixed playlist"
    else:
        why = (f"{versions[newest][1].name} is {sizes[newest]} bytes, {versions[plain[0]][1].name} is "
               f"{sizes[plain[0]]} bytes; larger used")
    others = [v for v in versions if v is not chosen]
    probs = [Problem("reuploaded_playlist", chosen[1].name,
                     f"{len(others)} other version(s) ({', '.join(o[1].name for o in others)}): {why}", "repaired")]
    return chosen[0], chosen[1], probs


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return -1


def check_slice_file(path: Path) -> tuple[str, int | None, str | None]:
    """Cheap validity check without decoding: status, size, reason."""
    try:
        size = path.stat().st_size
        if size == 0:
            return SLICE_ZERO, 0, "zero-byte slice"
        if path.suffix == ".ts":
            with open(path, "rb") as fh:
                head = fh.read(TS_PACKET + 1)
            if head[:1] != b"\x47" or (len(head) > TS_PACKET and head[TS_PACKET:TS_PACKET + 1] != b"\x47"):
                return SLICE_GARBAGE, size, "not an MPEG-TS file (no 0x47 sync byte)"
            if size % TS_PACKET:
                return SLICE_TRUNCATED, size, (f"truncated: {size} bytes is not a whole number of "
                                               f"{TS_PACKET}-byte TS packets")
        return SLICE_OK, size, None
    except OSError as exc:
        return SLICE_MISSING, None, f"unreadable: {exc.strerror}"


def lone_slices(times: list[int], far_ms: float = OUTLIER_MS) -> dict[int, float]:
    """{file-name time: distance to its nearest neighbour} for each slice more than ``far_ms``
    from every other one of a user's (sorted) slice times, when some other stretch holds two or
    more slices: a lone slice days away is a misnamed file, while a long absence between two
    stretches of slices is a user who came back. Two lone slices and nothing else are both kept."""
    groups: list[list[int]] = []
    for t in times:
        if groups and t - groups[-1][-1] <= far_ms:
            groups[-1].append(t)
        else:
            groups.append([t])
    if len(groups) < 2 or max(len(g) for g in groups) < 2:
        return {}
    out = {}
    for i, g in enumerate(groups):
        if len(g) == 1:
            near = [abs(g[0] - groups[j][k]) for j, k in ((i - 1, -1), (i + 1, 0)) if 0 <= j < len(groups)]
            out[g[0]] = float(min(near))
    return out


#: how far a run start's TRACK-EVENT TIME may lie from its slice's file-name time and still vouch for it
EVENT_AGREES_MS = 60_000


def _marked_start(s: Slice) -> bool:
    """The playlist opens a run with this slice (DISCONTINUITY or TRACK-EVENT), and an event
    TIME, if given, agrees with its file name: a user back for one short slice after a long
    absence (kept), not a misnamed file sitting inside a run (whose event time, if any, is
    the run's real start)."""
    if not s.discontinuity:
        return False
    return s.event_ms is None or abs(s.event_ms - s.utc_ms) <= EVENT_AGREES_MS


def _held_ms(path: Path, measure: Measure | None, into: Slice | None = None) -> tuple[float, float] | None:
    """(ms of audio a TS slice holds, the slack to allow against its EXTINF): its frames counted
    (:mod:`mediatools.media.ts_audio`), or, when the slice is damaged inside (a decoder then loses
    more than the missing frames), measured by decoding it as a run does (:func:`held_with_holes`;
    ``into.lost_ms`` gets what was lost). The slack is 50 ms or 1.5 frames,
    whichever is more (an encoder's EXTINF can be a frame off: 64 ms for AAC at 16 kHz). None
    for what cannot be counted or read (taken at its EXTINF). A slice whose audio is not
    countable is decoded; one a decoder gets no audio from holds 0 ms. ``into`` gets the AAC
    format of its first frame."""
    if path.suffix != ".ts":
        return None
    try:
        h = held(path.read_bytes())
    except OSError:
        return None
    if into is not None and h is not None:
        into.aac_format = h.aac_format
    if h is None:
        if measure is None:
            return None
        try:
            return measure(path) * 1000.0, CONTENT_TOLERANCE_MS
        except MediatoolsError:
            return 0.0, CONTENT_TOLERANCE_MS
    if h.ms <= 0:
        return 0.0, CONTENT_TOLERANCE_MS
    if into is not None:
        into.damaged = not h.intact
    slack = max(CONTENT_TOLERANCE_MS, 1.5 * h.frame_ms)
    if h.intact or measure is None:
        return h.ms, slack
    try:
        plays, lost = held_with_holes(path)
    except MediatoolsError:
        return h.ms, slack
    if into is not None:
        into.lost_ms = lost * 1000.0
    return plays * 1000.0, slack


def _default_measure(path: Path) -> float:
    from ..media.probe import decoded_duration
    return decoded_duration(path)


def held_with_holes(path: Path, rate: int = 48000) -> tuple[float, float]:
    """Seconds a damaged slice plays in a run, and of those, how many were lost: what decodes
    plus the audio its frames' timestamps say was lost inside it, which the run's decoder
    plays as silence in place."""
    from ..media.decode import DecodeError, Decoder
    n = 0
    try:
        with Decoder([path], rate, 1, holes=[path]) as dec:
            while True:
                got = len(dec.read(1 << 16))
                if not got:
                    break
                n += got
    except DecodeError as exc:
        raise MediatoolsError(exc.message, file=path.name, code="unreadable") from None
    return n / rate, dec.lost_s


def build_track(key: tuple[str, str, str, str], t: _Track, *, tolerance_ms: float = DEFAULT_TOLERANCE_MS,
                measure: Measure | None = _default_measure) -> tuple[UserTrack, list[Problem]]:
    sid, cname, uid, ttype = key
    problems: list[Problem] = []
    listed: dict[str, Slice] = {}
    used_playlists: list[str] = []

    def add(p: Problem) -> None:
        problems.append(Problem(p.code, p.file, p.message, p.action, uid))

    for bak in sorted(t.playlists, key=lambda b: -1 if b is None else b):
        pname, ppath, probs = choose_playlist(t.playlists[bak])
        for p in probs:
            add(p)
        try:
            pl = parse_playlist(ppath.read_bytes(), ppath.name)
        except PlaylistError as exc:
            add(Problem(exc.code, ppath.name, exc.message, "skipped"))
            continue
        except OSError as exc:
            add(Problem("unreadable", ppath.name, exc.strerror or str(exc), "skipped"))
            continue
        used_playlists.append(ppath.name)
        for p in pl.problems:
            add(p)
        last_utc = None
        for e in pl.entries:
            name = entry_name(e.uri)
            try:
                n = track_slice(name, key)
            except NameError_ as exc:
                add(Problem(exc.code, pl.name, f"entry {e.uri!r}: {str(exc).split(': ', 1)[-1]}", "skipped"))
                continue
            if n is None:
                add(Problem("foreign_entry", pl.name, f"entry {name} belongs to another track", "skipped"))
                continue
            if name in listed:
                add(Problem("duplicate_entry", pl.name, f"entry {name} listed more than once", "skipped"))
                continue
            if last_utc is not None and n.utc_ms < last_utc:
                add(Problem("out_of_order", pl.name, f"entry {name} is listed before earlier slices; "
                            "order restored by file-name time", "repaired"))
            last_utc = n.utc_ms if last_utc is None else max(last_utc, n.utc_ms)
            dur = e.extinf_s * 1000.0 if e.extinf_s is not None else None
            listed[name] = Slice(name=name, utc_ms=n.utc_ms, duration_ms=dur, source=n.source,
                                 playlist=pl.name, discontinuity=e.discontinuity or e.event_time_ms is not None,
                                 event_ms=e.event_time_ms)

    if not t.playlists:
        add(Problem("no_playlist", f"{sid}_{cname}__uid_s_{uid}__uid_e_{ttype}.m3u8",
                    f"no playlist for uid {uid}; rebuilt from {len(t.slices)} slice name(s)", "repaired"))
    elif not used_playlists and t.slices:
        add(Problem("no_usable_playlist", f"uid {uid}", "no readable playlist; rebuilt from slice names",
                    "repaired"))

    for name, (n, path) in t.slices.items():
        if name not in listed:
            s = Slice(name=name, utc_ms=n.utc_ms, duration_ms=None, source=n.source, playlist=None,
                      discontinuity=False)  # joins a run when its time is contiguous
            listed[name] = s
            if t.playlists and used_playlists:
                add(Problem("orphan_slice", name, "in the folder but listed in no playlist; kept by its "
                            "file-name time", "repaired"))

    slices = sorted(listed.values(), key=lambda s: (s.utc_ms, s.source, s.name))
    lone = lone_slices([s.utc_ms for s in slices])
    for s in slices:
        found = t.slices.get(s.name)
        if found is None:
            s.status = SLICE_MISSING
            add(Problem("missing_slice", s.name, f"listed in {s.playlist} but not in the folder", "skipped"))
            continue
        s.path = found[1]
        s.status, s.size, why = check_slice_file(s.path)
        if why:
            add(Problem(s.status, s.name, why, "skipped"))
            continue
        if s.utc_ms in lone and not _marked_start(s):
            s.status = "utc_outlier"
            add(Problem("utc_outlier", s.name, f"file-name time is {lone[s.utc_ms] / 3.6e6:.1f} h from the "
                        "nearest other slice of the user", "skipped"))
            continue
        counted = _held_ms(s.path, measure, s)
        holds, slack = counted if counted is not None else (None, 0.0)
        if holds is not None and holds <= 0:
            s.status = SLICE_GARBAGE
            add(Problem("undecodable", s.name, "holds no intact audio frame", "skipped"))
            continue
        if s.damaged and holds is not None and (s.duration_ms is None or abs(holds - s.duration_ms) <= slack):
            add(Problem("damaged_slice", s.name, f"packets lost or garbled inside: {s.lost_ms / 1000:.3f} s of audio "
                        "gone, played as silence where it was; the rest of the slice keeps its time", "repaired"))
        if holds is not None and s.duration_ms is not None and abs(holds - s.duration_ms) > slack:
            # a decoder plays what the slice holds, not what the playlist says: counted as listed,
            # every later slice of the run would sound that much early (or late)
            what = "cut short or damaged" if holds < s.duration_ms else "more than listed"
            add(Problem("short_slice" if holds < s.duration_ms else "long_slice", s.name,
                        f"holds {holds / 1000:.3f} s of audio where {s.playlist} lists {s.duration_ms / 1000:.3f} s "
                        f"({what}): taken at what it holds; the next slice joins its run only where that "
                        "audio ends", "repaired"))
            s.duration_ms, s.recounted = holds, slack
        if s.duration_ms is None and holds is not None:
            s.duration_ms = holds          # an unlisted slice: its frames say how long it is
        if s.duration_ms is None:
            if measure is None:
                s.status = "no_duration"
                add(Problem("no_duration", s.name, "no usable EXTINF and measuring is off", "skipped"))
                continue
            try:
                s.duration_ms = measure(s.path) * 1000.0
            except MediatoolsError as exc:
                s.status = SLICE_GARBAGE
                add(Problem("undecodable", s.name, exc.message, "skipped"))
                continue
            if s.duration_ms <= 0:
                s.status = SLICE_GARBAGE
                add(Problem("undecodable", s.name, "decodes to no audio", "skipped"))

    runs = []
    for src in sorted({s.source for s in slices}):
        runs += split_runs([s for s in slices if s.source == src], tolerance_ms)
    problems += _format_changes(runs, uid, tolerance_ms)
    runs, probs = resolve_overlaps(runs, uid)
    problems += probs
    problems += _failover_notes(runs, uid)
    if slices and not runs:
        add(Problem("no_audio", f"uid {uid}", "no usable slice: user has no audio", "reported"))
    return UserTrack(uid=uid, track_type=ttype, runs=runs, playlists=used_playlists, slices=slices), problems


def _aac_words(fmt: tuple[int, int, int]) -> str:
    from ..media.adts import ADTS_RATES
    profile, sri, ch = fmt
    rate = ADTS_RATES[sri] if sri < len(ADTS_RATES) else "?"
    return f"AAC {['Main', 'LC', 'SSR', 'LTP'][profile]} {rate} Hz {ch} ch"


def _format_changes(runs: list, uid: str, tolerance_ms: float) -> list[Problem]:
    """Where a run was split because the sender's AAC format changed between two slices that
    play back to back (one decoder, or one copied file, cannot take both)."""
    notes = []
    for prev, r in zip(runs, runs[1:]):
        a, b = prev.slices[-1], r.slices[0]
        if (a.source == b.source and a.aac_format and b.aac_format and a.aac_format != b.aac_format
                and not b.discontinuity and abs(b.utc_ms - a.end_ms) <= tolerance_ms):
            notes.append(Problem("format_change", b.name, f"the audio changes from {_aac_words(a.aac_format)} to "
                                 f"{_aac_words(b.aac_format)} inside a run of uid {uid}: a new run starts here",
                                 "repaired", uid))
    return notes


def _failover_notes(runs: list, uid: str) -> list[Problem]:
    """Say where each bak<n> failover run was joined: after a gap, or cut into (overlap_cut)."""
    notes = []
    for prev, r in zip(runs, runs[1:]):
        src = r.slices[0].source
        if src == "original" or src == prev.slices[-1].source:
            continue
        gap = r.start_ms - prev.end_ms
        what = f"gap of {gap:.0f} ms before it (silence)" if gap > 0.5 else "contiguous with the previous run"
        pl = r.slices[0].playlist or r.slices[0].name
        notes.append(Problem("failover_joined", pl, f"{src} failover run at {r.start_ms} joined to uid {uid}: {what}",
                             "repaired", uid))
    return notes


def discover(root: str | Path, *, track_type: str = "audio", tolerance_ms: float = DEFAULT_TOLERANCE_MS,
             measure: Measure | None = _default_measure) -> list[Recording]:
    """Every recording (sid, cname) found below ``root``, users sorted by first instant."""
    root = Path(root)
    scan_problems: list[Problem] = []
    results: list[str] = []
    tracks = scan(root, scan_problems, results)
    by_rec: dict[tuple[str, str], list[tuple[UserTrack, list[Problem]]]] = defaultdict(list)
    for key, t in sorted(tracks.items()):
        if key[3] != track_type:
            continue
        by_rec[(key[0], key[1])].append(build_track(key, t, tolerance_ms=tolerance_ms, measure=measure))
    recs = []
    for (sid, cname), items in sorted(by_rec.items()):
        users = sorted((u for u, _ in items), key=lambda u: (u.first_ms is None, u.first_ms or 0, u.uid))
        probs = list(scan_problems) + [p for _, ps in items for p in ps]
        mine = [r for r in results if _result_of(r, sid, cname)]
        recs.append(Recording(sid=sid, cname=cname, root=root, users=users, problems=probs, results=mine))
        log.debug("%s: recording %s (%s): %d users, %d problems, %d results beside it", root, sid, cname,
                  len(users), len(probs), len(mine))
    return recs


def _result_of(rel: str, sid: str, cname: str) -> bool:
    n = parse_result_name(posixpath.basename(rel.rstrip("/")))
    return n is not None and n.sid == sid and n.cname == cname


def load_recording(root: str | Path, *, sid: str | None = None, strict: bool = False,
                   track_type: str = "audio", tolerance_ms: float = DEFAULT_TOLERANCE_MS,
                   measure: Measure | None = _default_measure) -> Recording:
    """The one recording a command works on; ``--sid`` picks among several."""
    recs = discover(root, track_type=track_type, tolerance_ms=tolerance_ms, measure=measure)
    if sid is not None:
        recs = [r for r in recs if r.sid == sid]
        if not recs:
            found = ", ".join(sorted({r.sid for r in discover(root, track_type=track_type, measure=None)})) or "none"
            raise UsageError(f"no recording with sid {sid} (sids found: {found})", file=str(root))
    if not recs:
        raise MediatoolsError(f"no Agora {track_type} recording found (no *__uid_s_*__uid_e_{track_type}* files)",
                              file=str(root), code="not_a_recording")
    if len(recs) > 1:
        names = ", ".join(f"{r.sid} ({r.cname})" for r in recs)
        raise UsageError(f"{len(recs)} recordings here; choose one with --sid: {names}", file=str(root))
    rec = recs[0]
    if strict:
        Strictness(strict=True).extend(rec.problems)
    return rec


def iter_usable(slices: Iterable[Slice]) -> Iterable[Slice]:
    return (s for s in slices if s.status == SLICE_OK)
