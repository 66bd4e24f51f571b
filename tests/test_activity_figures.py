"""Issue 16: the figures exact on hand-made turns, smoothing, and every export read back by an
independent reader (our own RTTM and Audacity parsers, webvtt-py, csv) and equal to the JSON."""
from __future__ import annotations

import csv
import io
import json

import pytest

from mediatools.activity.exports import audacity, figures_csv, label_files, rttm, webvtt, write_exports
from mediatools.activity.figures import figures, interruptions
from mediatools.activity.options import ActivityReport
from mediatools.activity.smooth import place, smooth
from mediatools.timeline.span import Span

S = Span
# A: 0–4000, 6000–9000; B: 3500–7000 starts while A speaks and A stops 500 ms later (B interrupts A);
# A's second turn starts while B speaks and B stops 1000 ms later (A interrupts B); C: 20000–21000
# after 11 s in which nobody speaks.
TURNS = {"A": [S(0, 4000), S(6000, 9000)], "B": [S(3500, 7000)], "C": [S(20000, 21000)]}
PRESENCE = {"A": [S(0, 10000)], "B": [S(2000, 8000)], "C": [S(15000, 22000)]}


def test_figures_exact():
    f = figures(PRESENCE, TURNS, 22000.0)
    users = {u["uid"]: u for u in f["users"]}
    assert users["A"] == {"uid": "A", "present_ms": 10000, "talk_ms": 7000, "share": round(7000 / 11500, 4),
                          "turns": 2, "longest_turn_ms": 4000, "overlap_ms": 1500, "interruptions": 1,
                          "interrupted": 1}
    assert users["B"] == {"uid": "B", "present_ms": 6000, "talk_ms": 3500, "share": round(3500 / 11500, 4),
                          "turns": 1, "longest_turn_ms": 3500, "overlap_ms": 1500, "interruptions": 1,
                          "interrupted": 1}
    assert users["C"]["overlap_ms"] == 0 and users["C"]["interruptions"] == 0 and users["C"]["turns"] == 1
    c = f["call"]
    assert c["talk_ms"] == 9000 + 1000          # 0–9000 someone speaks, then C
    assert c["overlap_ms"] == 1500              # 3500–4000 and 6000–7000
    assert c["silences"] == [[9000, 20000]]     # 11 s; 21000–22000 is under 5 s
    assert c["silence_ms"] == 11000
    assert c["interruptions"] == 2 and c["turns"] == 4
    assert f["interruption_events"] == [
        {"at_ms": 3500, "by": "B", "of": "A", "overlap_ms": 500},
        {"at_ms": 6000, "by": "A", "of": "B", "overlap_ms": 1000}]


def test_interruption_needs_the_other_to_stop_within_the_limit():
    long = {"A": [S(0, 5000)], "B": [S(1000, 2000)]}   # B speaks inside A's turn: A goes on 3 s
    assert interruptions(long, 1000.0) == []
    assert interruptions({"A": [S(0, 5000)], "B": [S(4000, 6000)]}, 1000.0)[0]["of"] == "A"
    assert interruptions({"A": [S(0, 5000)], "B": [S(3999, 6000)]}, 1000.0) == []   # 1001 ms: not
    assert interruptions({"A": [S(0, 5000)], "B": [S(0, 6000)]}, 1000.0) == []      # together: not


def test_shares_sum_to_one_and_silence_edges():
    f = figures({"A": [S(0, 30000)]}, {"A": [S(6000, 7000)]}, 30000.0)
    assert f["users"][0]["share"] == 1.0
    assert f["call"]["silences"] == [[0, 6000], [7000, 30000]]
    empty = figures({"A": [S(0, 1000)]}, {"A": []}, 1000.0)
    assert empty["users"][0]["share"] == 0.0 and empty["call"]["silences"] == []


