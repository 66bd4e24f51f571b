"""Fault cases for the matrix: each builds a broken recording from a clean synthetic one.

A case returns the folder and what must come out: the problem code, the uid it hits, and
the truth runs that must survive (start/offset in ms) — so every command can be checked
against the same expectations.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mediatools.agora.names import parse_name

SYNTH_FAULTS = {  # case name → synth fault kind (user index 0, run 0, slice 1)
    "missing_slice": "missing_slice",
    "truncated_slice": "truncated_slice",
    "garbage_slice": "garbage_slice",
    "zero_byte_slice": "zero_byte_slice",
    "no_endlist": "no_endlist",
    "duplicate_entry": "duplicate_entry",
    "out_of_order": "out_of_order",
    "bak_overlap": "bak_overlap",
    "bak_gap": "bak_gap",
    "reupload": "reupload",
    "no_playlist": "no_playlist",
    "orphan_slice": "orphan_slice",
    "codec_change": "codec_change",
}
EXPECTED_CODE = {
    "missing_slice": "missing_slice", "truncated_slice": "truncated", "garbage_slice": "garbage",
    "zero_byte_slice": "zero_bytes", "no_endlist": "no_endlist", "duplicate_entry": "duplicate_entry",
    "out_of_order": "out_of_order", "bak_overlap": "overlap_cut", "bak_gap": "failover_joined",
    "reupload": "reuploaded_playlist", "no_playlist": "no_playlist", "orphan_slice": "orphan_slice",
    "codec_change": "format_change",
    # hand-made below
    "empty_playlist": "empty_playlist", "not_m3u8": "not_m3u8", "non_utf8": "non_utf8",
    "extinf_negative": "bad_extinf", "extinf_zero": "bad_extinf", "extinf_absurd": "bad_extinf",
    "extinf_nan": "bad_extinf", "utc_impossible": "bad_utc", "utc_far": "utc_outlier",
    "playlist_no_slices": "no_audio",
    "slice_cut_short": "short_slice", "slice_damaged_inside": "damaged_slice", "extinf_understated": "long_slice",
    "slice_packets_lost": "damaged_slice",
    "slice_null_packets": "undecodable", "slice_noise_with_sync": "undecodable",
}


@dataclass
class Case:
    name: str
    folder: Path
    code: str
    uid: str
    truth: dict
    survivors: dict[str, list[dict]] = field(default_factory=dict)  # uid → expected runs


def _playlist(folder: Path, uid: str) -> Path:
    for p in sorted(folder.glob("*.m3u8")):
        n = parse_name(p.name)
        if n.uid == uid and n.bak is None and n.index is None:
            return p
    raise FileNotFoundError(uid)


def _edit_playlist(fn: Callable[[str], str]) -> Callable[[Path, str], None]:
    def apply(folder: Path, uid: str) -> None:
        p = _playlist(folder, uid)
        p.write_text(fn(p.read_text()))
    return apply


def _nth_extinf(value: str, n: int = 1) -> Callable[[str], str]:
    def fn(text: str) -> str:
        lines = text.splitlines()
        idx = [i for i, ln in enumerate(lines) if ln.startswith("#EXTINF:")][n]
        lines[idx] = f"#EXTINF:{value}"
        return "\n".join(lines) + "\n"
    return fn


def _non_utf8(folder: Path, uid: str) -> None:
    p = _playlist(folder, uid)
    p.write_bytes(p.read_bytes().replace(b"#EXT-X-ALLOW-CACHE:YES", b"#EXT-X-ALLOW-CACHE:\xff\xfeYES"))


def _rename_slice(new_utc: str, which: int = 2) -> Callable[[Path, str], None]:
    def apply(folder: Path, uid: str) -> None:
        p = _playlist(folder, uid)
        text = p.read_text()
        slices = [ln for ln in text.splitlines() if ln.endswith(".ts")]
        old = slices[which]
        new = old[:-20] + new_utc + ".ts"
        (folder / old).rename(folder / new)
        p.write_text(text.replace(old, new))
    return apply


def _delete_all_slices(folder: Path, uid: str) -> None:
    for f in folder.glob("*.ts"):
        if parse_name(f.name).uid == uid:
            f.unlink()


def _empty_playlist(folder: Path, uid: str) -> None:
    p = _playlist(folder, uid)
    p.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:18\n#EXT-X-ENDLIST\n")


def listed_slices(folder: Path, uid: str) -> list[str]:
    return [ln for ln in _playlist(folder, uid).read_text().splitlines() if ln.endswith(".ts")]


def _cut_short(folder: Path, uid: str) -> None:
    """The second slice cut to 2/5 of its size at a TS packet boundary: a file that looks whole."""
    p = folder / listed_slices(folder, uid)[1]
    with open(p, "r+b") as fh:
        fh.truncate((p.stat().st_size * 2 // 5) // 188 * 188)


def _damaged_inside(folder: Path, uid: str) -> None:
    """40 % of the second slice's packets zeroed in its middle (same size, sync bytes gone)."""
    p = folder / listed_slices(folder, uid)[1]
    data = bytearray(p.read_bytes())
    n = len(data) // 188
    a, b = n * 3 // 10 * 188, n * 7 // 10 * 188
    data[a:b] = bytes(b - a)
    p.write_bytes(bytes(data))


