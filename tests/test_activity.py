"""Issue 16: who spoke when. Accuracy against the synthesizer's known turns on real encoded
slices (AAC and Opus, 16–48 kHz), and the CLI's behaviour on good and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from mediatools.activity import ActivityOptions, activity
from mediatools.atomic import stray_temp_files
from mediatools.synth.generate import Fault

FRAME_MS = 10


def _frames(spans: list[list[float]], n: int) -> np.ndarray:
    f = np.zeros(n, bool)
    for a, b in spans:
        f[int(round(a / FRAME_MS)):int(round(b / FRAME_MS))] = True
    return f


def score(truth: dict, rep) -> dict:  # noqa: ANN001
    """Frame-level (10 ms) recall and precision over every user, and each truth boundary's
    distance to the nearest detected boundary of the same kind (start or end)."""
    n = int(truth["span_ms"] / FRAME_MS) + 10
    tp = fp = fn = 0
    errors: list[float] = []
    for tu in truth["users"]:
        det = next(u for u in rep.users if u["uid"] == tu["uid"])["turns"]
        t, d = _frames(tu["turns"], n), _frames(det, n)
        tp, fp, fn = tp + int((t & d).sum()), fp + int((~t & d).sum()), fn + int((t & ~d).sum())
        for k in (0, 1):
            for b in (x[k] for x in tu["turns"]):
                errors.append(min((abs(x[k] - b) for x in det), default=1e9))
    return {"recall": tp / max(tp + fn, 1), "precision": tp / max(tp + fp, 1),
            "median_error_ms": float(np.median(errors)), "boundaries": len(errors)}


CASES = [("aac", 16000, 1), ("aac", 32000, 2), ("aac", 44100, 1), ("aac", 48000, 1), ("opus", 16000, 1),
         ("opus", 48000, 2)]


@pytest.mark.parametrize("codec,rate,channels", CASES, ids=[f"{c}-{r}-{ch}ch" for c, r, ch in CASES])
def test_accuracy_against_known_turns(make_recording, codec, rate, channels):
    folder, truth = make_recording(f"voice_{codec}_{rate}_{channels}", users=3, duration_s=30.0, seed=11,
                                   codec=codec, sample_rates=[rate], channels=[channels], signal="voice")
    assert sum(len(u["turns"]) for u in truth["users"]) >= 8
    rep = activity(folder)
    s = score(truth, rep)
    assert s["recall"] >= 0.95, s
    assert s["precision"] >= 0.9, s
    assert s["median_error_ms"] <= 60, s


@pytest.mark.parametrize("codec,rate,channels", [("aac", 32000, 2), ("opus", 48000, 1)])
def test_speech_judged_on_the_mix_decoding_is_as_good_and_decodes_nothing(make_recording, tmp_path, codec, rate,
                                                                          channels):
    """process hands activity what its mix judged (a SpeechTap): the same accuracy against the known
    turns, the same turns as decoding with ffmpeg to within a frame or two, and activity then reads
    no slice at all (they are moved away here)."""
    import shutil

    from mediatools.activity import SpeechTap
    from mediatools.mix import MixOptions, mix
    from mediatools.recording.discovery import load_recording

    folder, truth = make_recording(f"voice_{codec}_{rate}_{channels}", users=3, duration_s=30.0, seed=11,
                                   codec=codec, sample_rates=[rate], channels=[channels], signal="voice")
    copy = shutil.copytree(folder, tmp_path / "rec")
    rec = load_recording(copy)
    decoded = activity(rec)
    tap = SpeechTap()
    mix(rec, tmp_path / "mix.m4a", MixOptions(), speech=tap)
    shutil.rmtree(copy)                                   # nothing left to decode
    shared = activity(rec, speech=tap)
    s = score(truth, shared)
    assert s["recall"] >= 0.95 and s["precision"] >= 0.9 and s["median_error_ms"] <= 60, s
    for a, b in zip(shared.users, decoded.users):
        assert a["uid"] == b["uid"] and len(a["turns"]) == len(b["turns"]), (a["turns"], b["turns"])
        assert all(abs(x - y) <= 20 for ta, tb in zip(a["turns"], b["turns"]) for x, y in zip(ta, tb)), \
            (a["turns"], b["turns"])
    # a tap judged with another detector is not used: activity decodes (and here finds nothing)
    from mediatools.errors import MediatoolsError
    with pytest.raises(MediatoolsError, match="decoding failed: .*No such file"):
        activity(rec, options=ActivityOptions(aggressiveness=1), speech=tap)


def test_energy_detector_is_a_usable_fallback(make_recording):
    folder, truth = make_recording("voice_aac_48000_1", users=3, duration_s=30.0, seed=11, codec="aac",
                                   sample_rates=[48000], channels=[1], signal="voice")
    rep = activity(folder, options=ActivityOptions(detector="energy"))
    s = score(truth, rep)
    assert rep.detector["name"] == "energy"
    assert s["recall"] >= 0.9 and s["precision"] >= 0.9, s


@pytest.fixture(scope="session")
def faulted(make_recording):
    """Voice with a missing slice (a hole inside a run) and a failover overlap."""
    return make_recording("voice_faults", users=3, duration_s=40.0, seed=5, signal="voice", slice_s=5.0,
                          faults=[Fault("missing_slice", "0", 0, 2), Fault("bak_overlap", "1", 1, 2)])


def test_turns_stay_inside_runs_and_figures_add_up(faulted):
    folder, truth = faulted
    rep = activity(folder)
    assert any(p.code == "missing_slice" for p in rep.problems)
    for u in rep.users:
        for a, b in u["turns"]:
            assert any(p0 <= a and b <= p1 for p0, p1 in u["presence"]), (u["uid"], a, b)
    figs = {u["uid"]: u for u in rep.figures["users"]}
    for u in rep.users:
        assert figs[u["uid"]]["talk_ms"] == sum(b - a for a, b in u["turns"])
        assert figs[u["uid"]]["turns"] == len(u["turns"])
        assert figs[u["uid"]]["present_ms"] == sum(b - a for a, b in u["presence"])
    assert abs(sum(f["share"] for f in figs.values()) - 1.0) < 1e-3
    s = score(truth, rep)
    assert s["recall"] >= 0.95 and s["precision"] >= 0.9, s


def test_cli_writes_every_export_and_json(faulted, tmp_path):
    folder, _ = faulted
    out = tmp_path / "act"
    proc = run_cli("activity", str(folder), "-o", str(out), "--json", check=True)
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "mediatools.activity/1"
    assert json.loads((out / "activity.json").read_text()) == doc
    assert sorted(p.name for p in out.iterdir()) == ["activity.csv", "activity.json", "activity.rttm",
                                                     "activity.vtt", "labels"]
    assert len(list((out / "labels").iterdir())) == len(doc["users"])
    assert "missing" in proc.stderr or doc["problems"]
    assert stray_temp_files(out) == []
    # UTC forms agree with the offsets
    u = doc["users"][0]
    assert len(u["turns_utc"]) == len(u["turns"]) and u["turns_utc"][0][0].endswith("Z")


def test_cli_bad_input_is_one_line_naming_the_file(tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("nothing here")
    proc = run_cli("activity", str(junk), "-o", str(tmp_path / "out"))
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(junk) in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    proc = run_cli("activity", str(tmp_path / "nope"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1 and "nope" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    # a playlist and nothing usable: no exports dated 1970 (found by a review session), mix's error
    sid = "6f1b2c3d4e5f60718293a4b5c6d7e8f9"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / f"{sid}_demo_room-1__uid_s_1111__uid_e_audio.m3u8").write_text("garbage\n")
    for cmd in (["activity", str(broken), "-o", str(tmp_path / "out")],
                ["report", str(broken), "-o", str(tmp_path / "out.html")]):
        proc = run_cli(*cmd)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip() == f"mediatools: error: {sid}: no user has usable audio: no speech to find " \
                                      "(see inspect for why)", proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.html").exists()


def test_cli_usage_errors_exit_2(faulted, tmp_path):
    folder, _ = faulted
    proc = run_cli("activity", str(folder), "-o", str(tmp_path / "o"), "--uid", "nobody")
    assert proc.returncode == 2 and "nobody" in proc.stderr
    proc = run_cli("activity", str(folder), "-o", str(tmp_path / "o"), "--aggressiveness", "7")
    assert proc.returncode == 2


@pytest.mark.parametrize("codec", ["opus", "aac"])
def test_webrtcvad_hears_the_pauses_so_its_verdicts_are_its_own(codec, tmp_path):
    """webrtcvad keeps state from frame to frame: fed only the frames above the gate it judged
    the loud frames after each pause differently from webrtcvad fed the whole stream (20 frames
    per 15 s slice on Opus 16 kHz; a 130 ms syllable dropped; found by a review session). With
    pauses under a second every loud frame now gets exactly webrtcvad's own verdict."""
    import subprocess

    import webrtcvad

    from mediatools.activity import detect
    from mediatools.media.ffmpeg import ffmpeg_path
    from mediatools.synth.generate import SynthSpec, UserSpec, synthesize

    folder = tmp_path / "rec"
    synthesize(SynthSpec(users=[UserSpec(uid="u", freq=440, runs=[(0.0, 14.0)], turns=[(0.5, 13.0)], codec=codec,
                                         sample_rate=16000)], signal="voice", seed=5), folder)
    ts = sorted(folder.glob("*.ts"))[0]
    raw = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(ts), "-ac", "1", "-ar", "16000", "-f", "s16le",
                          "-"], capture_output=True, check=True).stdout
    x = np.frombuffer(raw, "<i2").astype(np.float32)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    db = detect._dbfs(frames)
    judge = detect._frame_judge("webrtc", 3, 10)
    ours = np.concatenate([judge(frames[a:a + 100], db[a:a + 100]) for a in range(0, len(frames), 100)])
    vad = webrtcvad.Vad(3)
    full = np.array([vad.is_speech(f.astype("<i2").tobytes(), 16000) for f in frames]) & (db > detect.GATE_DBFS)
    quiet = db <= detect.GATE_DBFS
    assert quiet.sum() > 20 and (~quiet).sum() > 500          # pauses to skip, speech to judge
    assert np.array_equal(ours, full)


