"""serve, event 1001: Agora's postpone mix verified against its recording, and nothing written.

Real parts only: the service in a subprocess, a LocalCluster, moto's S3 server, ffmpeg.
"Agora's mix" is mediatools' own mix of the recording, put where Agora puts its postpone mix
(``<sid>_<cname>_0.m4a`` beside the recording); the wrong one is the mix of the same recording
without one of its users. The 1001 bodies are shaped as Agora's NCS reference describes them:
``details`` = ``msgName``, ``result`` and ``fileList`` of ``{"fileName": …}`` (``filename`` in
its Chinese reference), the key carrying the storage prefix.
"""
from __future__ import annotations

import shutil

import pytest
from serve_support import ServeProc, notice
from test_serve_process import CNAME, _keys, _rec, _settings, _upload

import mediatools as mt
from mediatools.service.ledger import open_ledger

pytest.importorskip("mediatools.pipeline.job", reason="the process pipeline is not merged")
BUCKET = "serve-v1001"


def postpone_details(result: str, files: list[str], key: str = "fileName") -> dict:
    return {"msgName": "postpone_transcode_final_result", "result": result,
            "fileList": [{key: f} for f in files]}


def _own_mix(folder, sid, out, drop_uid=None):
    """mediatools' mix of the recording in ``folder``; without ``drop_uid``'s files when given."""
    if drop_uid is not None:
        src = out.parent / f"{out.stem}-rec"
        src.mkdir()
        for p in folder.iterdir():
            if f"__uid_s_{drop_uid}__" not in p.name:
                shutil.copy2(p, src / p.name)
        folder = src
    rep = mt.mix(mt.load_recording(folder, sid=sid), out)
    assert out.is_file(), rep
    return out


def test_1001_verifies_agoras_mix_and_publishes_nothing(tmp_path, s3_server, make_recording):
    good, bad, failed = ("e1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "f1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
                         "a9b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6")
    c = s3_server.client()
    c.create_bucket(Bucket=BUCKET)
    mixes = {}
    for sid in (good, bad):
        folder, truth = _rec(make_recording, sid)
        _upload(c, BUCKET, folder, "rec/")
        # the user who joins last: the session origin, and so t = 0 of the mix, stays where it was
        drop = max(truth["users"], key=lambda u: u["runs"][0]["offset_ms"])["uid"] if sid == bad else None
        mixes[sid] = _own_mix(folder, sid, tmp_path / f"{sid}.m4a", drop).read_bytes()
        c.put_object(Bucket=BUCKET, Key=f"rec/{sid}_{CNAME}_0.m4a", Body=mixes[sid])
    before = _keys(c, BUCKET)
    st = _settings(tmp_path, s3_server.url, BUCKET)
    with ServeProc(tmp_path, st) as srv:
        # the key with its prefix, as Agora sends it; the wrong one as a bare name under "filename"
        srv.post_ncs(notice(1001, good, CNAME, details=postpone_details("total_success", [f"rec/{good}_{CNAME}_0.m4a"])))
        srv.post_ncs(notice(1001, bad, CNAME, details=postpone_details("total_success", [f"{bad}_{CNAME}_0.m4a"],
                                                                       key="filename")))
        srv.post_ncs(notice(1001, failed, CNAME, details=postpone_details("failed", [])))
        jobs = {sid: srv.wait_state(sid, ("done", "failed"), timeout=150, kind="verify") for sid in (good, bad, failed)}
        docs = {sid: srv.job(sid) for sid in (good, bad, failed)}

    ok = jobs[good]
    assert ok["state"] == "done" and ok["agora_result"] == "total_success", ok
    assert ok["result"]["status"] == "verified" and ok["result"]["verify"]["passed"] is True, ok["result"]
    assert ok["result"]["verify"]["mix"] == f"rec/{good}_{CNAME}_0.m4a"

    wrong = jobs[bad]
    assert wrong["state"] == "done" and wrong["agora_result"] == "total_success", wrong
    v = wrong["result"]["verify"]
    assert v["passed"] is False and v["mix"] == f"rec/{bad}_{CNAME}_0.m4a", v
    assert "users_present" in {ch["name"] for ch in v["checks"] if not ch["passed"]}, v["checks"]

    none = jobs[failed]                      # no recording anywhere, no file: recorded, not retried
    assert none["state"] == "done" and none["agora_result"] == "failed" and none["attempts"] == 1, none
    assert none["result"]["status"] == "skipped" and none["result"]["verify"] is None, none
    assert "no audio file" in none["result"]["note"], none

    for sid, doc in docs.items():            # a 1001 starts no process job
        assert [j["kind"] for j in doc["jobs"]] == ["verify"], doc["jobs"]
        assert [n["event_type"] for n in doc["notifications"]] == [1001], doc["notifications"]

    assert _keys(c, BUCKET) == before        # no mix, manifest, claim or stems written
    for sid in (good, bad):                  # Agora's mix untouched
        assert c.get_object(Bucket=BUCKET, Key=f"rec/{sid}_{CNAME}_0.m4a")["Body"].read() == mixes[sid]

    ledger = open_ledger(st["db"])           # the same, as the ledger holds it
    try:
        rows = {sid: ledger.jobs_for(sid) for sid in (good, bad, failed)}
    finally:
        ledger.close()
    assert all(len(r) == 1 and r[0].kind == "verify" and r[0].state == "done" for r in rows.values()), rows
    assert [rows[s][0].agora_result for s in (good, bad, failed)] == ["total_success", "total_success", "failed"]
    assert rows[good][0].to_dict()["result"]["verify"]["passed"] is True
    assert rows[bad][0].to_dict()["result"]["verify"]["passed"] is False
