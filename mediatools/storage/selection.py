"""Which objects to fetch: pure functions over a bucket listing and playlist text.

Playlists decide: a user's slices are the names its playlists list (original,
re-uploaded and ``bak<n>`` variants together). Listed-but-absent slices are
*missing*; present-but-unlisted slices are *orphans* (fetched on request). A user
with slices but no playlist at all gets every slice, since merge rebuilds the
playlist from the names. Keys that could escape the destination are *refused*.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..agora.documents import find_all, read_json
from ..agora.names import AgoraName, NameError_, parse_name
from ..agora.playlist import PlaylistError, entry_name, parse_playlist
from ..errors import MediatoolsError
from .location import prefix_folder


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str = ""            # without quotes; "" when the store gave none
    rel: str = ""             # safe relative path below the prefix ("" until checked)
    content_md5: str = ""     # hex MD5 the store keeps beside the object (Azure's Content-MD5), "" if none
    opaque_etag: bool = False  # the store says the ETag is no MD5 (S3 SSE-KMS, SSE-C), whatever it looks like

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def md5(self) -> str | None:
        """The content MD5: the store's Content-MD5 when it keeps one, else the ETag when that is
        one (an S3 single-part upload), else None."""
        if self.content_md5:
            return self.content_md5
        if self.opaque_etag:
            return None
        e = self.etag.lower()
        return e if len(e) == 32 and all(c in "0123456789abcdef" for c in e) else None


def etag_not_md5(response: dict) -> bool:
    """Whether S3 says an object's ETag is not its MD5 although it may look like one: SSE-KMS
    (and DSSE-KMS) and SSE-C objects have an opaque ETag (SSE-S3's is the MD5)."""
    return str(response.get("ServerSideEncryption", "")).startswith("aws:kms") or \
        bool(response.get("SSECustomerAlgorithm"))


@dataclass(frozen=True)
class Selection:
    sid: str | None = None
    cname: str | None = None
    uids: frozenset[str] = frozenset()
    track_types: frozenset[str] = frozenset({"audio"})
    playlist_names: frozenset[str] | None = None   # from --file-list: only these users

    def wants(self, n: AgoraName) -> bool:
        return ((self.sid is None or n.sid == self.sid)
                and (self.cname is None or n.cname == self.cname)
                and (not self.uids or n.uid in self.uids)
                and n.track_type in self.track_types)


@dataclass
class Plan:
    playlists: list[ObjectInfo] = field(default_factory=list)
    slices: list[ObjectInfo] = field(default_factory=list)       # to fetch, including chosen orphans
    missing: list[str] = field(default_factory=list)             # rel paths listed but not in the bucket
    orphans: list[ObjectInfo] = field(default_factory=list)      # in the bucket, listed by no playlist
    unplayable: list[tuple[str, str]] = field(default_factory=list)  # (playlist rel, reason)
    no_playlist: list[str] = field(default_factory=list)        # "sid/uid/type" fetched by name

    @property
    def files(self) -> list[ObjectInfo]:
        return self.playlists + self.slices


def refusal(rel: str) -> str | None:
    """Why a relative key cannot be a local path, or None when it is safe."""
    if not rel:
        return "empty name"
    if "\\" in rel:
        return "backslash in key"
    if "\x00" in rel:
        return "NUL in key"
    if rel.startswith("/"):
        return "absolute path"
    parts = rel.split("/")
    if any(p == "" for p in parts):
        return "empty path segment"
    if any(p in (".", "..") for p in parts):
        return "'.' or '..' segment"
    if len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isalpha():
        return "drive letter"
    return None


def relative_key(key: str, prefix: str) -> str:
    """Key below the prefix's folder: ``a/b/`` + ``x/y.ts`` → ``x/y.ts``; ``a/b/sid`` + ``…`` keeps the name."""
    base = prefix_folder(prefix)
    return key[len(base):] if key.startswith(base) else key


class Targets:
    """Local paths for safe rel keys, with each folder resolved (symlinks followed) and
    checked inside the destination once, not once per file."""

    def __init__(self, dest: Path):
        self.root = Path(dest).resolve()
        self._folders: dict[str, Path] = {}
        self._paths: dict[str, Path] = {}

    def path(self, rel: str) -> Path:
        target = self._paths.get(rel)
        if target is not None:
            return target
        folder, _, name = rel.rpartition("/")
        base = self._folders.get(folder)
        if base is None:
            base = (self.root / folder).resolve() if folder else self.root
            if base != self.root and self.root not in base.parents:
                raise MediatoolsError("key would land outside the destination", file=rel, code="refused_key")
            self._folders[folder] = base
        target = base / name
        if target.is_symlink():
            raise MediatoolsError("key would land on a symbolic link", file=rel, code="refused_key")
        self._paths[rel] = target
        return target

    def folders(self) -> list[Path]:
        """Every folder a checked key lands in."""
        return list(self._folders.values())


def classify(objects: list[ObjectInfo], prefix: str, sel: Selection) -> tuple[
        list[ObjectInfo], list[ObjectInfo], list[tuple[str, str]], dict[str, ObjectInfo]]:
    """Agora files the selection wants → (playlists, slices, refused, odd); other objects are
    ignored. ``odd`` holds media files whose names are not valid Agora names (e.g. an
    impossible UTC), by rel path: fetched only if a playlist lists them."""
    playlists: list[ObjectInfo] = []
    slices: list[ObjectInfo] = []
    refused: list[tuple[str, str]] = []
    odd: dict[str, ObjectInfo] = {}
    for obj in objects:
        try:
            n = parse_name(obj.name)
        except NameError_:
            if obj.name.endswith((".ts", ".webm")):
                rel = relative_key(obj.key, prefix)
                if refusal(rel) is None:
                    odd[rel] = replace(obj, rel=rel)
            continue
        if not sel.wants(n):
            continue
        rel = relative_key(obj.key, prefix)
        why = refusal(rel)
        if why:
            refused.append((obj.key, why))
            continue
        item = replace(obj, rel=rel)
        (playlists if n.kind == "playlist" else slices).append(item)
    if sel.playlist_names is not None:
        users = {parse_name(p.name).key for p in playlists if _base_playlist_name(p.name) in sel.playlist_names}
        playlists = [p for p in playlists if parse_name(p.name).key in users]
        slices = [s for s in slices if parse_name(s.name).key in users]
    return playlists, slices, refused, odd


def _base_playlist_name(name: str) -> str:
    """A file list names the original playlist; bak and re-uploaded variants map to it."""
    n = parse_name(name)
    return replace(n, bak=None, tick=None, index=None).format()


def plan(playlists: list[ObjectInfo], slices: list[ObjectInfo], texts: dict[str, bytes | None], *,
         include_orphans: bool = False, odd: dict[str, ObjectInfo] | None = None) -> Plan:
    """Decide the slices from the playlists' text (``texts[key]`` None when unreadable).

    ``odd`` holds badly named media files; one a playlist lists is fetched, so that
    inspect and merge can report it exactly as they would locally."""
    odd = odd or {}
    p = Plan(playlists=sorted(playlists, key=lambda o: o.rel))
    by_place: dict[tuple[str, tuple], dict[str, ObjectInfo]] = {}
    for s in slices:
        by_place.setdefault((posixpath.dirname(s.rel), parse_name(s.name).key), {})[s.name] = s
    listed: dict[tuple[str, tuple], set[str]] = {}
    has_playlist: set[tuple[str, tuple]] = set()
    for pl in p.playlists:
        place = (posixpath.dirname(pl.rel), parse_name(pl.name).key)
        text = texts.get(pl.key)
        if text is None:
            p.unplayable.append((pl.rel, "could not be read"))
            continue
        try:
            parsed = parse_playlist(text, pl.name)
        except PlaylistError as exc:
            p.unplayable.append((pl.rel, exc.message))
            continue
        has_playlist.add(place)
        names = listed.setdefault(place, set())
        for e in parsed.entries:
            names.add(entry_name(e.uri))
    chosen: list[ObjectInfo] = []
    for place in sorted(set(by_place) | set(listed), key=str):
        present = by_place.get(place, {})
        if place not in has_playlist:
            chosen.extend(present.values())
            sid, _cname, uid, ttype = place[1]
            p.no_playlist.append(f"{posixpath.join(place[0], '')}{sid} uid {uid} {ttype}")
            continue
        names = listed.get(place, set())
        for name in sorted(names):
            rel = posixpath.join(place[0], name)
            if name in present:
                chosen.append(present[name])
            elif rel in odd:
                chosen.append(odd[rel])
            else:
                p.missing.append(rel)
        for name in sorted(set(present) - names):
            p.orphans.append(present[name])
            if include_orphans:
                chosen.append(present[name])
    p.slices = sorted({o.key: o for o in chosen}.values(), key=lambda o: o.rel)
    return p


def playlist_names_from_file_list(path: str | Path) -> frozenset[str]:
    """Agora's stop response or ``uploaded`` callback: the playlists its ``fileList`` names."""
    f = Path(path)
    names: set[str] = set()
    for fl in find_all(read_json(f), "fileList"):
        items = fl if isinstance(fl, list) else [fl]
        for it in items:
            name = it.get("fileName") or it.get("filename") if isinstance(it, dict) else it
            if isinstance(name, str) and name.endswith(".m3u8"):
                try:
                    names.add(_base_playlist_name(posixpath.basename(name)))
                except NameError_:
                    continue
    if not names:
        raise MediatoolsError("no .m3u8 playlist named in fileList", file=str(f), code="bad_file_list")
    return frozenset(names)
