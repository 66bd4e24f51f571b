"""What a Dask task runs for a job: the one place the service meets the pipeline.

A task carries where the recording is (or the sources to look under), its sid and the
options as plain data; never audio, local paths or secrets (workers take credentials
from their own environment). It returns a plain dict with a ``status``.
"""
from __future__ import annotations

import functools
import logging
import posixpath
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import MediatoolsError

log = logging.getLogger(__name__)


def _settings(storage: dict[str, Any]) -> Any:
    from ..storage.location import Settings
    return Settings(**storage)


def find_location(sid: str, sources: list[str], storage: dict[str, Any]) -> tuple[str, str | None] | None:
    """The folder holding ``<sid>_…`` playlists, listing each source; (url, cname) or None."""
    from ..agora.names import NameError_, parse_name
    from ..storage.client import make_client
    from ..storage.fetch import list_objects
    from ..storage.location import parse_s3_url

    client = make_client(_settings(storage), jobs=4)
    for src in sources:
        loc = parse_s3_url(src)
        # under the source itself, then one level of sub-folders would need a full listing:
        # list everything once and keep the keys whose name starts with the sid
        for o in list_objects(client, loc, loc.folder):
            name = posixpath.basename(o.key)
            if not name.startswith(f"{sid}_") or not name.endswith(".m3u8"):
                continue
            try:
                n = parse_name(name)
            except NameError_:
                continue
            if n.sid == sid:
                return f"s3://{loc.bucket}/{o.key[:len(o.key) - len(name)]}", n.cname
    return None


#: pipeline error codes that mean the store could not be listed or reached, not that the recording is bad
UNREACHABLE_CODES = frozenset({"s3_list", "s3_connection", "azure_connection", "unreachable"})


