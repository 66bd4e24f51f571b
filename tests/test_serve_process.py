"""serve with the real pipeline: signed notifications in, Agora-named mixes in the bucket.

Real parts only: the service in a subprocess, a LocalCluster, moto's S3 server (with the
fault proxy in front where storage must fail), ffmpeg. Recordings: 2 users × 20 s.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import listed_entries
from serve_support import ServeProc, notice, uploaded_details
from test_mix_cmd import RATE, assert_placed

from mediatools.media.tones import decode_pcm

pytest.importorskip("mediatools.pipeline.job", reason="the process pipeline is not merged")
CNAME = "demo_room-1"


def _rec(make_recording, sid: str):
    def hook(spec):
        spec.sid = sid
    return make_recording(f"serve-{sid}", users=2, duration_s=20.0, seed=11, spec_hook=hook)


def _upload(client, bucket: str, folder: Path, prefix: str, skip: set[str] = frozenset()) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.suffix in (".m3u8", ".ts"))
    for n in names:
        if n not in skip:
            client.put_object(Bucket=bucket, Key=prefix + n, Body=(folder / n).read_bytes())
    return names


def _settings(tmp_path, endpoint, bucket, **kw):
    return {"sources": [f"s3://{bucket}/rec/"], "db": str(tmp_path / "ledger.db"), "endpoint_url": endpoint,
            "region": "us-east-1", "sweep_interval_s": 3600.0, "lease_s": 4.0, "backoff_base_s": 1.0,
            "backoff_max_s": 4.0, "incomplete_retry_s": 1.0, "backup_wait_s": 0.0, **kw}


def _keys(client, bucket):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def _check_mix(client, bucket, sid, truth, tmp_path):
    key = f"rec/{sid}_{CNAME}_0.m4a"
    local = tmp_path / f"{sid}.m4a"
    client.download_file(bucket, key, str(local))
    assert_placed(decode_pcm(local, RATE, 1), truth)


def _wait_incomplete(srv, sid: str, timeout: float = 90) -> dict:
    """The job once a run has looked at the recording and found it incomplete (queued for later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = srv.job(sid)["jobs"][0]
        if j["result"] and j["result"].get("status") == "incomplete":
            break
        time.sleep(0.3)
    return j


def test_signed_31_puts_the_mix_under_agoras_name(tmp_path, s3_server, make_recording):
    sid = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-p31")
    _upload(c, "serve-p31", folder, "rec/")
    with ServeProc(tmp_path, _settings(tmp_path, s3_server.url, "serve-p31")) as srv:
        uids = [u["uid"] for u in truth["users"]]
        assert srv.post_ncs(notice(31, sid, CNAME, details=uploaded_details(sid, CNAME, uids, "rec/"))).status_code == 200
        job = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "done", job
        assert job["result"]["status"] == "processed" and job["result"]["verify"]["passed"]
    _check_mix(c, "serve-p31", sid, truth, tmp_path)
    assert f"rec/{sid}_{CNAME}.mediatools.json" in _keys(c, "serve-p31")


def test_outputs_link_to_the_dest_bucket(tmp_path, s3_server, make_recording):
    """With [process] dest in another bucket, /outputs/<sid>/<n> pointed into the source
    bucket (404; found by a review session), and the 1001 body named only the source."""
    import httpx
    sid = "a9b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    for b in ("serve-src", "serve-dst"):
        c.create_bucket(Bucket=b)
    _upload(c, "serve-src", folder, "rec/")
    with ServeProc(tmp_path, _settings(tmp_path, s3_server.url, "serve-src"),
                   process={"dest": "s3://serve-dst/mixes/"}) as srv:
        uids = [u["uid"] for u in truth["users"]]
        assert srv.post_ncs(notice(31, sid, CNAME, details=uploaded_details(sid, CNAME, uids, "rec/"))).status_code == 200
        job = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "done", job
        r = srv.http.get(f"/outputs/{sid}/0", headers=srv.auth())
        assert r.status_code == 307 and "/serve-dst/" in r.headers["location"], r.headers
        got = httpx.get(r.headers["location"], timeout=15)
    assert got.status_code == 200
    key = f"mixes/{sid}_{CNAME}_0.m4a"
    assert got.content == c.get_object(Bucket="serve-dst", Key=key)["Body"].read()
    assert not any(k.endswith(".m4a") for k in _keys(c, "serve-src"))


def test_32_is_processed_once_the_late_slices_arrive(tmp_path, s3_server, make_recording):
    sid = "b1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-p32")
    late = sorted(p.name for p in folder.glob("*.ts"))[1]
    _upload(c, "serve-p32", folder, "rec/", skip={late})
    with ServeProc(tmp_path, _settings(tmp_path, s3_server.url, "serve-p32")) as srv:
        srv.post_ncs(notice(32, sid, CNAME, details=uploaded_details(sid, CNAME, [u["uid"] for u in truth["users"]], "rec/")))
        j = _wait_incomplete(srv, sid)
        assert j["state"] in ("queued", "running") and j["result"]["status"] == "incomplete", j
        assert f"rec/{sid}_{CNAME}_0.m4a" not in _keys(c, "serve-p32")
        c.put_object(Bucket="serve-p32", Key="rec/" + late, Body=(folder / late).read_bytes())
        job = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "done" and job["result"]["status"] == "processed", job
    _check_mix(c, "serve-p32", sid, truth, tmp_path)


