"""Issue 16: ``process --activity --report`` publishes the exports and the report beside the mix,
lists them in the manifest, and a rerun with the same options is a skip."""
from __future__ import annotations

import json

from conftest import run_cli

from mediatools.atomic import stray_temp_files


def test_process_publishes_activity_and_report(make_recording, tmp_path):
    folder, truth = make_recording("process_voice", users=2, duration_s=25.0, seed=21, gaps=0, signal="voice")
    dest = tmp_path / "out"
    args = ["process", str(folder), "--all", "--workers", "0", "--to", str(dest), "--activity", "--report",
            "--no-verify", "--json"]
    doc = json.loads(run_cli(*args, check=True).stdout)
    [r] = doc["recordings"]
    assert r["status"] == "processed", r
    base = f"{truth['sid']}_{truth['cname']}"
    names = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    want = [f"{base}.mediatools.json", f"{base}.mediatools.report.html", f"{base}_0.m4a"] + \
        [f"{base}_activity/{n}" for n in ("activity.csv", "activity.json", "activity.rttm", "activity.vtt")] + \
        [f"{base}_activity/labels/{u['uid']}.txt" for u in truth["users"]]
    assert names == sorted(want)
    manifest = json.loads((dest / f"{base}.mediatools.json").read_text())
    assert sorted(o["key"] for o in manifest["outputs"]) == sorted(n for n in want if not n.endswith(".mediatools.json"))
    assert {o["kind"] for o in manifest["outputs"]} == {"mix", "activity", "report"}
    assert manifest["options"]["activity"] and manifest["options"]["report"]
    html = (dest / f"{base}.mediatools.report.html").read_text()
    assert f"src='{base}_0.m4a'" in html                # the player finds the mix beside it
    act = json.loads((dest / f"{base}_activity/activity.json").read_text())
    assert act["schema"] == "mediatools.activity/1" and len(act["users"]) == 2
    assert stray_temp_files(dest) == []
    again = json.loads(run_cli(*args, check=True).stdout)["recordings"][0]
    assert again["status"] == "skipped"
