"""The dispatcher: claims due jobs from the ledger, runs them on Dask, records the outcome.

One thread per service instance. Leases are renewed while a task runs, so a crashed
instance's jobs are claimed again (by any instance) once their lease runs out; a task
may so run twice, which process's idempotent outputs make harmless. On shutdown it takes
no new job, gives running ones ``shutdown_grace_s`` to end and releases the rest.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from dataclasses import asdict
from typing import Any, Callable

from .config import DEFAULT_TASK, ServeConfig, storage_flags
from .jobs import judge
from .ledger import Job, Ledger, now_ms
from .notify import build_body

log = logging.getLogger(__name__)


def load_task(spec: str) -> Callable[..., dict[str, Any]]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class Dispatcher:
    def __init__(self, ledger: Ledger, cfg: ServeConfig, client: Any, *, metrics: Any = None,
                 on_outgoing: Callable[[], None] | None = None) -> None:
        self.ledger, self.cfg, self.client, self.metrics = ledger, cfg, client, metrics
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self.on_outgoing = on_outgoing
        self._task = load_task(cfg.task)
        self._running: dict[str, tuple[Job, Any, float]] = {}   # job_id -> (job, future, t0)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._last_renew = 0.0
        st = cfg.storage()
        self._storage = {k: v for k, v in asdict(st).items()
                         if k not in ("access_key", "secret_key", "session_token")}
        self._options = dict(cfg.process)
        if cfg.task == DEFAULT_TASK:
            from .tasks import process_options
            self._options = process_options(cfg.process, storage_flags(cfg))

    def capacity(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:   # scheduler briefly away: keep what runs
            return max(1, len(self._running))

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def running(self) -> list[str]:
        return list(self._running)

    def stop(self) -> None:
        """Stop taking jobs; let running ones finish within the grace time, release the rest."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.cfg.shutdown_grace_s + 10)
        for jid, (_job, fut, _t0) in list(self._running.items()):
            try:
                fut.cancel()
            except Exception:
                pass
        n = self.ledger.release(self.owner)
        if n:
            log.info("released %d running job(s) to the queue", n)

    # --- loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        deadline = None
        while True:
            stopping = self._stop.is_set()
            if stopping and deadline is None:
                deadline = time.monotonic() + self.cfg.shutdown_grace_s
            try:
                self._collect()
                self._renew()
                if not stopping:
                    self._claim()
            except Exception:   # ledger or scheduler briefly away: the next round tries again
                log.exception("dispatcher round failed")
            if stopping and (not self._running or time.monotonic() > deadline):
                return
            self._wake.wait(self.cfg.poll_s)
            self._wake.clear()

    def _claim(self) -> None:
        free = self.capacity() - len(self._running)
        if free <= 0:
            return
        lease_ms = int(self.cfg.lease_s * 1000)
        for job in self.ledger.claim(self.owner, lease_ms, free):
            extra = {"wait_s": self.cfg.backup_wait_s if job.wait else 0,
                     "agora_files": job.to_dict()["agora_files"],
                     # checked by the task before it publishes (tasks.lease_gate)
                     "fence": {"db": self.cfg.db, "job_id": job.job_id, "owner": self.owner,
                               "attempts": job.attempts, "files": job.agora_files}}
            fut = self.client.submit(self._task, job.kind, job.sid, job.location, list(self.cfg.sources),
                                     self._options, self._storage, extra, pure=False,
                                     key=f"{job.kind}-{job.sid}-{job.attempts}-{uuid.uuid4().hex[:6]}")
            self._running[job.job_id] = (job, fut, time.monotonic())
            log.info("job %s started (attempt %d)", job.job_id, job.attempts)

    def _renew(self) -> None:
        if time.monotonic() - self._last_renew < self.cfg.lease_s / 3:
            return
        self._last_renew = time.monotonic()
        kept = self.ledger.renew(self.owner, self._running, int(self.cfg.lease_s * 1000))
        for jid in set(self._running) - kept:
            # the lease ran out (this process stalled) and another instance may hold the job now;
            # the task's own lease check stops it before it publishes
            job, fut, _t0 = self._running.pop(jid)
            log.warning("job %s: lease lost while running (attempt %d): left to its new holder", jid, job.attempts)
            try:
                fut.cancel()
            except Exception:
                pass

    def _collect(self) -> None:
        for jid, (job, fut, t0) in list(self._running.items()):
            if not fut.done():
                continue
            del self._running[jid]
            result, error = None, None
            try:
                result = fut.result()
            except Exception as exc:   # the task raised, or its worker died (KilledWorker)
                error = f"{type(exc).__name__}: {exc}"[:500]
            self._record(job, result, error, time.monotonic() - t0)

    def _record(self, job: Job, result: dict[str, Any] | None, error: str | None, seconds: float) -> None:
        cfg = self.cfg
        # where the run found the recording; a finished run's also where a notification cleared
        # the folder meanwhile (the /outputs links need it), but not a run that found nothing
        if result and result.get("location") and (result["location"] != job.location or
                                                  result.get("status") in ("processed", "skipped", "verified")):
            self.ledger.set_location(job.job_id, self.owner, result["location"], result.get("cname"))
        out = judge(result, error, attempts=job.attempts, age_s=(now_ms() - job.created_ms) / 1000,
                    max_attempts=cfg.max_attempts, base_s=cfg.backoff_base_s, max_s=cfg.backoff_max_s,
                    later_s=cfg.incomplete_retry_s, deadline_s=cfg.incomplete_deadline_s)
        if self.metrics is not None:
            self.metrics.job_finished(job.kind, out.action, seconds)
        log.info("job %s: %s%s", job.job_id, out.action, f" ({out.error})" if out.error else "")
        if out.action in ("retry", "later"):
            self.ledger.retry_later(job.job_id, self.owner, int(out.delay_s * 1000), out.error or "",
                                    result=result, refund=out.action == "later")
            return
        state = "done" if out.action == "done" else "failed"
        notify = bool(cfg.notify_url and job.kind == "process")
        if not self.ledger.finish(job.job_id, self.owner, state, result=result, error=out.error,
                                  outgoing=(lambda final: build_body(final, result)) if notify else None,
                                  ran_with=job.agora_files):
            log.warning("job %s: lease lost before the result was recorded", job.job_id)
            return
        if notify and self.on_outgoing:
            self.on_outgoing()
