"""serve: the pure parts (signatures, triggers, job rules, sweeper rule, notify body, config)."""
from __future__ import annotations

import json
import os

import pytest

from mediatools.errors import UsageError
from mediatools.service import config, jobs, signature, sweeper, triggers
from mediatools.service.ledger import Job
from mediatools.service.notify import build_body
from mediatools.storage.location import S3Location

VECTOR = (b'{"eventType":10,"noticeId":"4eb720f0-8da7-11e9-a43e-53f411c2761f","notifyMs":1560408533119,'
          b'"payload":{"a":"1","b":2},"productId":1}')
V2 = "de96da5acf03b0021ac3b4fa2225e7ae6f3533a30d50bb02c08ea4fa748bda24"
V1 = "5a3bb6a6d9fad2ea9ae3fb707a14c9d7f3136df1"
SID, CNAME = "6f1b2c3d4e5f60718293a4b5c6d7e8f9", "demo_room-1"


def test_agora_test_vector():
    assert signature.sign_v2(b"secret", VECTOR) == V2
    assert signature.sign_v1(b"secret", VECTOR) == V1
    assert signature.check(b"secret", VECTOR, V2)
    assert signature.check(b"secret", VECTOR, V2.upper())          # hex case does not matter
    assert not signature.check(b"secret", VECTOR + b" ", V2)       # the raw bytes are signed
    assert not signature.check(b"other", VECTOR, V2)
    assert not signature.check(b"secret", VECTOR, None, V1)        # V1 only when asked for
    assert signature.check(b"secret", VECTOR, None, V1, accept_sha1=True)
    assert not signature.check(b"secret", VECTOR, "00" * 32, V1, accept_sha1=True)  # a wrong V2 is not rescued
    assert not signature.check(b"secret", VECTOR, "", V1, accept_sha1=True)   # nor an empty V2 header
    assert not signature.check(b"secret", VECTOR, "é" * 64)


def _doc(et: int, **payload):
    base = {"sid": SID, "cname": CNAME, "uid": "1", "sequence": 0, "details": {}}
    base.update(payload)
    return {"noticeId": "n1", "productId": 3, "eventType": et, "notifyMs": 1, "payload": base}


def _decide(doc):
    return triggers.decide(doc, triggers.parse_notice(doc))


def test_triggers():
    d = _decide(_doc(31, details={"fileList": [{"fileName": f"a/b/{SID}_{CNAME}__uid_s_1__uid_e_audio.m3u8"}]}))
    assert (d.kind, d.sid, d.cname, d.folder, d.wait) == ("process", SID, CNAME, "a/b/", False)
    d = _decide(_doc(31, details={"fileList": [{"fileName": f"{SID}_{CNAME}__uid_s_1__uid_e_audio.m3u8"}]}))
    assert d.kind == "process" and d.folder is None                 # no folder: list the sources
    assert _decide(_doc(32)).wait and _decide(_doc(32)).kind == "process"
    assert _decide(_doc(11, details={"exitStatus": 0})).kind == "process"
    assert _decide(_doc(11, details={"exitStatus": 1})).kind is None
    assert _decide(_doc(11)).kind is None
    v = _decide(_doc(1001, details={"result": "partial_success", "fileList": [{"fileName": f"{SID}_{CNAME}_0.m4a"}]}))
    assert (v.kind, v.agora_result, v.agora_files) == ("verify", "partial_success", (f"{SID}_{CNAME}_0.m4a",))
    v = _decide(_doc(1001, details={"result": "total_success", "fileList": [{"filename": f"a/{SID}_{CNAME}_0.mp4"}]}))
    assert v.agora_files == (f"a/{SID}_{CNAME}_0.mp4",)               # Agora's Chinese reference: "filename"
    for et in (33, 40, 41, 43, 12, 10):
        assert _decide(_doc(et)).kind is None
    assert _decide(_doc(31, cname="test_webhook")).kind is None      # the console's test
    assert _decide({**_doc(31), "productId": 1}).kind is None


@pytest.mark.parametrize("sid,cname", [("../x", CNAME), ("a_b", CNAME), (SID, "room/../../x"), ("", CNAME),
                                       (SID, "a__uid_s_1"), (SID, None), ("s" * 200, CNAME), (SID, "x\ny")])
