"""`mediatools inspect`: the JSON schema, the human view, and every error path."""
from __future__ import annotations

import json

import pytest
from conftest import run_cli

RUN_KEYS = {"index": int, "start_ms": int, "start_utc": str, "offset_ms": int, "duration_ms": float,
            "end_offset_ms": float, "slices": list, "sources": list, "drift_ms": float, "codec": str,
            "sample_rate": int, "channels": int}
USER_KEYS = {"uid": str, "track_type": str, "codec": str, "sample_rate": int, "channels": int, "talk_ms": float,
             "first_offset_ms": float, "last_offset_ms": float, "first_utc": str, "last_utc": str,
             "playlists": list, "slices": int, "usable_slices": int, "runs": list, "gaps": list}
REC_KEYS = {"sid": str, "cname": str, "origin_ms": int, "origin_utc": str, "span_ms": float, "users": list,
            "problems": list, "results": list}   # results: the layout issue, defect 3


def _typed(d: dict, keys: dict) -> None:
    assert set(d) == set(keys), set(d) ^ set(keys)
    for k, t in keys.items():
        assert isinstance(d[k], (t, int) if t is float else t), (k, d[k])


def test_json_schema(basic_recording):
    folder, truth = basic_recording
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    assert doc["schema"] == "mediatools.inspect/1" and doc["root"] == str(folder)
    (rec,) = doc["recordings"]
    _typed(rec, REC_KEYS)
    for u in rec["users"]:
        _typed(u, USER_KEYS)
        for r in u["runs"]:
            _typed(r, RUN_KEYS)
        for g in u["gaps"]:
            _typed(g, {"offset_ms": float, "duration_ms": float})
    by_first = sorted(truth["users"], key=lambda u: u["runs"][0]["start_ms"])
    assert [u["uid"] for u in rec["users"]] == [u["uid"] for u in by_first]  # listed by first instant
    assert rec["origin_utc"].endswith("Z") and rec["origin_ms"] == truth["origin_ms"]


def test_human_view_one_line_per_user(basic_recording):
    folder, truth = basic_recording
    out = run_cli("inspect", str(folder), check=True).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("  uid ")]
    assert len(lines) == len(truth["users"])
    for ln, u in zip(lines, sorted(truth["users"], key=lambda u: u["runs"][0]["start_ms"])):
        assert ln.split()[1] == u["uid"] and "aac 48000 Hz 1ch" in ln and f"runs {len(u['runs'])}" in ln
    assert "problems: none" in out


def test_uid_filter(basic_recording):
    folder, truth = basic_recording
    uid = truth["users"][1]["uid"]
    doc = json.loads(run_cli("inspect", str(folder), "--json", "--uid", uid, check=True).stdout)
    assert [u["uid"] for u in doc["recordings"][0]["users"]] == [uid]


@pytest.mark.parametrize("setup, code, msg", [
    (lambda d: d / "nope", 1, "mediatools: error: {p}: no such file or folder"),
    (lambda d: (d / "f.txt").write_text("x") and d / "f.txt", 1,
     "mediatools: error: {p}: not a folder (SOURCE is the folder holding the recording)"),
    (lambda d: d, 1, "mediatools: error: {p}: no Agora audio recording found (no *__uid_s_*__uid_e_audio* files)"),
])
def test_error_paths(setup, code, msg, tmp_path):
    p = setup(tmp_path)
    proc = run_cli("inspect", str(p))
    assert proc.returncode == code
    assert proc.stderr.strip() == msg.format(p=p)


def test_unknown_sid_and_uid_are_usage_errors(basic_recording):
    folder, truth = basic_recording
    proc = run_cli("inspect", str(folder), "--sid", "nosuch")
    assert proc.returncode == 2 and proc.stderr.strip() == f"mediatools: error: {folder}: no recording with sid nosuch"
    proc = run_cli("inspect", str(folder), "--uid", "999")
    assert proc.returncode == 2 and "uid 999 not in recording" in proc.stderr


