"""The sweeper: NCS may never deliver, so the sources are listed every few minutes and
any finished recording that has no job and no manifest is queued; one with audio files
its manifest's run did not use (Agora's backup delivered late) is queued again; and so is
one whose job failed before files came that its last attempt cannot have seen (a recording
given up as incomplete, whose missing slices Agora's backup delivered hours later).

``candidates`` is the pure rule over a listing; :class:`Sweeper` does the listing, reads
the few playlists of each candidate (ENDLIST everywhere = complete) and enqueues.
"""
from __future__ import annotations

import json
import logging
import posixpath
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from ..agora.names import NameError_, parse_name
from ..pipeline.completeness import endlist_keys
from ..storage.location import S3Location
from ..storage.selection import ObjectInfo
from .ledger import Ledger, job_id, now_ms
from .triggers import valid_sid_cname

log = logging.getLogger(__name__)
MANIFEST_SUFFIX = ".mediatools.json"


@dataclass(frozen=True)
class Listed:
    key: str
    modified_ms: int
    size: int = 0
    etag: str = ""


@dataclass(frozen=True)
class Candidate:
    sid: str
    cname: str
    folder: str                 # key folder, "" or ending in "/"
    playlists: tuple[str, ...]  # keys: the ones that must end with #EXT-X-ENDLIST (completeness.endlist_keys)
    again: bool = False         # published, but with files its manifest does not list: process it again
    newest_ms: int = 0          # its newest audio object's LastModified


#: (key, size, ETag) of what a manifest says its run used, given the manifest's key and ETag
InputsOf = Callable[[str, str], "set[tuple[str, int, str]] | None"]


def candidates(objects: Iterable[Listed], known: set[str], now: int, quiet_s: float,
               inputs_of: InputsOf | None = None, failed: set[str] | frozenset[str] = frozenset()
               ) -> list[Candidate]:
    """Recordings whose newest object is older than ``quiet_s``, and that have no job and no
    manifest, or (with ``inputs_of``) audio files their manifest's run did not use (``again``:
    late files; judged by the inputs the manifest lists, not by times, since a file that came
    while that run was mixing is older than its manifest and still missing from it). A sid in
    ``failed`` (its job failed, no manifest) is a candidate ``again`` too: whether files came
    after its last attempt started is the caller's judgement, from the ledger's times."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    manifests: dict[tuple[str, str], Listed] = {}
    for o in objects:
        folder, name = posixpath.split(o.key)
        folder = folder + "/" if folder else ""
        if name.endswith(MANIFEST_SUFFIX):
            manifests[(folder, name.split("_", 1)[0])] = o
            continue
        try:
            n = parse_name(name)
        except NameError_:
            continue
        if n.track_type != "audio" or not valid_sid_cname(n.sid, n.cname):
            continue
        g = groups.setdefault((folder, n.sid), {"cname": n.cname, "newest": 0, "playlists": [], "objects": set()})
        g["newest"] = max(g["newest"], o.modified_ms)
        g["objects"].add((o.key, o.size, o.etag.strip('"')))
        if n.kind == "playlist":
            g["playlists"].append(ObjectInfo(o.key, o.size))
    out = []
    for (folder, sid), g in sorted(groups.items()):
        if not g["playlists"] or now - g["newest"] < quiet_s * 1000:
            continue
        man = manifests.get((folder, sid))
        if man is not None:
            used = inputs_of(man.key, man.etag) if inputs_of is not None else None
            if used is None or g["objects"] <= used:
                continue
            again = True
        elif sid in failed:
            again = True
        elif sid in known:
            continue
        else:
            again = False
        out.append(Candidate(sid, g["cname"], folder, tuple(endlist_keys(g["playlists"])), again, g["newest"]))
    return out


#: a run that started this long after a recording's newest file has seen it (the store's and this
#: machine's clocks may differ a little)
SEEN_SLACK_MS = 60_000


def _modified_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


class Sweeper:
    def __init__(self, ledger: Ledger, sources: list[S3Location], make_client: Callable[[], Any], *,
                 interval_s: float, quiet_s: float, on_enqueue: Callable[[], None] | None = None) -> None:
        self.ledger, self.sources, self._make_client = ledger, sources, make_client
        self.interval_s, self.quiet_s, self.on_enqueue = interval_s, quiet_s, on_enqueue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)
        self.last_sweep_ms: int | None = None
        self._manifests: dict[tuple[str, str], tuple[str, set[tuple[str, int, str]] | None]] = {}

    def _inputs_of(self, client: Any, bucket: str, key: str, etag: str) -> set[tuple[str, int, str]] | None:
        """A manifest's inputs, read once per version (keyed by its ETag): a sweep reads only
        manifests that changed since the last."""
        hit = self._manifests.get((bucket, key))
        if hit is not None and hit[0] == etag:
            return hit[1]
        inputs = _manifest_inputs(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        self._manifests[(bucket, key)] = (etag, inputs)
        return inputs

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # once at start (what arrived while the service was down), then every interval
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception as exc:   # storage away: the next sweep tries again
                log.warning("sweep failed: %s", exc)
            if self._stop.wait(self.interval_s):
                return

    def sweep(self) -> list[str]:
        """One pass over every source; returns the job ids queued."""
        client = self._make_client()
        queued = []
        known = self.ledger.known_sids("process")
        failed = self.ledger.known_sids("process", state="failed")
        for loc in self.sources:
            listed = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=loc.folder):
                for o in page.get("Contents", ()):
                    listed.append(Listed(o["Key"], _modified_ms(o.get("LastModified")), int(o.get("Size", 0)),
                                         str(o.get("ETag", ""))))
            for c in candidates(listed, known, now_ms(), self.quiet_s,
                                lambda key, etag: self._inputs_of(client, loc.bucket, key, etag), failed):
                if c.again:
                    job = self.ledger.get(job_id("process", c.sid))
                    if job is not None and (job.state in ("queued", "running") or
                                            (job.started_ms or 0) >= c.newest_ms + SEEN_SLACK_MS):
                        continue   # under way, or started after those files came (and failed: not again)
                if not all(_has_endlist(client, loc.bucket, k) for k in c.playlists):
                    continue
                jid, new = self.ledger.enqueue("process", c.sid, c.cname, f"s3://{loc.bucket}/{c.folder}",
                                               trigger=_why(c, failed), again=c.again)
                if new:
                    known.add(c.sid)
                    queued.append(jid)
                    log.info("sweeper queued %s (%s)", jid, _why(c, failed) if c.again else "no notification seen")
        self.last_sweep_ms = now_ms()
        if queued and self.on_enqueue:
            self.on_enqueue()
        return queued


def _why(c: Candidate, failed: set[str]) -> str:
    """The job's trigger: ``sweeper``, or why it is queued again."""
    if not c.again:
        return "sweeper"
    if c.sid in failed:
        return "sweeper: files came after its failed attempt"
    return "sweeper: files its manifest does not list"


def _manifest_inputs(body: bytes) -> set[tuple[str, int, str]] | None:
    try:
        doc = json.loads(body)
        return {(str(i["key"]), int(i["size"]), str(i.get("etag", "")).strip('"')) for i in doc["inputs"]}
    except (ValueError, KeyError, TypeError):
        return None   # not a manifest of ours: nothing to compare with


def _has_endlist(client: Any, bucket: str, key: str) -> bool:
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return b"#EXT-X-ENDLIST" in body
