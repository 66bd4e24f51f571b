"""Synthesized recordings: the timeline equals truth.json to the millisecond, across codecs,
rates, channel counts, uid kinds and playlist dialects."""
from __future__ import annotations

import json

import pytest
from conftest import run_cli

from mediatools.recording.discovery import load_recording
from mediatools.recording.probe import probe_runs
from mediatools.timeline.contract import build_timeline


def check_against_truth(folder, truth):
    rec = load_recording(folder)
    tl = build_timeline(rec)
    assert tl.origin_ms == truth["origin_ms"]
    assert tl.span_ms == pytest.approx(truth["span_ms"], abs=1.0)
    for tu in truth["users"]:
        ut = tl.user(tu["uid"])
        assert [r.start_ms for r in ut.runs] == [r["start_ms"] for r in tu["runs"]]
        assert [r.offset_ms for r in ut.runs] == [r["offset_ms"] for r in tu["runs"]]
        assert [r.duration_ms for r in ut.runs] == pytest.approx([r["duration_ms"] for r in tu["runs"]], abs=1.0)
    return rec


@pytest.mark.parametrize("name, kw", [
    ("aac_mono_48k", dict(codec="aac", sample_rates=[48000], channels=[1])),
    ("aac_stereo_32k", dict(codec="aac", sample_rates=[32000], channels=[2])),
    ("aac_mono_16k", dict(codec="aac", sample_rates=[16000], channels=[1])),
    ("opus_mono_16k_stereo_48k", dict(codec="opus", sample_rates=[16000, 48000], channels=[1, 2])),
    ("mixed_string_uids", dict(codec="mixed", sample_rates=[48000, 16000], channels=[2, 1], string_uids=True)),
])
def test_timeline_equals_truth(name, kw, make_recording):
    folder, truth = make_recording(f"disc_{name}", users=2, duration_s=32.0, seed=11, **kw)
    rec = check_against_truth(folder, truth)
    probe_runs(rec)
    for tu in truth["users"]:
        m = rec.user(tu["uid"]).media
        assert m.codec == tu["codec"] and m.channels == tu["channels"]
        assert m.sample_rate == (48000 if tu["codec"] == "opus" else tu["sample_rate"])  # Opus decodes at 48k


@pytest.mark.parametrize("dialect", ["comma", "unix_time"])
def test_playlist_dialects(dialect, make_recording):
    def hook(spec):
        spec.extinf_comma = dialect == "comma"
        spec.time_format = "unix" if dialect == "unix_time" else "utc"
    folder, truth = make_recording(f"disc_{dialect}", users=2, duration_s=25.0, seed=5, spec_hook=hook)
    text = next(folder.glob("*.m3u8")).read_text()
    extinf = [ln for ln in text.splitlines() if ln.startswith("#EXTINF:")]
    assert all(ln.endswith(",") == (dialect == "comma") for ln in extinf)
    times = [ln.rsplit("TIME=", 1)[1] for ln in text.splitlines() if "TIME=" in ln]
    assert times and all(len(t) == (13 if dialect == "unix_time" else 17) for t in times)
    check_against_truth(folder, truth)
    assert not load_recording(folder).problems


def test_bak_overlap_cuts_original_at_failover_start(make_recording):
    from mediatools.synth.generate import Fault
    folder, truth = make_recording("disc_bak_overlap3", users=1, duration_s=50.0, seed=4, gaps=0,
                                   faults=[Fault("bak_overlap", "0", 0, 1)])
    rec = check_against_truth(folder, truth)
    runs = rec.users[0].runs
    assert [r.sources for r in runs] == [["original"], ["bak0"]]
    assert runs[0].end_ms == runs[1].start_ms  # audio continuous across the failover
    codes = [p.code for p in rec.problems]
    assert "overlap_cut" in codes and "failover_joined" in codes