def test_unreadable_playlist_tolerant_strict_and_debug(basic_recording, tmp_path):
    import shutil
    folder, truth = basic_recording
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    pl = sorted(bad.glob("*.m3u8"))[0]
    pl.write_bytes(b"\x00\x01 not a playlist")
    proc = run_cli("inspect", str(bad), "--json")
    assert proc.returncode == 0
    probs = json.loads(proc.stdout)["recordings"][0]["problems"]
    assert {"code": "not_m3u8", "file": pl.name, "message": "not an M3U8 playlist (no #EXTM3U header)",
            "action": "skipped", "uid": truth["users"][0]["uid"]} in probs
    proc = run_cli("inspect", str(bad), "--strict")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"mediatools: error: {pl.name}: not an M3U8 playlist (no #EXTM3U header)"
    proc = run_cli("--debug", "inspect", str(bad), "--strict")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_version_names_ffmpeg():
    out = run_cli("--version", check=True).stdout
    assert out.startswith("mediatools 0.1.0\nffmpeg ") and "(" in out


def test_help_documents_exit_codes():
    out = " ".join(run_cli("--help", check=True).stdout.split())
    assert "Exit codes: 0 success (problems reported), 1 failure, 2 usage error, 130 interrupted." in out
    for cmd in ("inspect", "merge", "mix", "synth", "demo"):
        assert cmd in out


def test_uid_filter_over_several_recordings(make_recording, tmp_path):
    """A folder holding two calls: --uid shows the recordings that uid is in, and is a usage
    error only when none has it (it failed whenever one recording lacked the uid)."""
    import shutil
    a, _ = make_recording("inspect_two_a", users=2, duration_s=20.0, seed=4)
    b, tb = make_recording("inspect_two_b", users=3, duration_s=20.0, seed=5, string_uids=True,
                           spec_hook=lambda spec: setattr(spec, "sid", "ab" * 16))
    both = tmp_path / "both"
    shutil.copytree(a, both / "a")
    shutil.copytree(b, both / "b")
    only_b = tb["users"][1]["uid"]
    assert only_b.startswith("user-")
    assert len(json.loads(run_cli("inspect", str(both), "--json", "--no-probe", check=True).stdout)["recordings"]) == 2
    doc = json.loads(run_cli("inspect", str(both), "--json", "--no-probe", "--uid", only_b, check=True).stdout)
    assert [([u["uid"] for u in r["users"]], r["sid"]) for r in doc["recordings"]] == [([only_b], "ab" * 16)]
    proc = run_cli("inspect", str(both), "--no-probe", "--uid", "999")
    assert proc.returncode == 2 and "uid 999 not in recording" in proc.stderr


BAD_VALUES = [
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--gain", "{uid}=nan"], "DB must be a number from -120 to 60"),
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--gain", "{uid}=inf"], "DB must be a number from -120 to 60"),
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--gain", "{uid}=1e6"], "DB must be a number from -120 to 60"),
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--sample-rate", "0"], "--sample-rate"),
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--start", "99:99"], "cannot read time '99:99'"),
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--start", "nan"], "cannot read time 'nan'"),
    (["mix", "{rec}", "-o", "{out}/m.m4a", "--end", "1e3"], "cannot read time '1e3'"),
    (["merge", "{rec}", "-o", "{out}/m", "--start", "1:00:00"], "--start lies at or past the end of the recording"),
    (["inspect", "{rec}", "--tolerance-ms", "nan"], "--tolerance-ms"),
    (["inspect", "{rec}", "--tolerance-ms", "-1"], "--tolerance-ms"),
    (["verify", "{out}/none.m4a", "{rec}", "--tolerance-ms", "inf"], "--tolerance-ms"),
    (["activity", "{rec}", "--hangover", "nan"], "--hangover"),
    (["process", "{rec}", "--wait", "inf"], "--wait"),
]


@pytest.mark.parametrize("args,message", BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_values_that_would_ruin_the_output_are_usage_errors(args, message, basic_recording, tmp_path):
    """nan, inf, out-of-range numbers and impossible clock times: exit 2, one line, nothing written
    (nan passed click's FloatRange and a gain of nan wrote a ruined mix with exit 0)."""
    folder, truth = basic_recording
    argv = [a.format(rec=folder, out=tmp_path, uid=truth["users"][0]["uid"]) for a in args]
    proc = run_cli(*argv)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["old", "missing", "not_ffmpeg"])
