"""Mixing every user onto one wall-clock timeline, streaming, in bounded memory.

Pipeline (both cores busy, nothing whole in RAM): each run is decoded by its own ffmpeg,
started just before the mix reaches it, as one stream (its TS slices joined), resampled
and trimmed to its exact samples, at its own channel count. Python places the runs
sample-exactly in fixed-size blocks — silence costs nothing, channel conversion is
explicit (a mono user at its own level in every channel, stereo → mono as (L+R)/2) —
applies per-user gains with numpy and feeds one ffmpeg *encoder* that limits or
normalizes and writes under a temporary name.
"""
from __future__ import annotations

import os
import queue
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import atomic_path
from .errors import MediatoolsError, Problem, UsageError
from .ffmpeg import base_cmd, concat_url, last_line
from .splice import FRAME, adts_output, copy_adts_frames
from .timeline import Timeline, UserTimeline

BLOCK = 48000  # samples per channel per block (1 s at 48 kHz)


@dataclass(frozen=True)
class OutputFormat:
    name: str
    muxer: str
    codec: str
    bitrate: str | None       # default bitrate
    priming: int = 0          # decoder delay the container cannot signal (samples), fed early instead
    rates: tuple[int, ...] = ()  # allowed sample rates, () = any


FORMATS: dict[str, OutputFormat] = {
    "m4a": OutputFormat("m4a", "ipod", "aac", "128k"),
    "aac": OutputFormat("aac", "adts", "aac", "128k", priming=1024),
    "mp3": OutputFormat("mp3", "mp3", "libmp3lame", "128k"),
    "wav": OutputFormat("wav", "wav", "pcm_s16le", None),
    "flac": OutputFormat("flac", "flac", "flac", None),
    "opus": OutputFormat("opus", "opus", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
    "ogg": OutputFormat("ogg", "ogg", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
}


def format_for(path: str | Path, explicit: str | None = None) -> OutputFormat:
    name = (explicit or Path(path).suffix.lstrip(".")).lower()
    if name not in FORMATS:
        raise UsageError(f"unknown output format {name!r} (use one of {', '.join(FORMATS)})",
                         file=str(path), code="bad_format")
    return FORMATS[name]


@dataclass
class Segment:
    """One placed run of one user, in output samples."""
    start: int
    length: int
    slices: list[Path]
    src_channels: int
    src_rate: int | None = None


def user_segments(ut: UserTimeline, rate: int, *, window_start_ms: float = 0.0,
                  window_end_ms: float | None = None) -> list[Segment]:
    """Runs → sample-exact segments relative to the output's t=0 (the window start)."""
    segs = []
    for pr in ut.runs:
        start_ms = pr.offset_ms - window_start_ms
        end_ms = start_ms + pr.duration_ms
        limit = None if window_end_ms is None else window_end_ms - window_start_ms
        lo, hi = max(start_ms, 0.0), end_ms if limit is None else min(end_ms, limit)
        if hi <= lo:
            continue
        ch = min(pr.run.media.channels, 2) if pr.run.media else 1
        segs.append(Segment(start=int(round(start_ms * rate / 1000.0)),
                            length=int(round(end_ms * rate / 1000.0)) - int(round(start_ms * rate / 1000.0)),
                            slices=[s.path for s in pr.run.slices if s.path is not None], src_channels=ch,
                            src_rate=pr.run.media.sample_rate if pr.run.media else None))
    return segs


def segment_cmd(seg: Segment, rate: int, src_rate: int | None) -> list[str]:
    """One ffmpeg decoding a run as one stream: resampled, trimmed to its samples, native channels."""
    skip = max(0, -seg.start)
    filters = [] if src_rate == rate else [f"aresample={rate}"]
    filters.append(f"atrim=start_sample={skip}:end_sample={seg.length}")
    # one thread: many decoders run at once, and ffmpeg's per-frame hand-offs between its
    # own threads cost ~20% more CPU than they save on a stream this small
    return base_cmd() + ["-threads", "1", "-filter_threads", "1", "-i", concat_url(seg.slices), "-map", "0:a:0",
                         "-af", ",".join(filters), "-ac", str(seg.src_channels), "-f", "f32le", "-ar", str(rate),
                         "pipe:1"]


class _Source:
    """A run being decoded: started when the mix reaches it, read block by block."""

    def __init__(self, seg: Segment, rate: int, src_rate: int | None, gain: float, uid: str):
        self.seg, self.gain, self.uid = seg, gain, uid
        self.start = max(seg.start, 0)
        self.end = seg.start + seg.length
        self.cmd = segment_cmd(seg, rate, src_rate)
        self.proc: subprocess.Popen | None = None
        self.err: list[bytes] = []
        self.pos = self.start          # next output sample this source will deliver
        self.dry = False               # decoder ended early: the rest is silence (the run is shorter)

    def open(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        _grow_pipe(self.proc.stdout)
        threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()), daemon=True).start()

    def read(self, n: int, channels: int) -> np.ndarray:
        """Next ``n`` frames, shaped (n, 1) or (n, channels) for broadcasting into the mix."""
        ch = self.seg.src_channels
        want = n * ch * 4
        buf = b"" if self.dry else _read_exact(self.proc.stdout, want)
        if len(buf) < want:
            self.dry = True
        x = np.frombuffer(buf[: len(buf) - len(buf) % (4 * ch)], dtype=np.float32).reshape(-1, ch)
        if len(x) < n:
            x = np.concatenate([x, np.zeros((n - len(x), ch), np.float32)])
        if ch == 2 and channels == 1:
            x = x.mean(axis=1, keepdims=True)   # (L+R)/2
        # a mono column broadcasts into every output channel at its own level
        self.pos += n
        return x

    def close(self) -> None:
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()


def encoder_cmd(fmt: OutputFormat, rate: int, channels: int, bitrate: str | None, normalize: str,
                out: Path, loudness: float = -16.0) -> list[str]:
    args = base_cmd() + ["-f", "f32le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0"]
    if normalize == "limit":
        args += ["-af", "alimiter=limit=0.944:level=false:latency=true:attack=5:release=50"]
    elif normalize == "ebu":
        args += ["-af", f"loudnorm=I={loudness}:TP=-1.5:LRA=11,aresample={rate}"]
    args += ["-c:a", fmt.codec]
    if fmt.bitrate or bitrate:
        if fmt.codec not in ("pcm_s16le", "flac"):
            args += ["-b:a", bitrate or fmt.bitrate]
    args += ["-ar", str(rate), "-ac", str(channels), "-f", fmt.muxer, "-y", str(out)]
    return args


@dataclass
class MixResult:
    output: Path
    format: str
    sample_rate: int
    channels: int
    duration_ms: float
    users: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def render_mix(tl: Timeline, out: str | Path, *, fmt: OutputFormat, rate: int = 48000, channels: int = 2,
               bitrate: str | None = None, gains_db: dict[str, float] | None = None, normalize: str = "limit",
               window_start_ms: float = 0.0, window_end_ms: float | None = None,
               progress: Callable[[int, int], None] | None = None,
               cancel: threading.Event | None = None) -> MixResult:
    """Render the timeline's users to ``out``. Returns where everyone was placed."""
    out = Path(out)
    if fmt.rates and rate not in fmt.rates:
        raise MediatoolsError(f"{fmt.name} cannot store {rate} Hz (use one of {fmt.rates})", file=str(out),
                              code="bad_rate")
    end_ms = tl.span_ms if window_end_ms is None else min(window_end_ms, tl.span_ms)
    total = max(0, int(round((end_ms - window_start_ms) * rate / 1000.0)))
    gains = gains_db or {}
    users = []
    for ut in tl.users:
        segs = user_segments(ut, rate, window_start_ms=window_start_ms, window_end_ms=end_ms)
        users.append((ut, segs))
    sources: list[_Source] = []
    for ut, segs in users:
        g = 10 ** (gains.get(ut.uid, 0.0) / 20.0)
        for seg in segs:
            sources.append(_Source(seg, rate, seg.src_rate, g, ut.uid))
    sources.sort(key=lambda s: s.start)
    enc_err: list[bytes] = []
    with atomic_path(out) as tmp:
        enc = subprocess.Popen(encoder_cmd(fmt, rate, channels, bitrate, normalize, tmp),
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=lambda: enc_err.append(enc.stderr.read()), daemon=True).start()
        _grow_pipe(enc.stdin)
        writer = _Writer(enc.stdin)
        active: list[_Source] = []
        nxt = 0
        try:
            skip = fmt.priming  # raw ADTS cannot signal the encoder delay: feed it that much later audio
            done = 0
            while done < total:
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt
                n = min(BLOCK, total - done)
                while nxt < len(sources) and sources[nxt].start < done + n + BLOCK:  # open one block ahead
                    sources[nxt].open()
                    active.append(sources[nxt])
                    nxt += 1
                acc = np.zeros((n, channels), dtype=np.float32)
                for src in active:
                    a, b = max(src.pos, done), min(src.end, done + n)
                    if b <= a:
                        continue
                    x = src.read(b - a, channels)
                    acc[a - done:b - done] += x if src.gain == 1.0 else x * np.float32(src.gain)
                for src in [s for s in active if s.pos >= s.end]:
                    src.close()
                    if src.proc.returncode not in (0, -9) and not src.dry:
                        raise MediatoolsError(f"decoding uid {src.uid} failed: {last_line(b''.join(src.err))}",
                                              file=src.seg.slices[0].name, code="decode_failed")
                    active.remove(src)
                data = acc.reshape(-1)
                if skip:
                    cut = min(skip, n)
                    data = data[cut * channels:]
                    skip -= cut
                if not writer.put(data.tobytes()):  # the encoder died (disk full, bad option): say why
                    enc.wait()
                    raise MediatoolsError(f"encoding failed: {last_line(b''.join(enc_err))}",
                                          file=str(out), code="encode_failed")
                done += n
                if progress:
                    progress(done, total)
            if not writer.close():
                enc.wait()
                raise MediatoolsError(f"encoding failed: {last_line(b''.join(enc_err))}", file=str(out),
                                      code="encode_failed")
            enc.wait()
            if enc.returncode != 0:
                raise MediatoolsError(f"encoding failed: {last_line(b''.join(enc_err))}", file=str(out),
                                      code="encode_failed")
        except BaseException:
            if enc.poll() is None:
                enc.kill()
            enc.wait()
            writer.abort()
            raise
        finally:
            for src in active + sources[nxt:]:
                src.close()
            if enc.stdin and not enc.stdin.closed:
                try:
                    enc.stdin.close()
                except OSError:
                    pass
    return MixResult(output=out, format=fmt.name, sample_rate=rate, channels=channels,
                     duration_ms=round(total * 1000.0 / rate, 3), users=_placements(users, gains, rate),
                     problems=list(tl.problems))


def _placements(users: list[tuple[UserTimeline, list[Segment]]], gains: dict[str, float], rate: int) -> list[dict]:
    """Where each user's runs went in the output, for the report."""
    return [{"uid": ut.uid, "gain_db": gains.get(ut.uid, 0.0),
             "runs": [{"offset_ms": round(s.start * 1000.0 / rate, 3), "duration_ms": round(s.length * 1000.0 / rate, 3)}
                      for s in segs]} for ut, segs in users]


class _Writer:
    """Feeds the encoder from a thread, so mixing the next blocks overlaps encoding."""

    def __init__(self, stream, depth: int = 8):  # noqa: ANN001
        self.stream, self.q, self.failed = stream, queue.Queue(maxsize=depth), False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                break
            if self.failed:
                continue
            try:
                self.stream.write(item)
            except (BrokenPipeError, OSError):
                self.failed = True
        try:
            self.stream.close()
        except (BrokenPipeError, OSError):
            self.failed = True

    def put(self, data: bytes) -> bool:
        if self.failed:
            return False
        self.q.put(data)
        return not self.failed

    def close(self) -> bool:
        self.q.put(None)
        self.thread.join()
        return not self.failed

    def abort(self) -> None:
        self.failed = True
        try:
            while True:
                self.q.get_nowait()
        except queue.Empty:
            pass
        self.q.put(None)


def _grow_pipe(stream) -> None:  # noqa: ANN001
    """1 MiB pipes: fewer wake-ups between the processes (Linux only; harmless elsewhere)."""
    try:
        import fcntl
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (OSError, ImportError, ValueError):
        pass


def _read_exact(stream, n: int) -> bytes:  # noqa: ANN001
    chunks, got = [], 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


# ---------------------------------------------------------------- two encoders for long AAC mixes

#: AAC mixes longer than this are encoded by two encoders on the two halves, in parallel: the
#: encoder alone is slower than everything else together, so one encoder sets the pace.
SPLIT_MIN_S = float(os.environ.get("MEDIATOOLS_SPLIT_MIN_S", "600"))
#: frames the second encoder runs before the join, so its psychoacoustic model, bit rate
#: control and the limiter have settled where its frames are kept
WARMUP_FRAMES = 235


def can_split(fmt: OutputFormat, normalize: str, total_samples: int, rate: int) -> bool:
    """Loudness normalization looks at the whole file; only AAC frames join cleanly (MP3's
    bit reservoir reaches back across frames)."""
    return (fmt.codec == "aac" and fmt.name in ("m4a", "aac") and normalize != "ebu"
            and total_samples >= SPLIT_MIN_S * rate and total_samples >= 4 * BLOCK)


def render_mix_split(tl: Timeline, out: str | Path, *, fmt: OutputFormat, rate: int = 48000,
                     channels: int = 2, bitrate: str | None = None, gains_db: dict[str, float] | None = None,
                     normalize: str = "limit", window_start_ms: float = 0.0, window_end_ms: float | None = None,
                     progress: Callable[[int, int], None] | None = None) -> MixResult:
    """Both halves of the window mixed and AAC-encoded at once, joined at a frame boundary.

    Each half is encoded as raw ADTS with its first 1024 samples dropped (the encoder's
    priming then lines decoded frame k up with mix block k). The first half keeps frames
    [0, m); the second starts WARMUP_FRAMES early and keeps its frames from there on. The
    decoder's overlap-add at the join pairs two encodings of the same samples, so the join
    is as clean as any frame; runs keep their sample-exact places (tests measure both).
    """
    import tempfile

    out = Path(out)
    end_ms = tl.span_ms if window_end_ms is None else min(window_end_ms, tl.span_ms)
    total = max(0, int(round((end_ms - window_start_ms) * rate / 1000.0)))
    m = (total // 2) // FRAME
    split = m * FRAME

    def at(samples: int) -> float:
        return window_start_ms + samples * 1000.0 / rate

    adts = FORMATS["aac"]
    halves = [(at(0), at(split + 2 * FRAME)), (at(split - WARMUP_FRAMES * FRAME), end_ms)]
    done = [0, 0]
    sizes = [0, 0]
    lock = threading.Lock()
    cancel = threading.Event()
    errors: list[BaseException] = []

    def report(i: int):  # noqa: ANN202
        def cb(d: int, t: int) -> None:
            with lock:
                done[i], sizes[i] = d, t
                if progress:
                    progress(sum(done), max(1, sum(sizes)))
        return cb

    with tempfile.TemporaryDirectory(dir=out.parent if str(out.parent) else ".", prefix=".mediatools-tmp-") as td:
        paths = [Path(td) / "a.aac", Path(td) / "b.aac"]

        def run(i: int) -> None:
            try:
                render_mix(tl, paths[i], fmt=adts, rate=rate, channels=channels, bitrate=bitrate or fmt.bitrate,
                           gains_db=gains_db, normalize=normalize, window_start_ms=halves[i][0],
                           window_end_ms=halves[i][1], progress=report(i), cancel=cancel)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                cancel.set()
                errors.append(exc)

        second = threading.Thread(target=run, args=(1,), daemon=True)
        second.start()
        try:
            run(0)
            while second.is_alive():
                second.join(0.2)
        except BaseException:
            cancel.set()
            second.join()
            raise
        if errors:
            raise errors[0]

        def encode_failed(why: str) -> MediatoolsError:
            return MediatoolsError(f"encoding failed: {why}", file=str(out), code="encode_failed")

        with atomic_path(out) as tmp, adts_output(tmp, fmt.name, encode_failed) as put, \
                open(paths[0], "rb") as fa, open(paths[1], "rb") as fb:
            copy_adts_frames(fa, put, count=m)
            copy_adts_frames(fb, put, skip=WARMUP_FRAMES)
    users = [(ut, user_segments(ut, rate, window_start_ms=window_start_ms, window_end_ms=end_ms)) for ut in tl.users]
    return MixResult(output=out, format=fmt.name, sample_rate=rate, channels=channels,
                     duration_ms=round(total * 1000.0 / rate, 3), users=_placements(users, gains_db or {}, rate),
                     problems=list(tl.problems))