def test_several_recordings_are_listed(make_recording, tmp_path):
    a, ta = make_recording("disc_sid_a", users=1, duration_s=20.0, seed=1)
    both = tmp_path / "both"
    (both / "x").mkdir(parents=True)
    for f in a.glob("*.*"):
        (both / f.name).write_bytes(f.read_bytes())
        (both / "x" / f.name.replace(ta["sid"], "feedface")).write_bytes(f.read_bytes())
    doc = json.loads(run_cli("inspect", str(both), "--json", "--no-probe", check=True).stdout)
    assert [r["sid"] for r in doc["recordings"]] == sorted([ta["sid"], "feedface"])


def test_a_question_mark_in_a_string_uid_is_part_of_the_name(tmp_path):
    """Agora's string user accounts may hold a ``?``: a playlist entry is a bare file name, never
    cut there as if it were a URL's query (the slice was taken as unlisted, and process waited
    for it for ever)."""
    from mediatools.agora.playlist import entry_name
    from mediatools.pipeline import ProcessOptions, process
    from mediatools.recording.discovery import load_recording
    from mediatools.synth.generate import plan, synthesize

    spec = plan(2, 20.0, seed=5, gaps=0)
    spec.sid, spec.cname = "d1b2c3d4e5f60718293a4b5c6d7e8f93", "qroom"
    spec.users[1].uid = "who?"
    synthesize(spec, tmp_path / "rec")
    rec = load_recording(tmp_path / "rec")
    assert rec.problems == [] and "who?" in rec.uids
    assert entry_name("a/b\\who?_x.ts") == "who?_x.ts" and entry_name("https://h/k/x.ts?sig=1") == "x.ts"
    rep = process(str(tmp_path / "rec"), ProcessOptions(all=True, workers=0, verify=False, dest=str(tmp_path / "out")))
    assert rep.counts["processed"] == 1, [r.reasons for r in rep.recordings]


def _shift_slices(folder, uid: str, which: list[int], hours: float) -> list[str]:
    """Rename a user's listed slices (playlist and file) ``hours`` later; the new names."""
    import datetime as dt
    (pl,) = [p for p in folder.glob("*.m3u8") if f"__uid_s_{uid}__" in p.name]
    text = pl.read_text()
    names = [ln for ln in text.splitlines() if ln.endswith(".ts")]
    out = []
    for i in which:
        old = names[i]
        t = dt.datetime.strptime(old[-20:-3], "%Y%m%d%H%M%S%f") + dt.timedelta(hours=hours)
        new = old[:-20] + t.strftime("%Y%m%d%H%M%S%f")[:-3] + ".ts"
        (folder / old).rename(folder / new)
        text = text.replace(old, new)
        out.append(new)
    pl.write_text(text)
    return out


def test_a_user_back_after_a_day_is_kept_and_a_lone_misnamed_slice_is_not(tmp_path):
    """Agora records up to 720 h: slices 30 h after the others are a user who came back (kept, at
    their time), not outliers; a single slice far from every other is a misnamed file (skipped)."""
    from mediatools.agora.names import parse_name
    from mediatools.synth.generate import plan, synthesize
    spec = plan(2, 60.0, seed=4, gaps=0, late_join=False)
    synthesize(spec, tmp_path / "rec")
    uid = spec.users[0].uid
    n = len(load_recording(tmp_path / "rec").user(uid).slices)
    back = _shift_slices(tmp_path / "rec", uid, list(range(2, n)), 30.0)
    rec = load_recording(tmp_path / "rec")
    assert [p.code for p in rec.problems] == [], rec.problems
    starts = [r.start_ms for r in rec.user(uid).runs]
    assert starts[-1] == parse_name(back[0]).utc_ms and len(starts) == 2
    lone = _shift_slices(tmp_path / "rec", uid, [n - 1], 60.0)
    rec = load_recording(tmp_path / "rec")
    assert [(p.code, p.file) for p in rec.problems] == [("utc_outlier", lone[0])]
    assert "60.0 h from the nearest other slice" in rec.problems[0].message


