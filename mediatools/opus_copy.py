"""Packet-level Opus copy: each run's packets remuxed from TS into Ogg untouched, digital
silence spliced between runs, all joined by ffmpeg's concat demuxer (``-c copy``).

Why it works: Opus in MPEG-TS carries no pre-skip, so each run remuxed to Ogg plays exactly
its packets; silence is cut from one TS-encoded template by whole packets (20 ms), so it has
no pre-skip either and every piece contributes packets × 20 ms. Placement is quantised to
whole silence packets: each gap is rounded so the error never exceeds half a packet (10 ms).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .atomic import TMP_PREFIX, atomic_path
from .errors import MediatoolsError
from .ffmpeg import concat_url, run as run_ffmpeg
from .model import Run

PACKET_MS = 20.0
MUXERS = {"ogg": "ogg", "opus": "opus"}


def ogg_samples(path: Path) -> int:
    """Playable samples (48 kHz) of an Ogg Opus file: last page's granule minus pre-skip.

    Only the head (OpusHead) and the tail (last page header) are read, not the run."""
    with open(path, "rb") as f:
        head = f.read(4096)
        size = f.seek(0, 2)
        f.seek(max(0, size - 65536))
        tail = f.read()
    h = head.find(b"OpusHead")
    last = tail.rfind(b"OggS")
    if h < 0 or last < 0 or last + 14 > len(tail):
        raise MediatoolsError("not an Ogg Opus stream", file=path.name, code="copy_failed")
    pre_skip = int.from_bytes(head[h + 10:h + 12], "little")
    granule = int.from_bytes(tail[last + 6:last + 14], "little", signed=True)
    return max(0, granule - pre_skip)


def copy_opus(runs: list[tuple[Run, float, float]], out: Path, fmt: str, channels: int, f0: float,
              f1: float) -> dict:
    """``runs`` are (run, offset_ms, duration_ms) on the session timeline; the file spans [f0, f1)."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=TMP_PREFIX) as td:
        work = Path(td)
        pieces: list[tuple[str, object]] = []
        placed = []
        pos = 0.0   # ms written
        for i, (run, offset_ms, duration_ms) in enumerate(runs):
            n = max(0, int(round((offset_ms - f0 - pos) / PACKET_MS)))
            if n:
                pieces.append(("sil", n))
                pos += n * PACKET_MS
            ogg = work / f"run{i}.ogg"
            run_ffmpeg(["-i", concat_url([s.path for s in run.slices if s.path is not None]), "-map", "0:a:0",
                        "-c", "copy", "-t", f"{duration_ms / 1000.0:.6f}", "-f", "ogg", str(ogg)],
                       what="Opus copy", file=run.slices[0].name)
            length = ogg_samples(ogg) / 48.0
            placed.append({"file_offset_ms": round(pos, 3), "placement_error_ms": round(pos - (offset_ms - f0), 3),
                           "packets_ms": round(length, 3)})
            pieces.append(("file", ogg))
            pos += length
        tail = int(round((f1 - f0 - pos) / PACKET_MS))
        if tail > 0:
            pieces.append(("sil", tail))
            pos += tail * PACKET_MS
        need = max([n for kind, n in pieces if kind == "sil"], default=0)
        if need:
            template = work / "silence.ts"
            layout = "mono" if channels == 1 else "stereo"
            run_ffmpeg(["-f", "lavfi", "-i", f"anullsrc=r=48000:cl={layout}",
                        "-t", f"{(need + 5) * PACKET_MS / 1000:.3f}", "-c:a", "libopus", "-b:a", "16k",
                        "-frame_duration", "20", "-f", "mpegts", str(template)], what="silence encoding", file=out.name)
        listing = []
        for k, (kind, val) in enumerate(pieces):
            if kind == "sil":
                sil = work / f"sil{k}.ogg"
                run_ffmpeg(["-i", str(template), "-c", "copy", "-frames:a", str(val), "-f", "ogg", str(sil)],
                           what="silence cut", file=out.name)
                val = sil
            listing.append(f"file '{Path(val).name}'")
        (work / "list.txt").write_text("\n".join(listing) + "\n")
        with atomic_path(out) as tmp:
            run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(work / "list.txt"), "-c", "copy",
                        "-f", MUXERS[fmt], "-y", str(tmp)], what="joining Opus runs", file=out.name)
    return {"duration_ms": round(pos, 3), "runs": placed}