@pytest.mark.parametrize("command", ["activity", "verify"])
def test_sigterm_stops_the_decoding_workers_and_leaves_nothing(make_recording, tmp_path, command):
    """activity's and verify's runs are decoded on worker processes (mediatools.media.processes):
    SIGTERM mid-way is "interrupted", exit 130, no worker left running, no export written."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from mediatools.mix.split import usable_cores
    if usable_cores() < 2:
        pytest.skip("one core: the runs are decoded on one thread, not on worker processes")
    folder, _ = make_recording("interrupt_4x8", users=4, duration_s=480.0, seed=5, gaps=1)
    out = tmp_path / "out"
    if command == "activity":
        args = ["activity", str(folder), "-o", str(out)]
    else:
        mix = tmp_path / "mix.m4a"
        run_cli("mix", str(folder), "-o", str(mix), "-q", check=True)
        args = ["verify", str(mix), str(folder)]
    proc = subprocess.Popen([sys.executable, "-m", "mediatools", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []

    def children() -> list[psutil.Process]:
        try:
            return me.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
    # the fork server, multiprocessing's resource tracker and the decoding workers (2 cores here)
    while len(workers) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        workers = children()
    time.sleep(0.3)   # decoding
    workers = children()
    assert len(workers) >= 3 and proc.poll() is None, "the workers never ran"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "mediatools: interrupted", err
    assert "Traceback" not in err
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, alive
    assert not out.exists() or list(out.iterdir()) == []