def test_a_32_waits_for_a_user_it_names_whose_files_are_still_in_agoras_backup(tmp_path, s3_server,
                                                                              make_recording):
    """A 32 names both users' playlists while one user's files are all still in Agora's backup:
    the mix went out at once without that user, notified as total_success (found by a review
    session). The named user's playlist is now waited for."""
    sid = "c9b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-p32u")
    uids = [u["uid"] for u in truth["users"]]
    backed_up = {p.name for p in folder.iterdir() if f"__uid_s_{uids[1]}__" in p.name}
    _upload(c, "serve-p32u", folder, "rec/", skip=backed_up)
    with ServeProc(tmp_path, _settings(tmp_path, s3_server.url, "serve-p32u")) as srv:
        srv.post_ncs(notice(32, sid, CNAME, details=uploaded_details(sid, CNAME, uids, "rec/")))
        j = _wait_incomplete(srv, sid)
        assert j["state"] in ("queued", "running") and j["result"]["status"] == "incomplete", j
        assert any(f"uid {uids[1]}: named by Agora's notification" in r for r in j["result"]["reasons"]), j
        assert f"rec/{sid}_{CNAME}_0.m4a" not in _keys(c, "serve-p32u")
        for n in sorted(backed_up):
            c.put_object(Bucket="serve-p32u", Key="rec/" + n, Body=(folder / n).read_bytes())
        job = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "done" and job["result"]["status"] == "processed", job
    _check_mix(c, "serve-p32u", sid, truth, tmp_path)


def test_a_32_after_the_11_brings_the_backed_up_user_into_the_mix(tmp_path, s3_server, make_recording):
    """Agora's 11 names one user; its later 32 names the other, whose files are still in backup.
    The job kept the 11's list, and the mix without that user stood as total_success (found by a
    review session). The 32 now queues the finished job again, to wait for that user."""
    sid = "c6b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-p1132")
    uids = [u["uid"] for u in truth["users"]]
    backed_up = {p.name for p in folder.iterdir() if f"__uid_s_{uids[1]}__" in p.name}
    _upload(c, "serve-p1132", folder, "rec/", skip=backed_up)
    with ServeProc(tmp_path, _settings(tmp_path, s3_server.url, "serve-p1132")) as srv:
        srv.post_ncs(notice(11, sid, CNAME, details={**uploaded_details(sid, CNAME, uids[:1], "rec/"),
                                                      "exitStatus": 0}))
        first = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert first["state"] == "done" and first["result"]["status"] == "processed", first
        srv.post_ncs(notice(32, sid, CNAME, details=uploaded_details(sid, CNAME, uids, "rec/")))
        j = _wait_incomplete(srv, sid)
        assert j["state"] in ("queued", "running") and j["result"]["status"] == "incomplete", j
        assert any(f"uid {uids[1]}: named by Agora's notification" in r for r in j["result"]["reasons"]), j
        for n in sorted(backed_up):
            c.put_object(Bucket="serve-p1132", Key="rec/" + n, Body=(folder / n).read_bytes())
        job = srv.wait_state(sid, ("done",), timeout=150)
        assert job["result"]["status"] == "processed", job
    _check_mix(c, "serve-p1132", sid, truth, tmp_path)


