"""File-name grammar: every documented variant parses; formatter and parser round-trip."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediatools.agora.names import AgoraName, format_name, format_utc, parse_name, parse_utc
from mediatools.errors import MediatoolsError

EXAMPLES = int(os.environ.get("MEDIATOOLS_FUZZ_EXAMPLES", "200"))


@pytest.mark.parametrize("name, want", [
    ("sid713476478245_cnameagora__uid_s_123__uid_e_audio_20190920125142289.ts",
     dict(sid="sid713476478245", cname="cnameagora", uid="123", track_type="audio", kind="slice",
          bak=None, utc_ms=1568983902289, ext="ts")),
    ("sid713476478245_cnameagora__uid_s_123__uid_e_audio.m3u8",
     dict(sid="sid713476478245", cname="cnameagora", uid="123", kind="playlist", bak=None, index=None)),
    ("bak0_38f8e3cf_room__uid_s_42__uid_e_audio_20190611073246073.ts",
     dict(sid="38f8e3cf", cname="room", uid="42", bak=0, utc_ms=1560238366073)),
    ("bak12_38f8e3cf_room__uid_s_42__uid_e_audio.m3u8", dict(bak=12, kind="playlist")),
    ("38f8e3cf_room__uid_s_42__uid_e_audio_1568983902_3.m3u8", dict(kind="playlist", tick=1568983902, index=3)),
    ("38f8e3cf_my_room-2__uid_s_alice_01__uid_e_audio_20190611073246073.ts",
     dict(cname="my_room-2", uid="alice_01")),
    ("38f8e3cf_a-b-c__uid_s_user-7@x__uid_e_video_20190611073246073.webm",
     dict(cname="a-b-c", uid="user-7@x", track_type="video", ext="webm")),
])
def test_documented_variants(name, want):
    n = parse_name(name)
    for k, v in want.items():
        assert getattr(n, k) == v, k
    assert format_name(n) == name


@pytest.mark.parametrize("name, reason", [
    ("38f8e3cf_room__uid_s_42__uid_e_audio_20191311073246073.ts", "impossible UTC time '20191311073246073'"),
    ("38f8e3cf_room__uid_s_42__uid_e_audio_20190632073246073.ts", "impossible UTC time"),
    ("38f8e3cf_room__uid_s_42__uid_e_audio_2019061107324607.ts", "must end in _<YYYYMMDDHHMMSSmmm>.ts"),
    ("38f8e3cf_room__uid_s_42__uid_e_screen_20190611073246073.ts", "must be 'audio' or 'video'"),
    ("notes.txt", "not an Agora individual-mode name"),
    ("38f8e3cf_room__uid_s_42__uid_e_audio.mp4", "unknown extension"),
    ("../38f8e3cf_room__uid_s_42__uid_e_audio.m3u8", "bare file name"),
])
def test_rejected_with_reason(name, reason):
    with pytest.raises(MediatoolsError) as exc:
        parse_name(name)
    assert reason in str(exc.value)
    assert str(exc.value).startswith(name)


def test_utc_round_trip_and_value():
    assert parse_utc("20190611073246073") == 1560238366073
    assert format_utc(1560238366073) == "20190611073246073"


_sid = st.text("abcdef0123456789ABCDEF", min_size=1, max_size=32)
_cname = st.text("abcXYZ019-_", min_size=1, max_size=20).filter(lambda c: "__" not in c and not c.endswith("_")
                                                              and not c.startswith("_"))
_uid = st.one_of(st.integers(0, 2**32 - 1).map(str),
                 st.text("abcxyz019-@.", min_size=1, max_size=16)).filter(lambda u: "__" not in u)


@settings(max_examples=EXAMPLES, deadline=None)
@given(sid=_sid, cname=_cname, uid=_uid, ttype=st.sampled_from(["audio", "video"]),
       bak=st.one_of(st.none(), st.integers(0, 99)), utc=st.integers(946684800000, 4102444799999),
       kind=st.sampled_from(["slice", "playlist", "reupload"]), tick=st.integers(0, 2**40), index=st.integers(0, 99))
def test_fuzz_name_round_trip(sid, cname, uid, ttype, bak, utc, kind, tick, index):
    if kind == "slice":
        n = AgoraName(sid, cname, uid, ttype, "slice", bak=bak, utc_ms=utc, ext="ts")
    elif kind == "playlist":
        n = AgoraName(sid, cname, uid, ttype, "playlist", bak=bak)
    else:
        n = AgoraName(sid, cname, uid, ttype, "playlist", bak=bak, tick=tick, index=index)
    assert parse_name(format_name(n)) == n


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_any_name_parses_or_says_why(text):
    try:
        parse_name(text)
    except MediatoolsError as exc:
        assert str(exc)
