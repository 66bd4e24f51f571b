"""Frame-level AAC copy: runs as ADTS frames, silence frames spliced between them.

Why ADTS: it is a plain sequence of self-delimiting frames, so runs and silence join
byte-wise and any container (m4a, ts, raw aac) is one ``-c copy`` remux away.
Placement is quantised to whole frames (1024 samples): each silence filler is chosen
so the cumulative error never exceeds half a frame.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..errors import MediatoolsError
from ..interrupts import deferred
from ..recording.model import MediaInfo, Run
from .ffmpeg import FFmpegProcess, base_cmd, concat_url, run, start

FRAME = 1024
#: sampling_frequency_index → Hz (ISO 14496-3)
ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def adts_frame_length(head: bytes | memoryview, i: int = 0) -> int:
    """Length (header included) of the ADTS frame whose 7-byte header starts at ``head[i]``."""
    if head[i] != 0xFF or (head[i + 1] & 0xF0) != 0xF0:
        raise MediatoolsError("ADTS sync lost", code="adts_sync")
    length = ((head[i + 3] & 0x03) << 11) | (head[i + 4] << 3) | (head[i + 5] >> 5)
    if length < 7:
        raise MediatoolsError("bad ADTS frame length", code="adts_sync")
    return length


def split_adts(data: bytes) -> list[bytes]:
    """ADTS stream → list of frames (header included)."""
    starts = adts_starts(data)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def adts_starts(data: bytes) -> list[int]:
    """Byte offset of every ADTS frame, walking the length fields from the first."""
    starts, i, n = [], 0, len(data)
    while i + 7 <= n:
        starts.append(i)
        i += adts_frame_length(data, i)
    return starts


def copy_adts_frames(src: BinaryIO, put: Callable[[bytes], None], *, skip: int = 0,
                     count: int | None = None) -> None:
    """Frames ``skip`` .. ``skip + count`` of an ADTS file to ``put``, read and written in batches."""
    i, batch = 0, []
    while count is None or i < skip + count:
        head = src.read(7)
        if len(head) < 7:
            break
        body = src.read(adts_frame_length(head) - 7)
        if i >= skip:
            batch.append(head + body)
            if len(batch) >= 512:
                put(b"".join(batch))
                batch = []
        i += 1
    if batch:
        put(b"".join(batch))


def ts_adts(data: bytes) -> bytes | None:
    """AAC-in-TS is ADTS inside PES: lift it out directly (5× faster than an ffmpeg pass).

    Plain Python: a slice is ~500 packets, and walking them costs less than importing
    numpy (which the copy path then never needs). Returns None when the stream is not plain
    188-byte TS with one ADTS audio PES stream, so the caller falls back to ffmpeg.
    """
    n = len(data)
    if not n or n % 188:
        return None
    audio = None
    for i in range(0, n, 188):   # the audio PID: the first PES start with an audio stream id
        if data[i] != 0x47:
            return None
        if _audio_pes_payload(data, i) is not None:
            audio = ((data[i + 1] & 0x1F) << 8) | data[i + 2]
            break
    if audio is None:
        return None
    hi, lo = audio >> 8, audio & 0xFF
    mv = memoryview(data)
    parts = []
    for i in range(0, n, 188):
        b3 = data[i + 3]
        if data[i] != 0x47:
            return None
        if data[i + 2] != lo or data[i + 1] & 0x1F != hi or not b3 & 0x10:
            continue
        o = 4 + (1 + data[i + 4] if b3 & 0x20 else 0)
        if data[i + 1] & 0x40 and o <= 179:   # a PES header: 9 bytes and its own header-data length
            o += 9 + data[i + o + 8]
        if o < 188:
            parts.append(mv[i + o:i + 188])
    adts = b"".join(parts)
    return adts if adts[:2] and adts[0] == 0xFF and (adts[1] & 0xF6) == 0xF0 else None


def _audio_pes_payload(data: bytes, i: int, *, private: bool = False) -> int | None:
    """Where the payload of the TS packet at ``data[i]`` starts, if that packet begins a PES
    packet of an audio stream (stream id 0xC0–0xDF, or with ``private`` also 0xBD, which
    carries Opus); else None."""
    b1, b3 = data[i + 1], data[i + 3]
    if not (b1 & 0x40 and b3 & 0x10):
        return None
    o = 4 + (1 + data[i + 4] if b3 & 0x20 else 0)
    if o <= 180 and data[i + o:i + o + 3] == b"\0\0\1" and (
            0xC0 <= data[i + o + 3] <= 0xDF or (private and data[i + o + 3] == 0xBD)):
        return o
    return None


def adts_media(path: str | Path) -> MediaInfo | None:
    """AAC-LC parameters from the first ADTS header of the first audio PES, or None.

    Reads 64 packets in plain Python, so a probe costs neither an ffmpeg start nor numpy."""
    try:
        with open(path, "rb") as f:
            data = f.read(188 * 64)
    except OSError:
        return None
    for i in range(0, len(data) - 187, 188):
        pkt = data[i:i + 188]
        o = _audio_pes_payload(pkt, 0) if pkt[0] == 0x47 else None
        if o is None or o + 9 > 188:   # not an audio PES start, or its header does not fit
            continue
        h = pkt[o + 9 + pkt[o + 8]:]
        if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xF6) != 0xF0:
            return None
        obj, sri, ch = (h[2] >> 6) + 1, (h[2] >> 2) & 0xF, ((h[2] & 1) << 2) | (h[3] >> 6)
        if obj != 2 or sri >= len(ADTS_RATES) or ch not in (1, 2):
            return None
        return MediaInfo("aac", ADTS_RATES[sri], ch, "LC")
    return None


def run_adts(run: Run, rate: int, put: Callable[[bytes], None], max_frames: int | None = None) -> int:
    """Copy the run's AAC frames (no decode) to ``put``, cut to the run's duration (and to
    ``max_frames``); return the frames written.

    One slice at a time, so memory is one slice's however long the run (a speaker who
    never pauses makes a single run of hours)."""
    need = max(1, -(-int(round(run.duration_ms * rate / 1000.0)) // FRAME))
    if max_frames is not None:
        need = min(need, max_frames)
    frames = 0
    for s in run.slices:
        if frames >= need:
            break
        adts, starts = slice_adts(Path(s.path))  # type: ignore[arg-type]
        if not starts:
            continue
        take = min(len(starts), need - frames)
        if take < len(starts):
            end = starts[take]
        else:
            end = _whole_frames_end(adts, starts)
            if end == starts[-1]:   # the last frame is cut off: not written, so not counted
                take -= 1           # (merge places everything after by this count)
        put(adts[:end])
        frames += take
    return frames


def slice_adts(path: Path) -> tuple[bytes, list[int]]:
    """One slice's ADTS frames and their offsets: lifted out of the TS directly, or by
    ffmpeg when the TS is not the plain kind ``ts_adts`` reads."""
    try:
        adts = ts_adts(path.read_bytes())
        starts = adts_starts(adts) if adts else None
    except MediatoolsError:
        starts = None
    if starts:
        return adts, starts   # type: ignore[return-value]
    proc = run(base_cmd() + ["-i", concat_url([path]), "-map", "0:a:0", "-c", "copy", "-f", "adts", "-"],
               error="cannot copy audio ({last})", file=path.name, code="copy_failed", need_output=True)
    try:
        return proc.stdout, adts_starts(proc.stdout)
    except MediatoolsError as exc:
        raise MediatoolsError(f"cannot copy its AAC frames: {exc.message}", file=path.name, code=exc.code) from None


def _whole_frames_end(adts: bytes, starts: list[int]) -> int:
    """End of the last complete frame (a cut-off tail is dropped)."""
    last = starts[-1]
    end = last + adts_frame_length(adts, last)
    return end if end <= len(adts) else last


def silence_frames(n: int, rate: int, channels: int) -> list[bytes]:
    """``n`` AAC-LC frames of digital silence at the stream's own parameters."""
    if n <= 0:
        return []
    samples = (n + 1) * FRAME
    layout = "mono" if channels == 1 else "stereo"
    proc = run(base_cmd() + ["-f", "lavfi", "-i", f"anullsrc=r={rate}:cl={layout}",
                             "-t", f"{samples / rate:.6f}", "-c:a", "aac", "-b:a", "32k", "-f", "adts", "-"],
               error="cannot encode silence ({last})", code="encode_failed")
    frames = split_adts(proc.stdout)
    while len(frames) < n:
        frames += frames[-1:] * (n - len(frames))
    return frames[:n]


