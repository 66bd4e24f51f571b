"""Fuzzing inspect over random folders: valid, mutated and hostile Agora names with real
slices, garbage, empty files and random playlists. Whatever the folder holds, the only
exception that may escape discovery, timeline and report is MediatoolsError, with a message.
``make fuzz`` runs many more examples."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mediatools.agora.names import format_utc, playlist_name, slice_name
from mediatools.errors import MediatoolsError
from mediatools.recording.discovery import discover
from mediatools.recording.inspect_report import recording_dict
from mediatools.timeline.contract import build_timeline

EXAMPLES = max(30, int(os.environ.get("MEDIATOOLS_FUZZ_EXAMPLES", "200")) // 5)
T0 = 1_773_480_413_589
SIDS = ["aaaa1111", "bbbb2222"]
UIDS = ["1", "22", "user-x_y"]


@pytest.fixture(scope="module")
def real_slice(make_recording) -> bytes:
    folder, _ = make_recording("fuzz_src", users=1, duration_s=16.0, seed=5, gaps=0, late_join=False)
    return sorted(folder.glob("*.ts"))[0].read_bytes()


def _names() -> st.SearchStrategy[str]:
    sid, uid = st.sampled_from(SIDS), st.sampled_from(UIDS)
    utc = st.integers(T0 - 10_000, T0 + 600_000)
    good_slice = st.builds(lambda s, u, t, b: ("" if b is None else f"bak{b}_") + slice_name(s, "room_1-a", u, t),
                           sid, uid, utc, st.one_of(st.none(), st.integers(0, 2)))
    good_pl = st.builds(lambda s, u, b, r: playlist_name(s, "room_1-a", u, bak=b)
                        if r is None else playlist_name(s, "room_1-a", u, bak=b)[:-5] + f"_{r[0]}_{r[1]}.m3u8",
                        sid, uid, st.one_of(st.none(), st.integers(0, 1)),
                        st.one_of(st.none(), st.tuples(st.integers(1, 10**12), st.integers(0, 3))))
    mutated = st.builds(lambda n, i, c: n[:i] + c + n[i + 1:], good_slice, st.integers(0, 60),
                        st.sampled_from(["_", "9", "", "..", "é", "3"]))
    month13 = st.builds(lambda s, u: slice_name(s, "room_1-a", u, T0)[:-20] + "20261314092653589.ts", sid, uid)
    return st.one_of(good_slice, good_slice, good_pl, mutated, month13, st.text(min_size=1, max_size=20).map(
        lambda t: t.replace("/", "_").replace("\x00", "_") or "x"))


def _playlist(names: list[str], draw_extinf: list[str], tags: list[str]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for i, n in enumerate(names):
        if tags and i < len(tags):
            lines.append(tags[i])
        lines.append(f"#EXTINF:{draw_extinf[i % len(draw_extinf)]}")
        lines.append(n)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@st.composite
def folders(draw):
    names = draw(st.lists(_names(), min_size=1, max_size=14, unique=True))
    files: dict[str, bytes | str] = {}
    for n in names:
        if n.endswith(".m3u8"):
            listed = draw(st.lists(st.sampled_from(names), max_size=8))
            extinf = draw(st.lists(st.sampled_from(["15.0", "15.019,", "-1", "0", "1e9", "nan", "abc", "12.5"]),
                                   min_size=1, max_size=3))
            tags = draw(st.lists(st.sampled_from([
                "#EXT-X-DISCONTINUITY", f"#EXT-X-AGORA-TRACK-EVENT:EVENT=START,TRACK_TYPE=AUDIO,TIME={format_utc(T0)}",
                f"#EXT-X-AGORA-TRACK-EVENT:EVENT=START,TIME={T0}", "#EXT-X-AGORA-ROTATE", "#EXTINF:", ""]),
                max_size=4))
            body = _playlist(listed, extinf, tags)
            kind = draw(st.sampled_from(["ok", "ok", "bytes", "empty"]))
            files[n] = body if kind == "ok" else (b"\xff\xfe" + body.encode() if kind == "bytes" else b"")
        else:
            files[n] = draw(st.sampled_from(["real", "real", "garbage", "empty", "half"]))
    return files


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(files=folders())
def test_fuzz_inspect_random_folders(files, real_slice):
    root = Path(tempfile.mkdtemp(prefix="fuzz-inspect-"))
    try:
        for name, content in files.items():
            p = root / name
            if content == "real":
                p.write_bytes(real_slice)
            elif content == "half":
                p.write_bytes(real_slice[: len(real_slice) // 2 + 7])
            elif content == "garbage":
                p.write_bytes(bytes(range(256)) * 3)
            elif content == "empty":
                p.write_bytes(b"")
            else:
                p.write_bytes(content.encode() if isinstance(content, str) else content)
        try:
            for rec in discover(root):
                tl = build_timeline(rec)
                doc = recording_dict(rec, tl)
                assert doc["sid"] == rec.sid
                event(f"users={len(rec.users)} runs={sum(len(u.runs) for u in tl.users) > 0}")
        except MediatoolsError as exc:
            assert str(exc).strip() and "\n" not in str(exc)
    finally:
        shutil.rmtree(root, ignore_errors=True)
