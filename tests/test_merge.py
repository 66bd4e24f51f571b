"""merge: per-user files, copied where the codec allows, placed on the session timeline."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mediatools.atomic import stray_temp_files
from mediatools.media.tones import decode_pcm, onset_ms
from mediatools.merge.core import safe_name
from mediatools.synth.generate import Fault
from tests.conftest import run_cli

KW = dict(users=3, duration_s=40.0, seed=3, codec="mixed", sample_rates=[48000, 48000, 16000],
          channels=[1, 1, 2], gaps=2, string_uids=True)


@pytest.fixture(scope="module")
def rec(make_recording):
    return make_recording("merge_mixed", **KW)


def _merge(folder: Path, out: Path, *args: str) -> dict:
    p = run_cli("merge", str(folder), "-o", str(out), "--json", *args)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc == json.loads((out / "merge.json").read_text())
    assert not stray_temp_files(out)
    return doc


def _frame_ms(tu: dict) -> float:
    return (1024 if tu["codec"] == "aac" else 960) * 1000.0 / tu["sample_rate"]


def _quantum_ms(tu: dict) -> float:
    """Copy placement step: a whole AAC frame; Opus: 2.5 ms (its smallest packet, used for silence)."""
    return _frame_ms(tu) if tu["codec"] == "aac" else 2.5


#: the synth's tone amplitude. truth.json's onsets are where the tone reaches half of it, so
#: outputs are measured by the same rule. Half of the window's peak is not that rule: the
#: sender's AAC overshoots after some onsets (0.42 at 40 ms), which moves "half" 2 ms later
LEVEL = 0.25


def _onset_errors(path: Path, tu: dict, first_ms: float) -> list[float]:
    x = decode_pcm(path, 48000)
    errs = []
    for r in tu["runs"]:
        want = r["onset_offset_ms"] - first_ms
        a = max(0, int((want - 300) * 48))
        got = onset_ms(x[a:a + 48000], 48000, tu["freq"], level=LEVEL)
        assert got is not None, (path.name, r)
        errs.append(got + a / 48.0 - want)
    return errs


def test_keep_user_copy_and_placement(rec, tmp_path):
    folder, truth = rec
    doc = _merge(folder, tmp_path)
    assert doc["gaps"] == "keep" and doc["align"] == "user"
    for tu in truth["users"]:
        u = next(x for x in doc["users"] if x["uid"] == tu["uid"])
        path = tmp_path / u["file"]
        assert doc["files"][tu["uid"]] == u["file"] and path.exists()
        if tu["codec"] == "aac":
            assert u["mode"] == "copy" and u["reason"] is None and path.suffix == ".m4a"
        else:
            assert u["mode"] == "copy" and u["reason"] is None and path.suffix == ".ogg"
        first = tu["runs"][0]["offset_ms"]
        last = max(r["offset_ms"] + r["duration_ms"] for r in tu["runs"])
        dur = len(decode_pcm(path, 48000)) / 48.0
        # the last run ends on a whole frame: the file's end is within half of one
        assert abs(dur - (last - first)) <= _frame_ms(tu) / 2 + 0.1, (tu["uid"], dur, last - first)
        errs = _onset_errors(path, tu, first)
        if u["mode"] == "copy":
            # quantised: each run within half a step (+2 ms measurement) of truth,
            # and the report states the quantisation error it chose
            for e, r in zip(errs, u["runs"]):
                assert abs(r["placement_error_ms"]) <= _quantum_ms(tu) / 2, (tu["uid"], u["runs"])
                assert abs(e) <= _quantum_ms(tu) / 2 + 2.0, (tu["uid"], errs)
                assert abs(e - r["placement_error_ms"]) <= 2.5, (tu["uid"], errs, u["runs"])
        else:
            assert max(abs(e) for e in errs) <= 2.0, (tu["uid"], errs)


def test_copy_is_bit_identical_except_splice_frames(rec, tmp_path):
    folder, truth = rec
    doc = _merge(folder, tmp_path)
    for u in doc["users"]:
        if u["mode"] != "copy":
            continue
        tu = next(x for x in truth["users"] if x["uid"] == u["uid"])
        rate = tu["sample_rate"]
        out = decode_pcm(tmp_path / u["file"], rate)
        for r, tr in zip(u["runs"], tu["runs"]):
            src = decode_pcm("concat:" + "|".join(str(folder / s) for s in tr["slices"]), rate)
            n = int(round(tr["duration_ms"] * rate / 1000.0))
            at = int(round(r["file_offset_ms"] * rate / 1000.0))
            lo, hi = 1024, n - 1024          # one codec frame on each side of the splice
            a, b = out[at + lo:at + hi], src[lo:hi]
            assert len(a) == len(b) > rate
            # not bit-exact only because the AAC decoder's noise-substitution (PNS) generator
            # state carries across the splice: residue stays below -40 dBFS
            assert float(np.max(np.abs(a - b))) < 1e-2, (u["uid"], r)
            assert np.corrcoef(a if a.ndim == 1 else a[:, 0], b if b.ndim == 1 else b[:, 0])[0, 1] > 0.9999
        # the bitstream proof: every source frame of every run is in the output, byte for byte
        if tu["codec"] == "opus":
            got = _packet_md5s(str(tmp_path / u["file"]))
            for tr, r in zip(tu["runs"], u["runs"]):
                want = _packet_md5s("concat:" + "|".join(str(folder / s) for s in tr["slices"]))
                need = int(round(r["packets_ms"] / 20.0))
                assert need >= int(tr["duration_ms"] // 20) and "\n".join(want[:need]) in "\n".join(got)
            continue
        got = b"".join(_adts(str(tmp_path / u["file"])))
        for tr in tu["runs"]:
            frames = _adts("concat:" + "|".join(str(folder / s) for s in tr["slices"]))
            need = -(-int(round(tr["duration_ms"] * rate / 1000.0)) // 1024)
            assert b"".join(frames[:need]) in got, (u["uid"], tr["start_ms"])


def _packet_md5s(src: str) -> list[str]:
    import subprocess

    from mediatools.media.ffmpeg import base_cmd

    p = subprocess.run(base_cmd() + ["-i", src, "-map", "0:a:0", "-c", "copy", "-f", "framemd5", "-"],
                       capture_output=True, check=True, text=True)
    return [ln.split(",")[5].strip() for ln in p.stdout.splitlines() if ln and not ln.startswith("#")]


def _adts(src: str) -> list[bytes]:
    import subprocess

    from mediatools.media.adts import split_adts
    from mediatools.media.ffmpeg import base_cmd

    p = subprocess.run(base_cmd() + ["-i", src, "-map", "0:a:0", "-c", "copy", "-f", "adts", "-"],
                       capture_output=True, check=True)
    return split_adts(p.stdout)


def test_gaps_drop_and_align_session(rec, tmp_path):
    folder, truth = rec
    drop = _merge(folder, tmp_path / "drop", "--gaps", "drop")
    for tu in truth["users"]:
        u = next(x for x in drop["users"] if x["uid"] == tu["uid"])
        talk = sum(r["duration_ms"] for r in tu["runs"])
        dur = len(decode_pcm(tmp_path / "drop" / u["file"], 48000)) / 48.0
        # runs back to back, each cut to whole frames without drifting: within half a frame
        assert abs(dur - talk) <= _frame_ms(tu) / 2 + 0.1, (tu["uid"], dur, talk)
        # back to back in the file, yet each run still says where it was in the call
        assert [r["session_offset_ms"] for r in u["runs"]] == pytest.approx(
            [r["offset_ms"] for r in tu["runs"]], abs=1.0)
        placed = np.cumsum([0.0] + [r["duration_ms"] for r in tu["runs"]])[:-1]
        assert [r["file_offset_ms"] for r in u["runs"]] == pytest.approx(list(placed), abs=_frame_ms(tu) / 2 + 0.1)
    sess = _merge(folder, tmp_path / "sess", "--align", "session")
    for tu in truth["users"]:
        u = next(x for x in sess["users"] if x["uid"] == tu["uid"])
        path = tmp_path / "sess" / u["file"]
        dur = len(decode_pcm(path, 48000)) / 48.0
        assert abs(dur - truth["span_ms"]) <= _frame_ms(tu) / 2 + 0.1, (tu["uid"], dur)   # same length, all
        for e in _onset_errors(path, tu, 0.0):
            assert abs(e) <= (_quantum_ms(tu) / 2 + 2.0 if u["mode"] == "copy" else 2.0)


def test_one_user_merged_alone_is_aligned_to_the_session_not_to_itself(rec, tmp_path):
    """`merge --uid X --align session` took X's own first instant as t = 0 (a late joiner's file
    started 9 s late against the session's and was shorter; found by a review session)."""
    folder, truth = rec
    tu = max(truth["users"], key=lambda u: u["runs"][0]["offset_ms"])     # the latest joiner
    assert tu["runs"][0]["offset_ms"] > 1000
    doc = _merge(folder, tmp_path / "one", "--uid", tu["uid"], "--align", "session")
    (u,) = doc["users"]
    path = tmp_path / "one" / u["file"]
    assert abs(len(decode_pcm(path, 48000)) / 48.0 - truth["span_ms"]) <= _frame_ms(tu) / 2 + 0.1
    for e in _onset_errors(path, tu, 0.0):
        assert abs(e) <= (_quantum_ms(tu) / 2 + 2.0 if u["mode"] == "copy" else 2.0)


