"""One service instance: the ledger, the Dask client, and the threads that use them
(dispatcher, sweeper, notifier), started and stopped together with the web app."""
from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from typing import Any

from .config import ServeConfig
from .ledger import Ledger, open_ledger
from .metrics import Metrics
from .notify import Notifier
from .page import output_keys
from .sweeper import Sweeper
from .worker import Dispatcher

log = logging.getLogger(__name__)


class Service:
    def __init__(self, cfg: ServeConfig, *, ledger: Ledger | None = None) -> None:
        self.cfg = cfg
        self.ledger = ledger or open_ledger(cfg.db)
        self.metrics = Metrics(self.ledger.counts)
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self._cluster: Any = None
        self.client: Any = None
        self.dispatcher: Dispatcher | None = None
        self.sweeper: Sweeper | None = None
        self.notifier: Notifier | None = None
        self._ready: tuple[float, list[str]] | None = None
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Service(instance={self.instance!r}, ledger={self.ledger.describe()!r})"

    # --- parts -------------------------------------------------------------------------------
    def s3(self) -> Any:
        from ..storage.client import make_client
        return make_client(self.cfg.storage(), jobs=4, retries=2, connect_timeout=3, read_timeout=10)

    def connect_cluster(self) -> None:
        """The Dask client: an existing scheduler, or a LocalCluster of worker processes."""
        from distributed import Client

        from ..pipeline.cluster import local_cluster
        if self.cfg.scheduler:
            self.client = Client(self.cfg.scheduler, timeout="30s")
        else:
            n = self.cfg.workers or os.cpu_count() or 1
            self._cluster = local_cluster(n, silence_logs=logging.WARNING)
            self.client = Client(self._cluster)
            if self.cfg.worker_nice:   # a plugin: a worker the nanny restarts is lowered too
                from .priority import LowerPriority
                self.client.register_plugin(LowerPriority(self.cfg.worker_nice), name="mediatools-nice")
        log.info("Dask: %d worker thread(s)", sum(self.client.nthreads().values()))

    #: what a store answers for a source that cannot work until someone changes the settings
    MISCONFIGURED = {"NoSuchBucket": "no such bucket", "AccessDenied": "access denied",
                     "InvalidAccessKeyId": "the access key is not known to the store",
                     "SignatureDoesNotMatch": "the secret key does not match the access key",
                     "AllAccessDisabled": "access to the bucket is disabled",
                     "InvalidBucketName": "not a valid bucket name"}

    def check_sources(self) -> None:
        """Before any job: a source whose bucket is missing or refuses these credentials stops
        the start with one line (every sweep and job would fail with it, quietly); a store that
        cannot be reached now is only a warning (it may be back by the first job; /readyz says)."""
        from botocore.exceptions import ClientError

        from ..errors import MediatoolsError
        client = self.s3()
        for loc in self.cfg.locations():
            url = f"s3://{loc.bucket}/{loc.folder}"
            try:
                client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.folder, MaxKeys=1)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in self.MISCONFIGURED:
                    raise MediatoolsError(f"source {self.MISCONFIGURED[code]} ({code})", file=url,
                                          code="source") from None
                log.warning("source %s: %s: listing failed for now", url, code or type(exc).__name__)
            except Exception as exc:   # connection refused, timeouts: an outage, not a setting
                log.warning("source %s: cannot be reached for now (%s)", url, type(exc).__name__)

    def start(self) -> None:
        if self.client is None:
            self.connect_cluster()
        if self.cfg.notify_url:
            self.notifier = Notifier(self.ledger, self.cfg.notify_url, self.cfg.notify_secret,
                                     max_attempts=self.cfg.notify_max_attempts,
                                     base_s=self.cfg.backoff_base_s, max_s=self.cfg.backoff_max_s)
            self.notifier.start()
        self.dispatcher = Dispatcher(self.ledger, self.cfg, self.client, metrics=self.metrics,
                                     on_outgoing=self.notifier.poke if self.notifier else None)
        self.dispatcher.start()
        self.sweeper = Sweeper(self.ledger, self.cfg.locations(), self.s3, interval_s=self.cfg.sweep_interval_s,
                               quiet_s=self.cfg.sweep_quiet_s, on_enqueue=self.poke)
        self.sweeper.start()
        # everything loaded so far (Dask, SQLAlchemy, Starlette) lives as long as the service:
        # out of the collector's sight, a full collection no longer stalls every request in flight
        gc.collect()
        gc.freeze()
        log.info("serving: ledger %s, %d source(s)", self.ledger.describe(), len(self.cfg.sources))

    def stop(self) -> None:
        """Graceful: no new jobs, running ones finish or go back to the queue, then the rest."""
        log.info("shutting down")
        if self.sweeper:
            self.sweeper.stop()
        if self.dispatcher:
            self.dispatcher.stop()
        if self.notifier:
            self.notifier.stop()

    def close(self) -> None:
        for part in (self.client, self._cluster):
            try:
                if part is not None:
                    part.close()
            except Exception:   # closing while the loop goes down: nothing left to save
                pass
        self.ledger.close()

    def poke(self) -> None:
        if self.dispatcher:
            self.dispatcher.poke()

    # --- for the routes ---------------------------------------------------------------------
    #: how long a readiness answer is reused: /readyz needs no token, and each check lists the store
    READY_CACHE_S = 2.0

    def readiness(self) -> list[str]:
        """What keeps the service from working (ledger, storage), checked at most every
        READY_CACHE_S however often /readyz is asked: it is unauthenticated, and each check is a
        billed LIST per source."""
        with self._ready_lock:
            if self._ready is not None and time.monotonic() - self._ready[0] < self.READY_CACHE_S:
                return list(self._ready[1])
            problems = self._check_ready()
            self._ready = (time.monotonic(), problems)
            return list(problems)

    def _check_ready(self) -> list[str]:
        problems = []
        try:
            self.ledger.ping()
        except Exception as exc:
            problems.append(f"ledger: {type(exc).__name__}")
        try:
            client = self.s3()
            for loc in self.cfg.locations():
                client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.folder, MaxKeys=1)
        except Exception as exc:
            problems.append(f"storage: {type(exc).__name__}")
        return problems

    def output_url(self, sid: str, n: int) -> str | None:
        """A 5-minute presigned GET for the n-th output of the sid's process job."""
        job = self.ledger.get(f"process:{sid}")
        if job is None or not job.location:
            return None
        keys = output_keys(job.to_dict()["result"])
        if not 0 <= n < len(keys):
            return None
        key = keys[n]
        dest = (job.to_dict()["result"] or {}).get("dest") or ""
        # the outputs are where the job published them: its dest when that is a bucket of its own
        bucket = (dest if dest.startswith("s3://") else job.location)[5:].split("/", 1)[0]
        if key.startswith("s3://"):
            bucket, _, key = key[5:].partition("/")
        return self.s3().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
