"""The durable ledger: notifications (unique by noticeId), jobs (one per recording and
kind, with leases) and the outbox of notifications we send.

One SQLAlchemy Core schema serves SQLite (WAL, the default: a file beside the service)
and PostgreSQL (several instances sharing one ledger). Every state change is one short
transaction guarded by the row's current state, so two instances never both claim a job
and a crashed instance's jobs come back once its lease runs out. Times are Unix ms.
"""
from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import MediatoolsError
from .triggers import Decision, Notice

log = logging.getLogger(__name__)
STATES = ("queued", "running", "done", "failed")

meta = sa.MetaData()
notifications = sa.Table(
    "notifications", meta,
    sa.Column("notice_id", sa.String(200), primary_key=True),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.Integer), sa.Column("product_id", sa.Integer),
    sa.Column("notify_ms", sa.BigInteger), sa.Column("sequence", sa.Integer),
    sa.Column("sid", sa.String(128)), sa.Column("cname", sa.String(256)),
    sa.Column("decision", sa.String(200), nullable=False),
    sa.Column("job_id", sa.String(200)),
    sa.Column("body", sa.Text, nullable=False),
)
sa.Index("ix_notifications_sid", notifications.c.sid)
jobs = sa.Table(
    "jobs", meta,
    sa.Column("job_id", sa.String(200), primary_key=True),      # "<kind>:<sid>"
    sa.Column("kind", sa.String(16), nullable=False),           # process | verify
    sa.Column("sid", sa.String(128), nullable=False),
    sa.Column("cname", sa.String(256)),
    sa.Column("location", sa.Text),                             # s3://bucket/folder/, None until found
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_ms", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(100)), sa.Column("lease_until_ms", sa.BigInteger),
    sa.Column("wait", sa.Boolean, nullable=False, default=False),
    sa.Column("trigger", sa.String(200), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False), sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("started_ms", sa.BigInteger), sa.Column("finished_ms", sa.BigInteger),
    sa.Column("error", sa.Text), sa.Column("result", sa.Text),
    sa.Column("agora_result", sa.String(32)), sa.Column("agora_files", sa.Text),
)
sa.Index("ix_jobs_due", jobs.c.state, jobs.c.next_ms)
sa.Index("ix_jobs_sid", jobs.c.sid)
outbox = sa.Table(
    "outbox", meta,
    sa.Column("notice_id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),         # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_ms", sa.BigInteger, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False), sa.Column("sent_ms", sa.BigInteger),
    sa.Column("error", sa.Text),
)


def now_ms() -> int:
    return int(time.time() * 1000)


def job_id(kind: str, sid: str) -> str:
    return f"{kind}:{sid}"


class Stored(NamedTuple):
    """What storing a notification did: ``new`` (not a repeat), the ``job_id`` it asks for and
    what became of that job: ``created``, ``updated`` (it names files the job did not know:
    merged, or a finished job queued again) or ``unchanged``."""

    new: bool
    job_id: str | None
    job: str | None


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    sid: str
    cname: str | None
    location: str | None
    state: str
    attempts: int
    next_ms: int
    lease_owner: str | None
    lease_until_ms: int | None
    wait: bool
    trigger: str
    created_ms: int
    updated_ms: int
    started_ms: int | None
    finished_ms: int | None
    error: str | None
    result: str | None
    agora_result: str | None
    agora_files: str | None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["result"] = json.loads(self.result) if self.result else None
        d["agora_files"] = json.loads(self.agora_files) if self.agora_files else []
        return d


def _joined(files: str | None, more: Iterable[str]) -> str:
    """A job's ``agora_files`` (JSON) with ``more`` appended, each file once, in order. A file is
    its name: a copy of a notification that spells a key with or without its folder names
    nothing new (it re-ran a finished job and sent a second notification)."""
    have = json.loads(files) if files else []
    names = {posixpath.basename(f) for f in have}
    for f in more:
        if posixpath.basename(f) not in names:
            have.append(f)
            names.add(posixpath.basename(f))
    return json.dumps(have)