MUXERS = {"m4a": "ipod", "aac": "adts", "ts": "mpegts", "mka": "matroska"}


class SilenceFrames:
    """Digital-silence AAC frames at the stream's parameters, encoded once.

    An AAC encoder fed zeros emits one priming frame, then the same frame over and
    over, so any number of silent frames is the first frame plus repeats (checked on
    every rate and channel count we meet; see tests)."""

    def __init__(self, rate: int, channels: int):
        self.rate, self.channels = rate, channels
        self.frames: list[bytes] = []

    def take(self, n: int) -> list[bytes]:
        if n <= 0:
            return []
        if not self.frames:   # encoded on first use: most merges start with a run
            self.frames = silence_frames(8, self.rate, self.channels)
        head = self.frames[:n]
        return head + [self.frames[-1]] * (n - len(head))


def open_remux(out: Path, fmt: str) -> FFmpegProcess:
    """An ffmpeg copying ADTS from its stdin into ``fmt``'s container, so frames are
    muxed while the next run is still being read (both cores busy)."""
    args = base_cmd() + ["-f", "aac", "-i", "pipe:0", "-c", "copy"]
    if fmt == "m4a":
        args += ["-movflags", "+faststart"]
    return start(args + ["-f", MUXERS[fmt], "-y", str(out)], stdin=True)


@contextlib.contextmanager
def adts_output(tmp: Path, fmt: str, error: Callable[[str], MediatoolsError]) -> Iterator[Callable[[bytes], None]]:
    """A ``write`` for ADTS frames bound for ``tmp``: straight into the file for raw AAC,
    else through a remuxing ffmpeg. A muxer that dies becomes ``error(its last stderr line)``;
    leaving the block early kills it."""
    if fmt == "aac":
        with open(tmp, "wb") as f:
            yield f.write
        return
    proc = None
    try:
        with deferred():   # an interrupt cannot fall between starting the muxer and holding it
            proc = open_remux(tmp, fmt)
    except BaseException:
        if proc is not None:
            proc.close()
        raise
    with proc:
        def failed() -> MediatoolsError:
            proc.kill()
            return error(proc.last_line())

        def write(data: bytes) -> None:
            try:
                proc.stdin.write(data)
            except OSError:   # BrokenPipeError: the muxer is gone
                raise failed() from None

        yield write
        try:
            proc.stdin.close()
        except OSError:
            raise failed() from None
        if proc.wait() != 0:
            raise failed()
