"""``fetch``: list once, read the playlists, choose the slices, fetch them in parallel.

Vendor-neutral: the listing and the GETs go through a transport (``transport.py``).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..agora.names import parse_name
from ..atomic import sweep_parts
from ..errors import MediatoolsError, UsageError
from ..progress import Progress
from ..workers import run_all
from .location import AzureLocation, S3Location, Settings, parse_location
from .selection import ObjectInfo, Selection, Targets, classify, plan
from .transfer import Cancelled, TransferError
from .transport import Transport, open_transport

log = logging.getLogger(__name__)

SCHEMA = "mediatools.fetch/1"


@dataclass
class FetchOptions:
    """What to fetch (``selection``), how to reach the bucket (``settings``) and how hard to try."""
    selection: Selection = field(default_factory=Selection)
    settings: Settings = field(default_factory=Settings)
    jobs: int = 32                 # requests in flight (and connections in the pool)
    retries: int = 5               # attempts per request
    include_orphans: bool = False  # also fetch slices no playlist lists
    dry_run: bool = False          # list what would be fetched, fetch nothing
    checksum: bool = True          # check MD5 against single-part ETags
    strict: bool = False           # fail before fetching on any missing slice, refused key, bad playlist


@dataclass
class FetchReport:
    source: str
    dest: str
    dry_run: bool = False
    listed: int = 0
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)        # already complete locally
    would_fetch: list[str] = field(default_factory=list)    # --dry-run
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    orphans_fetched: bool = False
    refused: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    unplayable: list[dict[str, str]] = field(default_factory=list)
    no_playlist: list[str] = field(default_factory=list)
    absent_uids: list[str] = field(default_factory=list)    # --uid values with no file in the listing
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = SCHEMA
        d["ok"] = self.ok
        d["counts"] = {k: len(d[k]) for k in ("fetched", "skipped", "would_fetch", "missing", "orphans",
                                              "refused", "failed")}
        return d


def list_objects(client: Any, loc: S3Location, prefix: str | None = None) -> list[ObjectInfo]:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    out: list[ObjectInfo] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix or loc.prefix)
        for page in pages:
            for o in page.get("Contents", ()):
                out.append(ObjectInfo(o["Key"], int(o.get("Size", 0)), str(o.get("ETag", "")).strip('"')))
    except NoCredentialsError:
        raise MediatoolsError("no credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile, "
                              "--agora-storage-config, or --no-sign-request for a public bucket)",
                              file=loc.url, code="no_credentials") from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise MediatoolsError(f"cannot list: {err.get('Code', 'error')} ({err.get('Message', '')})".replace(" ()", ""),
                              file=loc.url, code="s3_list") from None
    except BotoCoreError as exc:
        raise MediatoolsError(f"cannot list: {exc}", file=loc.url, code="s3_list") from None
    return out


def list_for(transport: Transport, loc: S3Location | AzureLocation, sel: Selection,
             pool: ThreadPoolExecutor) -> list[ObjectInfo]:
    """The listing the selection needs.

    Agora writes a recording's files straight under the prefix, named ``<sid>_…`` or
    ``bak<n>_<sid>_…``. With a sid, two narrow listings (run together) replace one
    over every recording in the bucket; if they find no playlist (the files sit in
    deeper folders), the full listing is used.
    """
    if sel.sid and loc.prefix == loc.folder:
        parts = list(pool.map(transport.list, (f"{loc.prefix}{sel.sid}_", f"{loc.prefix}bak")))
        objects = parts[0] + parts[1]
        if any(o.key.endswith(".m3u8") and sel.sid in o.name for o in objects):
            return objects
    return transport.list(loc.prefix)


def _describe(sel: Selection) -> str:
    bits = [f"{k} {v}" for k, v in (("sid", sel.sid), ("cname", sel.cname)) if v]
    if sel.uids:
        bits.append("uid " + ",".join(sorted(sel.uids)))
    bits.append("type " + "+".join(sorted(sel.track_types)))
    return ", ".join(bits)


def _absent_uids(objects: list[ObjectInfo], prefix: str, sel: Selection, found: list[ObjectInfo], *,
                 strict: bool) -> list[str]:
    """The ``--uid`` values with no file in the listing. None found is a usage error naming the
    uids there are (as inspect's --uid); some absent are reported (an error with ``strict``)."""
    if not sel.uids:
        return []
    absent = sorted(sel.uids - {parse_name(o.name).uid for o in found})
    if absent and len(absent) == len(sel.uids):
        pl, sl, _, _ = classify(objects, prefix, replace(sel, uids=frozenset()))
        there = sorted({parse_name(o.name).uid for o in pl + sl})
        if there:
            shown = ", ".join(there[:20]) + (f" and {len(there) - 20} more" if len(there) > 20 else "")
            raise UsageError(f"no files for uid {', '.join(absent)}; the recording has uid {shown}",
                             code="unknown_uid")
    elif absent and strict:
        raise MediatoolsError(f"no files for uid {', '.join(absent)} (--strict; nothing fetched)", code="strict")
    return absent


def fetch(source: S3Location | AzureLocation | str, dest: str | Path, options: FetchOptions | None = None, *,
          progress: Progress | None = None, client: Any = None) -> FetchReport:
    """Fetch the selected recording(s) below ``source`` (``s3://bucket/prefix``,
    ``azure://account/container/prefix``, or their locations) into ``dest``.

    Playlists are read first and decide which slices are needed; every file is written under
    a temporary name, checked (length, and MD5 where the store gives one: an S3 single-part
    ETag, Azure's Content-MD5) and renamed, and a rerun skips complete files.
    ``progress(done, total, note)`` counts bytes. ``client``: a boto3 S3 client or an Azure
    ContainerClient to reuse (made from ``options.settings`` otherwise).
    """
    t0 = time.monotonic()
    opts = options or FetchOptions()
    loc = parse_location(source) if isinstance(source, str) else source
    sel, jobs, retries = opts.selection, opts.jobs, opts.retries
    include_orphans, dry_run, checksum, strict = opts.include_orphans, opts.dry_run, opts.checksum, opts.strict
    dest = Path(dest)
    targets = Targets(dest)
    stop = threading.Event()
    transport = open_transport(loc, opts.settings, jobs=jobs, retries=retries, checksum=checksum, stop=stop,
                               client=client)
    dl = transport.downloader
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="fetch")
    try:
        objects = list_for(transport, loc, sel, pool)
        report = FetchReport(source=loc.url, dest=str(dest), dry_run=dry_run, listed=len(objects))
        log.info("%s: %d objects listed (%s)", loc.url, len(objects), _describe(sel))
        playlists, slices, refused, odd = classify(objects, loc.prefix, sel)
        # keys whose folder in DEST resolves outside it (a symlink there) are refused too
        playlists, slices = (_landable(targets, xs, refused) for xs in (playlists, slices))
        odd = {o.rel: o for o in _landable(targets, list(odd.values()), refused)}
        report.refused = [{"key": k, "reason": r} for k, r in refused]
        report.absent_uids = _absent_uids(objects, loc.prefix, sel, playlists + slices, strict=strict)
        if not playlists and not slices:
            raise MediatoolsError(f"no Agora recording files ({_describe(sel)}) among {len(objects)} objects",
                                  file=loc.url, code="not_found")

        # 1. playlists, into memory: they decide which slices are needed
        texts: dict[str, bytes | None] = {}
        local_pl: set[str] = set()

        def read_playlist(o: ObjectInfo) -> None:
            target = targets.path(o.rel)
            if dl.is_complete(o, target):
                texts[o.key] = target.read_bytes()
                local_pl.add(o.key)
                return
            try:
                texts[o.key] = dl.read(o)
            except TransferError as exc:
                texts[o.key] = None
                report.failed.append({"file": o.rel, "error": exc.message})

        run_all(pool, _guarded(read_playlist), playlists, stop=stop)
        p = plan(playlists, slices, texts, include_orphans=include_orphans, odd=odd)
        report.missing = p.missing
        report.orphans = [o.rel for o in p.orphans]
        report.orphans_fetched = include_orphans
        report.unplayable = [{"file": f, "reason": r} for f, r in p.unplayable]
        report.no_playlist = p.no_playlist
        if strict and (p.missing or refused or p.unplayable):
            first = (p.missing and f"{p.missing[0]}: listed by its playlist but not in the bucket") or (
                refused and f"{refused[0][0]}: refused key ({refused[0][1]})") or (
                f"{p.unplayable[0][0]}: unusable playlist ({p.unplayable[0][1]})")
            raise MediatoolsError(f"{first} (--strict; nothing fetched)", code="strict")

        # 2. what is already here
        files = [o for o in p.files if texts.get(o.key, b"") is not None]
        if dry_run:
            def check(o: ObjectInfo) -> None:
                done = o.key in local_pl or dl.is_complete(o, targets.path(o.rel))
                (report.skipped if done else report.would_fetch).append(o.rel)
            run_all(pool, _guarded(check), files, stop=stop)
            report.skipped.sort()
            report.would_fetch.sort()
            wanted = set(report.would_fetch)
            report.bytes = sum(o.size for o in files if o.rel in wanted)
            return report

        lock = threading.Lock()
        count = {"files": 0, "bytes": 0}
        total_bytes, total_files = sum(o.size for o in files), len(files)
        if progress:
            progress(0, total_bytes, f"0/{total_files} files")

        def get(o: ObjectInfo) -> None:
            target = targets.path(o.rel)
            try:
                if o.key in local_pl or (o.key not in texts and dl.is_complete(o, target)):
                    with lock:
                        report.skipped.append(o.rel)
                elif o.key in texts:   # a playlist, read and verified in step 1
                    data = texts[o.key] or b""
                    dl.write(data, target, o)
                    with lock:
                        report.fetched.append(o.rel)
                        report.bytes += len(data)
                else:
                    n = dl.download(o, target)
                    with lock:
                        report.fetched.append(o.rel)
                        report.bytes += n
            except TransferError as exc:
                with lock:
                    report.failed.append({"file": o.rel, "error": exc.message})
            if progress:
                with lock:
                    count["files"] += 1
                    count["bytes"] += o.size
                    done_files, done_bytes = count["files"], count["bytes"]
                progress(done_bytes, total_bytes, f"{done_files}/{total_files} files")

        run_all(pool, _guarded(get), files, stop=stop)
        for folder in targets.folders():
            sweep_parts(folder)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        dl.save_records()
        transport.close()
    report.fetched.sort()
    report.skipped.sort()
    report.failed.sort(key=lambda d: d["file"])
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def _landable(targets: Targets, objs: list[ObjectInfo], refused: list[tuple[str, str]]) -> list[ObjectInfo]:
    ok = []
    for o in objs:
        try:
            targets.path(o.rel)
            ok.append(o)
        except MediatoolsError as exc:
            refused.append((o.key, exc.message))
    return ok


def _guarded(fn: Callable[[ObjectInfo], None]) -> Callable[[ObjectInfo], None]:
    """A worker that gives up quietly once the run is cancelled (the cause is raised elsewhere)."""
    def guarded(o: ObjectInfo) -> None:
        try:
            fn(o)
        except Cancelled:
            pass
    return guarded
