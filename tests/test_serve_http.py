"""serve over HTTP: the real service (uvicorn subprocess, SQLite ledger, LocalCluster) with
moto's S3 server. The Dask task is the scripted stand-in of ``serve_tasks`` here, so these
tests are about receiving, storing, auth, leases and notifying; test_serve_process runs
the real pipeline."""
from __future__ import annotations

import hashlib
import hmac
import json
import signal
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from serve_support import API_TOKEN, NCS_SECRET, ServeProc, notice, signed, uploaded_details

SID, CNAME = "6f1b2c3d4e5f60718293a4b5c6d7e8f9", "demo_room-1"
FAKE = "serve_tasks:fake_job"


@pytest.fixture
def bucket(s3_server, request):
    name = "serve-" + hashlib.md5(request.node.name.encode()).hexdigest()[:10]
    s3_server.client().create_bucket(Bucket=name)
    return name


def _settings(tmp_path, s3_server, bucket, **kw):
    return {"sources": [f"s3://{bucket}/rec/"], "db": str(tmp_path / "ledger.db"), "endpoint_url": s3_server.url,
            "region": "us-east-1", "task": FAKE, "sweep_interval_s": 3600.0, "lease_s": 3.0,
            "backoff_base_s": 0.5, "backoff_max_s": 2.0, **kw}


def _rows(db, sql):
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


def test_receive_store_dedupe_and_refuse(tmp_path, s3_server, bucket):
    st = _settings(tmp_path, s3_server, bucket)
    with ServeProc(tmp_path, st, process={"fake_dir": str(tmp_path / "calls")}) as srv:
        db = st["db"]
        # a bad signature: 401 and nothing stored
        body, h = signed(notice(31, SID, CNAME), secret="wrong")
        assert srv.http.post("/agora/ncs", content=body, headers=h).status_code == 401
        assert srv.http.post("/agora/ncs", content=body).status_code == 401        # no signature at all
        body, h = signed(notice(31, SID, CNAME), v1=True)                          # V1 not accepted by default
        assert srv.http.post("/agora/ncs", content=body, headers=h).status_code == 401
        assert _rows(db, "select count(*) from notifications") == [(0,)]
        assert _rows(db, "select count(*) from jobs") == [(0,)]
        # too large, not JSON
        big = b'{"noticeId":"x","pad":"' + b"a" * (1024 * 1024) + b'"}'
        assert srv.post_ncs(big).status_code == 413
        assert srv.post_ncs(b"not json").status_code == 400
        assert srv.post_ncs(b"[1,2]").status_code == 400
        # the same notice three times plus a redundant copy (another noticeId): one job
        doc = notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1", "2"], folder="rec/"))
        for _ in range(3):
            r = srv.post_ncs(doc)
            assert r.status_code == 200 and r.json() == {"ok": True}
        assert srv.post_ncs(notice(31, SID, CNAME, details=doc["payload"]["details"])).status_code == 200
        assert srv.post_ncs(notice(11, SID, CNAME, details={"exitStatus": 0})).status_code == 200
        # test and informational events: stored, no job
        assert srv.post_ncs(notice(31, "testsid", "test_webhook")).status_code == 200
        assert srv.post_ncs(notice(33, SID, CNAME)).status_code == 200
        job = srv.wait_state(SID, ("done",))
        assert job["location"] == f"s3://{bucket}/rec/" and job["attempts"] == 1
        assert _rows(db, "select count(*) from notifications") == [(5,)]
        assert _rows(db, "select job_id from jobs") == [(f"process:{SID}",)]
        calls = (tmp_path / "calls" / f"{SID}.calls").read_text()
        assert calls.count("start") == 1
        # the local worker and what it starts run at nice 10: mixing never delays an answer
        assert " nice=10 child=10" in calls, calls
        # the stored body is the raw body, byte for byte
        (stored,) = _rows(db, f"select body from notifications where notice_id = '{doc['noticeId']}'")[0]
        assert stored == json.dumps(doc, separators=(",", ":"))
        # metrics, behind the token
        m = srv.http.get("/metrics", headers=srv.auth()).text
        assert 'mediatools_ncs_notifications_total{event_type="none",outcome="bad_signature"} 3.0' in m
        assert 'mediatools_ncs_notifications_total{event_type="31",outcome="duplicate"} 2.0' in m
        # the redundant copy and the 11 asked for the job that existed: stored, not counted as jobs
        # (the 31s stored: that copy and the test notification)
        assert 'mediatools_ncs_notifications_total{event_type="31",outcome="job"} 1.0' in m
        assert 'mediatools_ncs_notifications_total{event_type="31",outcome="stored"} 2.0' in m
        assert 'mediatools_ncs_notifications_total{event_type="11",outcome="stored"} 1.0' in m
        assert 'mediatools_jobs{state="done"} 1.0' in m
        assert "mediatools_job_duration_seconds_count" in m
    log = srv.log.read_text()
    for secret in (NCS_SECRET, API_TOKEN):
        assert secret not in log
        assert not _rows(db, f"select 1 from notifications where body like '%{secret}%'")