def test_smoothing_joins_short_pauses_and_drops_short_bursts():
    raw = [(0, 200), (350, 600), (1200, 1250), (2000, 2500)]
    assert smooth(raw, hangover_ms=200, min_turn_ms=100) == [S(0, 600), S(2000, 2500)]
    assert smooth(raw, hangover_ms=700, min_turn_ms=100) == [S(0, 1250), S(2000, 2500)]
    assert smooth(raw, hangover_ms=0, min_turn_ms=0) == [S(*r) for r in raw]
    assert place([S(0, 600), S(900, 1500)], 1000.0, S(1000, 2200)) == [S(1000, 1600), S(1900, 2200)]


def _report() -> ActivityReport:
    turns = {"1111": [S(0, 4000), S(6000, 9000)], "user two": [S(3500, 7000)], "a<b>&c": [S(20000, 21000)]}
    presence = {"1111": [S(0, 10000)], "user two": [S(2000, 8000)], "a<b>&c": [S(15000, 3723456)]}
    f = figures(presence, turns, 3723456.0)
    users = [{"uid": u, "presence": [[s.start, s.end] for s in presence[u]],
              "turns": [[s.start, s.end] for s in turns[u]]} for u in turns]
    users[2]["turns"].append([3600001.0, 3723456.0])   # past the hour: VTT hours
    return ActivityReport(sid="abc123", cname="room 1", origin_ms=1_773_480_413_589,
                          origin_utc="2026-03-14T09:26:53.589Z", span_ms=3723456.0, detector={}, users=users,
                          figures=f)