def test_triggers_refuse_names_the_grammar_rejects(sid, cname):
    d = _decide(_doc(31, sid=sid, cname=cname))
    assert d.kind is None and d.sid is None


def test_folder_from_file_list_is_checked():
    pl = f"{SID}_{CNAME}__uid_s_1__uid_e_audio.m3u8"
    assert triggers.folder_of([f"../etc/{pl}"], SID) is None
    assert triggers.folder_of([f"a//b/{pl}"], SID) is None
    assert triggers.folder_of([f"a/{pl}", f"b/{pl}"], SID) is None   # disagree
    assert triggers.folder_of([f"x/{pl}", "x/other.txt"], SID) == "x/"
    assert triggers.folder_of([f"x/{pl}"], "othersid") is None
    mix = f"{SID}_{CNAME}_0.m4a"
    assert triggers.folder_of([f"x/{mix}"], SID) is None                 # a mix counts for a 1001 only
    assert triggers.folder_of([f"x/{mix}"], SID, mixes=True) == "x/"
    assert triggers.folder_of([f"../{mix}"], SID, mixes=True) is None
    assert _decide(_doc(1001, details={"fileList": [{"fileName": f"rec/{mix}"}]})).folder == "rec/"


@pytest.mark.parametrize("body", [b"[]", b'{"eventType":31}', b'{"noticeId":""}', b'{"noticeId":5}'])
def test_parse_notice_refuses_non_notices(body):
    with pytest.raises(triggers.BadNotice):
        triggers.parse_notice(json.loads(body))


def test_location_only_inside_sources():
    srcs = [S3Location("bkt", "rec/"), S3Location("other", "")]
    assert jobs.location_for("rec/a/", srcs[:1]) == "s3://bkt/rec/a/"
    assert jobs.location_for("elsewhere/", srcs[:1]) is None
    assert jobs.location_for("elsewhere/", srcs) == "s3://other/elsewhere/"
    assert jobs.location_for(None, srcs) is None
    # NCS keys name no bucket: a folder inside sources of two buckets is looked for in each
    assert jobs.location_for("rec/a/", srcs) is None
    two = [S3Location("other", "recordings/"), S3Location("rec", "recordings/")]
    assert jobs.location_for("recordings/", two) is None


def test_a_source_is_the_folder_it_names():
    """``s3://b/recordings`` means the folder, not every key starting with "recordings" nor (through
    the folder above it) the whole bucket."""
    from mediatools.service.config import build, source_folder
    assert source_folder("s3://b/recordings") == "s3://b/recordings/"
    assert source_folder("s3://b/a/b/") == "s3://b/a/b/" and source_folder("s3://b") == "s3://b/"
    cfg = build({}, {"sources": ("s3://rec/recordings",)})
    assert cfg.sources == ["s3://rec/recordings/"]
    assert [loc.folder for loc in cfg.locations()] == ["recordings/"]
    assert jobs.location_for("private/", cfg.locations()) is None
    assert jobs.location_for("recordings/", cfg.locations()) == "s3://rec/recordings/"


def test_agora_files_outside_the_recording_folder_are_not_read():
    from mediatools.service.tasks import beside
    assert beside(["rec/sid_c_0.m4a", "sid_c_0.mp3", "private/salary.mp3", "rec/x/sid_c_0.m4a"], "rec/") == (
        ["rec/sid_c_0.m4a", "rec/sid_c_0.mp3"], ["private/salary.mp3", "rec/x/sid_c_0.m4a"])
    assert beside(["a.m4a", "rec/a.m4a"], "") == (["a.m4a"], ["rec/a.m4a"])


