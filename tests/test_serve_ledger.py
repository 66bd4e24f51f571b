"""serve: the ledger on a real SQLite file and on a real PostgreSQL server."""
from __future__ import annotations

import threading
import time

import pytest
from serve_support import PostgresServer, notice, uploaded_details

from mediatools.service.ledger import jobs, open_ledger
from mediatools.service.triggers import decide, parse_notice

SID, CNAME = "6f1b2c3d4e5f60718293a4b5c6d7e8f9", "demo_room-1"


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    srv = PostgresServer(tmp_path_factory.mktemp("pg"))
    if not srv.available:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)")
    with srv:
        yield srv


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        led = open_ledger(str(tmp_path / "ledger.db"))
    else:
        srv = request.getfixturevalue("pg")
        led = open_ledger(srv.url)
        from mediatools.service.ledger import meta
        meta.drop_all(led.engine)
        meta.create_all(led.engine)
    yield led
    led.close()


def _store(led, doc):
    n = parse_notice(doc)
    d = decide(doc, n)
    return led.record_notice(n, "{}", d, None)


def test_sqlite_is_wal(tmp_path):
    led = open_ledger(str(tmp_path / "l.db"))
    with led.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_duplicates_and_one_job_per_recording(ledger):
    doc = notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1", "2"]))
    assert _store(ledger, doc) == (True, f"process:{SID}", "created")
    assert _store(ledger, doc) == (False, None, None)                     # the same noticeId again
    assert _store(ledger, {**doc, "notifyMs": 5}) == (False, None, None)  # a resend
    assert _store(ledger, notice(31, SID, CNAME)) == (True, f"process:{SID}", "unchanged")  # a copy: new id ...
    assert _store(ledger, notice(11, SID, CNAME, details={"exitStatus": 0})).job == "unchanged"
    assert len(ledger.list_jobs()) == 1                             # ... but still one job
    assert ledger.notification_count() == 3
    assert _store(ledger, notice(33, SID, CNAME)) == (True, None, None)


def test_a_burst_in_one_transaction_is_judged_like_one_at_a_time(ledger):
    """Group commit: repeats inside the burst and of earlier notices, two notices asking for one
    job, a 31 and a 1001 of one sid (two jobs): the answers are those of one-by-one storing."""
    def item(doc):
        n = parse_notice(doc)
        return n, "{}", decide(doc, n), None
    old = notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1"]))
    assert _store(ledger, old) == (True, f"process:{SID}", "created")
    other = "0" * 31 + "1"
    a = notice(31, other, CNAME, details=uploaded_details(other, CNAME, ["1"]))
    b = notice(11, other, CNAME, details={"exitStatus": 0})
    v = notice(1001, other, CNAME, details={"result": "total_success", "fileList": []})
    got = ledger.record_notices([item(a), item(old), item(a), item(b), item(v), item(notice(33, other, CNAME))])
    assert got == [(True, f"process:{other}", "created"), (False, None, None), (False, None, None),
                   (True, f"process:{other}", "unchanged"), (True, f"verify:{other}", "created"), (True, None, None)]
    assert sorted(j.job_id for j in ledger.list_jobs()) == sorted([f"process:{SID}", f"process:{other}",
                                                                  f"verify:{other}"])
    assert ledger.notification_count() == 5


def test_claim_lease_expiry_and_fencing(ledger):
    ledger.enqueue("process", SID, CNAME, "s3://b/r/", trigger="t")
    (j,) = ledger.claim("a", lease_ms=300, limit=5)
    assert j.state == "running" and j.attempts == 1 and j.lease_owner == "a"
    assert ledger.claim("b", lease_ms=300, limit=5) == []          # leased
    time.sleep(0.4)
    (j2,) = ledger.claim("b", lease_ms=10_000, limit=5)           # "a" crashed: lease ran out
    assert j2.attempts == 2 and j2.lease_owner == "b"
    assert not ledger.finish(j.job_id, "a", "done")               # the old owner cannot finish it
    assert ledger.finish(j.job_id, "b", "done", result={"status": "processed"})
    assert ledger.get(j.job_id).state == "done"
    assert ledger.enqueue("process", SID, CNAME, None, trigger="sweeper") == (j.job_id, False)
    with ledger.engine.begin() as c:   # finished two days ago: the re-queued job's deadline starts now
        c.execute(jobs.update().where(jobs.c.job_id == j.job_id).values(created_ms=1))
    before = int(time.time() * 1000)
    assert ledger.enqueue("process", SID, CNAME, None, trigger="api", again=True) == (j.job_id, True)
    assert ledger.get(j.job_id).state == "queued"
    assert ledger.get(j.job_id).created_ms >= before