def test_reencode_is_exact_and_says_so(rec, tmp_path):
    folder, truth = rec
    doc = _merge(folder, tmp_path, "--reencode", "--uid", truth["users"][0]["uid"])
    assert [u["uid"] for u in doc["users"]] == [truth["users"][0]["uid"]]
    u, tu = doc["users"][0], truth["users"][0]
    assert u["mode"] == "transcode" and u["reason"] == "--reencode"
    errs = _onset_errors(tmp_path / u["file"], tu, tu["runs"][0]["offset_ms"])
    assert max(abs(e) for e in errs) <= 2.0, errs
    # to the sample, though the span (40 021.333 ms) is no whole number of ms or frames
    assert len(decode_pcm(tmp_path / u["file"], 48000)) == int(round(u["duration_ms"] * 48)), u["duration_ms"]


def test_reencode_into_mka_is_exact(rec, tmp_path):
    """AAC in Matroska: ffmpeg 9 signals the encoder's priming (CodecDelay), 5.1 neither writes
    nor reads it. The file must start on time and last its span whichever ffmpeg writes and reads."""
    folder, truth = rec
    tu = truth["users"][0]
    doc = _merge(folder, tmp_path, "--reencode", "--format", "mka", "--uid", tu["uid"])
    u = doc["users"][0]
    assert u["mode"] == "transcode" and u["file"].endswith(".mka")
    errs = _onset_errors(tmp_path / u["file"], tu, tu["runs"][0]["offset_ms"])
    assert max(abs(e) for e in errs) <= 2.0, errs
    dur = len(decode_pcm(tmp_path / u["file"], 48000)) / 48.0
    assert 0 <= dur - u["duration_ms"] <= _frame_ms(tu), (dur, u["duration_ms"])


