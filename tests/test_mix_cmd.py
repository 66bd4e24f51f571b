"""Issue 3: `mediatools mix` places every run of every user where it was said."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from mediatools.atomic import stray_temp_files
from mediatools.media.tones import active_spans, decode_pcm, envelope, level_db
from mediatools.synth.generate import Fault

RATE = 48000
HALF = 0.125  # half the synth tone amplitude (0.25): the onset rule truth.json uses


@pytest.fixture(scope="session")
def mixed_rec(make_recording):
    """3 users: AAC 48k mono, Opus stereo, AAC 16k mono; gaps, late joiners; a missing and a garbage slice."""
    return make_recording("mix_mixed", users=3, duration_s=40.0, seed=3, codec="mixed",
                          sample_rates=[48000, 48000, 16000], channels=[1, 2, 1],
                          faults=[Fault("missing_slice", "0", 1, 1), Fault("garbage_slice", "2", 0, 1)])


def _onsets(x: np.ndarray, freq: float) -> list[tuple[float, float]]:
    return active_spans(envelope(x, RATE, freq), RATE, threshold=HALF)


def assert_placed(x: np.ndarray, truth: dict, shift_ms: float = 0.0, tol_ms: float = 2.0) -> None:
    """Every run with an audible onset starts within tol of truth; every gap is silent."""
    for u in truth["users"]:
        spans = _onsets(x, u["freq"])
        assert spans, f"uid {u['uid']} missing from the mix"
        prev_end = None
        for run in u["runs"]:
            want = run["onset_offset_ms"] - shift_ms
            contiguous = prev_end is not None and abs(run["offset_ms"] - prev_end) < 1.0
            prev_end = run["offset_ms"] + run["duration_ms"]
            if contiguous or want < 0:
                continue  # no audible onset: the tone continues from the previous run
            got = min(spans, key=lambda s: abs(s[0] - want))[0]
            assert abs(got - want) <= tol_ms, f"uid {u['uid']} run at {want:.1f} ms placed at {got:.1f} ms"
        env = envelope(x, RATE, u["freq"])
        for a, b in zip(u["runs"], u["runs"][1:]):
            g0 = a["offset_ms"] + a["duration_ms"] + 30 - shift_ms
            g1 = b["offset_ms"] - 30 - shift_ms
            if g1 - g0 > 50 and g0 > 0:
                seg = env[int(g0 * RATE / 1000):int(g1 * RATE / 1000)]
                assert 20 * np.log10(seg.max() + 1e-12) < -40, f"uid {u['uid']} audible in gap {g0:.0f}-{g1:.0f} ms"


@pytest.mark.parametrize("ext", ["m4a", "mp3", "aac", "wav", "opus", "flac"])
def test_every_run_on_time_in_every_format(ext, mixed_rec, tmp_path):
    folder, truth = mixed_rec
    out = tmp_path / f"call.{ext}"
    proc = run_cli("mix", str(folder), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    x = decode_pcm(out, RATE, 1)
    assert_placed(x, truth)
    frame_ms = 1024 / 48.0 if ext in ("m4a", "aac") else 1152 / 48.0 if ext == "mp3" else 20.0
    assert abs(len(x) * 1000 / RATE - truth["span_ms"]) <= frame_ms
    assert report["duration_ms"] == pytest.approx(truth["span_ms"], abs=0.05)
    assert stray_temp_files(tmp_path) == []


def test_tolerant_mode_names_each_skipped_file(mixed_rec, tmp_path):
    folder, truth = mixed_rec
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "m.wav"))
    assert proc.returncode == 0
    for u in truth["users"]:
        for f in u["faulted_slices"]:
            assert f["name"] in proc.stderr


def test_strict_fails_and_writes_nothing(mixed_rec, tmp_path):
    folder, truth = mixed_rec
    out = tmp_path / "m.m4a"
    proc = run_cli("mix", str(folder), "-o", str(out), "--strict")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    missing = truth["users"][0]["faulted_slices"][0]["name"]
    assert lines[0] == f"mediatools: error: {missing}: listed in " + \
        next(p.name for p in folder.glob("*.m3u8") if truth["users"][0]["uid"] in p.name) + " but not in the folder"
    assert not out.exists() and stray_temp_files(tmp_path) == []


@pytest.mark.parametrize("normalize,ext", [("none", "wav"), ("limit", "wav"), ("limit", "m4a")])
def test_mono_user_sits_at_its_own_level_in_both_channels(normalize, ext, mixed_rec, tmp_path):
    """A mix of mono runs only is fed to the encoder once and copied to both channels: at
    unity (not -ac's -3 dB upmix), and the same in both."""
    folder, truth = mixed_rec
    u = truth["users"][0]  # AAC mono
    out = tmp_path / f"u.{ext}"
    run_cli("mix", str(folder), "-o", str(out), "--uid", u["uid"], "--normalize", normalize, check=True)
    x = decode_pcm(out, RATE, 2)
    r = u["runs"][0]
    a, b = int((r["offset_ms"] + 100) * 48), int((r["offset_ms"] + r["duration_ms"] - 100) * 48)
    for ch in (0, 1):
        assert level_db(x[a:b, ch], RATE, u["freq"]) == pytest.approx(20 * np.log10(0.25), abs=0.3)
    if ext == "wav":   # (AAC codes two equal channels nearly, not exactly, equal)
        assert np.array_equal(x[:, 0], x[:, 1])


def test_ebu_normalizes_what_is_written(mixed_rec, tmp_path):
    """--normalize ebu reaches -16 LUFS in the stereo file, also when the mix is fed as one
    channel (loudness sums the channels: measured before the copy it would be 3 LU loud)."""
    import subprocess

    from mediatools.media.ffmpeg import ffmpeg_path
    folder, truth = mixed_rec
    out = tmp_path / "e.wav"
    run_cli("mix", str(folder), "-o", str(out), "--uid", truth["users"][0]["uid"], "--normalize", "ebu", check=True)
    err = subprocess.run([ffmpeg_path(), "-hide_banner", "-nostats", "-i", str(out), "-af", "ebur128",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    integrated = float(err.rsplit("I:", 1)[1].split("LUFS")[0])
    assert integrated == pytest.approx(-16.0, abs=1.0)


def test_stereo_user_becomes_mean_in_mono_mix(mixed_rec, tmp_path):
    folder, truth = mixed_rec
    u = truth["users"][1]  # Opus stereo, same tone both channels
    out = tmp_path / "s.wav"
    run_cli("mix", str(folder), "-o", str(out), "--uid", u["uid"], "--channels", "1", "--normalize", "none",
            check=True)
    x = decode_pcm(out, RATE, 1)
    r = max(u["runs"], key=lambda r: r["duration_ms"])
    a, b = int((r["offset_ms"] + 100) * 48), int((r["offset_ms"] + r["duration_ms"] - 100) * 48)
    assert level_db(x[a:b], RATE, u["freq"]) == pytest.approx(20 * np.log10(0.25), abs=0.3)


def test_uid_and_exclude_uid_select_exactly(mixed_rec, tmp_path):
    folder, truth = mixed_rec
    keep, drop = truth["users"][0], truth["users"][2]
    out = tmp_path / "x.wav"
    run_cli("mix", str(folder), "-o", str(out), "--exclude-uid", drop["uid"], check=True)
    x = decode_pcm(out, RATE, 1)
    assert _onsets(x, keep["freq"]) and not _onsets(x, drop["freq"])
    run_cli("mix", str(folder), "-o", str(out), "--uid", drop["uid"], check=True)
    x = decode_pcm(out, RATE, 1)
    assert _onsets(x, drop["freq"]) and not _onsets(x, keep["freq"])


def test_gain_changes_one_user_by_exactly_that(mixed_rec, tmp_path):
    folder, truth = mixed_rec
    u = truth["users"][0]
    r = u["runs"][0]
    a, b = int((r["offset_ms"] + 100) * 48), int((r["offset_ms"] + r["duration_ms"] - 100) * 48)
    levels = []
    for g in ("0", "-6"):
        out = tmp_path / f"g{g}.wav"
        run_cli("mix", str(folder), "-o", str(out), "--gain", f"{u['uid']}={g}", "--normalize", "none", check=True)
        x = decode_pcm(out, RATE, 1)
        levels.append((level_db(x[a:b], RATE, u["freq"]), level_db(x, RATE, truth["users"][1]["freq"])))
    assert levels[1][0] - levels[0][0] == pytest.approx(-6.0, abs=0.1)
    assert levels[1][1] == pytest.approx(levels[0][1], abs=0.05)  # others untouched


def test_start_end_cut_the_range(mixed_rec, tmp_path):
    folder, truth = mixed_rec
    out = tmp_path / "cut.wav"
    rep = json.loads(run_cli("mix", str(folder), "-o", str(out), "--start", "5", "--end", "0:00:30.000",
                             "--json", check=True).stdout)
    x = decode_pcm(out, RATE, 1)
    assert len(x) == 25 * RATE
    assert rep["window"] == {"start_ms": 5000.0, "end_ms": 30000.0}
    shifted = {**truth, "users": [{**u, "runs": [r for r in u["runs"] if 5000 < r["onset_offset_ms"] < 29000]}
                                  for u in truth["users"]]}
    shifted["users"] = [u for u in shifted["users"] if u["runs"]]
    assert_placed(x, shifted, shift_ms=5000.0)


def test_limit_prevents_clipping_and_ebu_sets_loudness(make_recording, tmp_path):
    folder, truth = make_recording("mix_loud", users=6, duration_s=20.0, seed=5, gaps=0, late_join=False)
    lim = tmp_path / "lim.wav"
    none = tmp_path / "none.wav"
    run_cli("mix", str(folder), "-o", str(lim), check=True)
    run_cli("mix", str(folder), "-o", str(none), "--normalize", "none", check=True)
    xl, xn = decode_pcm(lim, RATE, 1), decode_pcm(none, RATE, 1)
    assert np.abs(xn).max() >= 0.999          # 6 × 0.25 clips without the limiter
    assert np.abs(xl).max() <= 0.95           # the limiter holds the peak under -0.5 dBFS
    ebu = tmp_path / "ebu.wav"
    run_cli("mix", str(folder), "-o", str(ebu), "--normalize", "ebu", "--uid", truth["users"][0]["uid"], check=True)
    xe = decode_pcm(ebu, RATE, 1)
    rms_db = 20 * np.log10(np.sqrt(np.mean(xe[RATE:-RATE] ** 2)))
    assert -19.0 < rms_db < -13.0             # a steady tone at -16 LUFS


def test_transcode_options_shape_the_output(mixed_rec, tmp_path):
    from mediatools.media.probe import probe
    folder, _ = mixed_rec
    opts = tmp_path / "start.json"
    opts.write_text(json.dumps({"clientRequest": {"transcodeOptions": {
        "transConfig": {"transMode": "audioMix"}, "container": {"format": "mp3"},
        "audio": {"sampleRate": "32000", "bitrate": "48000", "channels": "1"}}}}))
    out = tmp_path / "cloudlike.mp3"
    run_cli("mix", str(folder), "-o", str(out), "--transcode-options", str(opts), check=True)
    info, _ = probe(out)
    assert (info.codec, info.sample_rate, info.channels) == ("mp3", 32000, 1)


def test_bad_options_are_usage_errors(mixed_rec, tmp_path):
    folder, _ = mixed_rec
    for args, msg in [(["--gain", "nobody"], "--gain takes UID=DB"),
                      (["--uid", "424242"], "uid 424242 not in recording"),
                      (["--start", "20", "--end", "10"], "--start/--end"),
                      (["--start", "100000"], "--start lies at or past the end of the recording"),
                      (["--bitrate", "banana"], "--bitrate 'banana': give bits per second"),
                      (["--sample-rate", "7"], "--sample-rate 7 Hz: use 8000 to 192000"),
                      (["--sample-rate", "96000", "--format", "mp3"], "mp3 cannot store 96000 Hz"),
                      (["--sample-rate", "44100", "--format", "opus"], "opus cannot store 44100 Hz")]:
        proc = run_cli("mix", str(folder), "-o", str(tmp_path / "x.wav"), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert msg in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.wav").exists(), proc.stderr


def test_transcode_options_agora_does_not_offer_or_contradicting_out_are_refused(mixed_rec, tmp_path):
    folder, _ = mixed_rec
    wav = tmp_path / "wav.json"
    wav.write_text(json.dumps({"transcodeOptions": {"container": {"format": "wav"}, "audio": {"sampleRate": "48000"}}}))
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "x.m4a"), "--transcode-options", str(wav))
    assert proc.returncode == 2 and "container.format 'wav' is not one Agora's postpone mix offers" in proc.stderr
    mp3 = tmp_path / "mp3.json"
    mp3.write_text(json.dumps({"transcodeOptions": {"container": {"format": "mp3"}, "audio": {"sampleRate": "48000"}}}))
    proc = run_cli("mix", str(folder), "-o", str(tmp_path / "x.m4a"), "--transcode-options", str(mp3))
    assert proc.returncode == 2 and "ask for mp3, but OUT is .m4a" in proc.stderr
    assert not (tmp_path / "x.m4a").exists()


def test_a_recording_with_no_usable_audio_is_an_error_not_an_empty_file(mixed_rec, tmp_path):
    import shutil
    folder, _ = mixed_rec
    dead = shutil.copytree(folder, tmp_path / "dead")
    for ts in dead.glob("*.ts"):
        ts.write_bytes(b"")
    proc = run_cli("mix", str(dead), "-o", str(tmp_path / "x.m4a"))
    assert proc.returncode == 1 and "no user has usable audio: nothing to mix" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.m4a").exists() and stray_temp_files(tmp_path) == []


@pytest.mark.parametrize("ext,asked,parts", [("m4a", 2, 2), ("aac", 2, 2), ("m4a", 3, 3),
                                             ("m4a", 8, 3)])   # 40 s: no part under two warm-ups (10 s)
def test_split_encoders_are_on_time_and_join_cleanly(ext, asked, parts, mixed_rec, tmp_path):
    """Long AAC mixes are encoded in parts at once, one encoder per part (MEDIATOOLS_SPLIT_MIN_S
    lowers the threshold here, MEDIATOOLS_SPLIT_PARTS sets the count a machine's cores would).
    Every run still lands to ±2 ms, the length is right to a frame, and every join is no worse
    than an ordinary frame: the coding error around it stays far below the signal (compared
    with the same mix rendered to WAV)."""
    folder, truth = mixed_rec
    out, ref = tmp_path / f"split.{ext}", tmp_path / "ref.wav"
    run_cli("mix", str(folder), "-o", str(ref), check=True)
    env = {"MEDIATOOLS_SPLIT_MIN_S": "5", "MEDIATOOLS_SPLIT_PARTS": str(asked)}
    if ext == "aac":   # the first encoder's disk spool at its limit: the mix waits for it
        env["MEDIATOOLS_SPOOL_MAX_MB"] = "1"
    proc = run_cli("--debug", "mix", str(folder), "-o", str(out), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{parts} encoders" in proc.stderr
    x, r = decode_pcm(out, RATE, 1), decode_pcm(ref, RATE, 1)
    assert_placed(x, truth)
    assert abs(len(x) - len(r)) <= 1024
    for j in range(1, parts):
        join = (len(r) * j // parts) // 1024 * 1024
        err = x[join - 4096:join + 4096] - r[join - 4096:join + 4096]
        sig = r[join - 4096:join + 4096]
        assert 20 * np.log10(np.sqrt(np.mean(err ** 2)) + 1e-12) < -45, j
        assert np.sqrt(np.mean(err ** 2)) < 0.05 * max(np.sqrt(np.mean(sig ** 2)), 1e-3), j
    # and nowhere else worse than at a join: no part lost, doubled or shifted by a frame
    n = min(len(x), len(r))
    err = x[:n] - r[:n]
    assert 20 * np.log10(np.sqrt(np.mean(err ** 2)) + 1e-12) < -40
    assert stray_temp_files(tmp_path) == []
    ver = json.loads(run_cli("verify", str(out), str(folder), "--json").stdout)
    assert ver["passed"] is True
