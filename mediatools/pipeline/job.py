"""One recording, start to finish, in the current process: what a Dask task runs.

list → (skip if the manifest is current) → wait until complete → fetch into a private
scratch folder → mix → verify → stems → publish (manifest last) → remove the scratch.
Safe to call twice, or again after being killed: outputs have fixed names, a pending
claim marks them as ours, and the manifest is written only after all of them.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from ..allocator import adaptive_malloc
from ..errors import MediatoolsError, UsageError
from ..storage.backend import LocalStore, Store, open_store
from ..storage.location import Settings
from ..storage.publish import (
    MANIFEST_SCHEMA,
    PENDING_SCHEMA,
    ForeignObject,
    Output,
    check_foreign,
    ours,
    outputs_changed,
    publish,
    read_doc,
)
from . import manifest as mf
from . import naming, stages
from .completeness import RecordingFiles, assess, group, playlist_keys, unarrived
from .options import ProcessOptions, check_sid
from .report import RecordingResult

log = logging.getLogger(__name__)
SCRATCH_PREFIX = "mediatools-process-"
STAGE_TOPIC = "mediatools-process-stage"
#: failures a retry cannot fix
FINAL_CODES = {"foreign_object", "verify_failed", "not_found", "usage", "refused_key", "bad_json",
               "not_a_recording", "no_profile", "bad_storage_config", "store_write", "lease_lost", "superseded",
               "ambiguous_sid"}


def source_settings(source: str, options: ProcessOptions) -> tuple[str, Settings]:
    """(source URL or folder, Settings): from the bucket options, or Agora's storageConfig file."""
    from ..storage.location import load_agora_storage_config, settings_from_options, with_overrides
    if options.agora_storage_config:
        loc, settings = load_agora_storage_config(options.agora_storage_config, endpoint_url=options.endpoint_url,
                                                  region=options.region)
        settings = with_overrides(settings, profile=options.profile, unsigned=options.no_sign_request or None)
        return (source or loc.url), settings
    if not source:
        raise UsageError("give SOURCE (a folder, s3://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX) or "
                         "--agora-storage-config FILE")
    return source, settings_from_options(endpoint_url=options.endpoint_url, region=options.region,
                                         profile=options.profile, vendor=options.vendor,
                                         region_code=options.region_code, unsigned=options.no_sign_request)


def worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _stage_reporter(sid: str, result: RecordingResult) -> Callable[[str], None]:
    """Stage changes go to the log and, on a Dask worker, to the client's progress display."""
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        worker = None

    def stage(name: str) -> None:
        log.info("%s: %s", sid, name)
        if worker is not None:
            try:
                worker.log_event(STAGE_TOPIC, {"sid": sid, "stage": name, "worker": result.worker})
            except Exception:  # progress is best effort; never fail the recording for it
                pass
    return stage


def list_recording(store: Store, prefix: str, sid: str) -> list[RecordingFiles]:
    """The recording's objects. Agora names them ``<sid>_…`` or ``bak<n>_<sid>_…`` straight under the
    prefix; two narrow listings replace one over the whole bucket (sub-folders: full listing)."""
    objects = store.list(f"{prefix}{sid}_") + store.list(f"{prefix}bak")
    recs = group(objects, sid=sid)
    if not any(r.playlists for r in recs):
        recs = group(store.list(prefix), sid=sid)
    return recs


def _texts(store: Store, rec: RecordingFiles) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for key in playlist_keys(rec):
        try:
            out[key] = store.get(key)
        except MediatoolsError:
            out[key] = None
    return out


