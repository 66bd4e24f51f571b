"""Packet-level Opus copy: each run's packets remuxed from TS into Ogg untouched, digital
silence spliced between runs, all joined by ffmpeg's concat demuxer (``-c copy``).

Why it works: Opus in MPEG-TS carries no pre-skip, so each run remuxed to Ogg plays exactly
its packets; silence is cut from TS-encoded templates by whole packets, so it has no pre-skip
either and every piece contributes exactly its packets' length. Opus lets packets of any
frame size follow each other, so each gap is 20 ms packets plus up to seven 2.5 ms (CELT)
packets: placement is quantised to 2.5 ms, an error of at most 1.25 ms.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from ..atomic import TMP_PREFIX, atomic_path
from ..errors import MediatoolsError
from ..media import ffmpeg
from ..media.ffmpeg import base_cmd, concat_url
from ..recording.model import Run

PACKET_MS = 20.0
STEP_MS = 2.5     # the smallest Opus frame: the placement quantum
CHUNK_PACKETS = 3000   # 60 s of 20 ms silence packets: the longest silence piece
MUXERS = {"ogg": "ogg", "opus": "opus", "webm": "webm", "mka": "matroska"}


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
              f1: float, *, check: Callable[[int, int], None] = lambda done, total: None) -> dict:
    """``runs`` are (run, offset_ms, duration_ms) on the session timeline; the file spans [f0, f1).
    ``check(runs done, runs)`` is called between ffmpeg steps and may raise to stop."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=TMP_PREFIX) as td:
        work = Path(td)
        pieces: list[tuple[str | float, int | Path]] = []   # ("file", run) or (packet ms, count)
        placed = []
        pos = 0.0   # ms written
        limits = [offset_ms for _, offset_ms, _ in runs[1:]] + [f1]
        for i, ((run, offset_ms, duration_ms), limit) in enumerate(zip(runs, limits)):
            check(i, len(runs))
            pos += _silence(pieces, offset_ms - f0 - pos)
            # -t keeps every packet that starts before it: the last one may overhang the run's
            # end. Where that would push the next run (or the file's end) off its place, stop
            # half a packet early so the overhang rounds instead.
            packet = _packet_ms(run)
            room = limit - f0 - pos - packet / 2
            keep_ms = max(packet / 2, min(duration_ms, room))
            ogg = work / f"run{i}.ogg"
            ffmpeg.run(base_cmd() + ["-i", concat_url([s.path for s in run.slices if s.path is not None]), "-map", "0:a:0",
                        "-c", "copy", "-t", f"{keep_ms / 1000.0:.6f}", "-f", "ogg", str(ogg)],
                       error="Opus copy failed: {last}", file=run.slices[0].name)
            length = ogg_samples(ogg) / 48.0
            placed.append({"file_offset_ms": round(pos, 3), "placement_error_ms": round(pos - (offset_ms - f0), 3),
                           "packets_ms": round(length, 3)})
            pieces.append(("file", ogg))
            pos += length
        pos += _silence(pieces, f1 - f0 - pos)
        pieces = _chunked(pieces)
        templates = {}
        layout = "mono" if channels == 1 else "stereo"
        for ms in (PACKET_MS, STEP_MS):
            need = max([n for kind, n in pieces if kind == ms], default=0)
            if need:
                templates[ms] = work / f"silence{ms:g}.ts"
                ffmpeg.run(base_cmd() + ["-f", "lavfi", "-i", f"anullsrc=r=48000:cl={layout}",
                            "-t", f"{(need + 5) * ms / 1000:.4f}", "-c:a", "libopus", "-b:a", "16k",
                            "-frame_duration", f"{ms:g}", "-f", "mpegts", str(templates[ms])],
                           error="silence encoding failed: {last}", file=out.name)
        listing = []
        cut: dict[tuple, Path] = {}   # the same silence is cut once, however often it recurs
        for kind, val in pieces:
            check(len(runs), len(runs))
            if kind != "file":
                if (kind, val) not in cut:
                    cut[kind, val] = work / f"sil{len(cut)}.ogg"
                    ffmpeg.run(base_cmd() + ["-i", str(templates[kind]), "-c", "copy", "-frames:a", str(val), "-f", "ogg",
                                str(cut[kind, val])], error="silence cut failed: {last}", file=out.name)
                val = cut[kind, val]
            listing.append(f"file '{Path(val).name}'")
        (work / "list.txt").write_text("\n".join(listing) + "\n")
        with atomic_path(out) as tmp:
            ffmpeg.run(base_cmd() + ["-f", "concat", "-safe", "0", "-i", str(work / "list.txt"), "-c", "copy",
                        "-f", MUXERS[fmt], "-y", str(tmp)], error="joining Opus runs failed: {last}", file=out.name)
    return {"duration_ms": round(pos, 3), "runs": placed}


def _packet_ms(run: Run) -> float:
    """The run's longest packet (its last slice's TOCs; 20 ms, the usual, where they cannot be
    read): how far its last packet can overhang its end. A fixed 20 ms let a run of 40 or 60 ms
    packets overhang the next run, which then landed up to 49 ms late."""
    from ..media.ts_audio import held
    last = run.slices[-1].path
    try:
        h = held(last.read_bytes()) if last is not None else None
    except OSError:
        h = None
    return h.frame_ms if h is not None and h.frame_ms > 0 else PACKET_MS


def _chunked(pieces: list[tuple[str | float, int | Path]]) -> list[tuple[str | float, int | Path]]:
    """Long silences as a run of :data:`CHUNK_PACKETS`-packet pieces (the same file listed again)
    plus the rest: the template to cut from is then a minute long at most, whatever the gap.
    Encoding a template as long as a 3 h gap took libopus 90 s."""
    out: list[tuple[str | float, int | Path]] = []
    for kind, val in pieces:
        if kind == PACKET_MS and isinstance(val, int) and val > CHUNK_PACKETS:
            out += [(kind, CHUNK_PACKETS)] * (val // CHUNK_PACKETS)
            val %= CHUNK_PACKETS
            if not val:
                continue
        out.append((kind, val))
    return out


def _silence(pieces: list[tuple[str | float, int | Path]], gap_ms: float) -> float:
    """Append silence for ``gap_ms`` rounded to 2.5 ms (20 ms packets, then 2.5 ms ones); return its length."""
    steps = max(0, int(round(gap_ms / STEP_MS)))
    per = int(PACKET_MS / STEP_MS)
    if steps // per:
        pieces.append((PACKET_MS, steps // per))
    if steps % per:
        pieces.append((STEP_MS, steps % per))
    return steps * STEP_MS