def test_files_delivered_after_the_manifest_are_mixed_in_by_the_sweeper(tmp_path, s3_server, make_recording):
    """Agora's backup delivers a slice (and the playlist that lists it) after the job is done: no
    notification says so, and serve kept the mix without it for ever (found by a review session).
    The sweeper sees files the manifest does not list and queues the recording again, once."""
    import json as _json
    sid = "c7b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-plate")
    playlist = sorted(folder.glob("*.m3u8"))[0]
    full = playlist.read_text()
    lines = full.rstrip("\n").split("\n")
    last = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("#EXTINF"))
    late = lines[last + 1].strip()
    early = "\n".join(lines[:last] + lines[last + 2:]) + "\n"     # without the last slice
    _upload(c, "serve-plate", folder, "rec/", skip={late, playlist.name})
    c.put_object(Bucket="serve-plate", Key="rec/" + playlist.name, Body=early.encode())
    st = _settings(tmp_path, s3_server.url, "serve-plate", sweep_interval_s=1.0, sweep_quiet_s=1.0)
    mkey = f"rec/{sid}_{CNAME}.mediatools.json"
    with ServeProc(tmp_path, st) as srv:
        uids = [u["uid"] for u in truth["users"]]
        srv.post_ncs(notice(31, sid, CNAME, details=uploaded_details(sid, CNAME, uids, "rec/")))
        job = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "done" and job["result"]["status"] == "processed", job
        first = _json.loads(c.get_object(Bucket="serve-plate", Key=mkey)["Body"].read())
        assert not any(i["key"].endswith(late) for i in first["inputs"])
        time.sleep(1.5)
        c.put_object(Bucket="serve-plate", Key="rec/" + late, Body=(folder / late).read_bytes())
        c.put_object(Bucket="serve-plate", Key="rec/" + playlist.name, Body=full.encode())
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            j = srv.job(sid)["jobs"][0]
            if j["state"] == "done" and j["trigger"].startswith("sweeper") and j["finished_ms"] > job["finished_ms"]:
                break
            time.sleep(0.5)
        assert j["trigger"].startswith("sweeper: files its manifest does not list") and j["result"]["status"] == "processed", j
        again = _json.loads(c.get_object(Bucket="serve-plate", Key=mkey)["Body"].read())
        assert any(i["key"].endswith(late) for i in again["inputs"])
        time.sleep(4)                                                # more sweeps: nothing more to do
        assert srv.job(sid)["jobs"][0]["finished_ms"] == j["finished_ms"]
    _check_mix(c, "serve-plate", sid, truth, tmp_path)


