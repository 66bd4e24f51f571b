"""Is a recording complete? Pure functions over a store listing and playlist text.

Complete means: every user has a playlist; of the recording's newest playlist family
(original, then ``bak0``, ``bak1``...: a failover's) the version Agora's rule chooses (the larger of the
unsuffixed and the highest-index re-upload) ends with ``#EXT-X-ENDLIST``; and every slice
each chosen version lists is in the store. (An older family was written by a server that
died: it never gets its ENDLIST, and is not waited for.) Anything else leaves the recording ``incomplete``, with reasons naming files.

One exception, asked for with ``lost_before_ms``: a slice that is still missing although
every playlist has ended and the recording's last slice is older than that time is
*lost* (Agora gave up on it too); the recording then counts as complete, with holes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..agora.names import NameError_, iso_utc, parse_name, track_slice
from ..agora.playlist import PlaylistError, entry_name, parse_playlist
from ..agora.reupload import chosen_version
from ..storage.selection import ObjectInfo, refusal

log = logging.getLogger(__name__)


@dataclass
class RecordingFiles:
    """Every audio object of one recording (sid, cname) in one folder of the store."""
    sid: str
    cname: str
    folder: str                                   # key prefix: "" or ending in "/"
    playlists: list[ObjectInfo] = field(default_factory=list)
    slices: list[ObjectInfo] = field(default_factory=list)

    @property
    def first_utc_ms(self) -> int | None:
        return min(self._slice_times(), default=None)

    @property
    def last_utc_ms(self) -> int | None:
        return max(self._slice_times(), default=None)

    def _slice_times(self) -> list[int]:
        times = (parse_name(posixpath.basename(s.key)).utc_ms for s in self.slices)
        return [t for t in times if t is not None]

    @property
    def objects(self) -> list[ObjectInfo]:
        return sorted(self.playlists + self.slices, key=lambda o: o.key)

    def inputs(self) -> list[dict[str, Any]]:
        """What the manifest records and a rerun compares: key, size and ETag of every input."""
        return [{"key": o.key, "size": o.size, "etag": o.etag} for o in self.objects]

    def inputs_digest(self) -> str:
        return digest_inputs(self.inputs())


def digest_inputs(inputs: list[dict[str, Any]]) -> str:
    rows = sorted((str(i["key"]), int(i["size"]), str(i.get("etag", ""))) for i in inputs)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


@dataclass
class RecordingInfo:
    """What ``find_recordings`` reports per recording (the serve issue's sweeper reads it)."""
    sid: str
    cname: str
    folder: str
    first_utc_ms: int | None
    complete: bool
    reasons: list[str]
    users: int
    objects: int

    def to_dict(self) -> dict[str, Any]:
        return {"sid": self.sid, "cname": self.cname, "folder": self.folder, "first_utc_ms": self.first_utc_ms,
                "first_utc": iso_utc(self.first_utc_ms) if self.first_utc_ms is not None else None,
                "complete": self.complete, "reasons": self.reasons, "users": self.users, "objects": self.objects}


def group(objects: list[ObjectInfo], *, sid: str | None = None) -> list[RecordingFiles]:
    """Audio playlists and slices by (folder, sid, cname); other objects are ignored."""
    recs: dict[tuple[str, str, str], RecordingFiles] = {}
    for o in objects:
        name = posixpath.basename(o.key)
        try:
            n = parse_name(name)
        except NameError_:
            continue
        if n.track_type != "audio" or (sid is not None and n.sid != sid):
            continue
        why = refusal(o.key)
        if why:   # the fault table's refused_key: refused and reported, as fetch does
            log.warning("%s: refused (%s): could land outside its folder; left out", o.key, why)
            continue
        folder = o.key[: len(o.key) - len(name)]
        r = recs.setdefault((folder, n.sid, n.cname), RecordingFiles(n.sid, n.cname, folder))
        (r.playlists if n.kind == "playlist" else r.slices).append(o)
    return [recs[k] for k in sorted(recs)]


def choose_versions(playlists: list[ObjectInfo]) -> dict[tuple[str, int | None], ObjectInfo]:
    """Per (uid, bak family): the playlist Agora's rule picks (:func:`~mediatools.agora.reupload.chosen_version`)."""
    fam: dict[tuple[str, int | None], list[tuple[Any, ObjectInfo]]] = defaultdict(list)
    for p in playlists:
        n = parse_name(posixpath.basename(p.key))
        fam[(n.uid, n.bak)].append((n, p))
    return {k: versions[chosen_version([(n, p.size) for n, p in versions])][1] for k, versions in fam.items()}


def superseded(chosen: dict[tuple[str, int | None], ObjectInfo]) -> set[tuple[str, int | None]]:
    """The (uid, family) keys of ``chosen`` older than the recording's newest ``bak<n>`` family.

    A failover is the recording server's, not a user's: every playlist the dead server wrote
    stays without ENDLIST, that of a user who had left before it died (and so has no bak
    family at all) as much as any other's."""
    newest = max(map(_rank, chosen), default=-1)
    return {k for k in chosen if _rank(k) < newest}


def _rank(key: tuple[str, int | None]) -> int:
    """A (uid, bak) family's order: the original -1, then bak0, bak1..."""
    return -1 if key[1] is None else key[1]


def _family(rank: int) -> str:
    return "original" if rank < 0 else f"bak{rank}"


def _listed_span(pl: Any) -> tuple[float, float] | None:
    """(Unix ms where the playlist's last listed slice ends, its longest EXTINF in ms), from the
    names and EXTINFs; None when no entry names a time."""
    longest = max((e.extinf_s or 0.0 for e in pl.entries), default=0.0) * 1000.0
    for e in reversed(pl.entries):
        try:
            return parse_name(entry_name(e.uri)).utc_ms + (e.extinf_s or 0.0) * 1000.0, longest
        except NameError_:
            continue
    return None


def awaiting_failover(chosen: dict[tuple[str, int | None], ObjectInfo],
                      spans: dict[tuple[str, int | None], tuple[float, float]]) -> list[tuple[str, int, float]]:
    """Users whose newest family is older than the recording's, and who were still being
    recorded when that family's server died: their next family (``bak<n+1>``) is on its way.
    ``spans``: the chosen playlists without ENDLIST (see :func:`_listed_span`).

    A dead server's playlists all stop where it died, at their last uploaded slice; a user
    recorded until then ends within one slice of the family's latest end, and one who had left
    earlier ends before that (then no later family is due). → (uid, the family's rank, seconds
    between the user's end and the family's latest end)."""
    newest = max(map(_rank, chosen), default=-1)
    last: dict[str, int] = {}                          # each user's newest family
    for k in chosen:
        last[k[0]] = max(last.get(k[0], -1), _rank(k))
    died: dict[int, float] = {}                        # where each family's open playlists stop
    slice_ms: dict[int, float] = {}                    # and its longest slice, with 2 s to spare
    for k, (end, longest) in spans.items():
        r = _rank(k)
        died[r] = max(died.get(r, end), end)
        slice_ms[r] = max(slice_ms.get(r, 0.0), longest + 2000.0)
    out = []
    for uid, r in sorted(last.items()):
        span = spans.get((uid, None if r < 0 else r))
        if r < newest and span is not None and died[r] - span[0] <= slice_ms[r]:
            out.append((uid, r, (died[r] - span[0]) / 1000.0))
    return out


def endlist_keys(playlists: list[ObjectInfo]) -> list[str]:
    """The playlists that must end with ``#EXT-X-ENDLIST`` before the recording is complete:
    the chosen version of each playlist of the recording's newest family."""
    chosen = choose_versions(playlists)
    old = superseded(chosen)
    return sorted(p.key for k, p in chosen.items() if k not in old)


def unarrived(rec: RecordingFiles, expected_uids: Iterable[str]) -> set[str]:
    """The named users (a notification's fileList) with no playlist in the store yet: while one
    is missing, outputs published without them are not the recording's, however current."""
    return set(expected_uids) - {uid for uid, _ in choose_versions(rec.playlists)}


def assess(rec: RecordingFiles, texts: dict[str, bytes | None], *,
           lost_before_ms: int | None = None, expected_uids: Iterable[str] = ()) -> tuple[bool, list[str]]:
    """(complete, reasons) from the chosen playlists' text (``texts[key]`` None when unreadable).
    ``expected_uids`` (the users a notification names) must each have a playlist.

    With ``lost_before_ms`` (Unix ms), when the recording's last slice started before that
    time, what is still missing is given up: listed slices that never arrived (mixed as
    silence), and playlists that never came or cannot be read (their users rebuilt from the
    slice names, as inspect and mix do; a named user with nothing at all is left out):
    (True, [reasons naming them])."""
    reasons: list[str] = []
    missing: list[str] = []      # listed slices not in the store
    unlisted: list[str] = []     # what a rebuild from slice names, or leaving a user out, gets past
    present = {posixpath.basename(s.key) for s in rec.slices}
    chosen = choose_versions(rec.playlists)
    old = superseded(chosen)
    with_playlist = {uid for uid, _ in chosen}
    orphaned = {parse_name(posixpath.basename(s.key)).uid for s in rec.slices} - with_playlist
    for uid in sorted(orphaned):
        reasons.append(f"uid {uid}: slices but no playlist yet")
        unlisted.append(reasons[-1])
    for uid in sorted(set(expected_uids) - with_playlist - orphaned):
        reasons.append(f"uid {uid}: named by Agora's notification, no playlist in the store yet")
        unlisted.append(reasons[-1])
    spans: dict[tuple[str, int | None], tuple[float, float]] = {}   # open playlists: (last end, longest EXTINF) ms
    for (uid, bak), p in sorted(chosen.items(), key=lambda kv: kv[1].key):
        name = posixpath.basename(p.key)
        text = texts.get(p.key)
        if text is None:
            reasons.append(f"{name}: could not be read")
            unlisted.append(reasons[-1])
            continue
        try:
            pl = parse_playlist(text, name)
        except PlaylistError as exc:
            reasons.append(f"{name}: {exc.message}")
            unlisted.append(reasons[-1])
            continue
        if not pl.endlist and (uid, bak) not in old:
            reasons.append(f"{name}: no #EXT-X-ENDLIST (still recording, or cut off)")
        span = None if pl.endlist else _listed_span(pl)   # (a playlist that ended was not cut by a failover)
        if span is not None:
            spans[(uid, bak)] = span
        track = _track_of(name)
        for e in pl.entries:
            entry = entry_name(e.uri)
            if not _waits_for(entry, track):
                continue   # what inspect and mix skip (and report) can never arrive: not waited for
            if entry not in present:
                missing.append(entry)
                reasons.append(f"{entry}: listed by {name} but not in the store yet")
    for uid, rank, gap_s in awaiting_failover(chosen, spans):
        reasons.append(f"uid {uid}: still being recorded when the server of its {_family(rank)} playlist died (it "
                       f"stops {gap_s:.0f} s before the latest there); no {_family(rank + 1)} playlist in the store yet")
        unlisted.append(reasons[-1])
    if not rec.playlists and not rec.slices:
        reasons.append(f"{rec.sid}: no files")
    if (missing or unlisted) and len(missing) + len(unlisted) == len(reasons) and lost_before_ms is not None \
            and (rec.slices or missing) and _last_listed_ms(rec, missing) < lost_before_ms:
        given = [f"given up as lost: {r}" for r in unlisted]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            given.append(f"{len(missing)} listed slice(s) never arrived, given up as lost (mixed as silence): {shown}")
        return True, given
    return not reasons, reasons


def _track_of(playlist: str) -> tuple[str, str, str, str] | None:
    try:
        return parse_name(playlist).key
    except NameError_:
        return None


def _waits_for(entry: str, track: tuple[str, str, str, str] | None) -> bool:
    """Whether a playlist entry is one the loader takes (:func:`track_slice`): an empty entry
    (a playlist cut off after an EXTINF), a name that is no slice name, or another track's or
    sid's slice is skipped there, so waiting for it would wait for ever."""
    try:
        return track_slice(entry, track) is not None
    except NameError_:
        return False


def _last_listed_ms(rec: RecordingFiles, missing: list[str]) -> float:
    """When the last listed slice started: every listed slice is either in the store (one of
    ``rec.slices``) or ``missing``; ``inf`` when no name gives a time (never old enough)."""
    times = rec._slice_times()
    for name in missing:
        try:
            t = parse_name(name).utc_ms
        except NameError_:
            continue
        if t is not None:
            times.append(t)
    return max(times, default=float("inf"))


def playlist_keys(rec: RecordingFiles) -> list[str]:
    """The playlists whose text ``assess`` needs (only the chosen versions)."""
    return sorted(p.key for p in choose_versions(rec.playlists).values())


def info(rec: RecordingFiles, complete: bool, reasons: list[str]) -> RecordingInfo:
    users = {parse_name(posixpath.basename(o.key)).uid for o in rec.objects}
    return RecordingInfo(rec.sid, rec.cname, rec.folder, rec.first_utc_ms, complete, reasons, len(users),
                         len(rec.objects))