def test_api_and_page_need_the_token(tmp_path, s3_server, bucket):
    with ServeProc(tmp_path, _settings(tmp_path, s3_server, bucket), process={"fake_dir": str(tmp_path)}) as srv:
        for path in ("/", "/jobs", f"/jobs/{SID}", "/metrics", f"/outputs/{SID}/0"):
            assert srv.http.get(path).status_code == 401, path
            assert srv.http.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
            assert srv.http.get(path, headers={"Authorization": API_TOKEN}).status_code == 401, path
        assert srv.http.post("/jobs", json={"sid": SID}).status_code == 401
        for path in ("/jobs/", f"/outputs/{SID}/0/"):   # no 307 built from the Host header, before auth
            r = srv.http.get(path, follow_redirects=False)
            assert r.status_code in (401, 404) and r.json(), (path, r.status_code, r.text)
        assert srv.http.get("/livez").json() == {"ok": True}
        r = srv.http.get("/readyz")
        assert r.status_code == 200 and r.json()["ok"], r.text
        # by hand: POST /jobs, then the filters
        assert srv.http.post("/jobs", json={"sid": "../x"}, headers=srv.auth()).status_code == 400
        assert srv.http.post("/jobs", json={"sid": SID, "location": "s3://elsewhere/x/"},
                             headers=srv.auth()).status_code == 400
        r = srv.http.post("/jobs", json={"sid": SID, "cname": CNAME, "location": f"s3://{bucket}/rec/"},
                          headers=srv.auth())
        assert r.status_code == 202 and r.json()["queued"]
        srv.wait_state(SID, ("done",))
        other = "0" * 31 + "7"
        for path, why in ((f"/jobs/{other}", "no job for this sid"), (f"/outputs/{other}/0", "no such output"),
                          (f"/outputs/{SID}/99", "no such output")):
            r = srv.http.get(path, headers=srv.auth(), follow_redirects=False)
            assert r.status_code == 404 and r.json() == {"ok": False, "error": why}, (path, r.text)
        assert [j["sid"] for j in srv.http.get("/jobs?state=done", headers=srv.auth()).json()["jobs"]] == [SID]
        assert srv.http.get("/jobs?state=queued", headers=srv.auth()).json()["jobs"] == []
        assert srv.http.get("/jobs?since=1h", headers=srv.auth()).json()["jobs"]
        assert srv.http.get("/jobs?since=2999-01-01T00:00:00Z", headers=srv.auth()).json()["jobs"] == []
        assert srv.http.get("/jobs?state=bogus", headers=srv.auth()).status_code == 400
        page = srv.http.get("/", headers=srv.auth())
        assert page.status_code == 200 and SID in page.text and "default-src 'none'" in page.headers[
            "content-security-policy"]
        assert API_TOKEN not in page.text and NCS_SECRET not in page.text


