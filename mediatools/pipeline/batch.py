"""The batch: which recordings, then one Dask task per recording, gathered into a report.

Default: a ``LocalCluster`` started and stopped here (worker processes, one thread each,
one per core). ``scheduler="tcp://HOST:PORT"`` uses an existing cluster; ``workers=0``
runs every recording in this process, one after another (debugging, tests, services
that bring their own concurrency). A task carries the source string, the sid and the
options: never audio, a local path or a credential.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from ..errors import UsageError
from ..storage.backend import open_store
from .completeness import RecordingFiles, RecordingInfo, assess, group, info
from .job import STAGE_TOPIC, _texts, process_recording, source_settings
from .options import ProcessOptions, parse_when
from .report import ProcessReport, RecordingResult

log = logging.getLogger(__name__)
Progress = Callable[[dict[str, Any]], None]


def _listing(source: str, o: ProcessOptions) -> tuple[Any, list[RecordingFiles]]:
    source, settings = source_settings(source, o)
    store, prefix = open_store(source, settings)
    return store, group(store.list(prefix))


def _in_window(first_ms: int | None, o: ProcessOptions, now_ms: int) -> bool:
    if first_ms is None:
        return not (o.since or o.until)
    if o.since and first_ms < parse_when(o.since, now_ms):
        return False
    if o.until and first_ms >= parse_when(o.until, now_ms):
        return False
    return True


def find_recordings(source: str, options: ProcessOptions | None = None) -> list[RecordingInfo]:
    """Every recording under ``source`` (narrowed by the options' sids and since/until), each
    marked complete or not with the reasons: what a sweeper polls to decide what to process."""
    o = options or ProcessOptions()
    store, recs = _listing(source, o)
    now = int(time.time() * 1000)
    recs = [r for r in recs if (not o.sids or r.sid in o.sids) and _in_window(r.first_utc_ms, o, now)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(lambda r: _texts(store, r), recs))
    lost_before = o.lost_before_ms(now)
    return [info(r, *assess(r, t, lost_before_ms=lost_before)) for r, t in zip(recs, texts)]


def select_sids(source: str, o: ProcessOptions) -> list[str]:
    """The sids to process: ``--sid`` as given (in order, once each), or every one found with ``--all``;
    ``--since``/``--until`` narrow either by the recording's first slice."""
    if not o.sids and not o.all:
        raise UsageError("give --sid ID (repeatable) or --all")
    if o.sids and not (o.since or o.until):
        return list(dict.fromkeys(o.sids))
    _, recs = _listing(source, o)
    now = int(time.time() * 1000)
    found = [r.sid for r in recs if (o.all or r.sid in o.sids) and _in_window(r.first_utc_ms, o, now)]
    return list(dict.fromkeys(found))


def run_task(source: str, sid: str, options: ProcessOptions) -> RecordingResult:
    """What each Dask task runs: the recording, retried ``options.retries`` times on a retryable failure."""
    attempt = 0
    while True:
        attempt += 1
        res = process_recording(source, sid, options)
        res.attempts = attempt
        if res.status != "failed" or not res.retryable or attempt > options.retries:
            return res
        log.info("%s: retrying after: %s", sid, (res.error or {}).get("message"))


def process(source: str, options: ProcessOptions | None = None, *, progress: Progress | None = None) -> ProcessReport:
    """Process the selected recordings under ``source``; see the module docstring.

    ``progress(event)`` receives dicts: ``{"event": "start", "total": n}``, ``{"event": "stage",
    "sid", "stage", "worker"}`` and ``{"event": "done", "sid", "result", "done", "total"}``."""
    o = (options or ProcessOptions()).validated().with_transcode_file()
    t0 = time.monotonic()
    sids = select_sids(source, o)
    report = ProcessReport(source=source or (o.agora_storage_config or ""), dest=o.dest)
    emit = progress or (lambda e: None)
    emit({"event": "start", "total": len(sids)})
    if not sids:
        report.cluster = "none needed"
    elif o.workers == 0 and not o.scheduler:
        report.cluster = "in process"
        for sid in sids:
            emit({"event": "stage", "sid": sid, "stage": "start", "worker": "local"})
            res = run_task(source, sid, o)
            report.recordings.append(res)
            emit({"event": "done", "sid": sid, "result": res, "done": len(report.recordings), "total": len(sids)})
    else:
        _on_dask(source, sids, o, report, emit)
    order = {s: i for i, s in enumerate(sids)}
    report.recordings.sort(key=lambda r: order.get(r.sid, len(order)))
    report.seconds = time.monotonic() - t0
    return report


def _on_dask(source: str, sids: list[str], o: ProcessOptions, report: ProcessReport, emit: Progress) -> None:
    from dask.distributed import Client, as_completed

    from .cluster import local_cluster

    cluster = None
    if o.scheduler:
        client = Client(o.scheduler, timeout="30s")
        report.cluster = o.scheduler
    else:
        n = o.workers or os.cpu_count() or 1
        cluster = local_cluster(n)
        client = Client(cluster)
        report.cluster = f"local: {n} worker processes"
    futures: dict[Any, str] = {}
    try:
        def on_event(event: Any) -> None:
            msg = event[1] if isinstance(event, tuple) and len(event) == 2 else event
            if isinstance(msg, dict) and msg.get("sid") in order:
                emit({"event": "stage", "sid": msg["sid"], "stage": msg.get("stage"), "worker": msg.get("worker")})

        order = set(sids)
        try:
            client.subscribe_topic(STAGE_TOPIC, on_event)
        except AttributeError:  # pragma: no cover - older distributed: no stage display
            pass
        token = uuid.uuid4().hex[:8]
        for sid in sids:
            fut = client.submit(run_task, source, sid, o, key=f"mediatools-process-{sid}-{token}", pure=False)
            futures[fut] = sid
        for fut in as_completed(list(futures)):
            sid = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # the task could not run (worker lost too often, unpicklable, …)
                res = RecordingResult(sid=sid, source=source, status="failed",
                                      error={"code": "task_failed", "message": f"{type(exc).__name__}: {exc}"})
            report.recordings.append(res)
            emit({"event": "done", "sid": sid, "result": res, "done": len(report.recordings), "total": len(sids)})
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise
    finally:
        try:
            client.unsubscribe_topic(STAGE_TOPIC)
        except Exception:
            pass
        client.close()
        if cluster is not None:
            cluster.close()
