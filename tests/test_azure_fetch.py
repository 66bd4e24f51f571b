"""fetch, inspect and mix from Azure Blob Storage against Azurite (Microsoft's emulator) on
loopback: the real SDK, no mocks. The container holds two recordings under one prefix (one
with a missing slice, an orphan and a bak failover), unrelated blobs, and keys that would
escape the destination; the fault proxy of the S3 tests stands in front of Azurite for a
flaky store.
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
from azuresupport import ACCOUNT, KEY, upload_folder
from conftest import listed_entries, run_cli
from s3support import FaultProxy

from mediatools.agora.names import parse_name
from mediatools.atomic import stray_temp_files
from mediatools.synth.generate import Fault

CONTAINER = "calls"
PREFIX = "agora/app1/"
SID_B = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
URL = f"azure://{ACCOUNT}/{CONTAINER}/{PREFIX}"
NO_AZURE_ENV = {"AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGE_KEY": "", "AZURE_STORAGE_SAS_TOKEN": ""}


def _files(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def store(make_recording, azurite):
    rec_a, _ = make_recording(
        "az_a", users=3, duration_s=45.0, seed=21, gaps=0,
        faults=[Fault("missing_slice", "0", 0, 1), Fault("orphan_slice", "1", 0, 2), Fault("bak_overlap", "2")])

    def other_sid(spec):
        spec.sid = SID_B
    rec_b, _ = make_recording("az_b", users=2, duration_s=20.0, seed=22, gaps=0, spec_hook=other_sid)
    c = azurite.container(CONTAINER)
    objects: dict[str, bytes] = {}
    for rec in (rec_a, rec_b):
        upload_folder(c, rec, PREFIX)
        objects.update({PREFIX + p.name: p.read_bytes() for p in rec.iterdir() if p.is_file() and p.name != "truth.json"})
    for i in range(30):
        c.upload_blob(f"{PREFIX}notes/unrelated-{i}.txt", f"n{i}".encode())
        c.upload_blob(f"other/{i}.bin", b"x" * i)
        objects[f"{PREFIX}notes/unrelated-{i}.txt"] = f"n{i}".encode()
    playlists = sorted(rec_a.glob("*.m3u8"))
    listed = {n for p in playlists for n in listed_entries(p)}
    present = {p.name for p in rec_a.iterdir() if p.suffix == ".ts"}
    info = {"sid_a": parse_name(playlists[0].name).sid, "objects": objects, "container": c,
            "expected_a": {p.name for p in playlists} | (listed & present),
            "missing_a": listed - present, "orphans_a": present - listed,
            "env": {**NO_AZURE_ENV, "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string()}}
    yield azurite, info


def fetch(info: dict, dest: Path, *args: str, env: dict | None = None, timeout: float = 120):
    return run_cli("fetch", URL, "-o", str(dest), *args, env={**info["env"], **(env or {})}, timeout=timeout)


def _identical(dest: Path, objects: dict[str, bytes]) -> None:
    for f in _files(dest):
        assert (dest / f).read_bytes() == objects[PREFIX + f], f


def test_fetch_by_sid_gets_exactly_the_recording(store, tmp_path):
    az, info = store
    r = fetch(info, tmp_path, "--sid", info["sid_a"], "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert _files(tmp_path) == info["expected_a"]
    _identical(tmp_path, info["objects"])
    assert set(rep["missing"]) == info["missing_a"] and len(info["missing_a"]) == 1
    assert set(rep["orphans"]) == info["orphans_a"] and not rep["orphans_fetched"]
    assert rep["source"] == URL
    # with a sid only the recording's own names are listed (two narrow listings)
    assert rep["listed"] == sum(k.startswith((PREFIX + info["sid_a"], PREFIX + "bak")) for k in info["objects"])
    assert any(n.startswith("bak") for n in rep["fetched"])
    assert stray_temp_files(tmp_path) == []


def test_filters_uid_cname_dry_run_orphans_and_both_recordings(store, tmp_path):
    az, info = store
    uids = sorted({parse_name(n).uid for n in info["expected_a"]})
    r = fetch(info, tmp_path / "uid", "--sid", info["sid_a"], "--uid", uids[0], "--cname", "demo_room-1", "--json")
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path / "uid") == {n for n in info["expected_a"] if parse_name(n).uid == uids[0]}
    r = fetch(info, tmp_path / "dry", "--sid", info["sid_a"], "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["would_fetch"]) == info["expected_a"] and not (tmp_path / "dry").exists()
    r = fetch(info, tmp_path / "orph", "--sid", info["sid_a"], "--include-orphans")
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path / "orph") == info["expected_a"] | info["orphans_a"]
    r = fetch(info, tmp_path / "all", "--json")
    assert r.returncode == 0, r.stderr
    assert {parse_name(n).sid for n in _files(tmp_path / "all")} == {info["sid_a"], SID_B}
    assert not any(n.endswith((".txt", ".bin")) for n in _files(tmp_path / "all"))
    r = fetch(info, tmp_path / "none", "--cname", "no-such-room")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith(f"mediatools: error: {URL}: no Agora recording files")


def test_resume_after_kill_and_corrupted_files_fetched_again(store, tmp_path):
    az, info = store
    with FaultProxy(az.port, delay_s=0.15) as proxy:
        cmd = [sys.executable, "-m", "mediatools", "fetch", URL, "-o", str(tmp_path), "--endpoint-url", proxy.url,
               "--sid", info["sid_a"], "--jobs", "2"]
        proc = subprocess.Popen(cmd, env={**os.environ, **info["env"]}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len([f for f in _files(tmp_path) if f.endswith(".ts")]) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = {f for f in _files(tmp_path) if not f.startswith(".mediatools-tmp-")}
    assert 3 <= len(done_before) < len(info["expected_a"])
    for f in done_before:
        assert (tmp_path / f).read_bytes() == info["objects"][PREFIX + f]     # what was renamed is whole
    r = fetch(info, tmp_path, "--sid", info["sid_a"], "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert set(rep["skipped"]) == done_before and set(rep["fetched"]) == info["expected_a"] - done_before
    assert stray_temp_files(tmp_path) == []
    # same size, other bytes (caught by Content-MD5), and a short file: both fetched again
    slices = sorted(f for f in info["expected_a"] if f.endswith(".ts"))
    flipped, short = tmp_path / slices[0], tmp_path / slices[1]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    short.write_bytes(short.read_bytes()[:1000])
    r = fetch(info, tmp_path, "--sid", info["sid_a"], "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert sorted(rep["fetched"]) == sorted(slices[:2])
    _identical(tmp_path, info["objects"])


def test_transient_faults_are_retried_to_a_correct_result(store, tmp_path):
    az, info = store
    plan = {1: "slowdown", 2: "reset", 3: "truncate"}

    def rule(method, path, n):
        return plan.get(n) if method == "GET" and path.endswith((".ts", ".m3u8")) else None

    with FaultProxy(az.port, rule=rule) as proxy:
        r = fetch(info, tmp_path, "--sid", info["sid_a"], "--json", "--retries", "4", "--endpoint-url", proxy.url)
    assert r.returncode == 0, r.stderr
    kinds = [k for k, _ in proxy.injected]
    n = len(info["expected_a"])
    assert kinds.count("slowdown") == n and kinds.count("reset") == n and kinds.count("truncate") == n
    assert _files(tmp_path) == info["expected_a"]
    _identical(tmp_path, info["objects"])
    assert stray_temp_files(tmp_path) == []


def test_persistent_failure_ends_with_exit_1(store, tmp_path):
    az, info = store
    victim = sorted(f for f in info["expected_a"] if f.endswith(".ts"))[2]
    with FaultProxy(az.port, rule=lambda m, p, n: "error500" if p.endswith(victim) else None) as proxy:
        r = fetch(info, tmp_path, "--sid", info["sid_a"], "--retries", "2", "--endpoint-url", proxy.url)
    assert r.returncode == 1
    assert f"mediatools: error: {victim}: failed after 2 attempts: InternalError (HTTP 500)" in r.stderr.splitlines(), \
        [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert "Traceback" not in r.stderr
    assert _files(tmp_path) == info["expected_a"] - {victim}
    with FaultProxy(az.port, rule=lambda m, p, n: "truncate" if p.endswith(victim) else None) as proxy:
        r = fetch(info, tmp_path, "--sid", info["sid_a"], "--retries", "2", "--endpoint-url", proxy.url)
    assert r.returncode == 1
    line = next(ln for ln in r.stderr.splitlines() if victim in ln and "error" in ln)
    assert line.startswith(f"mediatools: error: {victim}: failed after 2 attempts: ")
    assert not (tmp_path / victim).exists() and stray_temp_files(tmp_path) == []


def test_keys_that_escape_are_refused(store, tmp_path):
    """Azure keeps ``//`` and a leading ``/`` in blob names (``..`` cannot even be uploaded
    through the SDK: the HTTP layer folds it); those are refused, nothing lands outside."""
    az, info = store
    c = az.container("escape")
    name = sorted(f for f in info["expected_a"] if f.endswith(".ts"))[0]
    evil = ["/" + name, "x//" + name]
    for k in evil:
        c.upload_blob(k, b"evil")
    c.upload_blob(name, info["objects"][PREFIX + name])
    r = run_cli("fetch", f"azure://{ACCOUNT}/escape/", "-o", str(tmp_path / "out"), "--json", env=info["env"])
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert {d["key"] for d in rep["refused"]} == set(evil)
    assert {d["reason"] for d in rep["refused"]} == {"absolute path", "empty path segment"}
    assert _files(tmp_path) == {f"out/{name}"}


def test_refused_keys_through_the_azure_transport(tmp_path):
    """``..`` names (which a raw REST client could create) go through the same selection: refused."""
    from types import SimpleNamespace

    import mediatools as mt
    from mediatools.storage import AzureLocation
    name = "6f1b2c3d4e5f60718293a4b5c6d7e8f9_room__uid_s_1__uid_e_audio_20260101000000000.ts"
    blobs = [SimpleNamespace(name=k, size=4, etag="0x1", content_settings=SimpleNamespace(content_md5=None))
             for k in ("p/x/../../" + name, "p/..\\" + name, "p/" + "C:/" + name)]
    fake = SimpleNamespace(container_name="c", list_blobs=lambda **kw: iter(blobs), close=lambda: None)
    with pytest.raises(mt.errors.MediatoolsError, match="no Agora recording files"):
        mt.fetch(AzureLocation("acct", "c", "p/"), tmp_path, client=fake)
    assert not list(tmp_path.parent.glob(name))


def test_inspect_and_mix_take_azure_sources_through_the_cache(store, tmp_path):
    az, info = store
    cache = tmp_path / "cache"
    args = ["--cache-dir", str(cache), "--sid", info["sid_a"]]
    r = run_cli("inspect", URL, "--json", "--no-probe", *args, env=info["env"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [rec["sid"] for rec in doc["recordings"]] == [info["sid_a"]]
    assert len(doc["recordings"][0]["users"]) == 3
    assert f"{len(info['expected_a'])} fetched, 0 reused" in r.stderr
    out = tmp_path / "mix.m4a"
    r = run_cli("mix", URL, "-o", str(out), *args, env=info["env"])
    assert r.returncode == 0, r.stderr
    assert f"0 fetched, {len(info['expected_a'])} reused" in r.stderr
    assert out.stat().st_size > 10_000
    files = {p.name: p for p in cache.rglob("*") if p.is_file()}
    assert set(files) == info["expected_a"]
    assert all(p.read_bytes() == info["objects"][PREFIX + n] for n, p in files.items())
    assert all(f"azure-{ACCOUNT}" in str(p) for p in files.values())


def test_agora_storage_config_vendor_5_and_no_secret_in_any_output(store, tmp_path):
    """storageConfig for Azure: bucket = container, accessKey = account, secretKey = account key."""
    az, info = store
    cfg = {"cname": "demo_room-1", "uid": "527841", "clientRequest": {"storageConfig": {
        "vendor": 5, "region": 0, "bucket": CONTAINER, "accessKey": ACCOUNT, "secretKey": KEY,
        "fileNamePrefix": ["agora", "app1"]}}}
    f = tmp_path / "start.json"
    f.write_text(json.dumps(cfg))
    r = run_cli("--debug", "fetch", "-o", str(tmp_path / "out"), "--agora-storage-config", str(f),
                "--endpoint-url", az.url, "--sid", info["sid_a"], "--json", env=NO_AZURE_ENV)
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path / "out") == info["expected_a"]
    assert json.loads(r.stdout)["source"] == URL
    # --vendor 5 with an azure:// address; a SAS token from the environment
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    sas = generate_container_sas(ACCOUNT, CONTAINER, account_key=KEY, permission=ContainerSasPermissions(
        read=True, list=True), expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    r2 = run_cli("--debug", "fetch", URL, "-o", str(tmp_path / "sas"), "--vendor", "5", "--region-code", "3",
                 "--endpoint-url", az.url, "--sid", info["sid_a"],
                 env={**NO_AZURE_ENV, "AZURE_STORAGE_SAS_TOKEN": sas})
    assert r2.returncode == 0, r2.stderr
    assert _files(tmp_path / "sas") == info["expected_a"]
    # a wrong key: a clear error, and still no secret
    cfg["clientRequest"]["storageConfig"]["secretKey"] = KEY[:-8] + "AAAAAAA="
    f.write_text(json.dumps(cfg))
    r3 = run_cli("--debug", "fetch", "-o", str(tmp_path / "bad"), "--agora-storage-config", str(f),
                 "--endpoint-url", az.url, "--retries", "1", env=NO_AZURE_ENV)
    assert r3.returncode == 1
    assert "not authorized" in r3.stderr, r3.stderr
    # --vendor 5 with an s3:// address is a usage error
    r4 = run_cli("fetch", f"s3://{CONTAINER}/{PREFIX}", "-o", str(tmp_path / "x"), "--vendor", "5")
    assert r4.returncode == 2 and "azure://ACCOUNT/CONTAINER/PREFIX" in r4.stderr
    sig = sas.split("sig=")[1].split("&")[0]
    for out in (r.stdout, r.stderr, r2.stdout, r2.stderr, r3.stdout, r3.stderr):
        assert KEY not in out and KEY[:20] not in out and sig not in out
        assert sas not in out
    for p in (tmp_path / "out").rglob("*"):
        if p.is_file():
            assert KEY.encode() not in p.read_bytes()


def test_account_urls_and_connection_strings():
    from mediatools.storage.azure import account_url, resolve_credentials
    from mediatools.storage.location import Settings, load_agora_storage_config, parse_azure_url
    assert account_url("acct", None) == "https://acct.blob.core.windows.net"
    assert account_url("acct", "http://127.0.0.1:10000") == "http://127.0.0.1:10000/acct"
    assert account_url("acct", "http://127.0.0.1:10000/acct/") == "http://127.0.0.1:10000/acct"
    assert account_url("acct", "https://acct.blob.core.chinacloudapi.cn") == "https://acct.blob.core.chinacloudapi.cn"
    loc = parse_azure_url("azure://acct/cont/a/b/")
    assert (loc.account, loc.container, loc.prefix, loc.url) == ("acct", "cont", "a/b/", "azure://acct/cont/a/b/")
    os.environ.pop("AZURE_STORAGE_CONNECTION_STRING", None)
    url, cred, where = resolve_credentials("acct", Settings(
        azure_connection_string="DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.usgovcloudapi.net"))
    assert url == "https://acct.blob.core.usgovcloudapi.net" and cred["account_key"] == "a2V5"
    s = Settings(azure_account_key="secret-value")
    assert "secret-value" not in repr(s)
    with pytest.raises(Exception, match="needs accessKey"):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as t:
            json.dump({"storageConfig": {"vendor": 5, "bucket": "c"}}, t)
        load_agora_storage_config(t.name)


def test_azure_names_by_azure_rules_and_swapped_keys_named(tmp_path):
    """The account becomes a host name: anything outside Azure's alphabet is refused before a
    request is made, and a storageConfig with accessKey and secretKey swapped says so without
    echoing either."""
    from mediatools.errors import MediatoolsError, UsageError
    from mediatools.storage.location import load_agora_storage_config, parse_azure_url
    for bad in ("azure://evil.example.com/cont/", "azure://ACCT/cont/", "azure://acct/c/",
                "azure://acct/Cont/", "azure://acct/a--b/", "azure://ac/cont/"):
        with pytest.raises(UsageError):
            parse_azure_url(bad)
    f = tmp_path / "sc.json"
    key = "k" * 60 + "+/=="
    f.write_text(json.dumps({"storageConfig": {"vendor": 5, "bucket": "recs", "accessKey": key,
                                               "secretKey": "myacct"}}))
    with pytest.raises(MediatoolsError, match="look swapped") as ei:
        load_agora_storage_config(str(f))
    assert key not in str(ei.value) and "myacct" not in str(ei.value)
    f.write_text(json.dumps({"storageConfig": {"vendor": 5, "bucket": "Recs_1", "accessKey": "myacct",
                                               "secretKey": key}}))
    with pytest.raises(MediatoolsError, match="bucket is the container, and a container name is"):
        load_agora_storage_config(str(f))