def read_rttm(text: str) -> list[tuple[str, float, float, str]]:
    """An independent reader for NIST RTTM speaker lines (10 fields, pyannote's layout)."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[2] == "1", line
        assert fields[5] == fields[6] == fields[8] == fields[9] == "<NA>"
        rows.append((fields[1], float(fields[3]), float(fields[4]), fields[7]))
    return rows


def test_rttm_reads_back_equal_to_json():
    rep = _report()
    rows = read_rttm(rttm(rep))
    assert {r[0] for r in rows} == {"abc123_room_1"}
    got = sorted((uid, round(start * 1000), round((start + dur) * 1000)) for _, start, dur, uid in rows)
    want = sorted((u["uid"].replace(" ", "_"), a, b) for u in rep.users for a, b in u["turns"])
    assert got == want


def test_webvtt_reads_back_equal_to_json(tmp_path):
    webvtt_py = pytest.importorskip("webvtt")
    rep = _report()
    p = tmp_path / "a.vtt"
    p.write_text(webvtt(rep))
    caps = webvtt_py.read(str(p))
    assert len(caps) == sum(len(u["turns"]) for u in rep.users)
    want = {(u["uid"], a, b) for u in rep.users for a, b in u["turns"]}
    parsed = set()
    for c in caps:
        start = _vtt_ms(c.start)
        end = _vtt_ms(c.end)
        parsed.add((_unescape(c.voice), start, end))
    assert parsed == want


def _vtt_ms(ts: str) -> int:
    h, m, s = ts.split(":")
    sec, ms = s.split(".")
    return ((int(h) * 60 + int(m)) * 60 + int(sec)) * 1000 + int(ms)


def _unescape(s: str) -> str:
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_audacity_and_csv_read_back_equal_to_json(tmp_path):
    rep = _report()
    names = label_files(rep)
    assert len(set(names.values())) == len(rep.users) and all("/" not in n[len("labels/"):] for n in names.values())
    for u in rep.users:
        rows = [line.split("\t") for line in audacity(rep, u["uid"]).splitlines()]
        assert [[round(float(a) * 1000), round(float(b) * 1000)] for a, b, _ in rows] == u["turns"]
        assert {t for _, _, t in rows} <= {u["uid"]}
    table = list(csv.DictReader(io.StringIO(figures_csv(rep))))
    by_uid = {r["uid"]: r for r in table if r["scope"] == "user"}
    for f in rep.figures["users"]:
        r = by_uid[f["uid"]]
        for k in ("present_ms", "talk_ms", "turns", "longest_turn_ms", "overlap_ms", "interruptions", "interrupted"):
            assert float(r[k]) == f[k], k
        assert float(r["share"]) == f["share"]
    call = next(r for r in table if r["scope"] == "call")
    assert float(call["talk_ms"]) == rep.figures["call"]["talk_ms"]
    assert int(call["silences"]) == len(rep.figures["call"]["silences"])
    files = write_exports(rep, tmp_path / "x", ["rttm", "vtt", "audacity", "csv", "json"])
    assert json.loads((tmp_path / "x" / "activity.json").read_text())["users"] == rep.users
    assert set(files) >= {"rttm", "vtt", "csv", "json"}


def test_a_line_break_in_a_uid_breaks_no_export():
    """A CR is a line terminator to WebVTT and to CSV readers: a uid holding one split the
    label line and the CSV row (found by a review session)."""
    presence = {"a\rb": [S(0, 5000)], "c": [S(0, 5000)]}
    turns = {"a\rb": [S(0, 2000)], "c": [S(2500, 4000)]}
    users = [{"uid": u, "presence": [[s.start, s.end] for s in presence[u]],
              "turns": [[s.start, s.end] for s in turns[u]]} for u in turns]
    rep = ActivityReport(sid="abc123", cname="room", origin_ms=0, origin_utc="1970-01-01T00:00:00.000Z",
                         span_ms=5000.0, detector={}, users=users, figures=figures(presence, turns, 5000.0))
    assert audacity(rep, "a\rb") == "0.000000\t2.000000\ta b\n"
    assert "<v a b>" in webvtt(rep) and "\r" not in webvtt(rep)
    rows = list(csv.DictReader(io.StringIO(figures_csv(rep), newline="")))
    assert [r["uid"] for r in rows] == ["a\rb", "c", ""]


def test_figure_table_durations_round_before_they_carry():
    from mediatools.report.build import _s
    assert [_s(x) for x in (12345, 59960, 119960, 3599960, 3725500)] == \
        ["12.3 s", "1:00.0", "2:00.0", "1:00:00.0", "1:02:05.5"]


def test_users_whose_names_a_format_would_merge_stay_apart():
    """"a b" and "a_b" were one RTTM speaker; " lead" and "lead" one WebVTT voice, and " " had
    none (parsers strip and collapse a voice name's whitespace; found by a review session).
    Each user now has a name of their own in each format, listed in the JSON's ``names``."""
    webvtt_py = pytest.importorskip("webvtt")
    uids = ["a b", "a_b", " lead", "lead", "trail ", " ", "x  y", "a_b-2"]
    presence = {u: [S(0, 60000)] for u in uids}
    turns = {u: [S(i * 5000, i * 5000 + 2000)] for i, u in enumerate(uids)}
    users = [{"uid": u, "presence": [[s.start, s.end] for s in presence[u]],
              "turns": [[s.start, s.end] for s in turns[u]]} for u in uids]
    rep = ActivityReport(sid="abc123", cname="room-->1", origin_ms=0, origin_utc="1970-01-01T00:00:00.000Z",
                         span_ms=60000.0, detector={}, users=users, figures=figures(presence, turns, 60000.0))
    names = rep.to_dict()["names"]
    rows = read_rttm(rttm(rep))
    by_speaker = {spk: round(start * 1000) for _, start, _, spk in rows}
    assert len(by_speaker) == len(uids)
    assert {names["rttm"][u]: turns[u][0].start for u in uids} == by_speaker
    assert names["rttm"]["a_b"] == "a_b" and names["rttm"]["a_b-2"] == "a_b-2"   # those that fit keep theirs
    assert names["rttm"]["a b"] not in ("a_b", "a_b-2")
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".vtt", delete=False) as fh:
        fh.write(webvtt(rep))
    caps = webvtt_py.read(fh.name)
    assert len(caps) == len(uids)
    voices = {c.voice: _vtt_ms(c.start) for c in caps}
    assert len(voices) == len(uids) and "" not in voices and None not in voices
    assert {names["vtt"][u]: turns[u][0].start for u in uids} == voices
    assert names["vtt"]["lead"] == "lead" and names["vtt"][" lead"] != "lead"
    assert "room--&gt;1" in webvtt(rep).split("\n")[2]