def test_judge():
    kw = dict(attempts=1, age_s=10, max_attempts=3, base_s=2, max_s=30, later_s=60, deadline_s=3600)
    assert jobs.judge({"status": "processed"}, None, **kw).action == "done"
    assert jobs.judge({"status": "skipped"}, None, **kw).action == "done"
    o = jobs.judge({"status": "failed", "error": "boom"}, None, **kw)
    assert (o.action, o.delay_s, o.error) == ("retry", 2, "boom")
    assert jobs.judge(None, "KilledWorker: x", **{**kw, "attempts": 2}).delay_s == 4
    o = jobs.judge(None, "KilledWorker: x", **{**kw, "attempts": 3})
    assert o.action == "failed" and "after 3 attempts" in o.error
    assert jobs.judge({"status": "incomplete"}, None, **kw).action == "later"
    assert jobs.judge({"status": "incomplete"}, None, **{**kw, "age_s": 3590}).action == "failed"
    assert [jobs.backoff_s(n, 5, 60) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]
    # files named while it ran: again at once, no failure counted, whatever its age
    o = jobs.judge({"status": "superseded", "error": "more"}, None, **{**kw, "attempts": 3, "age_s": 9999})
    assert (o.action, o.delay_s) == ("later", 0.0)


def test_sweeper_candidates():
    pl = f"{SID}_{CNAME}__uid_s_1__uid_e_audio.m3u8"
    ts = f"{SID}_{CNAME}__uid_s_1__uid_e_audio_20260314092653589.ts"
    L = sweeper.Listed
    old, now = 1_000_000, 1_000_000 + 600_000
    objs = [L(f"r/{pl}", old), L(f"r/{ts}", old), L(f"q/{pl}", now - 1000), L("r/readme.txt", now)]
    c = sweeper.candidates(objs, set(), now, 120)
    assert [(x.sid, x.cname, x.folder, x.playlists) for x in c] == [(SID, CNAME, "r/", (f"r/{pl}",))]
    assert sweeper.candidates(objs, {SID}, now, 120) == []                 # a job exists
    man = L(f"r/{SID}_{CNAME}.mediatools.json", old)
    assert sweeper.candidates(objs + [man], set(), now, 120) == []          # already processed
    # a slice Agora's backup delivered that the manifest's run did not use: queued again, job or
    # not, whenever it came (one that came while that run was mixing is older than the manifest)
    used = {(f"r/{pl}", 0, ""), (f"r/{ts}", 0, "")}
    late = L(f"r/{SID}_{CNAME}__uid_s_1__uid_e_audio_20260314092708589.ts", old - 5_000)
    assert sweeper.candidates(objs + [man], {SID}, now, 120, lambda k, e: used) == []
    for known in (set(), {SID}):
        (c,) = sweeper.candidates(objs + [man, late], known, now, 120, lambda k, e: used)
        assert c.again and c.newest_ms == old
    assert sweeper.candidates(objs + [man, late], {SID}, old + 1000, 120, lambda k, e: used) == []  # not quiet
    assert sweeper.candidates(objs + [man, late], {SID}, now, 120, lambda k, e: None) == []   # unreadable
    # a failed job and no manifest: a candidate again (the sweeper compares the ledger's times)
    (c,) = sweeper.candidates(objs, {SID}, now, 120, failed={SID})
    assert c.again and c.newest_ms == old
    assert sweeper.candidates(objs, {SID}, old + 1000, 120, failed={SID}) == []              # not quiet
    # the ENDLIST to wait for: the chosen re-upload, and only the newest (bak) family's
    from mediatools.agora.names import playlist_name
    up, bak = playlist_name(SID, CNAME, "1", tick=5, index=0), playlist_name(SID, CNAME, "1", bak=0)
    c = sweeper.candidates([L(f"r/{pl}", old, 100), L(f"r/{up}", old, 200), L(f"r/{ts}", old)], set(), now, 120)
    assert c[0].playlists == (f"r/{up}",)
    c = sweeper.candidates([L(f"r/{pl}", old, 100), L(f"r/{bak}", old, 50), L(f"r/{ts}", old)], set(), now, 120)
    assert c[0].playlists == (f"r/{bak}",)


def _job(**kw):
    base = dict(job_id=f"process:{SID}", kind="process", sid=SID, cname=CNAME, location="s3://b/r/", state="done",
                attempts=1, next_ms=0, lease_owner=None, lease_until_ms=None, wait=False, trigger="ncs:x",
                created_ms=1, updated_ms=2, started_ms=1, finished_ms=2, error=None, result=None,
                agora_result=None, agora_files=None)
    base.update(kw)
    return Job(**base)


