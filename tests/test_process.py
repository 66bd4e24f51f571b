"""Issue 14: `mediatools process` against a real S3 endpoint (moto on loopback), real ffmpeg and a
real Dask LocalCluster with worker processes; the fetch tests' fault proxy counts and breaks requests.

One prefix holds six short recordings (good, bak0 failover, broken slices, a slice not yet
delivered, a playlist without ENDLIST, one already processed) and unrelated objects.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import pytest
from conftest import run_cli
from s3support import CREDS, FaultProxy
from test_mix_cmd import RATE, assert_placed

from mediatools.media.tones import decode_pcm
from mediatools.synth.generate import Fault

BUCKET = "process"
ISOLATED = {**CREDS, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true"}
SIDS = {"good": "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0", "bak": "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1",
        "broken": "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2", "late": "d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3",
        "open": "e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4", "done": "f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5"}
CNAME = "demo_room-1"


@pytest.fixture(scope="module")
def recordings(make_recording):
    """Seeds where no user's run starts or ends inside another user's mute: a tone's onset is
    broadband for a few ms and would read as the muted user's tone in assert_placed's gap check."""
    def rec(name, users, seconds, seed, faults=None, **kw):
        def hook(spec):
            spec.sid = SIDS[name]
        return make_recording(f"process_{name}", users=users, duration_s=seconds, seed=seed, faults=faults,
                              spec_hook=hook, **kw)
    return {
        "good": rec("good", 3, 30.0, 20),
        "bak": rec("bak", 3, 30.0, 24, [Fault("bak_overlap", "1")], gaps=0),   # one run of 2+ slices each
        "broken": rec("broken", 3, 30.0, 26, [Fault("garbage_slice", "0", 1, 0), Fault("zero_byte_slice", "2", 0, 0)]),
        "late": rec("late", 2, 20.0, 21),
        "open": rec("open", 2, 20.0, 27, [Fault("no_endlist", "0")]),
        "done": rec("done", 2, 20.0, 28),
    }


def _media(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".ts", ".m3u8"))


def upload(client, prefix: str, folder: Path, skip: set[str] = frozenset()) -> None:
    for p in _media(folder):
        if p.name not in skip:
            client.put_object(Bucket=BUCKET, Key=prefix + p.name, Body=p.read_bytes())


def keys(client, prefix: str = "") -> dict[str, int]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", ())})
    return out


def get(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def process_cli(url: str, prefix: str, *args: str, env: dict | None = None, timeout: float = 300):
    return run_cli("process", f"s3://{BUCKET}/{prefix}", "--endpoint-url", url, *args,
                   env={**ISOLATED, **(env or {})}, timeout=timeout)


def by_sid(doc: dict) -> dict[str, dict]:
    return {r["sid"]: r for r in doc["recordings"]}


class Recorder:
    """A proxy rule that lets everything through and remembers (method, path)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, method: str, path: str, n: int) -> None:
        with self.lock:
            self.seen.append((method, path))
        return None

    def slice_gets(self, sid: str | None = None) -> list[str]:
        return [p for m, p in self.seen if m == "GET" and p.endswith(".ts") and (sid is None or sid in p)]

    def writes(self) -> list[str]:
        return [p for m, p in self.seen if m in ("PUT", "POST", "DELETE")]


@pytest.fixture(scope="module")
def bucket(s3_server):
    c = s3_server.client()
    c.create_bucket(Bucket=BUCKET)
    return c


def mix_key(prefix: str, sid: str, ext: str = "m4a") -> str:
    return f"{prefix}{sid}_{CNAME}_0.{ext}"


def manifest_key(prefix: str, sid: str) -> str:
    return f"{prefix}{sid}_{CNAME}.mediatools.json"


def assert_mix_on_time(client, key: str, truth: dict, tmp_path: Path) -> None:
    local = tmp_path / key.rsplit("/", 1)[-1]
    local.write_bytes(get(client, key))
    assert_placed(decode_pcm(local, RATE, 1), truth, tol_ms=2.0)


