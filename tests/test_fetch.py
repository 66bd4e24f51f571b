"""fetch against a real S3 endpoint: moto's server on loopback, no mocks of boto3.

The bucket holds two recordings under one prefix (one with a missing slice, an
orphan slice and a bak failover playlist), unrelated objects, and keys that would
escape the destination. A fault-injecting proxy stands in for a flaky store.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import listed_entries, run_cli
from s3support import CREDS, FaultProxy

from mediatools.agora.names import parse_name
from mediatools.agora.vendors import endpoint_for
from mediatools.atomic import stray_temp_files
from mediatools.storage.selection import refusal, relative_key
from mediatools.synth.generate import Fault

BUCKET = "calls"
PREFIX = "agora/app1/"
SID_B = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
ISOLATED = {**CREDS, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="session")
def bucket(make_recording, s3_server):
    """Session S3 server with the test bucket; yields (server, info)."""
    rec_a, truth_a = make_recording(
        "fetch_a", users=3, duration_s=60.0, seed=11, gaps=0,
        faults=[Fault("missing_slice", "0", 0, 1), Fault("orphan_slice", "1", 0, 2), Fault("bak_overlap", "2")])

    def other_sid(spec):
        spec.sid = SID_B
    rec_b, _ = make_recording("fetch_b", users=2, duration_s=20.0, seed=12, gaps=0, spec_hook=other_sid)
    srv = s3_server
    c = srv.client()
    c.create_bucket(Bucket=BUCKET)
    objects: dict[str, bytes] = {}
    for rec in (rec_a, rec_b):
        for f in sorted(rec.iterdir()):
            if f.is_file() and not f.name.startswith("truth"):
                objects[PREFIX + f.name] = f.read_bytes()
    for i in range(40):
        objects[f"{PREFIX}notes/unrelated-{i}.txt"] = f"n{i}".encode()
        objects[f"other/{i}.bin"] = b"x" * i
    a_slice = sorted(p.name for p in rec_a.iterdir() if p.suffix == ".ts")[0]
    escaping = [PREFIX + "x/../../" + a_slice, PREFIX + "x//" + a_slice]
    for k in escaping:
        objects[k] = b"evil"
    for k, v in objects.items():
        c.put_object(Bucket=BUCKET, Key=k, Body=v)
    a_playlists = sorted(p for p in rec_a.glob("*.m3u8"))
    listed = {n for p in a_playlists for n in listed_entries(p)}
    present = {p.name for p in rec_a.iterdir() if p.suffix == ".ts"}
    info = {
        "rec_a": rec_a, "rec_b": rec_b, "sid_a": truth_a["sid"] if "sid" in truth_a else
        parse_name(a_playlists[0].name).sid,
        "objects": objects, "escaping": escaping,
        "expected_a": {p.name for p in a_playlists} | (listed & present),
        "missing_a": listed - present, "orphans_a": present - listed,
    }
    yield srv, info


def fetch(srv_url: str, dest: Path, *args: str, env: dict | None = None, timeout: float = 300):
    return run_cli("fetch", f"s3://{BUCKET}/{PREFIX}", "-o", str(dest), "--endpoint-url", srv_url, *args,
                   env={**ISOLATED, **(env or {})}, timeout=timeout)


def _files(dest: Path) -> set[str]:
    return {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}


def _identical(dest: Path, objects: dict[str, bytes]) -> None:
    for rel in _files(dest):
        assert (dest / rel).read_bytes() == objects[PREFIX + rel], rel


# --- selection -----------------------------------------------------------------------------------------

def test_fetch_by_sid_gets_exactly_the_recording(bucket, tmp_path):
    srv, info = bucket
    r = fetch(srv.url, tmp_path, "--sid", info["sid_a"], "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert _files(tmp_path) == info["expected_a"]
    _identical(tmp_path, info["objects"])
    assert sorted(rep["fetched"]) == sorted(info["expected_a"])
    assert set(rep["missing"]) == info["missing_a"] and len(info["missing_a"]) == 1
    assert set(rep["orphans"]) == info["orphans_a"] and len(info["orphans_a"]) == 1
    assert not rep["orphans_fetched"]
    assert rep["bytes"] == sum(len(info["objects"][PREFIX + f]) for f in info["expected_a"])
    # with a sid, only the recording's own names are listed (not the whole prefix)
    assert rep["listed"] == sum(k.startswith((PREFIX + info["sid_a"], PREFIX + "bak")) for k in info["objects"])
    assert any(n.startswith("bak") for n in rep["fetched"])   # failover playlist and its slices
    missing = next(iter(info["missing_a"]))
    assert f"mediatools: warning: {missing}: listed by its playlist but not in the bucket (missing)" in r.stderr
    assert stray_temp_files(tmp_path) == []


def test_fetch_without_sid_gets_both_recordings(bucket, tmp_path):
    srv, info = bucket
    r = fetch(srv.url, tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    sids = {parse_name(n).sid for n in _files(tmp_path)}
    assert sids == {info["sid_a"], SID_B}
    rep = json.loads(r.stdout)
    assert rep["listed"] == sum(k.startswith(PREFIX) for k in info["objects"])
    assert {d["key"] for d in rep["refused"]} == set(info["escaping"])
    assert {d["reason"] for d in rep["refused"]} == {"'.' or '..' segment", "empty path segment"}
    for key in info["escaping"]:
        assert f"mediatools: warning: {key}: refused key" in r.stderr
    assert not (tmp_path.parent / info["escaping"][0].split("../")[-1]).exists()
    assert not any(n.endswith(".txt") or n.endswith(".bin") for n in _files(tmp_path))


def test_fetch_by_uid_and_cname(bucket, tmp_path):
    srv, info = bucket
    uids = sorted({parse_name(n).uid for n in info["expected_a"]})
    r = fetch(srv.url, tmp_path, "--sid", info["sid_a"], "--uid", uids[0], "--uid", uids[2],
              "--cname", "demo_room-1", "--json")
    assert r.returncode == 0, r.stderr
    got = _files(tmp_path)
    assert got == {n for n in info["expected_a"] if parse_name(n).uid in (uids[0], uids[2])}
    # a uid with no file: reported beside the ones fetched; only absent uids are a usage error
    r = fetch(srv.url, tmp_path / "some", "--sid", info["sid_a"], "--uid", uids[0], "--uid", "404404", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["absent_uids"] == ["404404"], r.stderr
    assert "mediatools: warning: uid 404404: no file for this uid in the listing" in r.stderr
    r = fetch(srv.url, tmp_path / "some", "--sid", info["sid_a"], "--uid", uids[0], "--uid", "404404", "--strict")
    assert r.returncode == 1 and "no files for uid 404404 (--strict; nothing fetched)" in r.stderr
    r = fetch(srv.url, tmp_path / "absent", "--sid", info["sid_a"], "--uid", "404404")
    assert r.returncode == 2 and not (tmp_path / "absent").exists()
    assert r.stderr.strip() == (f"mediatools: error: no files for uid 404404; the recording has uid "
                                f"{', '.join(uids)}")
    r = fetch(srv.url, tmp_path / "none", "--cname", "no-such-room")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"mediatools: error: s3://{BUCKET}/{PREFIX}: no Agora recording files (cname no-such-room, type audio) "
        f"among {sum(k.startswith(PREFIX) for k in info['objects'])} objects")


def test_include_orphans_and_dry_run(bucket, tmp_path):
    srv, info = bucket
    r = fetch(srv.url, tmp_path, "--sid", info["sid_a"], "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert set(rep["would_fetch"]) == info["expected_a"] and not _files(tmp_path)
    r = fetch(srv.url, tmp_path, "--sid", info["sid_a"], "--include-orphans", "--json")
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path) == info["expected_a"] | info["orphans_a"]


def test_file_list_selects_users(bucket, tmp_path):
    srv, info = bucket
    pl = sorted(n for n in info["expected_a"] if n.endswith(".m3u8") and not n.startswith("bak"))[1]
    stop = {"resourceId": "r", "sid": info["sid_a"], "serverResponse": {
        "fileListMode": "json", "uploadingStatus": "uploaded",
        "fileList": [{"fileName": f"agora/app1/{pl}", "trackType": "audio", "uid": parse_name(pl).uid,
                      "mixedAllUser": False, "isPlayable": True, "sliceStartTime": 1}]}}
    fl = tmp_path / "stop.json"
    fl.write_text(json.dumps(stop))
    r = fetch(srv.url, tmp_path / "out", "--file-list", str(fl), "--json")
    assert r.returncode == 0, r.stderr
    assert {parse_name(n).uid for n in _files(tmp_path / "out")} == {parse_name(pl).uid}


# --- resume and verification ------------------------------------------------------------------------------

def test_resume_after_kill(bucket, tmp_path):
    srv, info = bucket
    with FaultProxy(srv.port, delay_s=0.15) as proxy:
        cmd = [sys.executable, "-m", "mediatools", "fetch", f"s3://{BUCKET}/{PREFIX}", "-o", str(tmp_path),
               "--endpoint-url", proxy.url, "--sid", info["sid_a"], "--jobs", "2"]
        proc = subprocess.Popen(cmd, env={**os.environ, **ISOLATED}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len([f for f in _files(tmp_path) if f.endswith(".ts")]) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = _files(tmp_path)
    done_before = {f for f in partial if not f.startswith(".mediatools-tmp-")}
    assert 3 <= len(done_before) < len(info["expected_a"])
    _identical_subset = {f: (tmp_path / f).read_bytes() for f in done_before}
    for f, data in _identical_subset.items():
        assert data == info["objects"][PREFIX + f]        # what was renamed is whole
    r = fetch(srv.url, tmp_path, "--sid", info["sid_a"], "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert set(rep["skipped"]) == done_before
    assert set(rep["fetched"]) == info["expected_a"] - done_before
    assert _files(tmp_path) == info["expected_a"]
    _identical(tmp_path, info["objects"])
    assert stray_temp_files(tmp_path) == []


def test_corrupted_local_files_are_refetched(bucket, tmp_path):
    srv, info = bucket
    assert fetch(srv.url, tmp_path, "--sid", info["sid_a"]).returncode == 0
    slices = sorted(f for f in info["expected_a"] if f.endswith(".ts"))
    flipped, short = tmp_path / slices[0], tmp_path / slices[1]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF                      # same size, different bytes
    flipped.write_bytes(bytes(data))
    short.write_bytes(short.read_bytes()[:1000])
    r = fetch(srv.url, tmp_path, "--sid", info["sid_a"], "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert sorted(rep["fetched"]) == sorted([slices[0], slices[1]])
    assert len(rep["skipped"]) == len(info["expected_a"]) - 2
    _identical(tmp_path, info["objects"])


# --- a flaky store ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("direct", ["1", "0"], ids=["presigned-urllib3", "botocore"])
def test_transient_faults_are_retried_to_a_correct_result(bucket, tmp_path, direct):
    srv, info = bucket
    plan = {1: "slowdown", 2: "reset", 3: "truncate"}

    def rule(method, path, n):
        return plan.get(n) if method == "GET" and (path.endswith(".ts") or path.endswith(".m3u8")) else None

    with FaultProxy(srv.port, rule=rule) as proxy:
        r = fetch(proxy.url, tmp_path, "--sid", info["sid_a"], "--json", "--retries", "4",
                  env={"MEDIATOOLS_S3_DIRECT": direct})
    assert r.returncode == 0, r.stderr
    # the GETs of slices and playlists really took the path under test
    assert set(proxy.signing[-len(info["expected_a"]):]) == {"presigned" if direct == "1" else "header"}
    kinds = [k for k, _ in proxy.injected]
    n = len(info["expected_a"])
    assert kinds.count("slowdown") == n and kinds.count("reset") == n and kinds.count("truncate") == n
    assert _files(tmp_path) == info["expected_a"]
    _identical(tmp_path, info["objects"])
    assert stray_temp_files(tmp_path) == []


def test_ca_bundle_settings_keep_the_direct_path(bucket, tmp_path):
    """A CA bundle in the environment (common on managed machines) is honoured by the
    direct path rather than forcing every GET through botocore; a proxy does force it."""
    srv, info = bucket
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()
                   if Path("/etc/ssl/certs/ca-certificates.crt").exists() else b"")
    for env, want in (({"AWS_CA_BUNDLE": str(ca), "REQUESTS_CA_BUNDLE": str(ca)}, "presigned"),
                      ({"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}, "header")):
        out = tmp_path / want
        with FaultProxy(srv.port) as proxy:
            r = fetch(proxy.url, out, "--sid", info["sid_a"], env={"MEDIATOOLS_S3_DIRECT": "", **env})
        assert r.returncode == 0, r.stderr
        assert proxy.signing and set(proxy.signing) == {want}, env
        assert _files(out) == info["expected_a"]


@pytest.mark.parametrize("direct", ["1", "0"], ids=["presigned-urllib3", "botocore"])
def test_persistent_failure_is_a_clear_error(bucket, tmp_path, direct):
    srv, info = bucket
    victim = sorted(f for f in info["expected_a"] if f.endswith(".ts"))[2]

    def rule(method, path, n):
        return "error500" if path.endswith(victim) else None

    with FaultProxy(srv.port, rule=rule) as proxy:
        r = fetch(proxy.url, tmp_path, "--sid", info["sid_a"], "--retries", "2",
                  env={"MEDIATOOLS_S3_DIRECT": direct})
    assert r.returncode == 1
    assert (f"mediatools: error: {victim}: failed after 2 attempts: InternalError (HTTP 500): injected"
            in r.stderr.splitlines())
    assert "Traceback" not in r.stderr
    assert _files(tmp_path) == info["expected_a"] - {victim}
    assert stray_temp_files(tmp_path) == []


def test_mid_body_failure_that_never_heals(bucket, tmp_path):
    srv, info = bucket
    victim = sorted(f for f in info["expected_a"] if f.endswith(".ts"))[0]
    with FaultProxy(srv.port, rule=lambda m, p, n: "truncate" if p.endswith(victim) else None) as proxy:
        r = fetch(proxy.url, tmp_path, "--sid", info["sid_a"], "--retries", "3")
    assert r.returncode == 1
    line = next(ln for ln in r.stderr.splitlines() if victim in ln and "error" in ln)
    assert line.startswith(f"mediatools: error: {victim}: failed after 3 attempts: ")
    assert not (tmp_path / victim).exists()


# --- where, and credentials -----------------------------------------------------------------------------

def test_agora_storage_config_and_secrets_never_printed(bucket, tmp_path):
    srv, info = bucket
    secret = "S3cr3t-never-print-me"
    cfg = {"cname": "demo_room-1", "uid": "527841", "clientRequest": {"storageConfig": {
        "vendor": 11, "region": 0, "bucket": BUCKET, "accessKey": "AKIDNEVERPRINTED", "secretKey": secret,
        "fileNamePrefix": ["agora", "app1"], "extensionParams": {"endpoint": srv.url}}}}
    f = tmp_path / "start.json"
    f.write_text(json.dumps(cfg))
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    r = run_cli("fetch", "-o", str(tmp_path / "out"), "--agora-storage-config", str(f), "--sid", info["sid_a"],
                "--json", env={**ISOLATED, **env})
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path / "out") == info["expected_a"]
    cfg["clientRequest"]["storageConfig"]["extensionParams"]["endpoint"] = "http://127.0.0.1:9"  # refused
    f.write_text(json.dumps(cfg))
    r2 = run_cli("--debug", "fetch", "-o", str(tmp_path / "out2"), "--agora-storage-config", str(f),
                 "--retries", "1", env={**ISOLATED, **env})
    assert r2.returncode == 1
    for out in (r.stdout, r.stderr, r2.stdout, r2.stderr):
        assert secret not in out and "AKIDNEVERPRINTED" not in out


def test_no_credentials_is_a_clear_error(bucket, tmp_path):
    srv, _ = bucket
    r = fetch(srv.url, tmp_path, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"mediatools: error: s3://{BUCKET}/{PREFIX}: no credentials found (set AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, --profile, --agora-storage-config, or --no-sign-request for a public bucket)")


def test_inspect_and_mix_take_s3_sources_through_the_cache(bucket, tmp_path):
    srv, info = bucket
    cache = tmp_path / "cache"
    args = ["--endpoint-url", srv.url, "--cache-dir", str(cache), "--sid", info["sid_a"]]
    r = run_cli("inspect", f"s3://{BUCKET}/{PREFIX}", "--json", "--no-probe", *args, env=ISOLATED)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [rec["sid"] for rec in doc["recordings"]] == [info["sid_a"]]
    assert len(doc["recordings"][0]["users"]) == 3
    assert f"{len(info['expected_a'])} fetched, 0 reused" in r.stderr
    out = tmp_path / "mix.m4a"
    r = run_cli("mix", f"s3://{BUCKET}/{PREFIX}", "-o", str(out), *args, env=ISOLATED)
    assert r.returncode == 0, r.stderr
    assert f"0 fetched, {len(info['expected_a'])} reused" in r.stderr
    assert out.stat().st_size > 10_000
    r = run_cli("verify", str(out), f"s3://{BUCKET}/{PREFIX}", "--json", *args, env=ISOLATED)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["passed"] is True
    r = run_cli("merge", f"s3://{BUCKET}/{PREFIX}", "-o", str(tmp_path / "stems"), "--json", *args, env=ISOLATED)
    assert r.returncode == 0, r.stderr
    assert len([f for f in json.loads(r.stdout)["files"].values() if f]) == 3
    # the cache is the fetched recording, byte for byte; nothing else landed there
    cached = cache / "s3"
    assert not cached.exists()
    files = {p.name: p for p in cache.rglob("*") if p.is_file()}
    assert set(files) == info["expected_a"]
    assert all(p.read_bytes() == info["objects"][PREFIX + n] for n, p in files.items())


# --- pure parts ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rel,why", [
    ("a/b.ts", None), ("../b.ts", "'.' or '..' segment"), ("a/./b.ts", "'.' or '..' segment"),
    ("/etc/b.ts", "absolute path"), ("a//b.ts", "empty path segment"), ("a\\..\\b.ts", "backslash in key"),
    ("C:/b.ts", "drive letter"), ("c:b.ts", "drive letter"), ("", "empty name"), ("a/b.ts/", "empty path segment"),
    ("sid_room:1 +#%?@[x]__uid_s_1__uid_e_audio.m3u8", None),
])
def test_refusal(rel, why):
    assert refusal(rel) == why


def test_relative_key_keeps_the_sub_path_below_the_prefix():
    assert relative_key("agora/app1/x/y.ts", "agora/app1/") == "x/y.ts"
    assert relative_key("agora/app1/sid_c.ts", "agora/app1/sid") == "sid_c.ts"
    assert relative_key("sid_c.ts", "") == "sid_c.ts"
    assert relative_key("sid_c.ts", "sid") == "sid_c.ts"


@pytest.mark.parametrize("vendor,code,url,region", [
    (1, 0, None, "us-east-1"), (1, 25, None, "eu-south-1"),
    (2, 0, "https://oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou"),
    (3, 2, "https://cos.ap-shanghai.myqcloud.com", "ap-shanghai"),
    (6, 0, "https://storage.googleapis.com", "auto"),
    (7, 1, "https://obs.cn-north-4.myhuaweicloud.com", "cn-north-4"),
    (11, 0, "https://minio.example.com:9000", None),
])
def test_vendor_endpoints(vendor, code, url, region):
    ep = endpoint_for(vendor, code, "minio.example.com:9000" if vendor == 11 else None)
    assert (ep.endpoint_url, ep.region) == (url, region)


def test_vendor_errors():
    from mediatools.errors import UsageError
    with pytest.raises(UsageError, match="vendor 5 \\(Microsoft Azure Blob\\) has no S3 API"):
        endpoint_for(5, 0)
    with pytest.raises(UsageError, match="unknown region code 17 for vendor 1 \\(Amazon S3\\)"):
        endpoint_for(1, 17)
    with pytest.raises(UsageError, match="vendor 11 needs its endpoint"):
        endpoint_for(11, 0)


def test_library_fetch_returns_the_report(bucket, tmp_path, monkeypatch):
    """The library call behind the command: same selection, same report."""
    from mediatools import fetch as fetch_api
    from mediatools.storage import FetchOptions, S3Location, Selection, Settings
    srv, info = bucket
    for k, v in ISOLATED.items():
        monkeypatch.setenv(k, v)
    opts = FetchOptions(selection=Selection(sid=info["sid_a"]), settings=Settings(endpoint_url=srv.url), jobs=4)
    rep = fetch_api(S3Location(BUCKET, PREFIX), tmp_path, opts)
    assert rep.ok and set(rep.fetched) == info["expected_a"] and set(rep.missing) == info["missing_a"]
    assert rep.to_dict()["counts"]["fetched"] == len(info["expected_a"])
    again = fetch_api(f"s3://{BUCKET}/{PREFIX}", tmp_path, opts)
    assert again.fetched == [] and set(again.skipped) == info["expected_a"]


def test_symlinked_folder_in_destination_is_refused(bucket, tmp_path):
    """A folder inside -o that is a symlink to elsewhere cannot carry files out of -o."""
    srv, info = bucket
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "notes").symlink_to(outside, target_is_directory=True)
    c = srv.client()
    name = sorted(n for n in info["expected_a"] if n.endswith(".ts"))[0]
    key = PREFIX + "notes/" + name
    c.put_object(Bucket=BUCKET, Key=key, Body=b"payload")
    try:
        r = fetch(srv.url, dest, "--json", "--include-orphans")
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        assert {"key": key, "reason": "key would land outside the destination"} in rep["refused"]
        assert list(outside.iterdir()) == []
    finally:
        c.delete_object(Bucket=BUCKET, Key=key)


def test_cname_with_url_special_characters(make_recording, s3_server, tmp_path):
    """Agora allows spaces and + # % : ? @ [ ] in a channel name; keys must be signed and
    fetched exactly, and land under the same names."""
    def odd_cname(spec):
        spec.cname = "room 1+#%:?@[x]"
        spec.sid = "c0ffee00c0ffee00c0ffee00c0ffee00"
    rec, _ = make_recording("fetch_odd_cname", users=1, duration_s=20.0, seed=3, gaps=0, spec_hook=odd_cname)
    c = s3_server.client()
    c.create_bucket(Bucket="oddnames")
    names = sorted(p.name for p in rec.iterdir() if p.suffix in (".ts", ".m3u8"))
    assert all("room 1+#%:?@[x]" in n for n in names)
    for n in names:
        c.upload_file(str(rec / n), "oddnames", "x/" + n)
    r = run_cli("fetch", "s3://oddnames/x/", "-o", str(tmp_path), "--endpoint-url", s3_server.url, "--json",
                env=ISOLATED)
    assert r.returncode == 0, r.stderr
    assert sorted(_files(tmp_path)) == names
    assert all((tmp_path / n).read_bytes() == (rec / n).read_bytes() for n in names)


def test_objects_without_an_md5_etag_are_checked_against_what_was_written(make_recording, s3_server, tmp_path):
    """A multipart (or SSE-KMS) ETag is no MD5, so length was all a rerun checked: a corrupted
    local copy, or an object replaced by one of the same size, was kept. fetch now records
    what it wrote for such objects (ETag, size, MD5) and fetches again what that does not vouch for."""
    rec, _ = make_recording("fetch_multipart", users=2, duration_s=20.0, seed=14, gaps=0)
    c = s3_server.client()
    c.create_bucket(Bucket="mp-bucket")

    def put_multipart(key: str, body: bytes) -> None:
        up = c.create_multipart_upload(Bucket="mp-bucket", Key=key)
        part = c.upload_part(Bucket="mp-bucket", Key=key, UploadId=up["UploadId"], PartNumber=1, Body=body)
        c.complete_multipart_upload(Bucket="mp-bucket", Key=key, UploadId=up["UploadId"],
                                    MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})

    files = {f.name: f.read_bytes() for f in sorted(rec.iterdir()) if f.suffix in (".ts", ".m3u8")}
    for name, body in files.items():
        put_multipart(f"mp/{name}", body)
    assert "-" in c.head_object(Bucket="mp-bucket", Key=f"mp/{next(iter(files))}")["ETag"]

    def run() -> dict:
        r = run_cli("fetch", "s3://mp-bucket/mp/", "-o", str(tmp_path / "out"), "--endpoint-url", s3_server.url,
                    "--json", env=ISOLATED)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert len(run()["fetched"]) == len(files)
    assert run()["skipped"] == sorted(files) and (tmp_path / "out" / ".mediatools-fetched.json").is_file()
    slices = sorted(n for n in files if n.endswith(".ts"))
    local = tmp_path / "out" / slices[0]
    data = bytearray(local.read_bytes())
    data[len(data) // 2] ^= 0xFF                      # same size, different bytes
    local.write_bytes(bytes(data))
    assert run()["fetched"] == [slices[0]]
    changed = bytearray(files[slices[1]])
    changed[len(changed) // 2] ^= 0x55                # replaced in the bucket by one of the same size
    put_multipart(f"mp/{slices[1]}", bytes(changed))
    assert run()["fetched"] == [slices[1]]
    assert (tmp_path / "out" / slices[1]).read_bytes() == bytes(changed)
    doc = json.loads(run_cli("inspect", str(tmp_path / "out"), "--json", check=True).stdout)
    assert not [p for p in doc["recordings"][0]["problems"] if "mediatools-fetched" in p["file"]]