def test_notify_body_is_1001_shaped():
    res = {"status": "processed", "outputs": [{"key": f"r/{SID}_{CNAME}_0.m4a", "size": 10, "md5": "ab"}],
           "verify": {"passed": True}}
    nid, body = build_body(_job(), res)
    doc = json.loads(body)
    assert doc["noticeId"] == nid and doc["eventType"] == 1001 and doc["productId"] == 3
    d = doc["payload"]["details"]
    assert d["msgName"] == "postpone_transcode_final_result" and d["result"] == "total_success"
    assert d["fileList"] == [{"fileName": f"r/{SID}_{CNAME}_0.m4a", "size": 10, "md5": "ab"}]
    assert doc["payload"]["sid"] == SID and doc["payload"]["cname"] == CNAME
    assert json.loads(build_body(_job(), {**res, "verify": {"passed": False}})[1])["payload"]["details"]["result"] \
        == "partial_success"
    assert json.loads(build_body(_job(state="failed", error="x"), None)[1])["payload"]["details"]["result"] == "failed"


def test_config_refuses_secrets_in_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[serve]\nsources = ["s3://b/"]\napi_token = "abc"\n')
    with pytest.raises(UsageError, match="secrets do not belong") as ei:
        config.from_toml(p)
    assert "abc" not in str(ei.value)
    p.write_text('[serve]\nsources = ["s3://b/"]\nbogus = 1\n')
    with pytest.raises(UsageError, match="unknown settings: bogus"):
        config.from_toml(p)


def test_config_worker_nice():
    assert config.build({"sources": ["s3://b/"]}, {}).worker_nice == 10
    assert config.build({"sources": ["s3://b/"], "worker_nice": 3}, {"worker_nice": 19}).worker_nice == 19
    with pytest.raises(UsageError, match="--worker-nice must be 0 to 19"):
        config.build({"sources": ["s3://b/"], "worker_nice": 20}, {})


def test_config_secrets_from_env_or_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDIATOOLS_NCS_SECRET", raising=False)
    monkeypatch.delenv("MEDIATOOLS_API_TOKEN", raising=False)
    cfg = config.build({}, {"sources": ("s3://b/p/",)})
    with pytest.raises(UsageError, match="no NCS secret"):
        config.load_secrets(cfg)
    monkeypatch.setenv("MEDIATOOLS_NCS_SECRET", "s3cr3t-value")
    f = tmp_path / "tok"
    f.write_text("token-from-a-file-0123456789\n")
    cfg.api_token_file = str(f)
    config.load_secrets(cfg)
    assert cfg.ncs_secret == b"s3cr3t-value" and cfg.api_token == b"token-from-a-file-0123456789"
    assert cfg.notify_secret == cfg.ncs_secret
    shown = repr(cfg) + json.dumps(cfg.public(), default=str)
    assert "s3cr3t-value" not in shown and "token-from-a-file" not in shown
    with pytest.raises(UsageError, match="--source"):
        config.build({}, {})


def test_notify_url_without_credentials_and_every_send_failure_counted(tmp_path):
    """A ``user:pass@`` in --notify-url went into every urllib error, logged twice a second
    for ever (http.client.InvalidURL was not caught, so the entry was never counted or given
    up; found by a review session): refused up front, without echoing the URL."""
    from mediatools.service.notify import Notifier

    config.build({"sources": ["s3://b/"], "notify_url": "https://hooks.example.com:8443/agora"}, {})
    for bad, why in [("https://user:s3cretpw@notify.example/hook", "must not carry credentials"),
                     ("ftp://notify.example/hook", "http:// or https://"), ("https:///nohost", "with a host"),
                     ("http://h:port/x", "not a valid URL")]:
        with pytest.raises(UsageError, match=why) as e:
            config.build({"sources": ["s3://b/"], "notify_url": bad}, {})
        assert "s3cretpw" not in str(e.value)
    # whatever sending raises is this entry's failure: counted, retried later, given up in the end
    from mediatools.service.ledger import open_ledger
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    n = Notifier(ledger, "http://user:s3cretpw@notify.invalid/hook", b"k", max_attempts=2, base_s=0.0)
    ledger.add_outgoing("n1", "process:x", "{}")
    for attempt in (1, 2):
        (entry,) = ledger.due_outgoing()
        n._send(entry)     # http.client.InvalidURL: neither OSError nor ValueError
        (row,) = ledger.outgoing()
        assert row["attempts"] == attempt and "InvalidURL" in row["error"], row
    assert ledger.due_outgoing() == [] and row["state"] != "pending"
    ledger.close()