def test_retry_release_and_counts(ledger):
    ledger.enqueue("process", SID, CNAME, None, trigger="t")
    (j,) = ledger.claim("a", 10_000, 1)
    assert ledger.retry_later(j.job_id, "a", 60_000, "later", refund=True)
    j = ledger.get(j.job_id)
    assert (j.state, j.attempts, j.error) == ("queued", 0, "later")
    assert ledger.claim("a", 10_000, 1) == []                     # not due yet
    ledger.enqueue("process", "othersid", CNAME, None, trigger="t")
    (k,) = ledger.claim("a", 10_000, 5)
    assert ledger.release("a") == 1 and ledger.get(k.job_id).attempts == 0
    assert ledger.counts() == {"queued": 2, "running": 0, "done": 0, "failed": 0}


def test_concurrent_claims_take_each_job_once(ledger):
    for i in range(20):
        ledger.enqueue("process", f"sid{i}", CNAME, None, trigger="t")
    got: list[str] = []
    lock = threading.Lock()

    def grab(owner):
        for _ in range(10):
            js = ledger.claim(owner, 60_000, 3)
            with lock:
                got.extend(j.job_id for j in js)

    ts = [threading.Thread(target=grab, args=(f"o{i}",)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert sorted(got) == sorted(f"process:sid{i}" for i in range(20))


def test_outbox(ledger):
    ledger.add_outgoing("n1", "process:x", '{"a":1}')
    ledger.add_outgoing("n1", "process:x", '{"a":1}')
    (e,) = ledger.due_outgoing()
    ledger.outgoing_result("n1", sent=False, error="HTTP 500", next_ms=int(time.time() * 1000) + 60_000)
    assert ledger.due_outgoing() == []
    ledger.outgoing_result("n1", sent=True, error=None, next_ms=None)
    (o,) = ledger.outgoing()
    assert o["state"] == "sent" and o["attempts"] == 2


@pytest.mark.parametrize("field,value", [
    ("eventType", 10 ** 30), ("eventType", 2 ** 31), ("productId", -(2 ** 40)), ("notifyMs", 10 ** 25),
    ("payload.sequence", "9" * 40), ("payload.sequence", 2 ** 31), ("payload.sid", "a" * 129),
    ("payload.cname", "c" * 300), ("payload.cname", "a\u0000b"), ("payload.sid", "\ud800"),
])
def test_values_no_column_can_hold_are_stored_as_absent(ledger, field, value):
    """A signed notification with numbers beyond the integer columns or strings the text columns
    cannot take is still stored (its raw body keeps them), on SQLite and PostgreSQL alike; it
    starts no job (an odd sid or cname is not a recording's)."""
    doc = notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1"]))
    if field.startswith("payload."):
        doc["payload"][field.split(".", 1)[1]] = value
    else:
        doc[field] = value
    n = parse_notice(doc)
    new, jid, _job = ledger.record_notice(n, "{}", decide(doc, n), None)
    assert new and ledger.notification_count() == 1
    if field in ("payload.sid", "payload.cname"):
        assert jid is None and ledger.list_jobs() == []
    if field == "notifyMs":
        assert n.notify_ms is None


def test_a_notice_id_no_column_can_hold_is_refused():
    from mediatools.service.triggers import BadNotice
    for nid in ("x" * 201, "a\u0000b", "\udc00", ""):
        with pytest.raises(BadNotice):
            parse_notice({"noticeId": nid, "eventType": 31})


def test_a_finished_job_and_its_notification_are_one_transaction(ledger):
    """finish() queues the outgoing notification in its own transaction: if building it fails,
    the job is not finished either (a crash between the two lost the notification for good)."""
    ledger.enqueue("process", SID, CNAME, None, trigger="t")
    (j,) = ledger.claim("a", 60_000, 1)

    def broken(final):
        raise RuntimeError("crash while queueing")

    with pytest.raises(RuntimeError):
        ledger.finish(j.job_id, "a", "done", result={"status": "processed"}, outgoing=broken)
    assert ledger.get(j.job_id).state == "running" and ledger.outgoing() == []
    assert ledger.finish(j.job_id, "a", "done", result={"status": "processed"},
                         outgoing=lambda final: (f"n-{final.state}", '{"x": 1}'))
    assert ledger.get(j.job_id).state == "done"
    assert [(o["notice_id"], o["state"]) for o in ledger.outgoing()] == [("n-done", "pending")]


def test_a_run_whose_lease_passed_on_may_not_publish(ledger, tmp_path):
    """The fencing token: renew() says which leases are still ours, and the task's lease gate
    (checked before the pending claim and before the manifest) stops the old holder."""
    from mediatools.errors import MediatoolsError
    from mediatools.service.tasks import lease_gate, still_held
    from mediatools.storage.backend import LocalStore
    from mediatools.storage.publish import Output, publish
    db = str(ledger.engine.url.render_as_string(hide_password=False)).replace("postgresql+psycopg://",
                                                                              "postgresql://")
    ledger.enqueue("process", SID, CNAME, None, trigger="t")
    (a,) = ledger.claim("a", 200, 1)
    fence_a = {"db": db, "job_id": a.job_id, "owner": "a", "attempts": a.attempts}
    assert still_held(fence_a) is True
    time.sleep(0.3)
    (b,) = ledger.claim("b", 60_000, 1)                 # "a" stalled past its lease
    assert ledger.renew("a", [a.job_id], 60_000) == set()
    assert ledger.renew("b", [b.job_id], 60_000) == {b.job_id}
    assert still_held(fence_a) is False
    assert still_held({"db": db, "job_id": b.job_id, "owner": "b", "attempts": b.attempts}) is True
    mix = tmp_path / "mix.m4a"
    mix.write_bytes(b"audio")
    store = LocalStore(tmp_path / "bucket")
    with pytest.raises(MediatoolsError, match="lease passed to another instance") as e:
        publish(store, [Output(mix, "rec/x_0.m4a", "mix")], "rec/x.manifest.json", "rec/x.pending.json",
                lambda infos: {"outputs": infos}, gate=lease_gate(fence_a))
    assert e.value.code == "lease_lost"
    assert not (tmp_path / "bucket").exists() or list((tmp_path / "bucket").rglob("*")) == []
    # a ledger this worker cannot see (a SQLite file on another machine) fails open
    assert still_held({"db": str(tmp_path / "elsewhere.db"), "job_id": "j", "owner": "a", "attempts": 1}) is None
    assert not (tmp_path / "elsewhere.db").exists()


def test_instances_starting_at_once_on_a_fresh_postgresql_ledger_all_open_it(pg):
    """Several serve instances opening a new shared ledger at the same moment: create_all's
    check-then-create raced and some failed with a duplicate pg_type entry (5 of 15 in a
    review session's runs). The tables are now created under an advisory lock."""
    import subprocess
    import sys

    from mediatools.service.ledger import meta
    code = ("import sys; from mediatools.service.ledger import open_ledger; "
            "led = open_ledger(sys.argv[1]); print(sorted(led.counts().items())); led.close()")
    for _ in range(3):
        led = open_ledger(pg.url)
        meta.drop_all(led.engine)
        led.close()
        procs = [subprocess.Popen([sys.executable, "-c", code, pg.url], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [e for _, e in outs]


def _named(led, et, uids, **details):
    return _store(led, notice(et, SID, CNAME, details={**uploaded_details(SID, CNAME, uids), **details}))


def test_a_later_notice_naming_a_backed_up_user_reaches_a_queued_job(ledger):
    """Agora's 11 names one user; its 32 then names a user still in backup. The job kept the 11's
    list only and mixed without that user (found by a review session): it takes both now."""
    assert _named(ledger, 11, ["1"], exitStatus=0) == (True, f"process:{SID}", "created")
    j = ledger.get(f"process:{SID}")
    assert not j.wait and len(j.to_dict()["agora_files"]) == 1
    assert _named(ledger, 32, ["1", "2"]).job == "updated"
    j = ledger.get(f"process:{SID}")
    assert j.state == "queued" and j.wait
    assert [f.split("__uid_s_")[1] for f in j.to_dict()["agora_files"]] == ["1__uid_e_audio.m3u8",
                                                                        "2__uid_e_audio.m3u8"]
    assert _named(ledger, 31, ["2"]).job == "unchanged"       # nothing new
    assert ledger.get(f"process:{SID}").to_dict()["agora_files"] == j.to_dict()["agora_files"]


def test_both_notices_in_one_burst_make_one_job_with_both_lists(ledger):
    def item(doc):
        n = parse_notice(doc)
        return n, "{}", decide(doc, n), None
    a = notice(11, SID, CNAME, details={**uploaded_details(SID, CNAME, ["1"]), "exitStatus": 0})
    b = notice(32, SID, CNAME, details=uploaded_details(SID, CNAME, ["2"]))
    assert ledger.record_notices([item(a), item(b)]) == [(True, f"process:{SID}", "created"),
                                                         (True, f"process:{SID}", "updated")]
    (j,) = ledger.list_jobs()
    assert j.wait and len(j.to_dict()["agora_files"]) == 2


def test_a_running_job_told_of_more_files_does_not_publish_and_runs_again(ledger):
    from mediatools.service.tasks import still_held
    db = str(ledger.engine.url.render_as_string(hide_password=False)).replace("postgresql+psycopg://",
                                                                              "postgresql://")
    _named(ledger, 11, ["1"], exitStatus=0)
    (run,) = ledger.claim("a", 60_000, 1)
    fence = {"db": db, "job_id": run.job_id, "owner": "a", "attempts": run.attempts, "files": run.agora_files}
    assert still_held(fence) is True
    _named(ledger, 32, ["1", "2"])
    assert still_held(fence) == "more_files"                  # the task's gate stops the publish
    assert ledger.finish(run.job_id, "a", "done", result={"status": "processed"}, ran_with=run.agora_files,
                         outgoing=lambda final: ("n-x", "{}"))
    j = ledger.get(run.job_id)
    assert j.state == "queued" and j.attempts == 0 and ledger.outgoing() == []   # no total_success sent
    (again,) = ledger.claim("a", 60_000, 1)
    assert len(again.to_dict()["agora_files"]) == 2 and again.wait
    assert ledger.finish(again.job_id, "a", "done", result={"status": "processed"}, ran_with=again.agora_files)
    assert ledger.get(run.job_id).state == "done"


def test_a_finished_job_is_queued_again_only_for_files_it_did_not_know(ledger):
    _named(ledger, 31, ["1"])
    (run,) = ledger.claim("a", 60_000, 1)
    assert ledger.finish(run.job_id, "a", "done", result={"status": "processed"}, ran_with=run.agora_files)
    assert _named(ledger, 11, ["1"], exitStatus=0)[0]
    assert ledger.get(run.job_id).state == "done"             # the same user again: nothing to redo
    assert _named(ledger, 32, ["2"])[0]
    j = ledger.get(run.job_id)
    assert j.state == "queued" and j.wait and len(j.to_dict()["agora_files"]) == 2


def _at(led, et, uids, folder, **details):
    """A notification naming ``uids``' playlists under ``folder`` (its location inside the source)."""
    doc = notice(et, SID, CNAME, details={**uploaded_details(SID, CNAME, uids, folder), **details})
    n = parse_notice(doc)
    return led.record_notice(n, "{}", decide(doc, n), f"s3://b/{folder}" if folder else None)


def test_a_copy_spelling_the_same_files_otherwise_changes_nothing(ledger):
    """A copy naming the playlists without their folder (or under another) is no new file: it
    re-ran a finished job and sent a second notification (found by a review session)."""
    assert _at(ledger, 31, ["1", "2"], "rec/").job == "created"
    (run,) = ledger.claim("a", 60_000, 1)
    assert ledger.finish(run.job_id, "a", "done", result={"status": "processed"}, ran_with=run.agora_files)
    assert _at(ledger, 31, ["1", "2"], "").job == "unchanged"
    assert _at(ledger, 31, ["2"], "rec/old/").job == "unchanged"
    j = ledger.get(run.job_id)
    assert j.state == "done" and j.location == "s3://b/rec/"


def test_folders_that_disagree_send_the_job_to_list_the_sources(ledger):
    """A 31 naming an empty folder, then a 32 naming the real one: the job kept the first and
    failed (found by a review session). Two folders that disagree: look under the sources."""
    _at(ledger, 31, ["1"], "rec/old/")
    assert ledger.get(f"process:{SID}").location == "s3://b/rec/old/"
    assert _at(ledger, 32, ["1"], "rec/").job == "updated"
    j = ledger.get(f"process:{SID}")
    assert j.state == "queued" and j.location is None and j.wait
    # a job with no folder yet (an 11 names no file) takes the one a later notification names
    with ledger.engine.begin() as c:
        c.execute(jobs.delete())
    _store(ledger, notice(11, SID, CNAME, details={"exitStatus": 0}))
    _at(ledger, 31, ["1"], "rec/")
    assert ledger.get(f"process:{SID}").location == "s3://b/rec/"
    # a failed job is tried again when a notification points elsewhere; a done one is not
    (run,) = ledger.claim("a", 60_000, 1)
    assert ledger.finish(run.job_id, "a", "failed", error="gave up", ran_with=run.agora_files)
    _at(ledger, 31, ["1"], "rec/new/")
    j = ledger.get(run.job_id)
    assert j.state == "queued" and j.location is None and j.attempts == 0


def test_a_later_1001_updates_agoras_verdict(ledger):
    doc = notice(1001, SID, CNAME, details={"result": "failed", "fileList": []})
    _store(ledger, doc)
    (run,) = ledger.claim("a", 60_000, 1)
    assert ledger.finish(run.job_id, "a", "done", result={"status": "skipped"}, ran_with=run.agora_files)
    later = notice(1001, SID, CNAME, details={"result": "total_success",
                                              "fileList": [{"fileName": f"{SID}_{CNAME}_0.mp3"}]})
    assert _store(ledger, later).job == "updated"
    j = ledger.get(run.job_id)
    assert j.agora_result == "total_success" and j.state == "queued"
