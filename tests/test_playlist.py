"""Agora playlists: both TIME forms, EXTINF with and without comma, every soft fault; fuzzing."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediatools.agora.playlist import PlaylistError, parse_playlist
from mediatools.errors import MediatoolsError

EXAMPLES = int(os.environ.get("MEDIATOOLS_FUZZ_EXAMPLES", "200"))
N = "sid1_c__uid_s_123__uid_e_audio_"
DOC = f"""#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-ALLOW-CACHE:YES
#EXT-X-TARGETDURATION:18
#EXT-X-DISCONTINUITY
#EXT-X-AGORA-TRACK-EVENT:EVENT=START,TRACK_TYPE=AUDIO,TIME=20190920125142289
#EXTINF:15.019000
{N}20190920125142289.ts
#EXTINF:15.019000,
{N}20190920125157307.ts
#EXT-X-DISCONTINUITY
#EXT-X-AGORA-TRACK-EVENT:EVENT=START,TRACK_TYPE=AUDIO,TIME=1568983962363
#EXTINF:12.523000
{N}20190920125242363.ts
#EXT-X-ENDLIST
"""


def test_agora_example_parsed_exactly():
    p = parse_playlist(DOC, "x.m3u8")
    assert [e.extinf_s for e in p.entries] == [15.019, 15.019, 12.523]
    assert [e.discontinuity for e in p.entries] == [True, False, True]
    assert [e.event_time_ms for e in p.entries] == [1568983902289, None, 1568983962363]  # both TIME forms
    assert p.start_time_ms == 1568983902289
    assert p.endlist and p.problems == []


def test_rotate_tag_and_bom_and_crlf_accepted():
    text = "\ufeff" + DOC.replace("#EXT-X-ENDLIST", "#EXT-X-AGORA-ROTATE:90\n#EXT-X-ENDLIST").replace("\n", "\r\n")
    p = parse_playlist(text, "x.m3u8")
    assert len(p.entries) == 3 and p.problems == []


@pytest.mark.parametrize("edit, code, msg", [
    (lambda t: t.replace("#EXT-X-ENDLIST\n", ""), "no_endlist", "no #EXT-X-ENDLIST"),
    (lambda t: t.replace("#EXTINF:12.523000", "#EXTINF:-1"), "bad_extinf", "EXTINF -1 s is out of range"),
    (lambda t: t.replace("#EXTINF:12.523000", "#EXTINF:0"), "bad_extinf", "EXTINF 0 s is out of range"),
    (lambda t: t.replace("#EXTINF:12.523000", "#EXTINF:1e9"), "bad_extinf", "EXTINF 1e+09 s is out of range"),
    (lambda t: t.replace("#EXTINF:12.523000", "#EXTINF:abc"), "bad_extinf", "line 14: EXTINF 'abc' is not a number"),
    (lambda t: t.replace("TIME=1568983962363", "TIME=soon"), "bad_track_event", "unrecognised TIME 'soon'"),
])
def test_soft_faults_reported_and_entries_kept(edit, code, msg):
    p = parse_playlist(edit(DOC), "x.m3u8")
    assert len(p.entries) == 3
    assert any(pr.code == code and msg in pr.message for pr in p.problems), p.problems


def test_non_utf8_repaired():
    p = parse_playlist(DOC.encode().replace(b"ALLOW-CACHE:YES", b"ALLOW-CACHE:\xffYES"), "x.m3u8")
    assert len(p.entries) == 3 and p.problems[0].code == "non_utf8"


@pytest.mark.parametrize("text, msg", [
    ("", "x.m3u8: empty playlist"),
    ("<html>Access Denied</html>", "x.m3u8: not an M3U8 playlist (no #EXTM3U header)"),
])
def test_unusable_playlists_raise_one_line(text, msg):
    with pytest.raises(PlaylistError) as exc:
        parse_playlist(text, "x.m3u8")
    assert str(exc.value) == msg


def test_empty_playlist_is_reported():
    p = parse_playlist("#EXTM3U\n#EXT-X-ENDLIST\n", "x.m3u8")
    assert p.entries == [] and [pr.code for pr in p.problems] == ["empty_playlist"]


_lines = DOC.splitlines()
_mutations = st.lists(st.tuples(st.integers(0, len(_lines) - 1),
                                st.sampled_from(["drop", "dup", "garble", "swap", "cut"]),
                                st.text(max_size=12)), max_size=6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations)
def test_fuzz_mutated_playlists_only_raise_our_error(muts):
    lines = list(_lines)
    for i, op, junk in muts:
        i %= max(len(lines), 1)
        if not lines:
            break
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "garble":
            lines[i] = lines[i][: len(lines[i]) // 2] + junk
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "cut":
            lines = lines[:i]
    try:
        parse_playlist("\n".join(lines), "f.m3u8")
    except MediatoolsError as exc:
        assert str(exc).startswith("f.m3u8: ")


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: "#EXTM3U\n" + t)))
def test_fuzz_random_text_only_raises_our_error(data):
    try:
        parse_playlist(data, "f.m3u8")
    except MediatoolsError:
        pass
