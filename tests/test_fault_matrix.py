"""Issue 7: commands × faults. Each cell asserts the exact outcome: the problem reported,
exit code, which runs survive and where, and that nothing stray is left behind."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import run_cli, sigint_default
from faultcases import EXPECTED_CODE, HAND_MADE, INSIDE_ONLY, SYNTH_FAULTS, copy_recording, listed_slices

from mediatools.faults import POLICY
from mediatools.synth.generate import Fault

PLAN = dict(users=2, duration_s=50.0, seed=4, gaps=1)
ALL_CASES = sorted(list(SYNTH_FAULTS) + list(HAND_MADE))


@pytest.fixture(scope="session")
def base_recording(make_recording):
    return make_recording("matrix_base", **PLAN)


@pytest.fixture(scope="session")
def fault_case(make_recording, base_recording, tmp_path_factory):
    made: dict[str, tuple[Path, dict, str]] = {}

    def get(name: str) -> tuple[Path, dict, str]:
        if name in made:
            return made[name]
        if name in SYNTH_FAULTS:
            folder, truth = make_recording(f"matrix_{name}", faults=[Fault(SYNTH_FAULTS[name], "0", 0, 1)], **PLAN)
        else:
            src, truth = base_recording
            folder = copy_recording(src, tmp_path_factory.mktemp("case") / name)
            {**HAND_MADE, **INSIDE_ONLY}[name](folder, truth["users"][0]["uid"])
        made[name] = (folder, truth, truth["users"][0]["uid"])
        return made[name]

    return get


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _runs(doc: dict, uid: str) -> list[dict]:
    rec = doc["recordings"][0]
    return next(u for u in rec["users"] if u["uid"] == uid)["runs"]


# ---------------------------------------------------------------- inspect column

@pytest.mark.parametrize("name", ALL_CASES)
def test_inspect_reports_fault_and_places_survivors(name, fault_case):
    folder, truth, uid = fault_case(name)
    before = _snapshot(folder)
    proc = run_cli("inspect", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    codes = {(p["code"], p["uid"]) for p in doc["recordings"][0]["problems"]}
    assert (EXPECTED_CODE[name], uid) in codes, codes
    # the untouched user is placed exactly as the truth says
    other = truth["users"][1]
    got = _runs(doc, other["uid"])
    assert [r["start_ms"] for r in got] == [r["start_ms"] for r in other["runs"]]
    assert [r["duration_ms"] for r in got] == pytest.approx([r["duration_ms"] for r in other["runs"]], abs=1.0)
    # the faulted user's surviving runs start where the truth says (synth faults carry exact truth)
    if name in SYNTH_FAULTS:
        tu = truth["users"][0]
        got = _runs(doc, uid)
        assert [r["start_ms"] for r in got] == [r["start_ms"] for r in tu["runs"]]
        assert [r["duration_ms"] for r in got] == pytest.approx([r["duration_ms"] for r in tu["runs"]], abs=1.0)
    assert _snapshot(folder) == before, "inspect modified its input"


@pytest.mark.parametrize("name", ALL_CASES)
def test_inspect_strict_fails_one_line(name, fault_case):
    folder, truth, uid = fault_case(name)
    proc = run_cli("inspect", str(folder), "--strict")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mediatools: error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_hand_made_survivors(fault_case):
    """Hand-made faults on user 0: every run whose slices are intact keeps its exact start."""
    for name, lost in [("non_utf8", 0), ("extinf_nan", 0), ("utc_far", 1), ("utc_impossible", 1),
                       ("not_m3u8", 0), ("empty_playlist", 0)]:
        folder, truth, uid = fault_case(name)
        doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
        got = _runs(doc, uid)
        want = truth["users"][0]["runs"]
        assert [r["start_ms"] for r in got] == [r["start_ms"] for r in want], name
        # a measured duration may differ from EXTINF by the codec's end padding (< 1 AAC frame)
        for i, (g, w) in enumerate(zip(got, want)):
            if lost and i == 0:
                # the run's last slice was renamed away: run 0 ends one slice earlier
                assert g["duration_ms"] < w["duration_ms"] - 1000, name
            else:
                assert abs(g["duration_ms"] - w["duration_ms"]) < 22.0, (name, g, w)


@pytest.mark.parametrize("name", ["slice_cut_short", "extinf_understated"])
def test_a_slice_holding_other_than_its_extinf_keeps_later_slices_in_place(name, fault_case, tmp_path):
    """A slice that decodes shorter than its EXTINF (cut at a packet boundary: the file still
    looks whole) or longer than it: the slices after it play at their own file-name times, to
    ±2 ms, instead of that much early (or late) as one stream."""
    from mediatools.agora.names import parse_name
    from mediatools.media.tones import active_spans, decode_pcm, envelope
    folder, truth, uid = fault_case(name)
    names = listed_slices(folder, uid)
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    (p,) = [p for p in doc["recordings"][0]["problems"] if p["uid"] == uid]
    assert p["file"] == names[1] and p["code"] == EXPECTED_CODE[name], p
    assert "taken at what it holds" in p["message"]
    runs = _runs(doc, uid)
    third = parse_name(names[2]).utc_ms
    tone = next(u for u in truth["users"] if u["uid"] == uid)
    if name == "extinf_understated":   # the slice is taken at what it holds: the run stays whole
        assert [r["start_ms"] for r in runs] == [r["start_ms"] for r in tone["runs"]], runs
    else:
        assert third in [r["start_ms"] for r in runs], (third, runs)  # a run starts at the third slice
    out = tmp_path / "m.wav"
    run_cli("mix", str(folder), "-o", str(out), "-q", check=True)
    spans = active_spans(envelope(decode_pcm(out, 48000, 1), 48000, tone["freq"]), 48000, threshold=0.125)
    want = third - truth["origin_ms"]
    if name == "extinf_understated":
        # the second slice's last second is kept: the tone runs on through the third slice's start
        assert any(a < want - 500 and b > want + 500 for a, b in spans), (want, spans)
    else:
        # the third slice continues the sender's stream: a decoder started there lacks the previous
        # frame's overlap, so the tone's half-level crossing comes up to half a frame (10.7 ms) late
        assert min(abs(a - want) for a, _ in spans) <= 1024 / 48 / 2 + 2.0, (want, spans)
        # and it ends where the truth says the run ends (the long tail is placed sample-exactly)
        run_end = next(r["offset_ms"] + r["duration_ms"] for r in tone["runs"]
                       if r["offset_ms"] <= want < r["offset_ms"] + r["duration_ms"])
        assert min(abs(b - run_end) for _, b in spans) <= 2.0, (run_end, spans)


def _damage(doc: dict, uid: str, name: str) -> float:
    """The ms of audio inspect says the damaged slice ``name`` lost."""
    (p,) = [p for p in doc["recordings"][0]["problems"] if p["uid"] == uid]
    assert (p["file"], p["code"], p["action"]) == (name, "damaged_slice", "repaired"), p
    m = re.search(r"([0-9.]+) s of audio gone", p["message"])
    assert m, p["message"]
    return float(m[1]) * 1000.0


def _assert_damage_in_place(pcm, truth: dict, uid: str, names: list[str], lost_ms: float) -> None:
    """The tone of ``uid``'s first run: silent inside the damaged second slice for what it lost
    (to a frame a hole), then on again through the third slice's start, ending where the truth
    says the run ends (±2 ms): the audio after the damage kept its time, and nothing later moved."""
    from mediatools.agora.names import parse_name
    from mediatools.media.tones import active_spans, envelope
    tone = next(u for u in truth["users"] if u["uid"] == uid)
    spans = active_spans(envelope(pcm, 48000, tone["freq"]), 48000, threshold=0.125, min_gap_ms=5.0)
    second, third = (parse_name(n).utc_ms - truth["origin_ms"] for n in names[1:3])
    holes = [(b, a2) for (_, b), (a2, _) in zip(spans, spans[1:]) if second < b and a2 < third]
    assert holes, spans
    assert abs(sum(a - b for b, a in holes) - lost_ms) <= 1024 / 48 * len(holes), (holes, lost_ms)
    assert any(a < third - 500 and b > third + 500 for a, b in spans), (third, spans)
    run = tone["runs"][0]
    assert min(abs(b - (run["offset_ms"] + run["duration_ms"])) for _, b in spans) <= 2.0, (run, spans)


@pytest.mark.parametrize("name", ["slice_damaged_inside", "slice_packets_lost"])
def test_audio_lost_inside_a_slice_is_silence_in_place(name, fault_case, tmp_path):
    """Packets zeroed (40 % of them) or gone (three) inside a slice that still looks whole: the
    audio they held is silence where it was (the frames' timestamps say where), so the rest of
    that slice plays at its time instead of up to 6 s early; the run stays whole."""
    from mediatools.media.tones import decode_pcm
    folder, truth, uid = fault_case(name)
    names = listed_slices(folder, uid)
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    lost = _damage(doc, uid, names[1])
    assert (6000 if name == "slice_damaged_inside" else 40) < lost < 15000, lost
    tone = next(u for u in truth["users"] if u["uid"] == uid)
    assert [r["start_ms"] for r in _runs(doc, uid)] == [r["start_ms"] for r in tone["runs"]]
    out = tmp_path / "m.wav"
    run_cli("mix", str(folder), "-o", str(out), "-q", check=True)
    _assert_damage_in_place(decode_pcm(out, 48000, 1), truth, uid, names, lost)


@pytest.mark.parametrize("name", ["slice_null_packets", "slice_noise_with_sync"])
def test_a_slice_with_no_audio_is_skipped_and_later_slices_keep_their_time(name, fault_case, tmp_path):
    """A slice that is valid TS (sync bytes, whole packets) but carries no audio stream: skipped as
    undecodable, and the third slice's tone starts at its own file-name time, not 15 s early."""
    from mediatools.agora.names import parse_name
    from mediatools.media.tones import active_spans, decode_pcm, envelope
    folder, truth, uid = fault_case(name)
    names = listed_slices(folder, uid)
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    (p,) = [p for p in doc["recordings"][0]["problems"] if p["uid"] == uid]
    assert (p["file"], p["code"], p["action"]) == (names[1], "undecodable", "skipped"), p
    third = parse_name(names[2]).utc_ms
    assert third in [r["start_ms"] for r in _runs(doc, uid)]
    strict = run_cli("mix", str(folder), "-o", str(tmp_path / "s.wav"), "--strict")
    assert strict.returncode == 1 and names[1] in strict.stderr and not (tmp_path / "s.wav").exists()
    out = tmp_path / "m.wav"
    run_cli("mix", str(folder), "-o", str(out), "-q", check=True)
    tone = next(u for u in truth["users"] if u["uid"] == uid)
    spans = active_spans(envelope(decode_pcm(out, 48000, 1), 48000, tone["freq"]), 48000, threshold=0.125)
    want = third - truth["origin_ms"]
    assert min(abs(a - want) for a, _ in spans) <= 1024 / 48 / 2 + 2.0, (want, spans)
    second = parse_name(names[1]).utc_ms - truth["origin_ms"]
    assert not any(a < want - 100 and b > second + 100 for a, b in spans), (second, spans)  # a hole, not a tone


def test_playlist_but_no_slices_leaves_user_without_audio(fault_case):
    folder, truth, uid = fault_case("playlist_no_slices")
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    assert _runs(doc, uid) == []
    probs = [p for p in doc["recordings"][0]["problems"] if p["code"] == "missing_slice" and p["uid"] == uid]
    n_listed = sum(len(r["slices"]) for r in truth["users"][0]["runs"])
    assert len(probs) == n_listed


def test_policy_table_covers_every_case_code():
    codes = {p.code for p in POLICY}
    assert set(EXPECTED_CODE.values()) <= codes


def test_readme_fault_section_matches_policy():
    from mediatools.faults import markdown
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown() in readme, "README section is stale: regenerate with `python -m mediatools.faults`"


# ---------------------------------------------------------------- mix column

def _audible_onsets_ok(x, truth_user, rate=48000, tol_ms=2.0, shift_ms=0.0):
    from mediatools.media.tones import active_spans, envelope
    spans = active_spans(envelope(x, rate, truth_user["freq"]), rate, threshold=0.125)
    prev_end = None
    for run in truth_user["runs"]:
        contiguous = prev_end is not None and abs(run["offset_ms"] - prev_end) < 1.0
        prev_end = run["offset_ms"] + run["duration_ms"]
        if contiguous or run.get("onset_offset_ms") is None:
            continue
        want = run["onset_offset_ms"] - shift_ms
        got = min(spans, key=lambda s: abs(s[0] - want))[0]
        assert abs(got - want) <= tol_ms, (truth_user["uid"], want, got)


@pytest.mark.parametrize("name", ALL_CASES)
def test_mix_tolerant_keeps_survivors_in_place(name, fault_case, tmp_path):
    from mediatools.atomic import stray_temp_files
    from mediatools.media.tones import decode_pcm
    folder, truth, uid = fault_case(name)
    before = _snapshot(folder)
    out = tmp_path / "mix.wav"
    proc = run_cli("mix", str(folder), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert (EXPECTED_CODE[name], uid) in {(p["code"], p["uid"]) for p in rep["problems"]}
    x = decode_pcm(out, 48000, 1)
    # a user left with no audio no longer defines the origin: the session starts later
    shift = rep["origin_ms"] - truth["origin_ms"]
    assert shift == 0 or name == "playlist_no_slices"
    _audible_onsets_ok(x, truth["users"][1], shift_ms=shift)  # the untouched user, to ±2 ms
    if name in SYNTH_FAULTS:
        _audible_onsets_ok(x, truth["users"][0])      # the faulted user's surviving runs, to ±2 ms
    assert stray_temp_files(tmp_path) == [] and _snapshot(folder) == before
    # verify column: our own mix of the damaged recording checks clean against it
    ver = run_cli("verify", str(out), str(folder), "--json")
    assert ver.returncode == 0, ver.stderr
    assert json.loads(ver.stdout)["passed"] is True


@pytest.mark.parametrize("name", ["missing_slice", "garbage_slice", "not_m3u8", "reupload"])
def test_mix_strict_fails_without_output(name, fault_case, tmp_path):
    from mediatools.atomic import stray_temp_files
    folder, truth, uid = fault_case(name)
    out = tmp_path / "mix.m4a"
    proc = run_cli("mix", str(folder), "-o", str(out), "--strict")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and stray_temp_files(tmp_path) == []


def test_two_recordings_in_one_folder(base_recording, make_recording, tmp_path):
    a, ta = base_recording
    b, tb = make_recording("matrix_other_sid", spec_hook=lambda s: setattr(s, "sid", "0a1b2c3d4e5f"), **PLAN)
    both = tmp_path / "both"
    both.mkdir()
    for src in (a, b):
        for f in src.glob("*.*"):
            if f.suffix in (".ts", ".m3u8"):
                (both / f.name).write_bytes(f.read_bytes())
    proc = run_cli("mix", str(both), "-o", str(tmp_path / "m.wav"))
    assert proc.returncode == 2
    assert ta["sid"] in proc.stderr and "0a1b2c3d4e5f" in proc.stderr and "--sid" in proc.stderr
    doc = json.loads(run_cli("inspect", str(both), "--json", check=True).stdout)
    assert sorted(r["sid"] for r in doc["recordings"]) == sorted([ta["sid"], "0a1b2c3d4e5f"])
    run_cli("mix", str(both), "-o", str(tmp_path / "m.wav"), "--sid", "0a1b2c3d4e5f", check=True)
    proc = run_cli("merge", str(both), "-o", str(tmp_path / "mg"))
    assert proc.returncode == 2 and "--sid" in proc.stderr and not (tmp_path / "mg").exists()
    doc = json.loads(run_cli("merge", str(both), "-o", str(tmp_path / "mg"), "--sid", "0a1b2c3d4e5f", "--json",
                             check=True).stdout)
    assert doc["sid"] == "0a1b2c3d4e5f"
    assert sorted(u["uid"] for u in doc["users"]) == sorted(u["uid"] for u in tb["users"])


def test_unwritable_output_folder(base_recording, tmp_path):
    folder, _ = base_recording
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_cli("mix", str(folder), "-o", str(ro / "m.m4a"))
        if os.geteuid() == 0 and proc.returncode == 0:
            pytest.skip("root ignores directory permissions")
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith(f"mediatools: error: {ro}") and "Traceback" not in proc.stderr
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_full_disk_leaves_no_partial_output(base_recording, tmp_path):
    """A size-limited filesystem (tmpfs, 64 KiB) fills up mid-encode."""
    import subprocess

    from mediatools.atomic import stray_temp_files
    folder, _ = base_recording
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proc = run_cli("mix", str(folder), "-o", str(mnt / "m.wav"))
        assert proc.returncode == 1, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert not (mnt / "m.wav").exists() and stray_temp_files(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("sig,ext,env,delay", [("SIGINT", "flac", {}, 0.3), ("SIGTERM", "flac", {}, 0.3),
                                               ("SIGINT", "m4a", {"MEDIATOOLS_SPLIT_MIN_S": "5"}, 0.3),
                                               ("SIGTERM", "m4a", {}, 0.0),
                                               ("SIGTERM", "m4a", {"MEDIATOOLS_SPLIT_MIN_S": "5"}, 0.0),
                                               ("SIGHUP", "m4a", {"MEDIATOOLS_SPLIT_MIN_S": "5"}, 0.3)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-two-encoders", "SIGTERM-at-once",
                              "SIGTERM-at-once-two-encoders", "SIGHUP-terminal-closed"])
def test_interrupted_mix_exits_130_and_cleans_up(sig, ext, env, delay, make_recording, tmp_path):
    """Also the moment the temporary file appears, while the mix is still opening its first
    runs: an encoder left running then wrote its (empty) file under the temporary name again
    after the CLI had removed it."""
    import signal
    import subprocess
    import sys
    import time

    from mediatools.atomic import stray_temp_files
    folder, _ = make_recording("matrix_long", users=3, duration_s=240.0, seed=2, gaps=1)
    out = tmp_path / f"m.{ext}"
    p = subprocess.Popen([sys.executable, "-m", "mediatools", "mix", str(folder), "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
                         preexec_fn=sigint_default)
    deadline = time.time() + 60
    while not stray_temp_files(tmp_path) and time.time() < deadline and p.poll() is None:
        time.sleep(0.01)
    time.sleep(delay)
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(1.0)   # an orphaned encoder would write its file by now
    assert not out.exists() and stray_temp_files(tmp_path) == []


def test_demo_runs_the_main_job(tmp_path):
    """The quick start's `make demo`: synth → inspect → merge → mix → verify, outputs where it says."""
    out = tmp_path / "demo"
    proc = run_cli("demo", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "call.m4a").stat().st_size > 100_000
    merged = json.loads((out / "merged" / "merge.json").read_text())
    assert len(merged["users"]) == 4 and all((out / "merged" / u["file"]).exists() for u in merged["users"])
    assert str(out / "call.m4a") in proc.stdout
    assert oct((out / "call.m4a").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert "ok   runs_aligned" in proc.stdout and "FAIL" not in proc.stdout


def test_demo_replaces_only_its_own_folder(tmp_path):
    """-o names a folder demo empties: an earlier demo's is replaced, anyone else's is refused untouched."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    proc = run_cli("demo", "-o", str(mine))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"mediatools: error: {mine}: folder is not empty and was not made by "
                                   "mediatools demo; give -o a new or empty folder")
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"]
    out = tmp_path / "demo"
    out.mkdir()   # empty is fine
    assert run_cli("demo", "-o", str(out)).returncode == 0
    (out / "recording" / "stale.txt").write_text("from the last run")
    assert run_cli("demo", "-o", str(out)).returncode == 0
    assert not (out / "recording" / "stale.txt").exists() and (out / "call.m4a").exists()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


# ---------------------------------------------------------------- fetch column

FAULT_BUCKET = "faults"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
          "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
          "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="session")
def fault_bucket(s3_server):
    """Each fault case is uploaded once, under ``cases/<name>/``."""
    client = s3_server.client()
    client.create_bucket(Bucket=FAULT_BUCKET)
    uploaded: set[str] = set()

    def upload(name: str, folder: Path) -> str:
        if name not in uploaded:
            for f in sorted(folder.rglob("*")):
                if f.is_file() and not f.name.startswith("truth"):
                    client.upload_file(str(f), FAULT_BUCKET, f"cases/{name}/{f.relative_to(folder).as_posix()}")
            uploaded.add(name)
        return f"s3://{FAULT_BUCKET}/cases/{name}/"

    return s3_server, upload


def _timeline(doc: dict) -> dict:
    """What inspect says, minus where the files sit."""
    rec = doc["recordings"][0]
    return {"users": {u["uid"]: [(r["start_ms"], r["duration_ms"]) for r in u["runs"]] for u in rec["users"]},
            "problems": sorted((p["code"], p["file"], p["uid"] or "") for p in rec["problems"])}


@pytest.mark.parametrize("name", ALL_CASES)
def test_fetch_brings_back_what_inspect_needs(name, fault_case, fault_bucket, tmp_path):
    """Fetching a broken recording from S3 and inspecting it gives exactly what inspecting it
    in place gives: same runs, same problems (fetch drops nothing a later stage would report)."""
    folder, truth, uid = fault_case(name)
    srv, upload = fault_bucket
    url = upload(name, folder)
    got = tmp_path / "got"
    proc = run_cli("fetch", url, "-o", str(got), "--include-orphans", "--json", "--endpoint-url", srv.url,
                   env=S3_ENV)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rep = json.loads(proc.stdout)
    from mediatools.atomic import stray_temp_files
    assert stray_temp_files(got) == []
    here = json.loads(run_cli("inspect", str(folder), "--json", "--no-probe", check=True).stdout)
    there = json.loads(run_cli("inspect", str(got), "--json", "--no-probe", check=True).stdout)
    assert _timeline(there) == _timeline(here)
    listed_missing = {p["file"] for p in here["recordings"][0]["problems"] if p["code"] == "missing_slice"}
    assert set(rep["missing"]) == listed_missing


def test_interrupted_fetch_exits_130_keeps_complete_files(fault_case, fault_bucket, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from s3support import FaultProxy

    from mediatools.atomic import stray_temp_files
    folder, _, _ = fault_case("missing_slice")
    srv, upload = fault_bucket
    url = upload("missing_slice", folder)
    got = tmp_path / "got"
    with FaultProxy(srv.port, delay_s=0.3) as proxy:
        p = subprocess.Popen([sys.executable, "-m", "mediatools", "fetch", url, "-o", str(got), "--jobs", "2",
                              "--endpoint-url", proxy.url], env={**os.environ, **S3_ENV},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
        deadline = time.time() + 60
        while not any(f.suffix == ".ts" for f in got.rglob("*")) and time.time() < deadline:
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert stray_temp_files(got) == []
    kept = [f for f in got.rglob("*") if f.is_file()]
    assert kept and all(f.read_bytes() == (folder / f.name).read_bytes() for f in kept)
    total = len([f for f in folder.iterdir() if f.suffix in (".ts", ".m3u8")])
    assert len(kept) < total


# ---------------------------------------------------------------- merge column

@pytest.mark.parametrize("name", ALL_CASES)
def test_merge_tolerant_keeps_survivors_in_place(name, fault_case, tmp_path):
    """Session-aligned WAV per user: every surviving run starts where the truth says (±2 ms)."""
    from mediatools.atomic import stray_temp_files
    from mediatools.media.tones import decode_pcm
    folder, truth, uid = fault_case(name)
    before = _snapshot(folder)
    out = tmp_path / "merged"
    proc = run_cli("merge", str(folder), "-o", str(out), "--align", "session", "--format", "wav", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rep = json.loads(proc.stdout)
    assert (EXPECTED_CODE[name], uid) in {(p["code"], p["uid"]) for p in rep["problems"]}
    shift = rep["origin_ms"] - truth["origin_ms"]
    assert shift == 0 or name == "playlist_no_slices"
    other = truth["users"][1]
    _audible_onsets_ok(decode_pcm(out / rep["files"][other["uid"]], 48000, 1), other, shift_ms=shift)
    if name in SYNTH_FAULTS:
        _audible_onsets_ok(decode_pcm(out / rep["files"][uid], 48000, 1), truth["users"][0])
    if name == "playlist_no_slices":
        assert rep["files"][uid] is None      # no audio, no file; reported as no_audio
    assert stray_temp_files(out) == [] and _snapshot(folder) == before


@pytest.mark.parametrize("name", ["slice_damaged_inside", "slice_packets_lost"])
def test_merge_decodes_a_user_with_a_slice_damaged_inside(name, fault_case, tmp_path):
    """The default copy stopped at the damage ("ADTS sync lost", no file named, no merge.json;
    found by a review session); an Opus copy kept the timestamp gap, which players close up, so
    every later run played early. That user is decoded, the lost audio silence in place."""
    from mediatools.media.tones import decode_pcm
    folder, truth, uid = fault_case(name)
    names = listed_slices(folder, uid)
    lost = _damage(json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout), uid, names[1])
    out = tmp_path / "merged"
    proc = run_cli("merge", str(folder), "-o", str(out), "--align", "session", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "merge.json").read_text())
    modes = {u["uid"]: (u["mode"], u["reason"]) for u in doc["users"]}
    assert modes[uid] == ("transcode", "a slice is damaged inside (decoded, not copied)"), modes
    assert modes[truth["users"][1]["uid"]][0] == "copy"
    pcm = decode_pcm(out / json.loads(proc.stdout)["files"][uid], 48000, 1)
    _assert_damage_in_place(pcm, truth, uid, names, lost)


@pytest.mark.parametrize("name", ["missing_slice", "truncated_slice", "not_m3u8", "bak_overlap"])
def test_merge_strict_fails_without_output(name, fault_case, tmp_path):
    folder, _, _ = fault_case(name)
    out = tmp_path / "merged"
    proc = run_cli("merge", str(folder), "-o", str(out), "--strict")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mediatools: error: ") and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_channel_name_with_pipe_and_odd_characters(make_recording, tmp_path):
    """Agora channel names may hold | (ffmpeg's concat separator), spaces and + # % : ? @.
    Every stage still places every run right: the mix verifies clean, merge writes every user."""
    def odd(spec):
        spec.cname = "a|b c+#%:?@"
    folder, truth = make_recording("odd_cname_pipe", users=2, duration_s=20.0, seed=6, gaps=1, spec_hook=odd)
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    for tu in truth["users"]:
        got = _runs(doc, tu["uid"])
        assert [r["start_ms"] for r in got] == [r["start_ms"] for r in tu["runs"]]
    out = tmp_path / "mix.m4a"
    run_cli("mix", str(folder), "-o", str(out), check=True)
    ver = json.loads(run_cli("verify", str(out), str(folder), "--json", check=True).stdout)
    assert ver["passed"] is True
    rep = json.loads(run_cli("merge", str(folder), "-o", str(tmp_path / "m"), "--json", check=True).stdout)
    assert all(rep["files"][tu["uid"]] for tu in truth["users"])


def test_an_opus_slice_cut_short_is_found_too(make_recording, tmp_path):
    """Opus in TS (RFC 7845 control headers): the frames are counted from each packet's TOC."""
    import shutil

    from faultcases import _cut_short

    from mediatools.media.ts_audio import held
    src, truth = make_recording("matrix_opus", users=1, duration_s=40.0, seed=6, gaps=0, codec="opus")
    folder = shutil.copytree(src, tmp_path / "rec")
    uid = truth["users"][0]["uid"]
    names = listed_slices(folder, uid)
    whole = held((folder / names[1]).read_bytes()).ms
    _cut_short(folder, uid)
    cut = held((folder / names[1]).read_bytes()).ms
    assert cut < whole * 0.5, (whole, cut)
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    probs = [p for p in doc["recordings"][0]["problems"] if p["code"] == "short_slice"]
    assert [p["file"] for p in probs] == [names[1]], doc["recordings"][0]["problems"]
    assert held(b"\x00" * 188 * 4).ms == 0 and held(b"").ms == 0   # no audio stream: nothing to play
    # packets whose payload is garbage (sync bytes kept) make no packet of 3 s out of noise:
    # the slice is not intact, so loading decodes it instead of trusting the count
    third = folder / names[2]
    data = bytearray(third.read_bytes())
    import random
    rng = random.Random(7)
    for k in (30, 60, 90):
        data[k * 188 + 4:(k + 1) * 188] = bytes(rng.randrange(256) for _ in range(184))
    h = held(bytes(data))
    assert h is not None and not h.intact and h.ms <= whole + 50, h
    third.write_bytes(bytes(data))
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    assert not [p for p in doc["recordings"][0]["problems"] if p["code"] == "long_slice"], doc