def test_a_job_given_up_as_incomplete_is_done_by_the_sweeper_when_the_slice_comes(tmp_path, s3_server,
                                                                                   make_recording):
    """A listed slice is missing past the incomplete deadline: the job fails ("gave up"). Agora's
    backup delivers the slice later, and no notification says so; the job used to stay failed
    for ever (the sweeper skipped every sid with a job). Now files newer than the failed
    attempt queue it again. (Files up to a minute older than the attempt count as newer, for the
    store's clock; so here, seconds after the upload, the sweeper may rerun the failed job
    before the slice comes, and each such rerun fails the same way.)"""
    sid = "c8b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-pgone")
    late = listed_entries(sorted(folder.glob("*.m3u8"))[0])[-1]
    _upload(c, "serve-pgone", folder, "rec/", skip={late})
    st = _settings(tmp_path, s3_server.url, "serve-pgone", incomplete_deadline_s=1.0,
                   sweep_interval_s=1.0, sweep_quiet_s=1.0)
    with ServeProc(tmp_path, st) as srv:
        uids = [u["uid"] for u in truth["users"]]
        srv.post_ncs(notice(31, sid, CNAME, details=uploaded_details(sid, CNAME, uids, "rec/")))
        job = srv.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "failed" and "gave up" in job["error"], job
        time.sleep(2)
        assert f"rec/{sid}_{CNAME}_0.m4a" not in _keys(c, "serve-pgone")
        c.put_object(Bucket="serve-pgone", Key="rec/" + late, Body=(folder / late).read_bytes())
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            j = srv.job(sid)["jobs"][0]
            if j["state"] == "done":
                break
            time.sleep(0.5)
        assert j["state"] == "done" and j["result"]["status"] == "processed", j
        assert j["trigger"] == "sweeper: files came after its failed attempt", j
        time.sleep(4)                                   # more sweeps: nothing more to do
        assert srv.job(sid)["jobs"][0]["finished_ms"] == j["finished_ms"]
    _check_mix(c, "serve-pgone", sid, truth, tmp_path)


def test_sigkill_mid_job_leaves_one_set_of_outputs(tmp_path, s3_server, make_recording):
    sid = "c1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    c = s3_server.client()
    c.create_bucket(Bucket="serve-pkill")
    _upload(c, "serve-pkill", folder, "rec/")
    st = _settings(tmp_path, s3_server.url, "serve-pkill")
    srv = ServeProc(tmp_path, st).start()
    srv.post_ncs(notice(31, sid, CNAME, details=uploaded_details(sid, CNAME, [u["uid"] for u in truth["users"]], "rec/")))
    srv.wait_state(sid, ("running",), timeout=60)
    time.sleep(1.5)
    srv.kill()
    srv2 = ServeProc(tmp_path, st, port=srv.port).start()
    try:
        job = srv2.wait_state(sid, ("done", "failed"), timeout=150)
        assert job["state"] == "done", job
    finally:
        srv2.stop()
    keys = [k for k in _keys(c, "serve-pkill") if not k.endswith((".ts", ".m3u8"))]
    assert keys == [f"rec/{sid}_{CNAME}.mediatools.json", f"rec/{sid}_{CNAME}_0.m4a"], keys
    _check_mix(c, "serve-pkill", sid, truth, tmp_path)


def test_storage_down_for_a_while_then_done(tmp_path, make_recording):
    """The store is not there at all (connection refused) when the notification comes; it
    comes up later: the job is retried with backoff and done, and /readyz follows."""
    from s3support import MotoServer
    sid = "d1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    folder, truth = _rec(make_recording, sid)
    later = MotoServer()                       # port chosen, nothing listening yet
    st = _settings(tmp_path, later.url, "serve-pdown", max_attempts=20, backoff_base_s=2.0, backoff_max_s=2.0)
    with ServeProc(tmp_path, st) as srv:
        assert srv.http.get("/readyz").status_code == 503
        srv.post_ncs(notice(31, sid, CNAME, details=uploaded_details(sid, CNAME, [u["uid"] for u in truth["users"]], "rec/")))
        time.sleep(5)
        j = srv.job(sid)["jobs"][0]
        assert j["state"] in ("queued", "running") and j["attempts"] <= 1 and j["error"], j
        with later:
            c = later.client()
            c.create_bucket(Bucket="serve-pdown")
            _upload(c, "serve-pdown", folder, "rec/")
            job = srv.wait_state(sid, ("done", "failed"), timeout=150)
            assert job["state"] == "done" and job["attempts"] == 1, job   # the outage refunded its attempts
            assert srv.http.get("/readyz").status_code == 200
            _check_mix(c, "serve-pdown", sid, truth, tmp_path)
