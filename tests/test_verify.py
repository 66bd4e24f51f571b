"""Issue 6: verify passes independent mixes and names each defect."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import run_cli

from mediatools.media.ffmpeg import ffmpeg_path

PLAN = dict(users=3, duration_s=50.0, seed=8, gaps=1)


@pytest.fixture(scope="session")
def recordings(make_recording):
    return {"tone": make_recording("ver_tone", **PLAN),
            "speech": make_recording("ver_speech", signal="speech", **PLAN)}


def ffmpeg_mix(folder: Path, truth: dict, out: Path, *, drop_uid: str | None = None, shift: dict | None = None,
               drop_run: tuple[str, int] | None = None, lead_ms: float = 0.0, end_ms: float | None = None,
               codec: str = "libmp3lame", bitrate: str = "96k", channels: int = 1, rate: int = 48000,
               holes: dict | None = None, noise: float | None = None,
               mute: tuple[str, int, float, float] | None = None) -> Path:
    """A mix made without mediatools: per run `-i concat:`, atrim, adelay, amix=normalize=0.
    ``holes``: uid → ms of silence put at each of that user's slice boundaries inside a run;
    ``noise``: white noise of that amplitude under the whole mix; ``mute``: (uid, run, ms into
    it, ms) silenced."""
    args, chains, labels = [ffmpeg_path(), "-v", "error", "-y"], [], []
    k = 0
    for u in truth["users"]:
        if u["uid"] == drop_uid:
            continue
        for i, r in enumerate(u["runs"]):
            if drop_run == (u["uid"], i):
                continue
            delay = r["offset_ms"] + lead_ms + (shift or {}).get(u["uid"], 0.0)
            args += ["-i", "concat:" + "|".join(str(folder / s) for s in r["slices"])]
            hole = (holes or {}).get(u["uid"])
            silenced = [(b, b + hole) for b in slice_bounds_ms(truth, r)] if hole else []
            if mute and mute[:2] == (u["uid"], i):
                silenced.append((mute[2], mute[2] + mute[3]))
            quiet = "".join(f"volume=0:enable='between(t,{a / 1000:.4f},{b / 1000:.4f})'," for a, b in silenced)
            chains.append(f"[{k}:a]asetpts=N/SR/TB,{quiet}atrim=end={r['duration_ms'] / 1000:.6f},aresample={rate},"
                          f"adelay=delays={max(delay, 0):.3f}:all=1[a{k}]")
            labels.append(f"[a{k}]")
            k += 1
    span = truth["span_ms"] + lead_ms if end_ms is None else end_ms
    if noise:
        args += ["-f", "lavfi", "-i", f"anoisesrc=a={noise}:c=white:r={rate}:d={span / 1000:.3f}:seed=1"]
        chains.append(f"[{k}:a]anull[a{k}]")
        labels.append(f"[a{k}]")
        k += 1
    graph = ";".join(chains) + f";{''.join(labels)}amix=inputs={k}:normalize=0:duration=longest," \
                               f"apad=whole_dur={span / 1000:.6f},atrim=end={span / 1000:.6f}[out]"
    subprocess.run(args + ["-filter_complex", graph, "-map", "[out]", "-ac", str(channels), "-ar", str(rate),
                           "-c:a", codec, "-b:a", bitrate, "-t", f"{span / 1000:.6f}", str(out)],
                   check=True, timeout=120)
    return out


def slice_bounds_ms(truth: dict, run: dict) -> list[float]:
    """Where each slice of a run after the first starts, in ms into the run (from the names' UTC)."""
    start = truth["origin_ms"] + run["offset_ms"]
    out = []
    for name in run["slices"][1:]:
        stamp = name.rsplit("_", 1)[1].split(".")[0]
        utc = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp() * 1000
        out.append(utc + int(stamp[14:]) - start)
    return out


def verify(mixfile: Path, folder: Path, *extra: str) -> tuple[int, dict, str]:
    proc = run_cli("verify", str(mixfile), str(folder), "--json", *extra)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def failed(doc: dict) -> set[str]:
    return {c["name"] for c in doc["checks"] if not c["passed"]}


@pytest.mark.parametrize("kind", ["tone", "speech"])
@pytest.mark.parametrize("fmt, codec, ch", [("mp3", "libmp3lame", 1), ("m4a", "aac", 2)])
def test_independent_mix_passes(kind, fmt, codec, ch, recordings, tmp_path):
    folder, truth = recordings[kind]
    mix = ffmpeg_mix(folder, truth, tmp_path / f"ok.{fmt}", codec=codec, channels=ch)
    code, doc, err = verify(mix, folder)
    assert code == 0, err
    assert doc["passed"] and failed(doc) == set()
    assert all(abs(r["error_ms"]) <= 10 for r in doc["runs"]), doc["runs"]
    assert abs(next(c for c in doc["checks"] if c["name"] == "global_offset")["measured"]) <= 10


@pytest.mark.parametrize("kind", ["tone", "speech"])
@pytest.mark.parametrize("defect, want", [
    ("user_missing", {"users_present", "runs_present"}),
    ("user_shifted_300ms", {"runs_aligned"}),
    ("user_shifted_60ms", {"runs_aligned"}),
    ("run_missing", {"runs_present"}),
    ("mix_shifted_2s", {"global_offset", "duration"}),
    ("truncated_30s", {"duration", "runs_present"}),
    ("other_recording", {"global_offset"}),
])
def test_each_defect_is_caught_and_named(kind, defect, want, recordings, make_recording, tmp_path):
    folder, truth = recordings[kind]
    u1 = truth["users"][1]["uid"]
    out = tmp_path / "bad.mp3"
    if defect == "user_missing":
        ffmpeg_mix(folder, truth, out, drop_uid=u1)
    elif defect == "user_shifted_300ms":
        ffmpeg_mix(folder, truth, out, shift={u1: 300.0})
    elif defect == "user_shifted_60ms":
        ffmpeg_mix(folder, truth, out, shift={u1: 60.0})
    elif defect == "run_missing":
        ffmpeg_mix(folder, truth, out, drop_run=(u1, 1))
    elif defect == "mix_shifted_2s":
        ffmpeg_mix(folder, truth, out, lead_ms=2000.0)
    elif defect == "truncated_30s":
        ffmpeg_mix(folder, truth, out, end_ms=truth["span_ms"] - 30000.0)
    else:
        other, otruth = make_recording(f"ver_other_{kind}", signal=kind if kind == "speech" else "tone",
                                       **{**PLAN, "seed": 99})
        ffmpeg_mix(other, otruth, out)
    code, doc, err = verify(out, folder)
    assert code == 1
    assert want <= failed(doc), (defect, failed(doc))
    for name in want:
        assert f"mediatools: verify: {out}: {name}: " in err
    if defect.startswith("user_shifted"):
        by = float(defect.removeprefix("user_shifted_").removesuffix("ms"))
        errs = [r["error_ms"] for r in doc["runs"] if r["uid"] == u1]
        assert all(abs(e - by) <= 15 for e in errs), errs
        # the mix is where it should be and the others too: a median of the users' offsets
        # moved the mix 30 ms towards one shifted 60 ms, and blamed the rest
        assert next(c for c in doc["checks"] if c["name"] == "global_offset")["measured"] == pytest.approx(0, abs=5)
        assert {r["uid"] for r in doc["runs"] if r["placed"] is False} == {u1}
        # and nobody else is blamed: presence used to subtract the shifted user at its expected
        # place, charging its sound to whoever overlapped it ("missing", found by a review session)
        assert [(r["uid"], r["run"]) for r in doc["runs"] if r["present"] is False] == []
    if defect == "mix_shifted_2s":
        assert next(c for c in doc["checks"] if c["name"] == "global_offset")["measured"] == pytest.approx(2000, abs=15)
    if defect == "truncated_30s":
        # every user is there; the runs the cut removes are named as cut, not as missing users
        assert "users_present" not in failed(doc)
        said = next(c for c in doc["checks"] if c["name"] == "runs_present")["message"]
        assert said.count("the mix ends before it") == said.count("; ") + 1, said
    if defect == "truncated_30s":
        # every user is there; the runs the cut removes are named as cut, not as missing users
        assert "users_present" not in failed(doc)
        said = next(c for c in doc["checks"] if c["name"] == "runs_present")["message"]
        assert said.count("the mix ends before it") == said.count("; ") + 1, said
    if defect == "user_missing":
        # only the user left out: their absence used to drag down whoever they overlapped
        assert {r["uid"] for r in doc["runs"] if r["present"] is False} == {u1}
        assert next(c for c in doc["checks"] if c["name"] == "users_present")["message"] == f"missing user(s): {u1}"
    if defect == "run_missing":
        missing = [r for r in doc["runs"] if not r["present"]]
        assert [(r["uid"], r["run"]) for r in missing] == [(u1, 1)]
        # --quiet: nothing on stdout, the same exit and the one line per failed check
        q = run_cli("verify", str(out), str(folder), "-q")
        assert (q.returncode, q.stdout) == (1, "")
        assert q.stderr.strip().splitlines() == [line for line in err.strip().splitlines()
                                                 if line.startswith("mediatools: verify: ")]


@pytest.mark.parametrize("hole_ms", [30.0, 80.0])
def test_a_hole_at_each_slice_boundary_is_a_dropout(hole_ms, recordings, tmp_path):
    """What Agora's own converter leaves (30–80 ms at every slice boundary, each slice encoded
    alone) used to pass: every run was present and placed. Each boundary of the user's runs
    is named, and nothing else is."""
    folder, truth = recordings["tone"]
    u1 = truth["users"][1]["uid"]
    out = ffmpeg_mix(folder, truth, tmp_path / "holes.mp3", holes={u1: hole_ms})
    code, doc, err = verify(out, folder)
    assert code == 1 and failed(doc) == {"dropouts"}, err
    want = sorted(round(truth["users"][1]["runs"][i]["offset_ms"] + b)
                  for i, r in enumerate(truth["users"][1]["runs"]) for b in slice_bounds_ms(truth, r))
    got = sorted(d["at_ms"] for r in doc["runs"] for d in r["dropouts"])
    assert len(got) == len(want) > 0 and all(abs(g - w) <= 20 for g, w in zip(got, want)), (got, want)
    assert {r["uid"] for r in doc["runs"] if r["dropouts"]} == {u1}
    assert f"mediatools: verify: {out}: dropouts: the mix drops out at slice boundaries: uid {u1} run 0 " in err


def test_hiss_where_nobody_is_recorded_fails_silence(make_recording, tmp_path):
    """White noise at about −52 dBFS RMS under the whole mix: every run is there, and the
    second where nobody is recorded is not silent. It used to pass (the bar was −50 dBFS)."""
    folder, truth = make_recording("ver_common_gap", users=2, duration_s=60.0, seed=8, gaps=3)
    clean = ffmpeg_mix(folder, truth, tmp_path / "clean.m4a", codec="aac", bitrate="128k")
    code, doc, err = verify(clean, folder)
    assert code == 0, err
    assert next(c for c in doc["checks"] if c["name"] == "silence")["measured"] < -90
    hiss = ffmpeg_mix(folder, truth, tmp_path / "hiss.m4a", codec="aac", bitrate="128k", noise=0.004)   # uniform: RMS −52.7 dBFS
    code, doc, err = verify(hiss, folder)
    assert code == 1 and failed(doc) == {"silence"}, err
    assert -60 < next(c for c in doc["checks"] if c["name"] == "silence")["measured"] < -48


@pytest.mark.parametrize("kind", ["tone", "speech"])
def test_users_a_few_db_apart_in_the_mix_pass(kind, recordings, tmp_path):
    """A cloud mix may level users its own way: with two users 4 dB up and down, the residual of
    each run held the others' excess at one global gain, and a correct mix failed naming the
    users left alone (found by a review session). The runs are judged again at their levels."""
    folder, truth = recordings[kind]
    u = [x["uid"] for x in truth["users"]]
    out = tmp_path / "levelled.m4a"
    run_cli("mix", str(folder), "-o", str(out), "--gain", f"{u[0]}=4", "--gain", f"{u[2]}=-4", "-q", check=True)
    code, doc, err = verify(out, folder)
    assert code == 0, err
    assert all(r["present"] and r["placed"] for r in doc["runs"] if not r["silent"])


def test_a_second_gone_mid_run_is_named(recordings, tmp_path):
    """One second of a user's tone silenced in the middle of a long run, away from any slice
    boundary: its 5 s stretch still scored over the stretch bar, and the mix passed (found by a
    review session). runs_present names that run and where, and nobody else."""
    folder, truth = recordings["tone"]
    u = truth["users"][1]
    i, run = max(enumerate(u["runs"]), key=lambda x: x[1]["duration_ms"])
    bounds = slice_bounds_ms(truth, run)
    at = next(b + 5000.0 for b in [0.0] + bounds if b + 7000.0 < run["duration_ms"])   # 5 s past a boundary
    out = ffmpeg_mix(folder, truth, tmp_path / "gap.mp3", mute=(u["uid"], i, at, 1000.0))
    code, doc, err = verify(out, folder)
    assert code == 1 and failed(doc) == {"runs_present"}, err
    (bad,) = [r for r in doc["runs"] if r["present"] is False]
    assert (bad["uid"], bad["run"]) == (u["uid"], i)
    (a, b), = [m for m in bad["missing_ms"] if m[0] <= at + 500 <= m[1]] or [(None, None)]
    assert a is not None and abs(a - at) <= 60 and abs(b - (at + 1000)) <= 60, bad["missing_ms"]


def test_transcode_options_mismatch_named(recordings, tmp_path):
    folder, truth = recordings["tone"]
    mix = ffmpeg_mix(folder, truth, tmp_path / "c.mp3", channels=1, rate=44100)
    opts = tmp_path / "opts.json"
    opts.write_text(json.dumps({"transcodeOptions": {"container": {"format": "mp3"},
                                                     "audio": {"sampleRate": "48000", "bitrate": "48000",
                                                               "channels": "2"}}}))
    code, doc, err = verify(mix, folder, "--transcode-options", str(opts))
    assert code == 1 and failed(doc) == {"sample_rate", "channels", "bitrate"}
    assert f"mediatools: verify: {mix}: sample_rate: sample_rate is 44100, expected 48000" in err
    assert f"mediatools: verify: {mix}: channels: channels is 1, expected 2" in err
    assert f"mediatools: verify: {mix}: bitrate: bitrate is 96 kb/s, expected 48 kb/s (beyond ±25%)" in err


def test_transcode_options_match_passes(recordings, tmp_path):
    folder, truth = recordings["tone"]
    mix = ffmpeg_mix(folder, truth, tmp_path / "c.m4a", codec="aac", bitrate="64k", channels=2)
    opts = tmp_path / "opts.json"
    opts.write_text(json.dumps({"transcodeOptions": {"container": {"format": "m4a"},
                                                     "audio": {"sampleRate": "48000", "bitrate": "64000",
                                                               "channels": "2"}}}))
    code, doc, err = verify(mix, folder, "--transcode-options", str(opts))
    assert code == 0, err
    assert {c["name"] for c in doc["checks"]} >= {"format", "sample_rate", "channels", "bitrate"}


@pytest.mark.parametrize("kind", ["tone", "speech"])
def test_our_own_mix_verifies_clean(kind, recordings, tmp_path):
    folder, _ = recordings[kind]
    out = tmp_path / "ours.m4a"
    run_cli("mix", str(folder), "-o", str(out), check=True)
    code, doc, err = verify(out, folder)
    assert code == 0, err
    assert all(abs(r["error_ms"]) <= 5 for r in doc["runs"]), doc["runs"]


@pytest.mark.parametrize("kind, rate, fmt", [("speech", 48000, "m4a"), ("tone", 32000, "mp3")])
def test_reference_from_the_mix_decodes_nothing_and_agrees(kind, rate, fmt, recordings, tmp_path):
    """process hands verify what its mix decoded (a Reference): the verdict and every run's
    measured place equal a verify that decodes the recording itself, and verify then reads no
    slice at all (they are moved away here)."""
    import shutil

    from mediatools.errors import UsageError
    from mediatools.mix import MixOptions, mix
    from mediatools.recording.discovery import load_recording
    from mediatools.verify import Reference
    from mediatools.verify import verify as verify_api

    folder, _ = recordings[kind]
    copy = shutil.copytree(folder, tmp_path / "rec")
    rec = load_recording(copy)
    ref = Reference()
    out = tmp_path / f"ours.{fmt}"
    mix(rec, out, MixOptions(sample_rate=rate), reference=ref)
    decoded = verify_api(out, rec)
    assert decoded.passed and decoded.reference == "recording"
    shutil.rmtree(copy)                                # nothing left to decode
    shared = verify_api(out, rec, reference=ref)
    assert shared.passed and shared.reference == "mix"
    assert [(c.name, c.passed) for c in shared.checks] == [(c.name, c.passed) for c in decoded.checks]
    for a, b in zip(shared.runs, decoded.runs):
        assert (a["uid"], a["run"]) == (b["uid"], b["run"])
        assert a["error_ms"] == pytest.approx(b["error_ms"], abs=0.5)
        assert a["presence"] == pytest.approx(b["presence"], abs=0.02)
    # a reference is of every user over the whole span
    with pytest.raises(UsageError, match="every user over the whole span"):
        mix(rec, tmp_path / "part.m4a", MixOptions(start="10"), reference=Reference())


def test_reference_still_catches_a_mix_missing_a_user(recordings, tmp_path):
    """The reference says what should be heard; the file is decoded on its own, so a mix that
    lost a user fails even when the reference came from a complete mix of the recording."""
    from mediatools.mix import MixOptions, mix
    from mediatools.recording.discovery import load_recording
    from mediatools.verify import Reference
    from mediatools.verify import verify as verify_api

    folder, truth = recordings["tone"]
    rec = load_recording(folder)
    ref = Reference()
    mix(rec, tmp_path / "full.m4a", MixOptions(), reference=ref)
    u1 = truth["users"][1]["uid"]
    bad = ffmpeg_mix(folder, truth, tmp_path / "bad.m4a", drop_uid=u1, codec="aac", bitrate="96k", channels=2)
    rep = verify_api(bad, rec, reference=ref)
    assert rep.reference == "mix" and not rep.passed
    assert {c.name for c in rep.checks if not c.passed} >= {"users_present"}
    assert {r["uid"] for r in rep.runs if not r["present"]} == {u1}


@pytest.mark.parametrize("codec", ["aac", "opus"])
def test_a_stereo_user_is_expected_at_the_level_the_mix_has_it(codec, tmp_path):
    """verify decoded runs with ``-ac 1``, (L+R)/sqrt(2): a stereo user came out 3 dB louder in
    the expected sum than the mix (which averages) has it, and a correct mix failed with
    another user "missing" (found by a review session). Both sides now average, as the mix
    does, and the mix's own decoding (a Reference) agrees with verify's."""
    from mediatools.mix import MixOptions, mix
    from mediatools.recording.discovery import load_recording
    from mediatools.synth.generate import SynthSpec, UserSpec, synthesize
    from mediatools.verify import Reference
    from mediatools.verify import verify as verify_api

    users = [UserSpec(uid="u1", freq=440, runs=[(0.0, 20.0)], turns=[(1.0, 4.0), (10.0, 3.0)], codec=codec),
             UserSpec(uid="u2", freq=440, runs=[(0.0, 20.0)], turns=[(4.0, 3.0)], codec=codec),
             UserSpec(uid="u3", freq=440, runs=[(3.0, 15.0)], turns=[(12.5, 3.0)], channels=2, codec=codec)]
    folder = tmp_path / "rec"
    synthesize(SynthSpec(users=users, signal="voice", seed=3), folder)
    rec = load_recording(folder)
    ref = Reference()
    out = tmp_path / "ours.m4a"
    mix(rec, out, MixOptions(), reference=ref)
    decoded = verify_api(out, rec)
    assert decoded.passed, [c for c in decoded.checks if not c.passed]
    shared = verify_api(out, rec, reference=ref)
    assert shared.passed and shared.reference == "mix"
    for a, b in zip(shared.runs, decoded.runs):
        assert a["presence"] == pytest.approx(b["presence"], abs=0.02), (a, b)


def test_a_user_who_never_speaks_is_silent_not_missing(tmp_path):
    """A listener present for the whole call who never says a word cannot be found in any mix:
    verify failed every such call as "missing user" (found by a review session), and with it
    every process and serve run of such a call."""
    from mediatools.mix import MixOptions, mix
    from mediatools.recording.discovery import load_recording
    from mediatools.synth.generate import SynthSpec, UserSpec, synthesize
    from mediatools.verify import verify as verify_api

    users = [UserSpec(uid="talker", freq=440, runs=[(0.0, 12.0)], turns=[(1.0, 3.0), (6.0, 2.0)]),
             UserSpec(uid="listener", freq=440, runs=[(2.0, 8.0)], turns=[])]
    folder = tmp_path / "rec"
    synthesize(SynthSpec(users=users, signal="voice", seed=3), folder)
    rec = load_recording(folder)
    out = tmp_path / "ours.m4a"
    mix(rec, out, MixOptions())
    rep = verify_api(out, rec)
    assert rep.passed, [c for c in rep.checks if not c.passed]
    by_uid = {r["uid"]: r for r in rep.runs}
    assert by_uid["listener"]["silent"] is True and by_uid["listener"]["present"] is None
    assert by_uid["talker"]["silent"] is False and by_uid["talker"]["present"] is True
    # the talker left out of a mix is still missing
    part = tmp_path / "part.m4a"
    mix(rec, part, MixOptions(exclude_uids=["talker"]))
    rep = verify_api(part, rec)
    assert not rep.passed and not next(c for c in rep.checks if c.name == "users_present").passed


def test_a_user_who_says_one_word_is_not_silent(tmp_path):
    """Silence is judged on loud frames, not on the mean: a mean over a long run put a listener
    who says one short word in five minutes among the silent, and a mix leaving that user out
    passed (found by a review session)."""
    from mediatools.mix import MixOptions, mix
    from mediatools.recording.discovery import load_recording
    from mediatools.synth.generate import SynthSpec, UserSpec, synthesize
    from mediatools.verify import verify as verify_api

    users = [UserSpec(uid="talker", freq=440, runs=[(0.0, 300.0)], turns=[(1.0, 3.0), (6.0, 2.0)]),
             UserSpec(uid="brief", freq=660, runs=[(0.0, 300.0)], turns=[(150.0, 0.4)])]
    folder = tmp_path / "rec"
    synthesize(SynthSpec(users=users, signal="voice", seed=3), folder)
    rec = load_recording(folder)
    part = tmp_path / "part.m4a"
    mix(rec, part, MixOptions(exclude_uids=["brief"]))
    rep = verify_api(part, rec)
    brief = next(r for r in rep.runs if r["uid"] == "brief")
    assert not brief["silent"] and brief["present"] is False and not rep.passed


@pytest.mark.parametrize("kind", ["tone", "speech"])
def test_a_mix_missing_one_slice_of_a_long_run_fails_and_says_where(kind, recordings, tmp_path):
    """A mix without a slice's 15 s of a run passed (found by a review session): presence was
    one score over the whole run, and two thirds of it still scored over 0.5. Each 5 s stretch
    where the user is heard is now judged too; the report says which part is missing."""
    import shutil
    folder, truth = recordings[kind]
    uid, i, run = max(((u["uid"], i, r) for u in truth["users"] for i, r in enumerate(u["runs"])),
                      key=lambda x: len(x[2]["slices"]))
    assert len(run["slices"]) >= 3
    holed = tmp_path / "holed"
    shutil.copytree(folder, holed)
    gone = run["slices"][1]
    (holed / gone).unlink()
    out = tmp_path / "holed.m4a"
    run_cli("mix", str(holed), "-o", str(out), check=True)
    code, doc, err = verify(out, folder)
    assert code == 1 and failed(doc) == {"runs_present"}, (failed(doc), err)
    (bad,) = [r for r in doc["runs"] if r["present"] is False]
    assert (bad["uid"], bad["run"]) == (uid, i)
    from mediatools.agora.names import parse_name
    hole = (parse_name(gone).utc_ms - parse_name(run["slices"][0]).utc_ms) / 1000   # s into the run
    assert all(hole - 5 <= a / 1000 and b / 1000 <= hole + 20 for a, b in bad["missing_ms"]), (hole, bad)
    assert f"uid {uid} run {i} at" in err
    if bad["presence"] >= 0.5:   # present as a whole: only the stretches can tell (the tone's case)
        assert "of it missing, between" in err and bad["missing_ms"], err