def sweep_scratch(root: Path) -> None:
    """Remove scratch folders of processes that no longer exist (a worker killed mid-recording)."""
    for d in root.glob(f"{SCRATCH_PREFIX}*"):
        try:
            pid = int(d.name[len(SCRATCH_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def process_recording(source: str, sid: str, options: ProcessOptions, *,
                      gate: Callable[[], None] | None = None, expect_uids: Iterable[str] = ()) -> RecordingResult:
    """Process recording ``sid`` found under ``source``; never raises for a per-recording failure.
    ``gate``: called before publishing writes anything, and before the manifest; it raises
    :class:`MediatoolsError` to stop (see :func:`mediatools.storage.publish.publish`).
    ``expect_uids``: users that must have a playlist in the store before the recording counts
    as complete (the ones Agora's notification names)."""
    t0 = time.monotonic()
    adaptive_malloc()   # a Dask worker inherits a fixed malloc threshold: +30 % on the mix
    result = RecordingResult(sid=sid, source=source, worker=worker_name())
    stage = _stage_reporter(sid, result)
    try:
        check_sid(sid)
        _run(source, sid, options.with_transcode_file(), result, stage, gate, tuple(expect_uids))
    except KeyboardInterrupt:
        raise
    except MediatoolsError as exc:
        code = "usage" if isinstance(exc, UsageError) else exc.code
        result.status, result.error = "failed", {"code": code, "message": str(exc)}
        result.retryable = code not in FINAL_CODES
        log.info("%s: failed: %s", sid, exc)
    except Exception as exc:  # an unexpected error fails this recording only; the batch goes on
        log.info("%s: internal error", sid, exc_info=True)
        result.status = "failed"
        result.error = {"code": "internal", "message": f"{sid}: internal error: {type(exc).__name__}: {exc}"}
        result.retryable = True
    result.seconds["total"] = round(time.monotonic() - t0, 3)
    stage(result.status)
    return result


def _timed(result: RecordingResult, name: str, t: float) -> float:
    now = time.monotonic()
    result.seconds[name] = round(result.seconds.get(name, 0.0) + now - t, 3)
    return now


def _skipped(result: RecordingResult, old: dict[str, Any], reasons: list[str], t: float) -> None:
    """The published outputs stand: report them as they are."""
    result.status, result.reasons = "skipped", reasons
    result.outputs = list(old.get("outputs", []))
    result.verify = old.get("verify")
    _timed(result, "check", t)


def _run(source: str, sid: str, o: ProcessOptions, result: RecordingResult, stage: Callable[[str], None],
         gate: Callable[[], None] | None = None, expect_uids: tuple[str, ...] = ()) -> None:
    source, settings = source_settings(source, o)
    result.source = source
    store, prefix = open_store(source, settings, retries=o.request_attempts)
    deadline = time.monotonic() + o.wait_s
    t = time.monotonic()
    stage("listing")
    while True:
        recs = list_recording(store, prefix, sid)
        if not recs:
            raise MediatoolsError(f"no recording with sid {sid}", file=source, code="not_found")
        if len(recs) > 1:
            where = ", ".join(f"{r.folder or './'}{r.sid}_{r.cname}" for r in recs)
            raise MediatoolsError(f"sid {sid} names {len(recs)} recordings ({where}); give the folder of one",
                                  file=source, code="ambiguous_sid")
        rec = recs[0]
        result.cname, result.first_utc_ms = rec.cname, rec.first_utc_ms
        dest_store, dest_prefix = (open_store(o.dest, settings, retries=o.request_attempts) if o.dest
                                   else (store, rec.folder))
        result.dest = str(Path(dest_store.url) / dest_prefix) if isinstance(dest_store, LocalStore) else \
            dest_store.url + dest_prefix
        mkey = naming.manifest_key(dest_prefix, rec.sid, rec.cname)
        result.manifest = mkey
        try:
            old = read_doc(dest_store, mkey, MANIFEST_SCHEMA)
        except ForeignObject:
            if not o.force:
                raise
            old = None
        current, why = mf.is_current(old, rec, o.options_digest())
        changed = outputs_changed(dest_store, old) if current else None
        if changed:   # deleted, or overwritten by another writer: publish again (never over theirs)
            current = False
            why = "published output(s) " + ", ".join(f"{k.rsplit('/', 1)[-1]} {v}" for k, v in sorted(changed.items()))
        if current and o.force:
            why = "--force: processed again although the published outputs match the inputs and options"
        # a user Agora named (still in its backup) keeps a current manifest from counting until
        # they come, or are given up as lost
        skip = current and not o.force
        if skip and not unarrived(rec, expect_uids):
            _skipped(result, old, [why], t)
            return
        complete, reasons = assess(rec, _texts(store, rec), lost_before_ms=o.lost_before_ms(),
                                   expected_uids=expect_uids)
        if complete and skip:
            _skipped(result, old, [why, *reasons], t)
            return
        if complete:
            break
        if time.monotonic() + o.poll_s > deadline:
            result.status, result.reasons = "incomplete", reasons
            _timed(result, "check", t)
            return
        stage(f"waiting ({reasons[0]})")
        time.sleep(o.poll_s)
    if old is not None:
        result.reasons = [why]
    result.reasons += reasons     # slices given up as lost (--lost-after), if any
    ext = o.mix_settings()["format"]
    mix_key = naming.mix_key(dest_prefix, rec.sid, rec.cname, ext, o.name_template)
    if not o.force:   # before any work: an output name taken by someone else's object fails at once
        pending = read_doc(dest_store, naming.pending_key(dest_prefix, rec.sid, rec.cname), PENDING_SCHEMA)
        check_foreign(dest_store, [mix_key], ours(dest_store, old, pending, changed), mkey)
    t = _timed(result, "check", t)

    scratch_root = Path(o.scratch_dir or tempfile.gettempdir())
    scratch_root.mkdir(parents=True, exist_ok=True)
    sweep_scratch(scratch_root)
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch_root))
    try:
        if not isinstance(store, LocalStore):   # a bucket or container: fetch what this recording needs
            stage("fetch")
            rep = stages.run_fetch(store.location(rec.folder), scratch / "in", settings=settings, sid=sid,
                                   jobs=o.jobs, retries=o.request_attempts)
            if rep.get("failed"):
                f = rep["failed"][0]
                raise MediatoolsError(f"{f['error']} ({len(rep['failed'])} file(s) could not be fetched)",
                                      file=f["file"], code="fetch_failed")
            folder = scratch / "in"
            t = _timed(result, "fetch", t)
        else:
            folder = store.path(rec.folder.rstrip("/")) if rec.folder.strip("/") else store.root
        recording = stages.load(folder, sid)
        ms = o.mix_settings()
        stage("mix")
        mix_path = scratch / f"mix.{ext}"
        # verify's expected picture is collected while the mix decodes: every run decoded once
        # (its spool of band energies, ~35 MB per user-hour, lives in the scratch folder)
        reference = stages.new_reference(scratch) if o.verify else None
        # and speech activity is judged on the same decoding (the tap keeps only spans)
        speech = stages.new_speech_tap() if o.activity or o.report else None
        try:
            mix_rep = stages.run_mix(recording, mix_path, ms, reference=reference, speech=speech)
            result.problems = list(mix_rep.get("problems", []))
            t = _timed(result, "mix", t)
            if o.verify:
                stage("verify")
                expected = {"format": ext, "sample_rate": ms["sample_rate"], "channels": ms["channels"],
                            "bitrate": o.transcode.get("bitrate")}
                result.verify = mf.verify_summary(stages.run_verify(mix_path, recording, expected, reference=reference))
                t = _timed(result, "verify", t)
                if not result.verify["passed"]:
                    failed = ", ".join(f"{n}: {result.verify['checks'][n]}" for n in result.verify["failed"])
                    raise MediatoolsError(f"the mix failed verification ({failed}); nothing published",
                                          file=rec.sid, code="verify_failed")
        finally:
            if reference is not None:
                reference.close()
        outputs = [Output(mix_path, mix_key, "mix")]
        if o.stems:
            stage("stems")
            merged = stages.run_merge(recording, scratch / "stems", ext)
            for uid, fname in sorted(merged.get("files", {}).items()):
                if fname:
                    p = Path(fname)
                    p = p if p.is_absolute() else scratch / "stems" / p.name
                    outputs.append(Output(p, naming.stem_key(dest_prefix, rec.sid, rec.cname, p.name), "stem", uid))
            t = _timed(result, "stems", t)
        if o.activity or o.report:
            stage("activity")
            act_dir = scratch / "activity"
            rep_path = scratch / "report.html"
            stages.run_activity(recording, act_dir if o.activity else None, rep_path if o.report else None,
                                quote(mix_key.rsplit("/", 1)[-1]), speech=speech)
            if o.activity:
                for p in sorted(x for x in act_dir.rglob("*") if x.is_file()):
                    rel = p.relative_to(act_dir).as_posix()
                    outputs.append(Output(p, naming.activity_key(dest_prefix, rec.sid, rec.cname, rel), "activity"))
            if o.report:
                outputs.append(Output(rep_path, naming.report_key(dest_prefix, rec.sid, rec.cname), "report"))
            t = _timed(result, "activity", t)
        stage("publish")
        seconds = dict(result.seconds)

        def build(infos: list[dict[str, Any]]) -> dict:
            return mf.build(rec=rec, source=source, dest=result.dest, options=o.output_options(),
                            options_digest=o.options_digest(), outputs=infos, verify=result.verify,
                            problems=result.problems, versions=stages.versions(), seconds=seconds,
                            worker=result.worker)
        result.outputs = publish(dest_store, outputs, mkey, naming.pending_key(dest_prefix, rec.sid, rec.cname),
                                 build, old_manifest=old, force=o.force, stage=stage, gate=gate)
        _timed(result, "publish", t)
        result.status = "processed"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