def test_numbers_in_strings_are_ascii_digits_only():
    """str.isdigit() takes "²" and "--1" passes lstrip("-"): int() then raised inside decide()."""
    assert triggers._int("--1") is None and triggers._int("²") is None and triggers._int("1e3") is None
    assert triggers._int(" 12 ") == 12 and triggers._int("-3") == -3 and triggers._int("9" * 21) is None
    doc = {"noticeId": "n", "eventType": 11, "productId": 3,
           "payload": {"sid": "6f1b2c3d4e5f60718293a4b5c6d7e8f9", "cname": "demo", "details": {"exitStatus": "--1"}}}
    d = triggers.decide(doc, triggers.parse_notice(doc))
    assert d.kind is None and "exitStatus" in d.reason
    doc["eventType"] = "²"
    assert triggers.parse_notice(doc).event_type is None


@pytest.mark.parametrize("db,shown", [("{tmp}/no/such/dir/ledger.db", "{tmp}/no/such/dir/ledger.db"),
                                      ("postgresql://mt:hunter22@127.0.0.1:9/x", "postgresql+psycopg://mt:***@")])
def test_serve_with_a_ledger_it_cannot_open_says_so_in_one_line(db, shown, tmp_path):
    """An unwritable SQLite path or an unreachable PostgreSQL: one line naming the database (its
    password hidden), exit 1 (it was "internal error: OperationalError" and a second line)."""
    import subprocess
    import sys

    from s3support import free_port
    env = {**os.environ, "MEDIATOOLS_API_TOKEN": "t" * 32, "MEDIATOOLS_NCS_SECRET": "s" * 32}
    p = subprocess.run([sys.executable, "-m", "mediatools", "serve", "--db", db.format(tmp=tmp_path),
                        "--source", "s3://bucket/prefix", "--port", str(free_port())],
                       capture_output=True, text=True, env=env, timeout=60)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"mediatools: error: {shown.format(tmp=tmp_path)}") and "cannot open the ledger" in lines[0]
    assert "hunter22" not in p.stderr


def test_a_notify_url_that_redirects_is_a_failed_send(tmp_path):
    """urllib followed a 302 by turning the POST into a bodiless GET, and the entry was marked
    sent though nobody received it (found by a review session): a 3xx is retried like a 5xx."""
    import http.server
    import threading

    from mediatools.service.ledger import open_ledger
    from mediatools.service.notify import Notifier
    seen: list[tuple[str, str]] = []

    class Moved(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append((self.command, self.path))
            if self.path == "/hook":
                self.send_response(302)
                self.send_header("Location", "/moved")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *a) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ledger = open_ledger(str(tmp_path / "l.db"))
        n = Notifier(ledger, f"http://127.0.0.1:{srv.server_port}/hook", b"k", max_attempts=3, base_s=0.0)
        ledger.add_outgoing("n1", "process:x", "{}")
        (entry,) = ledger.due_outgoing()
        n._send(entry)
        (row,) = ledger.outgoing()
        assert (row["state"], row["error"]) == ("pending", "HTTP 302") and seen == [("POST", "/hook")]
        ledger.close()
    finally:
        srv.shutdown()


