"""The timing contract as pure functions: no files, no ffmpeg."""
from __future__ import annotations

from pathlib import Path

import pytest

from mediatools.recording.model import SLICE_MISSING, Recording, Slice, UserTrack
from mediatools.timeline.contract import build_timeline, make_run, resolve_overlaps, split_runs


def sl(utc: int, dur: float, *, disc: bool = False, status: str = "ok", source: str = "original") -> Slice:
    return Slice(name=f"s{utc}_{source}.ts", utc_ms=utc, duration_ms=dur, discontinuity=disc, status=status,
                 source=source, path=Path(f"/x/{utc}.ts"))


def test_contiguous_slices_make_one_run_with_drift():
    runs = split_runs([sl(1000, 15019.0), sl(16020, 15000.0), sl(31019, 5000.5)])
    assert len(runs) == 1
    assert runs[0].start_ms == 1000 and runs[0].duration_ms == pytest.approx(35019.5)
    assert runs[0].drift_ms == pytest.approx(1.0)


@pytest.mark.parametrize("second, runs", [
    (sl(16019, 1000.0, disc=True), 2),           # a discontinuity always starts a run
    (sl(16019 + 251, 1000.0), 2),                # beyond the 250 ms tolerance
    (sl(16019 + 249, 1000.0), 1),                # within it
    (sl(16019 - 251, 1000.0), 2),                # overlapping by more than the tolerance
])
def test_run_boundaries(second, runs):
    assert len(split_runs([sl(1000, 15019.0), second])) == runs


def test_tolerance_is_configurable():
    assert len(split_runs([sl(1000, 15019.0), sl(16519, 1.0)], tolerance_ms=600)) == 1


def test_missing_slice_splits_and_keeps_later_audio_in_place():
    runs = split_runs([sl(0, 15000.0), sl(15000, 15000.0, status=SLICE_MISSING), sl(30000, 15000.0)])
    assert [(r.start_ms, r.duration_ms) for r in runs] == [(0, 15000.0), (30000, 15000.0)]


def test_failover_overlap_cut_keeps_each_instant_once():
    orig = make_run([sl(0, 15000.0), sl(15000, 15000.0)])
    bak = make_run([sl(20000, 15000.0, source="bak0"), sl(35000, 5000.0, source="bak0")])
    runs, probs = resolve_overlaps([bak, orig], "7")
    assert [(r.start_ms, r.duration_ms) for r in runs] == [(0, 20000.0), (20000, 20000.0)]
    assert [s.utc_ms for s in runs[0].slices] == [0, 15000]
    assert probs[0].code == "overlap_cut" and "10000 ms" in probs[0].message


def test_run_inside_another_is_dropped():
    runs, probs = resolve_overlaps([make_run([sl(0, 30000.0)]), make_run([sl(5000, 1000.0, source="bak0")])])
    assert len(runs) == 1 and probs[0].code == "overlap_dropped"


def test_timeline_offsets_gaps_origin_and_span():
    a = UserTrack("1", "audio", split_runs([sl(10_000, 5000.0), sl(20_000, 5000.0, disc=True)]))
    b = UserTrack("2", "audio", split_runs([sl(12_000, 20000.0)]))
    rec = Recording("sid", "c", Path("."), [a, b])
    tl = build_timeline(rec)
    assert tl.origin_ms == 10_000 and tl.span_ms == 22_000
    u1 = tl.user("1")
    assert [(r.offset_ms, r.duration_ms) for r in u1.runs] == [(0.0, 5000.0), (10000.0, 5000.0)]
    assert [(g.offset_ms, g.duration_ms) for g in u1.gaps] == [(5000.0, 5000.0)]
    assert u1.talk_ms == 10000.0
    # selecting users keeps the session's origin and span (one user's file lines up with the
    # full mix and lasts as long); a given origin wins
    one = build_timeline(rec, ["2"])
    assert one.origin_ms == 10_000 and one.span_ms == 22_000 and one.user("2").runs[0].offset_ms == 2000.0
    one = build_timeline(rec, ["1"])
    assert one.origin_ms == 10_000 and one.span_ms == 22_000   # uid 2 ends last
    assert build_timeline(rec, ["2"], origin_ms=0).user("2").runs[0].offset_ms == 12_000