def test_a_user_back_after_13_h_for_one_slice_is_kept_when_the_playlist_opens_a_run_with_it(tmp_path):
    """A one-slice run 13 h after the user's others, opened by DISCONTINUITY and a TRACK-EVENT
    whose TIME is its file-name time, was dropped as a misnamed file (found by a review
    session): any run under ~15 s is one slice. The playlist vouches for it; a misnamed slice
    inside a run, or one whose event TIME disagrees with its name, is still skipped."""
    from mediatools.agora.names import format_utc, parse_name
    from mediatools.synth.generate import plan, synthesize
    spec = plan(2, 60.0, seed=4, gaps=0, late_join=False)
    synthesize(spec, tmp_path / "rec")
    uid = spec.users[0].uid
    n = len(load_recording(tmp_path / "rec").user(uid).slices)
    (new,) = _shift_slices(tmp_path / "rec", uid, [n - 1], 13.0)
    pl = next(p for p in (tmp_path / "rec").glob(f"*__uid_s_{uid}__*.m3u8"))
    text = pl.read_text()
    entry = next(line for line in text.splitlines() if line.endswith(new))
    i = text.splitlines().index(entry)
    lines = text.splitlines()
    t = parse_name(new).utc_ms
    marked = lines[:i - 1] + ["#EXT-X-DISCONTINUITY",
                              f"#EXT-X-AGORA-TRACK-EVENT:EVENT=START,TRACK_TYPE=AUDIO,TIME={format_utc(t)}"] + lines[i - 1:]
    pl.write_text("\n".join(marked) + "\n")
    rec = load_recording(tmp_path / "rec")
    assert [p.code for p in rec.problems] == [], rec.problems
    assert rec.user(uid).runs[-1].start_ms == t and rec.user(uid).runs[-1].slices[0].name == new
    # the same marker with an event TIME that disagrees with the name (by 13 h): a misnamed file
    pl.write_text("\n".join(lines[:i - 1] + [
        "#EXT-X-DISCONTINUITY", f"#EXT-X-AGORA-TRACK-EVENT:EVENT=START,TRACK_TYPE=AUDIO,TIME={format_utc(t - 13 * 3600_000)}"]
        + lines[i - 1:]) + "\n")
    rec = load_recording(tmp_path / "rec")
    assert [(p.code, p.file) for p in rec.problems] == [("utc_outlier", new)]


def test_a_format_change_inside_a_run_starts_a_new_run_and_merge_stays_decodable(tmp_path):
    """Slices 2… of a run at AAC 32 kHz after 48 kHz, with no DISCONTINUITY: the format was probed
    from the run's first slice only, and merge copied 32 kHz frames into a 48 kHz m4a (127 decode
    errors, 1.5× pitch; found by a review session). The run now splits at the change."""
    import shutil
    import subprocess

    from mediatools.media.ffmpeg import ffmpeg_path
    from mediatools.synth.generate import plan, synthesize
    for rate in (48000, 32000):
        synthesize(plan(1, 60.0, seed=5, gaps=0, late_join=False, sample_rates=[rate]), tmp_path / str(rate))
    a, b = load_recording(tmp_path / "48000"), load_recording(tmp_path / "32000")
    names, other = [s.name for s in a.users[0].slices], [s.name for s in b.users[0].slices]
    assert len(names) == len(other) >= 4
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "48000", mixed)
    for n, o in zip(names[2:], other[2:]):   # the same audio at 32 kHz, under the 48 kHz run's names
        shutil.copy(tmp_path / "32000" / o, mixed / n)
    rec = load_recording(mixed)
    (p,) = [p for p in rec.problems if p.code == "format_change"]
    assert p.file == names[2] and "48000 Hz" in p.message and "32000 Hz" in p.message
    runs = rec.users[0].runs
    assert [r.slices[0].name for r in runs] == [names[0], names[2]]
    assert abs(runs[1].start_ms - (runs[0].start_ms + runs[0].duration_ms)) < 40.0    # back to back
    out = tmp_path / "merged"
    run_cli("merge", str(mixed), "-o", str(out), check=True)
    (m4a,) = out.glob("*.m4a")
    dec = subprocess.run([ffmpeg_path(), "-v", "error", "-i", str(m4a), "-f", "null", "-"], capture_output=True,
                         text=True)
    assert dec.returncode == 0 and dec.stderr.strip() == "", dec.stderr[:500]