def _packets_lost(folder: Path, uid: str) -> None:
    """Three TS packets of the second slice gone (its size still whole packets): a decoder loses
    far more than their frames, so the slice is measured by decoding it."""
    p = folder / listed_slices(folder, uid)[1]
    data = p.read_bytes()
    n = len(data) // 188
    drop = {n * 3 // 10, n // 2, n * 7 // 10}
    p.write_bytes(b"".join(data[i * 188:(i + 1) * 188] for i in range(n) if i not in drop))


def _null_packets(folder: Path, uid: str) -> None:
    """The second slice replaced by TS null packets (PID 0x1FFF), same size: valid TS, no audio."""
    p = folder / listed_slices(folder, uid)[1]
    p.write_bytes((b"\x47\x1f\xff\x10" + b"\xff" * 184) * (p.stat().st_size // 188))


def _noise_with_sync(folder: Path, uid: str) -> None:
    """The second slice replaced by noise with a 0x47 every 188 bytes: it passes every cheap check."""
    import random
    p = folder / listed_slices(folder, uid)[1]
    r = random.Random(7)
    p.write_bytes(b"".join(b"\x47" + r.randbytes(187) for _ in range(p.stat().st_size // 188)))


HAND_MADE: dict[str, Callable[[Path, str], None]] = {
    "empty_playlist": _empty_playlist,
    "not_m3u8": lambda f, u: _playlist(f, u).write_text("<html>Access Denied</html>\n"),
    "non_utf8": _non_utf8,
    "extinf_negative": _edit_playlist(_nth_extinf("-15.000000")),
    "extinf_zero": _edit_playlist(_nth_extinf("0")),
    "extinf_absurd": _edit_playlist(_nth_extinf("1e9")),
    "extinf_nan": _edit_playlist(_nth_extinf("abc")),
    "utc_impossible": _rename_slice("20261314092653589"),
    "utc_far": _rename_slice("20300101000000000"),
    "playlist_no_slices": _delete_all_slices,
    "slice_cut_short": _cut_short,
    "slice_damaged_inside": _damaged_inside,
    "extinf_understated": _edit_playlist(_nth_extinf("14.000000")),
    "slice_null_packets": _null_packets,
    "slice_noise_with_sync": _noise_with_sync,
}
#: faults whose damage stays inside the slice (the audio after a lost packet plays that much
#: early within it, so verify rightly fails run 0): only the placement of later slices is tested
INSIDE_ONLY: dict[str, Callable[[Path, str], None]] = {"slice_packets_lost": _packets_lost}


def copy_recording(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def load_truth(folder: Path) -> dict:
    return json.loads((folder / "truth.json").read_text())