def test_odd_but_signed_traffic_gets_a_json_answer_never_a_500(tmp_path, s3_server, bucket):
    """Numbers beyond the ledger's columns, a lone surrogate, JSON nested 100,000 deep, unknown
    paths and methods, out-of-range filters, a cname the grammar refuses, an oversized job
    request: each a JSON answer with a meaningful status, and the service goes on."""
    with ServeProc(tmp_path, _settings(tmp_path, s3_server, bucket), process={"fake_dir": str(tmp_path)}) as srv:
        huge = b'{"noticeId":"et-huge","eventType":1000000000000000000000000000000,"productId":3,' \
               b'"payload":{"sequence":"99999999999999999999999999999999999999","sid":"s","cname":"c"}}'
        r = srv.post_ncs(huge)
        assert r.status_code == 200 and r.json() == {"ok": True}, r.text
        deep = b'{"noticeId":"deep","payload":' + b"[" * 100000 + b"]" * 100000 + b"}"
        r = srv.post_ncs(deep)
        assert r.status_code == 400 and r.json()["ok"] is False, r.text
        r = srv.post_ncs(b'{"noticeId":"sur\\ud800","eventType":33}')
        assert r.status_code == 400 and "noticeId" in r.json()["error"], r.text
        r = srv.post_ncs(b'{"noticeId":"nul","eventType":31,"payload":{"sid":"x","cname":"a\\u0000b"}}')
        assert r.status_code == 200, r.text
        for method, path, code in (("GET", "/nope", 404), ("GET", "/agora/ncs", 405), ("PUT", "/jobs", 405)):
            r = srv.http.request(method, path, headers=srv.auth())
            assert r.status_code == code and r.headers["content-type"] == "application/json", (path, r.text)
            assert r.json()["ok"] is False
        for since in ("99999999999999999999999999", "10000000000000000000000000000000000000d", "-5"):
            r = srv.http.get(f"/jobs?since={since}", headers=srv.auth())
            assert r.status_code == 400 and r.json()["ok"] is False, (since, r.text)
        r = srv.http.post("/jobs", json={"sid": SID, "cname": "../../etc/passwd"}, headers=srv.auth())
        assert r.status_code == 400, r.text
        r = srv.http.post("/jobs", content=b'{"sid":"' + b"a" * (70 * 1024) + b'"}', headers=srv.auth())
        assert r.status_code == 413, r.text
        assert srv.http.get("/livez").json() == {"ok": True}
        assert _rows(tmp_path / "ledger.db", "select count(*) from notifications") == [(2,)]
        assert _rows(tmp_path / "ledger.db", "select count(*) from jobs") == [(0,)]


