"""Mixing every user onto one wall-clock timeline, streaming, in bounded memory.

Pipeline (all cores busy, nothing whole in RAM): one ffmpeg *decoder* per user renders
that user's entire timeline — each run decoded as one stream, trimmed to its duration,
resampled, channel-converted explicitly, placed sample-exactly with silence between —
as raw float PCM on a pipe; Python sums fixed-size blocks with per-user gains (numpy)
and feeds one ffmpeg *encoder* that limits/normalizes and writes the output under a
temporary name.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import atomic_path
from .errors import MediatoolsError, Problem, UsageError
from .ffmpeg import base_cmd, last_line
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


def pan_filter(src_channels: int, dst_channels: int) -> str:
    """Explicit channel conversion: mono at its own level in every channel; stereo→mono is (L+R)/2."""
    if dst_channels == 1:
        if src_channels == 1:
            return "pan=mono|c0=c0"
        terms = "+".join(f"{1.0 / src_channels:.6f}*c{i}" for i in range(src_channels))
        return f"pan=mono|c0={terms}"
    if dst_channels == 2:
        if src_channels == 1:
            return "pan=stereo|c0=c0|c1=c0"
        return "pan=stereo|c0=c0|c1=c1"
    raise MediatoolsError(f"{dst_channels} output channels not supported (1 or 2)", code="bad_channels")


@dataclass
class Segment:
    """One placed run of one user, in output samples."""
    start: int
    length: int
    slices: list[Path]
    src_channels: int


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
        ch = pr.run.media.channels if pr.run.media else 1
        segs.append(Segment(start=int(round(start_ms * rate / 1000.0)),
                            length=int(round(end_ms * rate / 1000.0)) - int(round(start_ms * rate / 1000.0)),
                            slices=[s.path for s in pr.run.slices if s.path is not None], src_channels=ch))
    return segs


def decoder_cmd(segs: list[Segment], rate: int, channels: int, total: int) -> list[str]:
    """One ffmpeg rendering a user's whole timeline [0, total) as f32le."""
    layout = "mono" if channels == 1 else "stereo"
    args = base_cmd()
    parts, labels, pos = [], [], 0
    for i, seg in enumerate(segs):
        args += ["-i", "concat:" + "|".join(str(p) for p in seg.slices)]
    for i, seg in enumerate(segs):
        skip = max(0, -seg.start)      # run begins before the window
        start = max(seg.start, 0)
        if start > pos:
            parts.append(f"anullsrc=r={rate}:cl={layout},atrim=end_sample={start - pos}[g{i}]")
            labels.append(f"[g{i}]")
        keep = min(seg.length - skip, total - start)
        if keep <= 0:
            continue
        parts.append(f"[{i}:a:0]aresample={rate},{pan_filter(seg.src_channels, channels)},"
                     f"atrim=start_sample={skip}:end_sample={skip + keep},asetpts=N/SR/TB,"
                     f"apad=whole_len={keep}[r{i}]")
        labels.append(f"[r{i}]")
        pos = start + keep
    if pos < total:
        parts.append(f"anullsrc=r={rate}:cl={layout},atrim=end_sample={total - pos}[tail]")
        labels.append("[tail]")
    parts.append(f"{''.join(labels)}concat=n={len(labels)}:v=0:a=1[out]")
    return args + ["-filter_complex", ";".join(parts), "-map", "[out]", "-f", "f32le", "-ac", str(channels),
                   "-ar", str(rate), "pipe:1"]


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
               progress: Callable[[int, int], None] | None = None) -> MixResult:
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
    procs: list[subprocess.Popen] = []
    errs: dict[int, list[bytes]] = {}
    with atomic_path(out) as tmp:
        enc = subprocess.Popen(encoder_cmd(fmt, rate, channels, bitrate, normalize, tmp),
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(enc)
        try:
            readers = []
            for ut, segs in users:
                if not segs:
                    continue
                p = subprocess.Popen(decoder_cmd(segs, rate, channels, total), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
                procs.append(p)
                readers.append((p, 10 ** (gains.get(ut.uid, 0.0) / 20.0), ut.uid))
            _drain_stderr(procs, errs)
            skip = fmt.priming  # raw ADTS cannot signal the encoder delay: feed it that much later audio
            done = 0
            frame_bytes = 4 * channels
            while done < total:
                n = min(BLOCK, total - done)
                acc = np.zeros(n * channels, dtype=np.float32)
                for p, g, uid in readers:
                    buf = _read_exact(p.stdout, n * frame_bytes)
                    if len(buf) != n * frame_bytes:
                        p.wait()
                        raise MediatoolsError(f"decoding uid {uid} failed: "
                                              f"{last_line(b''.join(errs.get(p.pid, [])))}", code="decode_failed")
                    x = np.frombuffer(buf, dtype=np.float32)
                    acc += x if g == 1.0 else x * np.float32(g)
                if skip:
                    cut = min(skip, n)
                    acc = acc[cut * channels:]
                    skip -= cut
                try:
                    enc.stdin.write(acc.tobytes())
                except BrokenPipeError:  # the encoder died (disk full, bad option): say why
                    enc.wait()
                    raise MediatoolsError(f"encoding failed: {last_line(b''.join(errs.get(enc.pid, [])))}",
                                          file=str(out), code="encode_failed") from None
                done += n
                if progress:
                    progress(done, total)
            try:
                enc.stdin.close()
            except BrokenPipeError:
                pass
            for p, _, _ in readers:
                p.wait()
            enc.wait()
            if enc.returncode != 0:
                raise MediatoolsError(f"encoding failed: {last_line(b''.join(errs.get(enc.pid, [])))}",
                                      file=str(out), code="encode_failed")
        except BaseException:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()
            raise
        finally:
            for p in procs:
                for s in (p.stdin, p.stdout):
                    if s and not s.closed:
                        try:
                            s.close()
                        except OSError:
                            pass
    placed = [{"uid": ut.uid, "gain_db": gains.get(ut.uid, 0.0),
               "runs": [{"offset_ms": round(s.start * 1000.0 / rate, 3), "duration_ms": round(s.length * 1000.0 / rate, 3)}
                        for s in segs]} for ut, segs in users]
    return MixResult(output=out, format=fmt.name, sample_rate=rate, channels=channels,
                     duration_ms=round(total * 1000.0 / rate, 3), users=placed, problems=list(tl.problems))


def _read_exact(stream, n: int) -> bytes:  # noqa: ANN001
    chunks, got = [], 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _drain_stderr(procs: list[subprocess.Popen], errs: dict[int, list[bytes]]) -> None:
    """Keep stderr pipes from filling (ffmpeg would block) and keep the text for errors."""
    for p in procs:
        buf: list[bytes] = []
        errs[p.pid] = buf
        threading.Thread(target=lambda s=p.stderr, b=buf: b.append(s.read()), daemon=True).start()