def test_batch_on_a_local_cluster(recordings, bucket, s3_server, tmp_path):
    """The whole life of a prefix: first run, rerun, a late slice, changed options."""
    c, prefix = bucket, "batch/app1/"
    late_folder = recordings["late"][0]
    withheld = sorted(p.name for p in late_folder.glob("*.ts"))[1]
    for name, (folder, _) in recordings.items():
        upload(c, prefix, folder, skip={withheld} if name == "late" else set())
    for i in range(5):
        c.put_object(Bucket=BUCKET, Key=f"{prefix}notes/unrelated-{i}.txt", Body=b"x")
        c.put_object(Bucket=BUCKET, Key=f"{prefix}{SIDS['good']}_other-{i}.txt", Body=b"y")
    inputs_before = keys(c, prefix)
    # one recording is already processed (the library call, in this process)
    done = run_cli("process", f"s3://{BUCKET}/{prefix}", "--endpoint-url", s3_server.url, "--sid", SIDS["done"],
                   "--workers", "0", "-q", env=ISOLATED)
    assert done.returncode == 0, done.stderr

    rec = Recorder()
    with FaultProxy(s3_server.port, rule=rec) as proxy:
        r = process_cli(proxy.url, prefix, "--all", "--workers", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "mediatools.process/1" and doc["cluster"] == "local: 2 worker processes"
    res = by_sid(doc)
    assert {k: res[s]["status"] for k, s in SIDS.items()} == {
        "good": "processed", "bak": "processed", "broken": "processed", "late": "incomplete", "open": "incomplete",
        "done": "skipped"}
    assert doc["counts"] == {"processed": 3, "skipped": 1, "incomplete": 2, "failed": 0}
    assert all(res[SIDS[k]]["worker"].startswith("tls://127.0.0.1:") for k in ("good", "bak", "broken"))
    # the already-processed recording cost no slice download
    assert rec.slice_gets(SIDS["done"]) == []
    # incomplete: the reasons name the files, and nothing was written for them
    assert any(withheld in why and "not in the store" in why for why in res[SIDS["late"]]["reasons"])
    assert any("no #EXT-X-ENDLIST" in why for why in res[SIDS["open"]]["reasons"])
    after = keys(c, prefix)
    for k in ("late", "open"):
        assert {key for key in after if SIDS[k] in key} == {key for key in inputs_before if SIDS[k] in key}
    # the mixes are under Agora's name, every run of every user within ±2 ms
    for k in ("good", "bak", "broken"):
        sid, truth = SIDS[k], recordings[k][1]
        r_ = res[sid]
        assert r_["verify"]["passed"] is True
        assert [o["key"] for o in r_["outputs"]] == [mix_key(prefix, sid)]
        assert c.head_object(Bucket=BUCKET, Key=mix_key(prefix, sid))["ContentType"] == "audio/mp4"
        assert_mix_on_time(c, mix_key(prefix, sid), truth, tmp_path)
        assert set(r_["seconds"]) >= {"check", "fetch", "mix", "verify", "publish", "total"}
        # the manifest: inputs as listed, outputs with their MD5, the verdict, versions
        m = json.loads(get(c, manifest_key(prefix, sid)))
        assert m["schema"] == "mediatools.process-manifest/1" and m["sid"] == sid and m["cname"] == CNAME
        listed = {key: size for key, size in inputs_before.items()
                  if key.rsplit("/", 1)[-1].startswith((sid, f"bak0_{sid}")) and key.endswith((".ts", ".m3u8"))}
        assert {i["key"]: i["size"] for i in m["inputs"]} == listed
        assert all(len(i["etag"]) == 32 for i in m["inputs"])
        body = get(c, mix_key(prefix, sid))
        assert m["outputs"] == [{**r_["outputs"][0]}]
        assert m["outputs"][0]["md5"] == hashlib.md5(body).hexdigest() and m["outputs"][0]["size"] == len(body)
        assert m["verify"]["passed"] is True and m["options"]["format"] == "m4a"
        assert m["verify"]["reference"] == "mix"   # the runs as the mix decoded them: decoded once
        assert m["versions"]["mediatools"] and m["versions"]["ffmpeg"] and m["worker"] == r_["worker"]
    assert any(f.endswith(".ts") for f in [p["file"] for p in res[SIDS["broken"]]["problems"]])
    assert any("bak0_" in o["key"] for o in json.loads(get(c, manifest_key(prefix, SIDS["bak"])))["inputs"])
    assert not [k for k in after if "pending" in k or ".mediatools-tmp" in k]
    assert {k for k in after if "unrelated" in k or "_other-" in k} == \
        {k for k in inputs_before if "unrelated" in k or "_other-" in k}

    # a rerun downloads no slice and writes nothing
    rec2 = Recorder()
    with FaultProxy(s3_server.port, rule=rec2) as proxy:
        r = process_cli(proxy.url, prefix, "--all", "--workers", "2", "--json")
    assert r.returncode == 0, r.stderr
    res = by_sid(json.loads(r.stdout))
    assert {k: res[s]["status"] for k, s in SIDS.items() if k not in ("late", "open")} == dict.fromkeys(
        ("good", "bak", "broken", "done"), "skipped")
    assert rec2.slice_gets() == [] and rec2.writes() == []
    assert keys(c, prefix) == after

    # Agora's backup delivers the withheld slice: that recording is processed, the others skipped
    c.put_object(Bucket=BUCKET, Key=prefix + withheld, Body=(late_folder / withheld).read_bytes())
    r = process_cli(s3_server.url, prefix, "--all", "--workers", "2", "--json")
    assert r.returncode == 0, r.stderr
    res = by_sid(json.loads(r.stdout))
    assert res[SIDS["late"]]["status"] == "processed" and res[SIDS["good"]]["status"] == "skipped"
    assert_mix_on_time(c, mix_key(prefix, SIDS["late"]), recordings["late"][1], tmp_path)

    # changed options (mp3): processed again; the new outputs replace the old, one set remains
    r = process_cli(s3_server.url, prefix, "--sid", SIDS["good"], "--format", "mp3", "--workers", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert by_sid(json.loads(r.stdout))[SIDS["good"]]["status"] == "processed"
    good = {k for k in keys(c, prefix) if SIDS["good"] in k and not k.endswith((".ts", ".m3u8", ".txt"))}
    assert good == {mix_key(prefix, SIDS["good"], "mp3"), manifest_key(prefix, SIDS["good"])}
    assert c.head_object(Bucket=BUCKET, Key=mix_key(prefix, SIDS["good"], "mp3"))["ContentType"] == "audio/mpeg"


def test_a_slice_lost_for_good_is_given_up_after_lost_after(recordings, bucket, s3_server, tmp_path):
    """Every playlist ended, one listed slice never arrives: incomplete until the recording's last
    slice is older than --lost-after, then mixed with the hole as silence, the loss in the report."""
    c, prefix = bucket, "lost/"
    folder, truth = recordings["late"]
    sid = SIDS["late"]
    withheld = sorted(p.name for p in folder.glob("*.ts"))[1]
    upload(c, prefix, folder, skip={withheld})
    # the synthetic call is years old, so an age of ~270 years has not passed since it ended
    r = process_cli(s3_server.url, prefix, "--sid", sid, "--workers", "0", "--lost-after", "100000d", "--json")
    assert r.returncode == 0, r.stderr
    res = by_sid(json.loads(r.stdout))[sid]
    assert res["status"] == "incomplete" and any(withheld in why for why in res["reasons"]), res
    assert mix_key(prefix, sid) not in keys(c, prefix)

    r = process_cli(s3_server.url, prefix, "--sid", sid, "--workers", "0", "--lost-after", "6h", "--json")
    assert r.returncode == 0, r.stderr
    res = by_sid(json.loads(r.stdout))[sid]
    assert res["status"] == "processed", res
    assert res["reasons"] == [f"1 listed slice(s) never arrived, given up as lost (mixed as silence): {withheld}"]
    assert res["verify"]["passed"] is True
    assert [(p["code"], p["file"].rsplit("/", 1)[-1]) for p in res["problems"]] == [("missing_slice", withheld)]
    m = json.loads(get(c, manifest_key(prefix, sid)))
    assert withheld not in {i["key"].rsplit("/", 1)[-1] for i in m["inputs"]}
    assert [p["code"] for p in m["problems"]] == ["missing_slice"]
    # the lost slice turns up after all: the inputs changed, so the recording is mixed again, whole
    c.put_object(Bucket=BUCKET, Key=prefix + withheld, Body=(folder / withheld).read_bytes())
    r = process_cli(s3_server.url, prefix, "--sid", sid, "--workers", "0", "--lost-after", "6h", "--json")
    res = by_sid(json.loads(r.stdout))[sid]
    assert res["status"] == "processed" and res["problems"] == [], res
    assert_mix_on_time(c, mix_key(prefix, sid), truth, tmp_path)


def test_upload_failing_mid_way_is_retried_and_no_manifest_without_outputs(recordings, bucket, s3_server, tmp_path):
    c, prefix = bucket, "uploads/"
    folder, truth = recordings["late"]
    upload(c, prefix, folder)
    sid = SIDS["late"]
    stem = f"/{BUCKET}/{prefix}{sid}_{CNAME}_stems/{truth['users'][0]['uid']}.m4a"
    # the first stem's PUT fails once (after the mix went up): retried, then everything published
    puts: list[str] = []

    def first_put_fails(method: str, path: str, n: int) -> str | None:
        if method == "PUT" and path == stem:
            puts.append(path)
            return "error500" if len(puts) == 1 else None
        return None

    with FaultProxy(s3_server.port, rule=first_put_fails) as proxy:
        r = process_cli(proxy.url, prefix, "--sid", sid, "--stems", "--workers", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert proxy.injected == [("error500", stem)] and len(puts) == 2
    m = json.loads(get(c, manifest_key(prefix, sid)))
    assert [o["kind"] for o in m["outputs"]] == ["mix", "stem", "stem"]
    for o in m["outputs"]:
        assert o["md5"] == hashlib.md5(get(c, o["key"])).hexdigest()

    # a store that never takes the stem: failed, the mix is up but no manifest claims it done
    prefix2 = "uploads-broken/"
    upload(c, prefix2, folder)
    stem2 = stem.replace(prefix, prefix2)
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[process]\nrequest-attempts = 2\nstems = true\n")   # keep botocore's back-off short
    with FaultProxy(s3_server.port, rule=lambda m, p, n: "error500" if m == "PUT" and p == stem2 else None) as proxy:
        r = process_cli(proxy.url, prefix2, "--sid", sid, "--workers", "0", "--retries", "1", "--json",
                        "--config", str(cfg))
    assert r.returncode == 1
    res = by_sid(json.loads(r.stdout))[sid]
    assert res["status"] == "failed" and res["attempts"] == 2
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"mediatools: error: s3:/{stem2}: upload failed: An error occurred (InternalError)")
    assert "Traceback" not in r.stderr
    left = keys(c, prefix2)
    assert mix_key(prefix2, sid) in left and manifest_key(prefix2, sid) not in left
    # the store heals: the rerun may replace the mix it wrote (its pending claim says so), then the manifest
    r = process_cli(s3_server.url, prefix2, "--sid", sid, "--workers", "0", "--json", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    left = keys(c, prefix2)
    assert manifest_key(prefix2, sid) in left and not [k for k in left if "pending" in k]


def test_foreign_object_under_the_output_name_is_left_alone(recordings, bucket, s3_server):
    c, prefix = bucket, "foreign/"
    folder, truth = recordings["late"]
    upload(c, prefix, folder)
    sid = SIDS["late"]
    c.put_object(Bucket=BUCKET, Key=mix_key(prefix, sid), Body=b"Agora's own postpone mix")
    r = process_cli(s3_server.url, prefix, "--sid", sid, "--workers", "0")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"mediatools: error: {mix_key(prefix, sid)}: exists and no mediatools manifest claims it "
        "(left alone; --force replaces it)")
    assert get(c, mix_key(prefix, sid)) == b"Agora's own postpone mix"
    assert manifest_key(prefix, sid) not in keys(c, prefix)
    r = process_cli(s3_server.url, prefix, "--sid", sid, "--workers", "0", "--force", "-q")
    assert r.returncode == 0, r.stderr
    assert get(c, mix_key(prefix, sid)) != b"Agora's own postpone mix"


def test_secrets_never_in_output_reports_logs_or_manifests(recordings, bucket, s3_server, tmp_path, monkeypatch,
                                                             caplog):
    c, prefix = bucket, "secrets/app/"
    folder, _ = recordings["done"]
    upload(c, prefix, folder)
    secret, key_id = "S3cr3t-process-never-print", "AKIDPROCESSNEVER"
    cfg = {"storageConfig": {"vendor": 11, "region": 0, "bucket": BUCKET, "accessKey": key_id,
                             "secretKey": secret, "fileNamePrefix": ["secrets", "app"],
                             "extensionParams": {"endpoint": s3_server.url}}}
    f = tmp_path / "start.json"
    f.write_text(json.dumps(cfg))
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    r = run_cli("--debug", "process", "--agora-storage-config", str(f), "--all", "--workers", "1", "--stems",
                "--json", env={**ISOLATED, **env})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["recordings"][0]
    assert res["status"] == "processed" and len([o for o in res["outputs"] if o["kind"] == "stem"]) == 2
    # the library call, in this process, with every mediatools logger at DEBUG
    from mediatools.pipeline import ProcessOptions, process
    for k, v in {**ISOLATED, **env}.items():
        monkeypatch.setenv(k, v)
    with caplog.at_level(logging.DEBUG, logger="mediatools"):
        rep = process("", ProcessOptions(agora_storage_config=str(f), all=True, workers=0, force=True))
    assert rep.ok and rep.counts["processed"] == 1
    logs = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("mediatools"))
    assert "published" in logs
    stored = b"".join(get(c, k) for k in keys(c, prefix) if k.endswith(".json"))
    for text in (r.stdout, r.stderr, stored.decode(), logs, json.dumps(rep.to_dict())):
        assert secret not in text and key_id not in text


def test_usage_errors_exit_2_with_one_line(s3_server, tmp_path):
    for args, msg in ((["--sid", "../etc"], "not a recording id"), ([], "give --sid ID"),
                      (["--all", "--name-template", "../x.{ext}"], "is not a plain file name"),
                      (["--all", "--since", "yesterday-ish"], "--since/--until takes"),
                      (["--all", "--sid", "abc123"], "--all takes every recording under SOURCE and --sid picks"),
                      (["--all", "--since", "1h", "--until", "2h"], "since (1h) must be before until (2h)"),
                      (["--all", "--bitrate", "fast"], "--bitrate 'fast': give bits per second"),
                      (["--all", "--format", "mp3", "--sample-rate", "96000"], "mp3 cannot store 96000 Hz")):
        r = run_cli("process", str(tmp_path), *args, env=ISOLATED)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr and "Traceback" not in r.stderr
    cfg = tmp_path / "p.toml"
    cfg.write_text('format = "m4a"\nstemz = true\n')
    r = run_cli("process", str(tmp_path), "--all", "--config", str(cfg), env=ISOLATED)
    assert r.returncode == 2 and r.stderr.strip() == f"mediatools: error: {cfg}: unknown option 'stemz'"


def test_a_bucket_encrypted_with_sse_kms_is_published_to(recordings, s3_server, tmp_path, monkeypatch):
    """SSE-KMS objects have an ETag that is no MD5 though it looks like one (32 hex digits):
    every publish failed on "stored object's ETag does not match its MD5" (found by a review
    session). moto encrypts by the bucket's default but keeps the MD5 as ETag, so its answers
    get the opaque ETag AWS documents, wherever it says the object is under aws:kms."""
    from mediatools.pipeline import ProcessOptions, process
    from mediatools.storage import client as client_mod

    c = s3_server.client()
    c.create_bucket(Bucket="kms-bucket")
    c.put_bucket_encryption(Bucket="kms-bucket", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    folder, truth = recordings["late"]
    for p in _media(folder):
        c.put_object(Bucket="kms-bucket", Key="app/" + p.name, Body=p.read_bytes())

    def opaque(parsed, **kw):  # noqa: ANN001
        if str(parsed.get("ServerSideEncryption", "")).startswith("aws:kms") and "ETag" in parsed:
            parsed["ETag"] = '"' + hashlib.md5(parsed["ETag"].encode()).hexdigest() + '"'

    real = client_mod.make_client

    def make_client(*a, **kw):  # noqa: ANN001, ANN002, ANN003
        cl = real(*a, **kw)
        for op in ("PutObject", "HeadObject", "GetObject", "CompleteMultipartUpload"):
            cl.meta.events.register(f"after-call.s3.{op}", opaque)
        return cl
    monkeypatch.setattr(client_mod, "make_client", make_client)
    for k, v in ISOLATED.items():
        monkeypatch.setenv(k, v)
    rep = process("s3://kms-bucket/app/", ProcessOptions(sids=[SIDS["late"]], endpoint_url=s3_server.url,
                                                          workers=0, retries=0, scratch_dir=str(tmp_path)))
    (r,) = rep.recordings
    assert r.status == "processed", r.error
    local = tmp_path / "kms.m4a"
    local.write_bytes(c.get_object(Bucket="kms-bucket", Key=mix_key("app/", SIDS["late"]))["Body"].read())
    assert_placed(decode_pcm(local, RATE, 1), truth, tol_ms=2.0)