def test_an_unusable_ffmpeg_stops_at_start_saying_what_to_install(kind, basic_recording, tmp_path):
    """ffmpeg older than 5.1 first on PATH, a MEDIATOOLS_FFMPEG that does not exist, or one that is
    not ffmpeg: one line, exit 1, before any work (a missing one had every run reported unreadable)."""
    import os
    folder, _ = basic_recording
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021'\n"
                    if kind == "old" else "#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    env = {"MEDIATOOLS_FFMPEG": ""}   # run_cli adds the environment: CI's second pass sets it
    if kind == "old":
        env["PATH"] = f"{fake.parent}:{os.environ['PATH']}"
    else:
        env["MEDIATOOLS_FFMPEG"] = str(fake) if kind == "not_ffmpeg" else str(tmp_path / "nope")
    proc = run_cli("inspect", str(folder), env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and proc.stdout == "", proc.stderr
    assert lines[0].startswith("mediatools: error: ") and "install ffmpeg 5.1 or newer" in lines[0]
    assert {"old": "is ffmpeg 4.4.2", "missing": "is not an executable file",
            "not_ffmpeg": "is not ffmpeg"}[kind] in lines[0]
    assert run_cli("fetch", "--help", env=env).returncode == 0   # what needs no ffmpeg still works


def test_json_stdout_is_always_one_document(fault_recording_null, tmp_path):
    """--json: a command that fails before its report prints a mediatools.error/1 document (stdout
    was empty); inspect --strict --json prints the timeline with its problems and exits 1; a tolerant
    run names what it skipped on stderr as well as in the document."""
    folder, bad = fault_recording_null
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "m.m4a"), "--strict", "--json")
    assert proc.returncode == 1 and not (tmp_path / "m.m4a").exists()
    assert json.loads(proc.stdout) == {"schema": "mediatools.error/1", "exit_code": 1, "error": {
        "code": "undecodable", "file": bad, "message": "holds no intact audio frame"}}
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "m.m4a"), "--gain", "x=nan", "--json")
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["code"] == "usage"
    proc = run_cli("mix", str(folder), "--no-such-option", "--json")
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["code"] == "usage"
    proc = run_cli("inspect", str(folder), "--strict", "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["schema"] == "mediatools.inspect/1"
    assert [p["file"] for p in doc["recordings"][0]["problems"]] == [bad]
    assert proc.stderr.strip() == f"mediatools: error: {bad}: holds no intact audio frame"
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "m.m4a"), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["schema"] == "mediatools.mix/1"
    assert f"mediatools: warning: {bad}: holds no intact audio frame (skipped)" in proc.stderr


@pytest.fixture
def fault_recording_null(basic_recording, tmp_path):
    """The basic recording with its first user's second slice made TS null packets."""
    import shutil
    src, truth = basic_recording
    folder = tmp_path / "rec"
    shutil.copytree(src, folder)
    uid = truth["users"][0]["uid"]
    (pl,) = [p for p in folder.glob("*.m3u8") if f"__uid_s_{uid}__" in p.name]
    name = [ln for ln in pl.read_text().splitlines() if ln.endswith(".ts")][1]
    p = folder / name
    p.write_bytes((b"\x47\x1f\xff\x10" + b"\xff" * 184) * (p.stat().st_size // 188))
    return folder, name


def test_text_view_lists_every_run_with_its_times(basic_recording):
    """The README says the text lists runs: one line per run (session clock, length, slices, UTC),
    gaps between them in time order."""
    folder, _ = basic_recording
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    text = run_cli("inspect", str(folder), check=True).stdout
    runs = [r for u in doc["recordings"][0]["users"] for r in u["runs"]]
    lines = [ln for ln in text.splitlines() if ln.startswith("      run ")]
    assert len(lines) == len(runs)
    for ln, r in zip(lines, runs):
        assert f"{r['duration_ms'] / 1000:.3f} s" in ln and ln.endswith(f"from {r['start_utc']}"), (ln, r)


@pytest.mark.parametrize("text,message", [('{"transcodeOptions": ', "not JSON (Expecting value at line 1)"),
                                          ('{"transcodeOptions": {"audio": {"sampleRate": "x"}}}',
                                           "bad audio value in transcodeOptions")])
def test_a_bad_transcode_options_file_is_a_usage_error(text, message, basic_recording, tmp_path):
    folder, _ = basic_recording
    bad = tmp_path / "start.json"
    bad.write_text(text)
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "m.m4a"), "--transcode-options", str(bad))
    assert proc.returncode == 2 and proc.stderr.strip().startswith(f"mediatools: error: {bad}: {message}")
    assert not (tmp_path / "m.m4a").exists()