def test_a_store_that_cannot_be_reached_is_looked_at_later_not_failed(monkeypatch):
    """A storage outage failed jobs for good after 5 quick attempts (about 75 s; found by a
    review session): listing a store nobody answers is "unreachable", refunded like a recording
    not complete yet, until the deadline."""
    import socket

    from mediatools.service.tasks import run_job
    with socket.socket() as s:          # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = {"endpoint_url": f"http://127.0.0.1:{port}", "region": "us-east-1"}
    for k, v in {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(k, v)
    out = run_job("process", "a" * 32, None, ["s3://bucket/rec/"], {}, storage, {})
    assert out["status"] == "unreachable" and "cannot list" in out["error"], out
    kw = dict(max_attempts=5, base_s=5.0, max_s=60.0, later_s=120.0, deadline_s=48 * 3600.0)
    assert jobs.judge(out, None, attempts=5, age_s=60.0, **kw).action == "later"
    gave_up = jobs.judge(out, None, attempts=1, age_s=48 * 3600.0, **kw)
    assert gave_up.action == "failed" and gave_up.error.startswith("gave up after 48.0 h: ")


@pytest.mark.parametrize("setting,message", [
    ({"lease_s": "60"}, "setting lease_s must be a number, not '60'"),
    ({"port": 99999}, "setting port must be from 1 to 65535, not 99999"),
    ({"sources": "s3://b/"}, "setting sources must be a list of strings"),
    ({"worker_nice": "5"}, "setting worker_nice must be an integer"),
    ({"workers": 0}, "setting workers must be from 1 to 256, not 0"),
    ({"sweep_interval_s": 0}, "setting sweep_interval_s must be from 1"),
    ({"poll_s": float("nan")}, "setting poll_s must be a finite number"),
    ({"accept_sha1": "yes"}, "setting accept_sha1 must be true or false"),
])
def test_config_values_are_checked_against_their_types_and_ranges(setting, message):
    """A TOML value of the wrong type or out of range is a usage error naming it (it was passed
    through: a string lease failed every dispatcher round; port 99999 bound 34463)."""
    with pytest.raises(UsageError) as e:
        config.build({"sources": ["s3://b/"], **setting}, {})
    assert str(e.value).startswith(message), str(e.value)
    ok = config.build({"sources": ["s3://b/"], "lease_s": 30, "port": 9000}, {})
    assert (ok.lease_s, type(ok.lease_s), ok.port) == (30.0, float, 9000)


def test_a_secret_beside_the_serve_table_is_refused_too(tmp_path):
    p = tmp_path / "serve.toml"
    p.write_text('api_token = "abcdefghijklmnopqrstu"\n[serve]\nsources = ["s3://b/"]\n')
    with pytest.raises(UsageError, match="secrets do not belong in a config file"):
        config.from_toml(p)


def test_serve_on_a_busy_port_fails_before_it_takes_any_job(tmp_path):
    """The port is bound before the cluster and the dispatcher start: one line naming the
    address, exit 1 (uvicorn bound after the lifespan: the job queued was processed, then exit 3)."""
    import socket
    import subprocess
    import sys

    from mediatools.service.ledger import open_ledger
    db = tmp_path / "ledger.db"
    led = open_ledger(str(db))
    led.enqueue("process", "a" * 32, "room", None, trigger="api")
    led.close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "MEDIATOOLS_API_TOKEN": "t" * 32, "MEDIATOOLS_NCS_SECRET": "s" * 32}
        p = subprocess.run([sys.executable, "-m", "mediatools", "serve", "--port", str(port), "--db", str(db),
                            "--source", "s3://bucket/prefix/", "--workers", "1"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip() == f"mediatools: error: 127.0.0.1:{port}: cannot listen (Address already in use)"
    led = open_ledger(str(db))
    assert [(j.state, j.attempts) for j in led.list_jobs()] == [("queued", 0)]
    led.close()


def test_serve_with_a_source_bucket_that_does_not_exist_says_so_before_any_job(tmp_path, s3_server):
    """A typo in a source's bucket: every sweep and every job failed with it, while the service
    answered 200 to every notification. Now the start stops with one line naming the source."""
    import subprocess
    import sys

    from s3support import CREDS, free_port
    env = {**os.environ, **CREDS, "MEDIATOOLS_API_TOKEN": "t" * 32, "MEDIATOOLS_NCS_SECRET": "s" * 32}
    p = subprocess.run([sys.executable, "-m", "mediatools", "serve", "--db", str(tmp_path / "l.db"),
                        "--source", "s3://no-such-bucket-here/rec/", "--endpoint-url", s3_server.url,
                        "--port", str(free_port())], capture_output=True, text=True, env=env, timeout=60)
    lines = p.stderr.strip().splitlines()   # (before it: the service's own INFO log lines)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[-1] == "mediatools: error: s3://no-such-bucket-here/rec/: source no such bucket (NoSuchBucket)"
    assert CREDS["AWS_SECRET_ACCESS_KEY"] not in p.stderr