def run_job(kind: str, sid: str, location: str | None, sources: list[str], options: dict[str, Any],
            storage: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Run one job to a result dict: ``status`` plus what the pipeline reported."""
    found_cname = None
    mixes = agora_audio(list(extra.get("agora_files") or [])) if kind == "verify" else []
    if kind == "verify" and not mixes:
        # nothing to compare (a 1001 "failed", or one that lists no audio file): record that at
        # once, without looking for a recording that may never have reached the bucket
        # (``skipped``, not ``verified``: no verdict exists, and nobody should read one into it)
        return {"status": "skipped", "verify": None, "location": location,
                "note": "Agora listed no audio file to verify"}
    if location is None:
        try:
            found = find_location(sid, sources, storage)
        except MediatoolsError as exc:   # the store is away or refuses the listing: not this job's fault
            return {"status": "unreachable", "error": str(exc)}
        if found is None:
            return {"status": "not_found", "error": f"no playlist of {sid} under any source"}
        location, found_cname = found
    try:
        if kind == "process":
            gate = lease_gate(extra["fence"]) if extra.get("fence") else None
            out = _process(sid, location, options, float(extra.get("wait_s") or 0), gate,
                           expect_uids=named_uids(sid, list(extra.get("agora_files") or [])))
        elif kind == "verify":
            out = _verify_agora(sid, location, storage, mixes)
        else:
            raise MediatoolsError(f"unknown job kind {kind!r}")
    except MediatoolsError as exc:
        out = {"status": "failed", "error": str(exc)}
    out["location"] = location
    if found_cname:
        out.setdefault("cname", found_cname)
    return out


def lease_gate(fence: dict[str, Any]) -> Callable[[], None]:
    """A check the task runs before it publishes: does this run still hold its job's lease
    (``fence``: the ledger's URL, job id, owner and attempt)? A run frozen past its lease while
    another instance took the job over must not publish over that instance's outputs.

    The check fails open: a ledger this worker cannot reach (a SQLite file on another machine,
    PostgreSQL briefly away) lets the run publish, as before, rather than fail every job."""
    def check() -> None:
        held = still_held(fence)
        if held is False:
            raise MediatoolsError("the job's lease passed to another instance while this run mixed: "
                                  "nothing more published", file=str(fence.get("job_id")), code="lease_lost")
        if held == "more_files":
            raise MediatoolsError("a later notification named more of the recording's files while this run "
                                  "mixed: nothing published, the job runs again", file=str(fence.get("job_id")),
                                  code="superseded")
    return check


def still_held(fence: dict[str, Any]) -> bool | str | None:
    """True or False from the ledger's row, None when the ledger cannot be read from here, and
    ``"more_files"`` when the run still holds the job but a later notification named files
    (a user in Agora's backup) the run was not told to wait for (``fence["files"]``)."""
    import sqlalchemy as sa
    try:
        engine = _fence_engine(str(fence["db"]))
        if engine is None:
            return None
        with engine.connect() as c:
            row = c.execute(sa.text("SELECT state, lease_owner, attempts, agora_files FROM jobs WHERE job_id = :j"),
                            {"j": fence["job_id"]}).first()
    except Exception as exc:   # sqlalchemy's errors and a driver's: fail open, say so
        log.warning("lease check for job %s failed (%s): publishing", fence.get("job_id"), type(exc).__name__)
        return None
    if row is None or (row[0], row[1], row[2]) != ("running", fence["owner"], fence["attempts"]):
        return False
    if "files" in fence and row[3] != fence["files"]:
        return "more_files"
    return True


@functools.lru_cache(maxsize=4)
def _fence_engine(db: str) -> Any:
    """An engine on the service's ledger, read-only for SQLite (never creating a file where the
    ledger is not: a worker on another machine); None when this machine has no such file."""
    import sqlalchemy as sa

    from .ledger import ledger_url
    url = ledger_url(db)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return None
        return sa.create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true", poolclass=sa.pool.NullPool)
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def process_options(process: dict[str, Any], storage_flags: dict[str, Any]) -> dict[str, Any]:
    """The options every process task gets, checked once at start-up (a bad one is a usage error
    before the service binds): the bucket options and the transcodeOptions file's values added."""
    from ..pipeline import ProcessOptions
    doc = {**process, **{k: v for k, v in storage_flags.items() if v not in (None, False)}}
    opts = ProcessOptions.from_dict(doc, origin="serve process options").with_transcode_file()
    out = dict(doc)
    out.pop("transcode_options", None)
    if opts.transcode:
        out["transcode"] = opts.transcode
    return out


def named_uids(sid: str, files: list[str]) -> tuple[str, ...]:
    """The audio uids whose playlists a 31/32/11 ``fileList`` names for ``sid``."""
    from ..agora.names import NameError_, parse_name
    out = []
    for f in files:
        try:
            n = parse_name(posixpath.basename(f))
        except NameError_:
            continue
        if n.kind == "playlist" and n.sid == sid and n.track_type == "audio":
            out.append(n.uid)
    return tuple(sorted(set(out)))


def _process(sid: str, location: str, options: dict[str, Any], wait_s: float,
             gate: Callable[[], None] | None = None, expect_uids: tuple[str, ...] = ()) -> dict[str, Any]:
    from ..pipeline import ProcessOptions, process_recording
    opts = dict(options)
    if wait_s:
        opts["wait_s"] = wait_s
    result = process_recording(location, sid, ProcessOptions.from_dict(opts), gate=gate, expect_uids=expect_uids)
    out = result.to_dict()
    out["retryable"] = bool(getattr(result, "retryable", True))
    if isinstance(out.get("error"), dict):      # {"code", "message"}: one line for the ledger
        out["error_code"] = out["error"].get("code")
        out["error"] = out["error"].get("message") or out["error"].get("code")
    if out.get("status") == "failed" and out.get("error_code") == "not_found":
        out["status"] = "not_found"             # not listed yet: look again later, it is no failure
    elif out.get("status") == "failed" and out.get("error_code") in UNREACHABLE_CODES:
        out["status"] = "unreachable"           # the store is away: look again later
    elif out.get("status") == "failed" and out.get("error_code") == "superseded":
        out["status"] = "superseded"            # a later notification named more: run again, no failure
    return out


def agora_audio(files: list[str]) -> list[str]:
    """The files of a 1001 ``fileList`` that verify can check: Agora's audio postpone mix
    (mp3, m4a, aac) or the MP4 its reference says the list holds (verify reads its audio)."""
    return [f for f in files if f.rsplit(".", 1)[-1].lower() in ("m4a", "mp3", "aac", "mp4")]


def beside(files: list[str], folder: str) -> tuple[list[str], list[str]]:
    """(keys in ``folder``, the rest) of a 1001's files, bare names taken as in ``folder``.

    Agora uploads its mix beside the recording; a key anywhere else is not read: a 1001's
    fileList is the sender's word, and the service reads nothing beyond the recording's folder."""
    inside, outside = [], []
    for f in files:
        key = f if "/" in f else folder + f
        (inside if posixpath.dirname(key) == folder.rstrip("/") else outside).append(key)
    return inside, outside


def _verify_agora(sid: str, location: str, storage: dict[str, Any], mixes: list[str]) -> dict[str, Any]:
    """Agora's postpone mix (``mixes``: its audio files, at least one) against the recording:
    fetch both, run verify, keep the verdict."""
    from ..storage.backend import S3Store
    from ..storage.client import make_client
    from ..storage.fetch import FetchOptions, fetch
    from ..storage.location import parse_s3_url
    from ..storage.selection import Selection
    from ..verify import VerifyOptions, verify

    loc = parse_s3_url(location)
    keys, outside = beside(mixes, loc.folder)
    if not keys:
        return {"status": "skipped", "verify": None,
                "note": f"Agora's files lie outside the recording's folder {loc.folder or '(bucket root)'}: "
                        f"{', '.join(outside)[:300]}"}
    settings = _settings(storage)
    client = make_client(settings, jobs=8)
    store = S3Store(loc.bucket, settings, client=client)
    with tempfile.TemporaryDirectory(prefix="mediatools-verify-") as tmp:
        rec = Path(tmp) / "rec"
        rep = fetch(loc, rec, FetchOptions(selection=Selection(sid=sid), settings=settings), client=client)
        if not rep.ok:
            raise MediatoolsError(f"could not fetch the recording ({len(rep.failed)} files failed)")
        verdicts = []
        for key in keys:
            local = Path(tmp) / posixpath.basename(key)
            store.download(key, local)   # Agora's mix not there (404): one line naming the key
            v = verify(local, rec, VerifyOptions(sid=sid))
            verdicts.append({**v.to_dict(), "mix": key})    # the key, not the scratch path
    return {"status": "verified", "verify": verdicts[0] if len(verdicts) == 1 else
            {"passed": all(x["passed"] for x in verdicts), "files": verdicts}}