def test_strict_fails_naming_file_and_tolerant_keeps_later_runs(make_recording, tmp_path):
    folder, truth = make_recording("merge_fault", users=2, duration_s=40.0, seed=5, gaps=0,
                                   faults=[Fault("missing_slice", "0", 0, 1)])
    bad = truth["users"][0]["faulted_slices"]
    out = tmp_path / "strict"
    p = run_cli("merge", str(folder), "-o", str(out), "--strict")
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert lines[0] == f"mediatools: error: {bad[0]['name']}: listed in {bad[0]['name'][:-21]}.m3u8 but not in the folder"
    assert not out.exists()
    doc = _merge(folder, tmp_path / "tol")
    u0 = next(u for u in doc["users"] if u["uid"] == truth["users"][0]["uid"])
    assert u0["problems"] and any(pr["code"] for pr in u0["problems"])
    tu = truth["users"][0]
    errs = _onset_errors(tmp_path / "tol" / u0["file"], tu, tu["runs"][0]["offset_ms"])
    assert all(abs(e) <= _frame_ms(tu) / 2 + 2.0 for e in errs), errs


def test_safe_names():
    taken: set[str] = {"merge"}
    assert safe_name("../etc/passwd", taken) == "_etc_passwd"
    assert safe_name("a/b", taken) == "a_b"
    assert safe_name("a:b", taken) == "a_b-2"
    assert safe_name("..", taken) == "uid"
    assert safe_name("x\ny", taken) == "x_y"
    assert safe_name("merge", taken) == "merge-2"