class _Receiver:
    """The customer's endpoint: fails the first ``fail`` requests with 500, records all."""

    def __init__(self, fail: int) -> None:
        self.got: list[tuple[bytes, dict]] = []
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                rec.got.append((body, dict(self.headers)))
                code = 500 if len(rec.got) <= fail else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def test_outgoing_notification_signed_and_retried(tmp_path, s3_server, bucket):
    rec = _Receiver(fail=2)
    st = _settings(tmp_path, s3_server, bucket, notify_url=rec.url)
    with ServeProc(tmp_path, st, process={"fake_dir": str(tmp_path), "fake_fail": 1},
                   env={"MEDIATOOLS_NOTIFY_SECRET": "notify-secret-xyz"}) as srv:
        srv.post_ncs(notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1"], folder="rec/")))
        job = srv.wait_state(SID, ("done",))
        assert job["attempts"] == 2 and job["error"] is None            # one scripted failure, retried
        deadline = time.monotonic() + 30
        while len(rec.got) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    rec.srv.shutdown()
    assert len(rec.got) == 3                                            # 500, 500, 200: then no more
    bodies = {b for b, _ in rec.got}
    assert len(bodies) == 1                                             # the same bytes each time
    body, headers = rec.got[-1]
    want = hmac.new(b"notify-secret-xyz", body, hashlib.sha256).hexdigest()
    assert headers["Agora-Signature-V2"] == want
    doc = json.loads(body)
    assert doc["eventType"] == 1001 and doc["payload"]["sid"] == SID
    assert doc["payload"]["details"]["result"] == "total_success"
    assert b"notify-secret-xyz" not in srv.log.read_bytes()


def test_sigkill_mid_job_is_requeued_after_restart(tmp_path, s3_server, bucket):
    st = _settings(tmp_path, s3_server, bucket)
    proc = {"fake_dir": str(tmp_path / "calls"), "fake_sleep": 4.0}
    srv = ServeProc(tmp_path, st, process=proc).start()
    srv.post_ncs(notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1"], folder="rec/")))
    srv.wait_state(SID, ("running",))
    time.sleep(1.0)
    srv.kill()                                                           # no chance to release anything
    calls = tmp_path / "calls" / f"{SID}.calls"
    assert calls.read_text().count("start") == 1 and "done" not in calls.read_text()
    srv2 = ServeProc(tmp_path, st, process=proc, port=srv.port).start()
    try:
        job = srv2.wait_state(SID, ("done",), timeout=60)                # after the 3 s lease ran out
        assert job["attempts"] == 2
        assert calls.read_text().count("done") == 1
    finally:
        srv2.stop()


def test_sigterm_is_graceful(tmp_path, s3_server, bucket):
    st = _settings(tmp_path, s3_server, bucket, shutdown_grace_s=1.0, lease_s=30.0)
    proc = {"fake_dir": str(tmp_path / "calls"), "fake_sleep": 8.0}
    srv = ServeProc(tmp_path, st, process=proc).start()
    srv.post_ncs(notice(31, SID, CNAME, details=uploaded_details(SID, CNAME, ["1"], folder="rec/")))
    srv.wait_state(SID, ("running",))
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGTERM)
    assert rc == 130 and time.monotonic() - t0 < 20
    # the job that could not finish in the grace time went back to the queue at once, attempt refunded
    assert _rows(st["db"], "select state, attempts, lease_owner from jobs") == [("queued", 0, None)]
    assert "shutting down" in srv.log.read_text()


def test_sweeper_queues_a_recording_nobody_announced(tmp_path, s3_server, bucket):
    c = s3_server.client()
    for u in ("1", "2"):
        c.put_object(Bucket=bucket, Key=f"rec/a/{SID}_{CNAME}__uid_s_{u}__uid_e_audio.m3u8",
                     Body=b"#EXTM3U\n#EXTINF:15.0\nx.ts\n#EXT-X-ENDLIST\n")
    other = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"                     # still being written: no ENDLIST
    c.put_object(Bucket=bucket, Key=f"rec/{other}_{CNAME}__uid_s_1__uid_e_audio.m3u8", Body=b"#EXTM3U\n")
    st = _settings(tmp_path, s3_server, bucket, sweep_interval_s=1.0, sweep_quiet_s=0.0)
    with ServeProc(tmp_path, st, process={"fake_dir": str(tmp_path / "calls")}) as srv:
        job = srv.wait_state(SID, ("done",))
        assert job["trigger"] == "sweeper" and job["location"] == f"s3://{bucket}/rec/a/"
        time.sleep(2.5)                                            # more sweeps: no second job
        jobs = srv.http.get("/jobs", headers=srv.auth()).json()["jobs"]
        assert [j["sid"] for j in jobs] == [SID]


def test_readyz_lists_the_store_at_most_every_two_seconds(tmp_path, s3_server, bucket):
    """/readyz needs no token, and each check was a LIST per source: anyone could make the
    service send (billed) requests at will (found by a review session)."""
    from s3support import FaultProxy
    lists = []
    with FaultProxy(s3_server.port, rule=lambda m, p, n: lists.append(p) if m == "GET" and p.rstrip("/") == f"/{bucket}"
                    else None) as proxy:
        st = {**_settings(tmp_path, s3_server, bucket), "endpoint_url": proxy.url}
        with ServeProc(tmp_path, st, process={"fake_dir": str(tmp_path)}) as srv:
            time.sleep(0.5)
            before = len(lists)
            for _ in range(30):
                assert srv.http.get("/readyz").status_code == 200
            assert before >= 1 and len(lists) - before <= 1, lists   # (the start-up sweep lists too)
