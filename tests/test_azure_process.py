"""``mediatools process`` with an Azure source and destination, and the Azure store's
uploads (parallel blocks for large files, Content-Type, Content-MD5), against Azurite."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from azuresupport import ACCOUNT, KEY, upload_folder
from conftest import run_cli

from mediatools.agora.names import parse_name

NO_AZURE_ENV = {"AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGE_KEY": "", "AZURE_STORAGE_SAS_TOKEN": ""}


@pytest.fixture(scope="module")
def recording(make_recording, azurite):
    rec, _ = make_recording("az_proc", users=2, duration_s=20.0, seed=31, gaps=0)
    c = azurite.container("recs")
    upload_folder(c, rec, "app1/")
    sid = parse_name(next(rec.glob("*.m3u8")).name).sid
    return azurite, c, rec, sid


def test_process_from_azure_to_azure_publishes_under_agoras_names(recording, tmp_path):
    az, src, rec, sid = recording
    dest = az.container("results")
    env = {**NO_AZURE_ENV, "AZURE_STORAGE_CONNECTION_STRING": az.connection_string()}
    args = ["process", f"azure://{ACCOUNT}/recs/app1/", "--sid", sid, "--to", f"azure://{ACCOUNT}/results/mixes/",
            "--stems", "--workers", "0", "--json"]
    r = run_cli("--debug", *args, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    res = doc["recordings"][0]
    assert res["status"] == "processed", res
    cname = res["cname"]
    mix_key = f"mixes/{sid}_{cname}_0.m4a"
    manifest_key = f"mixes/{sid}_{cname}.mediatools.json"
    names = {b.name: b for b in dest.list_blobs()}
    assert mix_key in names and manifest_key in names
    assert any(k.startswith(f"mixes/{sid}_{cname}_stems/") for k in names)
    assert not any(k.endswith(".pending.json") for k in names)
    assert names[mix_key].content_settings.content_type == "audio/mp4"
    assert names[manifest_key].content_settings.content_type == "application/json"
    manifest = json.loads(dest.download_blob(manifest_key).readall())
    out = {o["key"]: o for o in manifest["outputs"]}
    assert out[mix_key]["md5"] == names[mix_key].content_settings.content_md5.hex()
    assert res["dest"] == f"azure://{ACCOUNT}/results/mixes/"
    # the rerun skips: the manifest is current
    r2 = run_cli(*args, env=env)
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout)["recordings"][0]["status"] == "skipped"
    for text in (r.stdout, r.stderr, r2.stdout, r2.stderr, json.dumps(manifest)):
        assert KEY not in text and KEY[:20] not in text


def test_process_beside_the_recording_with_vendor_5_storage_config(recording, tmp_path):
    az, src, rec, sid = recording
    cfg = tmp_path / "start.json"
    cfg.write_text(json.dumps({"clientRequest": {"storageConfig": {
        "vendor": 5, "region": 0, "bucket": "recs", "accessKey": ACCOUNT, "secretKey": KEY,
        "fileNamePrefix": ["app1"]}}}))
    r = run_cli("--debug", "process", "--agora-storage-config", str(cfg), "--endpoint-url", az.url, "--all",
                "--workers", "0", "--format", "mp3", "--json", env=NO_AZURE_ENV)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["recordings"][0]
    assert res["status"] == "processed", res
    key = f"app1/{sid}_{res['cname']}_0.mp3"
    props = src.get_blob_client(key).get_blob_properties()
    assert props.content_settings.content_type == "audio/mpeg" and props.size > 1000
    assert KEY not in r.stdout + r.stderr


def test_large_uploads_go_in_parallel_blocks_with_content_type_and_md5(azurite, tmp_path, monkeypatch):
    from mediatools.storage import azure as az_mod
    from mediatools.storage.backend import open_store
    from mediatools.storage.location import Settings
    monkeypatch.setattr(az_mod, "SINGLE_PUT_MAX", 1 << 20)
    monkeypatch.setattr(az_mod, "BLOCK_SIZE", 1 << 20)
    azurite.container("big")
    store, prefix = open_store(f"azure://{ACCOUNT}/big/out", Settings(endpoint_url=azurite.url, azure_account_key=KEY))
    assert prefix == "out/"
    f = tmp_path / "mix.m4a"
    f.write_bytes(os.urandom((5 << 20) + 12345))
    got = store.put_file(f, prefix + "mix.m4a", "audio/mp4")
    import hashlib
    assert got.size == f.stat().st_size and got.md5 == hashlib.md5(f.read_bytes()).hexdigest()
    bc = azurite.service().get_container_client("big").get_blob_client("out/mix.m4a")
    committed, _ = bc.get_block_list("committed")
    assert len(committed) == 6                      # 5 MiB + a bit, in 1 MiB blocks
    props = bc.get_blob_properties()
    assert props.content_settings.content_type == "audio/mp4"
    assert props.content_settings.content_md5.hex() == got.md5
    assert bc.download_blob().readall() == f.read_bytes()
    small = store.put_bytes(b'{"a": 1}', prefix + "m.json", "application/json")
    assert store.head(prefix + "m.json").md5 == small.md5
    assert [o.key for o in store.list(prefix)] == ["out/m.json", "out/mix.m4a"]
    store.delete(prefix + "m.json")
    assert store.head(prefix + "m.json") is None and store.exists(prefix + "mix.m4a")
    store.delete(prefix + "never-there")          # deleting what is gone is not an error
    with pytest.raises(Exception, match="not_found|ContainerNotFound|not found"):
        open_store(f"azure://{ACCOUNT}/nosuch/", Settings(endpoint_url=azurite.url, azure_account_key=KEY))[0].get("x")
    assert Path(f).exists()