def test_ts_copy_and_start_end_transcode(rec, tmp_path):
    folder, truth = rec
    tu = truth["users"][0]
    ts = _merge(folder, tmp_path / "ts", "--format", "ts", "--uid", tu["uid"])
    u = ts["users"][0]
    assert u["mode"] == "copy" and u["file"].endswith(".ts")
    first = tu["runs"][0]["offset_ms"]
    for e in _onset_errors(tmp_path / "ts" / u["file"], tu, first):
        assert abs(e) <= _frame_ms(tu) / 2 + 2.0
    cut = _merge(folder, tmp_path / "cut", "--uid", tu["uid"], "--start", "5", "--end", "30", "--align", "session")
    u = cut["users"][0]
    assert u["mode"] == "transcode" and u["reason"] == "--start/--end cut inside frames"
    assert abs(len(decode_pcm(tmp_path / "cut" / u["file"], 48000)) / 48.0 - 25000.0) <= 2.0


@pytest.mark.parametrize("rate", [16000, 22050, 32000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_silence_is_one_priming_frame_then_one_repeated_frame(rate, channels):
    """What SilenceFrames relies on to splice any length of silence from 8 encoded frames."""
    from mediatools.media.adts import SilenceFrames, silence_frames
    frames = silence_frames(60, rate, channels)
    assert len(frames) == 60 and len(set(frames[1:])) == 1
    assert SilenceFrames(rate, channels).take(60) == frames


def test_quick_probe_agrees_with_ffmpeg(make_recording):
    """Merge reads AAC parameters from the first ADTS header instead of starting ffmpeg per
    run; on every rate and channel count it must say what ffmpeg says (Opus: not AAC)."""
    from mediatools.media.adts import adts_media
    from mediatools.media.probe import probe

    folder, _ = make_recording("merge_probe", users=4, duration_s=20.0, seed=9, codec="mixed",
                               sample_rates=[48000, 44100, 32000, 16000], channels=[1, 2, 2, 1], gaps=0)
    seen = set()
    for ts in sorted(folder.glob("*.ts")):
        media, _ = probe(ts)
        quick = adts_media(ts)
        if media.codec == "aac":
            assert quick is not None and (quick.codec, quick.sample_rate, quick.channels) == \
                (media.codec, media.sample_rate, media.channels), ts.name
            seen.add((media.sample_rate, media.channels))
        else:
            assert quick is None, ts.name
    assert seen == {(48000, 1), (32000, 2)}


def test_ffmpeg_fallback_lifts_the_same_frames(make_recording, monkeypatch, tmp_path):
    """A slice the direct TS reader declines goes through ffmpeg, per slice, with the same
    frames; a slice ffmpeg cannot read either is named in the error."""
    from mediatools.errors import MediatoolsError
    from mediatools.media import adts

    folder, _ = make_recording("merge_probe", users=4, duration_s=20.0, seed=9, codec="mixed",
                               sample_rates=[48000, 44100, 32000, 16000], channels=[1, 2, 2, 1], gaps=0)
    ts = next(p for p in sorted(folder.glob("*.ts")) if adts.adts_media(p))
    direct = adts.slice_adts(ts)
    monkeypatch.setattr(adts, "ts_adts", lambda data: None)
    assert adts.slice_adts(ts) == direct and len(direct[1]) > 100
    bad = tmp_path / "not-audio.ts"
    bad.write_bytes(b"\x47" + bytes(187))
    with pytest.raises(MediatoolsError) as e:
        adts.slice_adts(bad)
    assert e.value.file == "not-audio.ts" and e.value.message.startswith("cannot copy audio (")


@pytest.mark.parametrize("fmt", ["mka", "webm"])
def test_matroska_copies_what_it_can_hold(rec, tmp_path, fmt):
    """mka holds AAC and Opus, webm only Opus: those users are copied (placed to their
    quantum), the AAC users in webm are transcoded to Opus and placed to the sample."""
    folder, truth = rec
    doc = _merge(folder, tmp_path, "--format", fmt)
    for tu in truth["users"]:
        u = next(x for x in doc["users"] if x["uid"] == tu["uid"])
        assert u["file"].endswith("." + fmt)
        copied = fmt == "mka" or tu["codec"] == "opus"
        assert (u["mode"], u["reason"]) == (("copy", None) if copied else ("transcode", "aac cannot be copied into webm"))
        first = tu["runs"][0]["offset_ms"]
        last = max(r["offset_ms"] + r["duration_ms"] for r in tu["runs"])
        dur = len(decode_pcm(tmp_path / u["file"], 48000)) / 48.0
        assert abs(dur - (last - first)) <= _frame_ms(tu), (tu["uid"], dur, last - first)
        for e in _onset_errors(tmp_path / u["file"], tu, first):
            assert abs(e) <= (_quantum_ms(tu) / 2 + 2.0 if copied else 2.0), (tu["uid"], e)


def test_touching_runs_do_not_drift(make_recording, tmp_path):
    """A failover run starts where the original is cut, mid-frame: the copied original gives
    up its overhanging last frame (packet) rather than push the failover run late."""
    import shutil

    from mediatools.agora.names import format_utc, parse_utc

    src, truth = make_recording("merge_failover", users=2, duration_s=50.0, seed=4, gaps=0, late_join=False,
                                codec="mixed", faults=[Fault("bak_overlap", "0", 0, 1),
                                                       Fault("bak_overlap", "1", 0, 2)])
    folder = tmp_path / "rec"
    shutil.copytree(src, folder)
    # the failover server started 12 ms earlier than the slice grid: the cut is mid-frame
    for pl in folder.glob("bak0_*.m3u8"):
        text = pl.read_text()
        for ts in sorted(folder.glob(pl.stem + "_*.ts")):
            utc = ts.stem.rsplit("_", 1)[1]
            moved = format_utc(parse_utc(utc) - 12)
            ts.rename(ts.with_name(ts.name.replace(utc, moved)))
            text = text.replace(utc, moved)
        pl.write_text(text)
    doc = _merge(folder, tmp_path / "out")
    for u in doc["users"]:
        tu = next(x for x in truth["users"] if x["uid"] == u["uid"])
        assert u["mode"] == "copy" and len(u["runs"]) == 2, u
        a, b = u["runs"]
        assert b["session_offset_ms"] == pytest.approx(a["session_offset_ms"] + a["duration_ms"], abs=0.01)
        assert a["duration_ms"] % _frame_ms(tu) > 1.0   # the cut is not on a frame boundary
        assert all(abs(r["placement_error_ms"]) <= _quantum_ms(tu) / 2 for r in u["runs"]), u["runs"]
        dur = len(decode_pcm(tmp_path / "out" / u["file"], 48000)) / 48.0
        assert abs(dur - (a["duration_ms"] + b["duration_ms"])) <= _frame_ms(tu) / 2 + 0.1, (u["uid"], dur)



def test_parallel_writes_the_same_files(rec, tmp_path):
    """Users written side by side give byte-identical files and the same report as one by one."""
    one = _merge(rec[0], tmp_path / "one", "--parallel", "1", "--format", "mp3")
    many = _merge(rec[0], tmp_path / "many", "--parallel", "3", "--format", "mp3")
    assert [u["uid"] for u in one["users"]] == [u["uid"] for u in many["users"]]
    assert [{k: v for k, v in u.items()} for u in one["users"]] == many["users"]
    for u in one["users"]:
        assert (tmp_path / "one" / u["file"]).read_bytes() == (tmp_path / "many" / u["file"]).read_bytes()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_parallel_merge_leaves_nothing_half_written(sig, make_recording, tmp_path):
    """Ctrl-C or SIGTERM while several users are being transcoded: exit 130, each worker stops
    at its next block and removes its temporary file; only finished files remain."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from mediatools.atomic import stray_temp_files
    from tests.conftest import sigint_default

    folder, _ = make_recording("matrix_long", users=3, duration_s=240.0, seed=2, gaps=1)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "mediatools", "merge", str(folder), "-o", str(out),
                          "--format", "flac", "--parallel", "3", "--reencode"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                         preexec_fn=sigint_default)
    deadline = time.time() + 60
    while len(stray_temp_files(tmp_path)) < 3 and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(getattr(signal, sig))   # to mediatools only: its ffmpeg children go on until told
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert stray_temp_files(tmp_path) == [] and sorted(os.listdir(out)) == [], (sorted(os.listdir(out)), err)


@pytest.mark.parametrize("parallel", [1, 3])
def test_progress_moves_within_a_user(rec, tmp_path, parallel):
    """A long user is not one jump: progress counts runs (and blocks of a transcode) as they
    are written, never goes back, and ends at the total."""
    from mediatools.merge import MergeOptions, merge

    seen: list[tuple[int, int]] = []
    merge(rec[0], tmp_path, MergeOptions(format="flac", parallel=parallel), progress=lambda d, t: seen.append((d, t)))
    total = sum(len(tu["runs"]) for tu in rec[1]["users"]) * 1000   # thousandths of runs
    assert seen[-1] == (total, total)
    assert all(t == total for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    between = {d for d, _ in seen if 0 < d < total}
    # serial: every transcoded block reports; side by side: the waiting thread reports every 0.1 s
    assert len(between) >= (5 if parallel == 1 else 1), seen


def test_a_cut_off_last_frame_is_not_counted(make_recording, tmp_path):
    """A slice cut at a TS packet boundary ends inside an AAC frame: copy mode drops that
    frame, and must not count it, or merge places every later run (and the reported length)
    one frame early (found by a review session: 23 ms at 44.1 kHz, 64 ms at 16 kHz)."""
    from mediatools.media import adts
    from mediatools.recording.model import Run, Slice

    folder, _ = make_recording("merge_probe", users=4, duration_s=20.0, seed=9, codec="mixed",
                               sample_rates=[48000, 44100, 32000, 16000], channels=[1, 2, 2, 1], gaps=0)
    ts = next(p for p in sorted(folder.glob("*.ts")) if adts.adts_media(p))
    data = ts.read_bytes()
    whole = len(adts.slice_adts(ts)[1])
    for packets in range(len(data) // 188 - 1, 0, -1):   # the first cut that leaves a partial frame
        cut = tmp_path / "cut.ts"
        cut.write_bytes(data[: packets * 188])
        lifted, starts = adts.slice_adts(cut)
        if adts._whole_frames_end(lifted, starts) == starts[-1]:
            break
    rate = adts.adts_media(ts).sample_rate
    written: list[bytes] = []
    run = Run(0, 60_000.0, [Slice(cut.name, 0, 60_000.0, path=cut)])
    n = adts.run_adts(run, rate, written.append)
    assert n == len(starts) - 1 == len(adts.split_adts(b"".join(written))) and n < whole


@pytest.mark.parametrize("frame_ms", [20, 40, 60])
def test_opus_copy_knows_how_far_a_runs_last_packet_can_overhang(frame_ms, tmp_path):
    """Opus copy stopped a run half of a fixed 20 ms packet before the next run: with 40 or 60 ms
    packets the last one overhung it, and a failover run cut into the original landed 29 or
    49 ms late (found by a review session). The margin is now the run's own packet length."""
    import subprocess

    from mediatools.media.ffmpeg import ffmpeg_path
    from mediatools.merge.opus_copy import _packet_ms
    from mediatools.recording.model import Run, Slice
    ts = tmp_path / "x.ts"
    subprocess.run([ffmpeg_path(), "-v", "error", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=2", "-c:a", "libopus",
                    "-b:a", "32k", "-frame_duration", str(frame_ms), "-f", "mpegts", str(ts)], check=True)
    run = Run(start_ms=0, duration_ms=2000.0, slices=[Slice(name=ts.name, utc_ms=0, duration_ms=2000.0, path=ts)])
    assert _packet_ms(run) == frame_ms


def test_opus_silence_longer_than_one_template_piece_is_placed_exactly(rec, tmp_path, monkeypatch):
    """Long gaps are spliced from a bounded silence template listed again and again (encoding
    one template as long as a 3 h gap took libopus 90 s). Here a piece is 0.2 s, so every gap
    of the recording is many pieces: the runs after them still sit where they belong."""
    from mediatools import MergeOptions, merge
    from mediatools.merge import opus_copy
    monkeypatch.setattr(opus_copy, "CHUNK_PACKETS", 10)
    folder, truth = rec
    doc = merge(folder, tmp_path, MergeOptions(gaps="keep", align="session")).to_dict()
    opus = [tu for tu in truth["users"] if tu["codec"] == "opus"]
    assert opus
    for tu in opus:
        u = next(x for x in doc["users"] if x["uid"] == tu["uid"])
        assert u["mode"] == "copy", u
        errs = _onset_errors(tmp_path / u["file"], tu, 0.0)
        assert max(abs(e) for e in errs) <= _quantum_ms(tu) / 2 + 2.0, (tu["uid"], errs)
        assert abs(len(decode_pcm(tmp_path / u["file"], 48000)) / 48.0 - truth["span_ms"]) <= _frame_ms(tu) / 2 + 0.1