def _location_after(job_location: str | None, notice_location: str | None) -> str | None:
    """Where a job looks once a later notification named a folder: the one folder both name, the
    notification's when the job had none, and none (list the sources for the sid) when they
    disagree: a folder one notification names that holds no playlist kept a job failing."""
    if notice_location is None or notice_location == job_location:
        return job_location
    return notice_location if job_location is None else None


def notice_changes(files: str | None, wait: bool, location: str | None, result: str | None, *,
                   more: Iterable[str], more_wait: bool, more_location: str | None,
                   more_result: str | None) -> dict[str, Any]:
    """The job fields a later notification of the same recording changes, and only those: the
    files it names that the job did not know, its ``wait``, a later 1001's verdict, and the
    folder (:func:`_location_after`). One rule for two notifications in one burst and for one
    that finds the job in the database, where the caller adds only its state guards."""
    values: dict[str, Any] = {}
    merged = _joined(files, more)
    if merged != (files or "[]"):
        values["agora_files"] = merged
    if more_wait and not wait:
        values["wait"] = True
    if more_result and more_result != result:
        values["agora_result"] = more_result
    where = _location_after(location, more_location)
    if where != location:
        values["location"] = where
    return values


def ledger_url(url: str) -> str:
    """The SQLAlchemy URL of a ``--db`` value: a path is a SQLite file; ``postgresql://`` uses psycopg 3."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def open_ledger(url: str) -> "Ledger":
    """``url`` is a path (SQLite file) or an SQLAlchemy URL (``postgresql://…``, ``sqlite:///…``)."""
    url = ledger_url(url)
    try:
        return Ledger(sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20))
    except (sa.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        # one line naming the database (its password hidden), not SQLAlchemy's two with a link
        try:
            where = sa.engine.make_url(url).render_as_string(hide_password=True)
        except (sa.exc.ArgumentError, ValueError):
            where = "the --db value"
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise MediatoolsError(f"cannot open the ledger ({why})", file=where.removeprefix("sqlite:///"),
                              code="ledger") from None


class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time; queueing our writers on a lock wakes the next one at
        # once, where SQLite's busy handler would poll with growing sleeps (seconds under load)
        self._lock = threading.Lock()
        self._tl = threading.local()
        if self.sqlite:
            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None      # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=10000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: sa.Connection) -> None:
                # a write takes the lock up front (IMMEDIATE), so it waits instead of failing
                # when it turns from reading to writing; reads stay deferred and never block
                conn.exec_driver_sql("BEGIN IMMEDIATE" if getattr(self._tl, "write", False) else "BEGIN")
        self._create_tables()
        # built once: constructing a statement costs more than running it
        self._ins_notice = self._insert_ignore(notifications)
        self._ins_job = self._insert_ignore(jobs)
        self._ins_notice_out = self._insert_ignore(outbox)

    #: the PostgreSQL advisory lock the instances starting at once take to create the tables
    CREATE_LOCK = 0x6D656469   # "medi"

    def _create_tables(self) -> None:
        """The tables, if missing. PostgreSQL's check-then-create is not atomic: two instances
        starting on a fresh ledger at once failed (duplicate pg_type entry), so there it runs
        under a transaction-scoped advisory lock; SQLite's writes are serialized already."""
        if self.sqlite:
            meta.create_all(self.engine)
            return
        with self.engine.begin() as c:
            c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.CREATE_LOCK})
            meta.create_all(c)

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction (PostgreSQL: row locks and guarded updates do the rest)."""
        if not self.sqlite:
            with self.engine.begin() as c:
                yield c
            return
        with self._lock:
            self._tl.write = True
            try:
                with self.engine.begin() as c:
                    yield c
            finally:
                self._tl.write = False

    def close(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        """Where the ledger is, without a password."""
        return self.engine.url.render_as_string(hide_password=True)

    def ping(self) -> None:
        with self.engine.connect() as c:
            c.execute(sa.text("SELECT 1"))

    def _insert_ignore(self, table: sa.Table) -> Any:
        if self.sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        # RETURNING says whether the row went in (rowcount is not reliable for this on every driver)
        return insert(table).on_conflict_do_nothing().returning(table.primary_key.columns.values()[0])

    # --- notifications ---------------------------------------------------------------------
    def record_notice(self, notice: Notice, body: str, decision: Decision, location: str | None) -> "Stored":
        """Store a notification and, when it asks for one, its job, in one transaction.

        A repeated noticeId returns ``Stored(False, None, None)`` and changes nothing.
        """
        return self.record_notices([(notice, body, decision, location)])[0]

    def record_notices(self, items: list[tuple[Notice, str, Decision, str | None]]) -> list["Stored"]:
        """Several notifications in one transaction (group commit: one commit for a burst).

        One multi-row INSERT for the notices (RETURNING says which went in: the database,
        not a read before it, decides what is new, so two service instances cannot both
        take one notice) and one for the jobs they ask for: a row per statement cost ~1 ms
        each, which is what kept a burst of notifications waiting."""
        now = now_ms()
        rows, jids, first = [], [], {}
        for i, (notice, body, decision, _location) in enumerate(items):
            jid = job_id(decision.kind, decision.sid) if decision.kind and decision.sid else None
            jids.append(jid)
            if notice.notice_id in first:     # the same notice twice in one burst
                continue
            first[notice.notice_id] = i
            rows.append(dict(notice_id=notice.notice_id, received_ms=now, event_type=notice.event_type,
                             product_id=notice.product_id, notify_ms=notice.notify_ms, sequence=notice.sequence,
                             sid=notice.sid, cname=notice.cname, decision=decision.reason[:200], job_id=jid,
                             body=body))
        with self._write() as c:
            new_ids = {r[0] for r in c.execute(self._ins_notice, rows)} if rows else set()
            # new: the first of its noticeId in this burst, and the database took it
            new = [first[n.notice_id] == i and n.notice_id in new_ids for i, (n, *_rest) in enumerate(items)]
            job_rows: dict[str, dict[str, Any]] = {}
            adds: set[int] = set()       # later notices of a burst that add to its job
            for i, (notice, _body, decision, location) in enumerate(items):
                jid = jids[i]
                if not (jid and new[i]):
                    continue
                if jid in job_rows:      # two notices of one recording in one burst: one job, both lists
                    row = job_rows[jid]
                    values = notice_changes(row["agora_files"], row["wait"], row["location"], row["agora_result"],
                                            more=decision.agora_files, more_wait=decision.wait,
                                            more_location=location, more_result=decision.agora_result)
                    if "agora_files" in values or "wait" in values:
                        adds.add(i)
                    row.update(values)
                    continue
                job_rows[jid] = self._job_row(decision.kind, decision.sid, decision.cname, location,
                                              wait=decision.wait, trigger=f"ncs:{notice.notice_id}", now=now,
                                              agora_result=decision.agora_result,
                                              agora_files=list(decision.agora_files))
            took: set[str] = set()
            changed: set[str] = set()
            if job_rows:
                took = {r[0] for r in c.execute(self._ins_job, list(job_rows.values()))}
                changed = {jid for jid, row in job_rows.items() if jid not in took and self._merge_notice(c, row, now)}
        out, seen = [], set()
        for i, jid in enumerate(jids):
            if not new[i]:
                out.append(Stored(False, None, None))
                continue
            if jid is None:
                out.append(Stored(True, None, None))
                continue
            if jid in seen:
                what = "updated" if i in adds else "unchanged"
            else:
                what = "created" if jid in took else "updated" if jid in changed else "unchanged"
            seen.add(jid)
            out.append(Stored(True, jid, what))
        return out

    def _merge_notice(self, c: sa.Connection, row: dict[str, Any], now: int) -> bool:
        """A later notification of a recording that has a job already: what it adds goes into
        that job. Agora's 11 may name one user's playlist and its 32 a user still in backup; the
        job kept the first list only and published the mix without that user as total_success.

        A queued job takes the longer list (and ``wait``); a running one too, and ``finish``
        runs it again instead of ending it (its task waited for the old list only); a finished
        one is queued again when the notification names a file it did not know. Each update is
        guarded by the values read, so a job changing state meanwhile is read again."""
        jid = row["job_id"]
        for _ in range(5):
            cur = c.execute(sa.select(jobs.c.state, jobs.c.wait, jobs.c.agora_files, jobs.c.location,
                                      jobs.c.agora_result).where(jobs.c.job_id == jid)).first()
            if cur is None:
                return False
            state, wait, files, location, result = cur
            values = notice_changes(files, wait, location, result, more=json.loads(row["agora_files"]),
                                    more_wait=row["wait"], more_location=row["location"],
                                    more_result=row["agora_result"])
            more, elsewhere = "agora_files" in values, "location" in values
            # a finished job runs again for files it did not know; a failed one also where the
            # notification points elsewhere (it may have looked in the wrong folder)
            again = state == "done" and more or state == "failed" and (more or elsewhere)
            if state in ("done", "failed") and not again:
                values.pop("location", None)
            if not values:
                return False
            if again:
                values.update(state="queued", attempts=0, next_ms=now, error=None, created_ms=now,
                              trigger=row["trigger"])
                log.info("job %s queued again: a later notification names %d file(s) it did not know%s", jid,
                         len(json.loads(values.get("agora_files", files or "[]"))) - len(json.loads(files or "[]")),
                         ", and another folder" if elsewhere else "")
            values["updated_ms"] = now
            guard = [jobs.c.job_id == jid, jobs.c.state == state, jobs.c.wait == wait]
            guard.append(jobs.c.agora_files == files if files is not None else jobs.c.agora_files.is_(None))
            guard.append(jobs.c.location == location if location is not None else jobs.c.location.is_(None))
            if c.execute(jobs.update().where(*guard).values(**values)).rowcount == 1:
                return True
        return False

    def notification_count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(notifications)).scalar_one())

    def notice_ids(self) -> list[str]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(sa.select(notifications.c.notice_id))]

    def notifications_for(self, sid: str) -> list[dict[str, Any]]:
        cols = [notifications.c[k] for k in ("notice_id", "received_ms", "event_type", "sequence", "decision")]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(*cols).where(notifications.c.sid == sid)
                             .order_by(notifications.c.received_ms)).mappings()
            return [dict(r) for r in rows]

    # --- jobs ------------------------------------------------------------------------------
    def _job_row(self, kind: str, sid: str, cname: str | None, location: str | None, *, wait: bool,
                 trigger: str, now: int, agora_result: str | None = None,
                 agora_files: list[str] | None = None) -> dict[str, Any]:
        return dict(job_id=job_id(kind, sid), kind=kind, sid=sid, cname=cname, location=location, state="queued",
                    attempts=0, next_ms=now, wait=wait, trigger=trigger[:200], created_ms=now, updated_ms=now,
                    agora_result=agora_result, agora_files=json.dumps(agora_files or []))

    def _enqueue(self, c: sa.Connection, kind: str, sid: str, cname: str | None, location: str | None, *,
                 wait: bool, trigger: str, now: int, agora_result: str | None = None,
                 agora_files: list[str] | None = None) -> bool:
        r = c.execute(self._ins_job, self._job_row(kind, sid, cname, location, wait=wait, trigger=trigger, now=now,
                                                   agora_result=agora_result, agora_files=agora_files))
        return r.first() is not None

    def enqueue(self, kind: str, sid: str, cname: str | None, location: str | None, *, trigger: str,
                wait: bool = False, again: bool = False) -> tuple[str, bool]:
        """Queue a job unless one exists; ``again`` re-queues a finished one (by hand, or the
        sweeper for files Agora's backup delivered late). A re-queued job is new for the
        incomplete deadline: it counts from ``created_ms``, and a rerun days after the call must
        still wait for the late playlist to end, not give up at once.

        Returns (job_id, changed).
        """
        now = now_ms()
        jid = job_id(kind, sid)
        with self._write() as c:
            if self._enqueue(c, kind, sid, cname, location, wait=wait, trigger=trigger, now=now):
                return jid, True
            if not again:
                return jid, False
            r = c.execute(jobs.update().where(jobs.c.job_id == jid, jobs.c.state.in_(("done", "failed")))
                          .values(state="queued", attempts=0, next_ms=now, error=None, updated_ms=now, created_ms=now,
                                  trigger=trigger[:200], **({"location": location} if location else {})))
            return jid, r.rowcount == 1

    def claim(self, owner: str, lease_ms: int, limit: int) -> list[Job]:
        """Take up to ``limit`` due jobs: queued and due, or running with an expired lease."""
        now = now_ms()
        due = sa.or_(sa.and_(jobs.c.state == "queued", jobs.c.next_ms <= now),
                     sa.and_(jobs.c.state == "running", jobs.c.lease_until_ms < now))
        with self.engine.connect() as c:
            ids = [r[0] for r in c.execute(sa.select(jobs.c.job_id).where(due).order_by(jobs.c.next_ms)
                                           .limit(limit))]
            c.rollback()
        got = []
        for jid in ids:
            with self._write() as c:
                r = c.execute(jobs.update().where(jobs.c.job_id == jid, due).values(
                    state="running", lease_owner=owner, lease_until_ms=now + lease_ms,
                    attempts=jobs.c.attempts + 1, started_ms=now, finished_ms=None, updated_ms=now))
                if r.rowcount == 1:
                    got.append(self._get(c, jid))
        return [j for j in got if j]

    def renew(self, owner: str, ids: Iterable[str], lease_ms: int) -> set[str]:
        """Extend our leases on ``ids``; the ids still ours (the others were taken over)."""
        ids = list(ids)
        if not ids:
            return set()
        now = now_ms()
        with self._write() as c:
            held = jobs.c.job_id.in_(ids), jobs.c.lease_owner == owner, jobs.c.state == "running"
            c.execute(jobs.update().where(*held).values(lease_until_ms=now + lease_ms, updated_ms=now))
            return {r[0] for r in c.execute(sa.select(jobs.c.job_id).where(*held))}

    def set_location(self, jid: str, owner: str, location: str, cname: str | None) -> None:
        with self._write() as c:
            c.execute(jobs.update().where(jobs.c.job_id == jid, jobs.c.lease_owner == owner,
                                          jobs.c.state == "running")
                      .values(location=location, **({"cname": cname} if cname else {})))

    def finish(self, jid: str, owner: str, state: str, *, result: dict | None = None,
               error: str | None = None, outgoing: Callable[[Job], tuple[str, str]] | None = None,
               ran_with: str | None = None) -> bool:
        """End a job we hold the lease of (``done`` or ``failed``); False if the lease was lost.
        ``outgoing(final job) → (notice id, body)`` queues its notification in the same
        transaction: a crash can never leave a finished job whose notification is lost.

        ``ran_with``: the ``agora_files`` the run was given. When a later notification named
        more files meanwhile, the job is queued again (a fresh start, no notification) instead."""
        assert state in ("done", "failed")
        now = now_ms()
        held = [jobs.c.job_id == jid, jobs.c.lease_owner == owner, jobs.c.state == "running"]
        with self._write() as c:
            r = c.execute(jobs.update().where(*held, *([jobs.c.agora_files == ran_with] if ran_with else []))
                          .values(state=state, finished_ms=now, updated_ms=now, lease_owner=None,
                                  lease_until_ms=None, error=error,
                                  result=json.dumps(result) if result is not None else None))
            if r.rowcount != 1 and ran_with:
                r = c.execute(jobs.update().where(*held).values(
                    state="queued", attempts=0, next_ms=now, updated_ms=now, created_ms=now, lease_owner=None,
                    lease_until_ms=None, error="a later notification named more files: run again",
                    result=json.dumps(result) if result is not None else None))
                if r.rowcount == 1:
                    log.info("job %s queued again: a notification named more files while it ran", jid)
                    return True
            if r.rowcount != 1:
                return False
            final = self._get(c, jid) if outgoing is not None else None
            if final is not None:
                nid, body = outgoing(final)
                c.execute(self._ins_notice_out.values(notice_id=nid, job_id=jid, body=body, state="pending",
                                                      attempts=0, next_ms=now, created_ms=now))
            return True

    def retry_later(self, jid: str, owner: str, delay_ms: int, error: str, *, result: dict | None = None,
                    refund: bool = False) -> bool:
        """Back to the queue after ``delay_ms``; ``refund`` gives the attempt back (not a failure)."""
        now = now_ms()
        values: dict[str, Any] = dict(state="queued", next_ms=now + delay_ms, updated_ms=now, lease_owner=None,
                                      lease_until_ms=None, error=error)
        if result is not None:
            values["result"] = json.dumps(result)
        if refund:
            values["attempts"] = jobs.c.attempts - 1
        with self._write() as c:
            r = c.execute(jobs.update().where(jobs.c.job_id == jid, jobs.c.lease_owner == owner,
                                              jobs.c.state == "running").values(**values))
            return r.rowcount == 1

    def release(self, owner: str) -> int:
        """Graceful shutdown: our running jobs go back to the queue, attempt refunded."""
        now = now_ms()
        with self._write() as c:
            r = c.execute(jobs.update().where(jobs.c.lease_owner == owner, jobs.c.state == "running")
                          .values(state="queued", next_ms=now, updated_ms=now, lease_owner=None,
                                  lease_until_ms=None, attempts=jobs.c.attempts - 1))
            return r.rowcount

    def _get(self, c: sa.Connection, jid: str) -> Job | None:
        row = c.execute(sa.select(jobs).where(jobs.c.job_id == jid)).mappings().first()
        return Job(**row) if row else None

    def get(self, jid: str) -> Job | None:
        with self.engine.connect() as c:
            return self._get(c, jid)

    def jobs_for(self, sid: str) -> list[Job]:
        with self.engine.connect() as c:
            return [Job(**r) for r in c.execute(sa.select(jobs).where(jobs.c.sid == sid)
                                                .order_by(jobs.c.kind)).mappings()]

    def list_jobs(self, state: str | None = None, since_ms: int | None = None, limit: int = 200) -> list[Job]:
        q = sa.select(jobs).order_by(jobs.c.updated_ms.desc()).limit(limit)
        if state:
            q = q.where(jobs.c.state == state)
        if since_ms is not None:
            q = q.where(jobs.c.updated_ms >= since_ms)
        with self.engine.connect() as c:
            return [Job(**r) for r in c.execute(q).mappings()]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)).all()
        out = dict.fromkeys(STATES, 0)
        out.update({s: int(n) for s, n in rows})
        return out

    def known_sids(self, kind: str = "process", *, state: str | None = None) -> set[str]:
        """Sids that have a job of ``kind`` (in ``state``, if given)."""
        q = sa.select(jobs.c.sid).where(jobs.c.kind == kind)
        if state is not None:
            q = q.where(jobs.c.state == state)
        with self.engine.connect() as c:
            return {r[0] for r in c.execute(q)}

    # --- outbox ----------------------------------------------------------------------------
    def add_outgoing(self, notice_id: str, jid: str, body: str) -> None:
        now = now_ms()
        with self._write() as c:
            c.execute(self._ins_notice_out.values(notice_id=notice_id, job_id=jid, body=body,
                                                  state="pending", attempts=0, next_ms=now, created_ms=now))

    def due_outgoing(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(
                sa.select(outbox).where(outbox.c.state == "pending", outbox.c.next_ms <= now_ms())
                .order_by(outbox.c.next_ms).limit(limit)).mappings()]

    def outgoing_result(self, notice_id: str, *, sent: bool, error: str | None, next_ms: int | None,
                        give_up: bool = False) -> None:
        now = now_ms()
        values: dict[str, Any] = dict(attempts=outbox.c.attempts + 1, error=error)
        if sent:
            values.update(state="sent", sent_ms=now)
        elif give_up:
            values.update(state="failed")
        else:
            values.update(next_ms=next_ms or now)
        with self._write() as c:
            c.execute(outbox.update().where(outbox.c.notice_id == notice_id).values(**values))

    def outgoing(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(sa.select(outbox).order_by(outbox.c.created_ms)).mappings()]
