"""Mixing every user onto one wall-clock timeline, streaming, in bounded memory.

Pipeline (both cores busy, nothing whole in RAM): each run is decoded by its own ffmpeg,
started just before the mix reaches it, as one stream (its TS slices joined), resampled
and trimmed to its exact samples, at its own channel count. Python places the runs
sample-exactly in fixed-size blocks — silence costs nothing, channel conversion is
explicit (a mono user at its own level in every channel, stereo → mono as (L+R)/2) —
applies per-user gains with numpy and feeds one ffmpeg *encoder* that limits or
normalizes and writes under a temporary name. Long AAC mixes feed two encoders, one per
half (:func:`render_mix_split`): the encoder is the slowest stage.
"""
from __future__ import annotations

import os
import queue
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable


from ..atomic import atomic_path
from ..errors import MediatoolsError, Problem, UsageError
from ..media.ffmpeg import base_cmd, concat_url, last_line
from ..media.adts import FRAME, adts_output, copy_adts_frames
from ..timeline.contract import Timeline, UserTimeline

if TYPE_CHECKING:
    import numpy as np

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
        import numpy as np  # lazily: merge's copy path does not need numpy
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
               progress: Callable[[int, int], None] | None = None) -> MixResult:
    """Render the timeline's users to ``out``. Returns where everyone was placed."""
    out = Path(out)
    if fmt.rates and rate not in fmt.rates:
        raise MediatoolsError(f"{fmt.name} cannot store {rate} Hz (use one of {fmt.rates})", file=str(out),
                              code="bad_rate")
    total, users = _window(tl, rate, window_start_ms, window_end_ms)
    gains = gains_db or {}
    with atomic_path(out) as tmp:
        enc = _Encoder(encoder_cmd(fmt, rate, channels, bitrate, normalize, tmp), out)
        mixer = _Mixer(users, gains, rate, channels)
        try:
            skip = fmt.priming  # raw ADTS cannot signal the encoder delay: feed it that much later audio
            done = 0
            while done < total:
                n = min(BLOCK, total - done)
                block = mixer.block(done, n)
                cut = min(skip, n)
                enc.put(block[cut:])
                skip -= cut
                done += n
                if progress:
                    progress(done, total)
            enc.finish()
        except BaseException:
            enc.abort()
            raise
        finally:
            mixer.close()
    return _result(tl, out, fmt, rate, channels, total, users, gains)


class _Mixer:
    """The placed, gained sum of every run, block by block. A run's decoder starts one block
    before the mix reaches it and is gone when the run ends, so only the runs sounding at
    once have a process."""

    def __init__(self, users: list[tuple[UserTimeline, list[Segment]]], gains_db: dict[str, float],
                 rate: int, channels: int):
        self.channels = channels
        self.sources = sorted((_Source(seg, rate, seg.src_rate, 10 ** (gains_db.get(ut.uid, 0.0) / 20.0), ut.uid)
                               for ut, segs in users for seg in segs), key=lambda s: s.start)
        self.active: list[_Source] = []
        self.nxt = 0

    def block(self, done: int, n: int) -> np.ndarray:
        """Output samples [done, done + n), shaped (n, channels)."""
        import numpy as np  # lazily: merge's copy path does not need numpy
        sources, active = self.sources, self.active
        while self.nxt < len(sources) and sources[self.nxt].start < done + n + BLOCK:  # open one block ahead
            sources[self.nxt].open()
            active.append(sources[self.nxt])
            self.nxt += 1
        acc = np.zeros((n, self.channels), dtype=np.float32)
        for src in active:
            a, b = max(src.pos, done), min(src.end, done + n)
            if b <= a:
                continue
            x = src.read(b - a, self.channels)
            acc[a - done:b - done] += x if src.gain == 1.0 else x * np.float32(src.gain)
        for src in [s for s in active if s.pos >= s.end]:
            src.close()
            if src.proc.returncode not in (0, -9) and not src.dry:
                raise MediatoolsError(f"decoding uid {src.uid} failed: {last_line(b''.join(src.err))}",
                                      file=src.seg.slices[0].name, code="decode_failed")
            active.remove(src)
        return acc

    def close(self) -> None:
        for src in self.active + self.sources[self.nxt:]:
            src.close()


class _Encoder:
    """One encoding ffmpeg fed from a thread (mixing the next blocks overlaps encoding),
    from memory or, with ``spool``, from chunk files in that folder."""

    def __init__(self, cmd: list[str], out: Path, spool: Path | None = None):
        self.out = out
        self.err: list[bytes] = []
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()), daemon=True).start()
        _grow_pipe(self.proc.stdin)
        self.feed: _Writer | _Spool = _Writer(self.proc.stdin) if spool is None else _Spool(self.proc.stdin, spool)

    @property
    def fed(self) -> int:
        """Bytes the encoder has taken so far."""
        return self.feed.fed

    def put(self, block: np.ndarray) -> None:
        if not self.feed.put(block.tobytes()):   # the encoder died (disk full, bad option): say why
            raise self._failed()

    def finish(self, waiting: Callable[[], None] | None = None) -> None:
        """All audio is in: wait for the encoder (calling ``waiting`` now and then) and check it."""
        if not self.feed.close(waiting):
            raise self._failed()
        self.proc.wait()
        if self.proc.returncode != 0:
            raise self._failed()

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.feed.abort()
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _failed(self) -> MediatoolsError:
        self.proc.wait()
        return MediatoolsError(f"encoding failed: {last_line(b''.join(self.err))}", file=str(self.out),
                               code="encode_failed")


def _window(tl: Timeline, rate: int, start_ms: float, end_ms: float | None) -> tuple[
        int, list[tuple[UserTimeline, list[Segment]]]]:
    """The output's length in samples and each user's segments in it."""
    end = tl.span_ms if end_ms is None else min(end_ms, tl.span_ms)
    total = max(0, int(round((end - start_ms) * rate / 1000.0)))
    return total, [(ut, user_segments(ut, rate, window_start_ms=start_ms, window_end_ms=end)) for ut in tl.users]


def _result(tl: Timeline, out: Path, fmt: OutputFormat, rate: int, channels: int, total: int,
            users: list[tuple[UserTimeline, list[Segment]]], gains: dict[str, float]) -> MixResult:
    """The report: where each user's runs went in the output."""
    placed = [{"uid": ut.uid, "gain_db": gains.get(ut.uid, 0.0),
               "runs": [{"offset_ms": round(s.start * 1000.0 / rate, 3), "duration_ms": round(s.length * 1000.0 / rate, 3)}
                        for s in segs]} for ut, segs in users]
    return MixResult(output=out, format=fmt.name, sample_rate=rate, channels=channels,
                     duration_ms=round(total * 1000.0 / rate, 3), users=placed, problems=list(tl.problems))


class _Writer:
    """Writes queued blocks to a stream from a thread."""

    def __init__(self, stream, depth: int = 8):  # noqa: ANN001
        self.stream, self.q, self.failed, self.fed = stream, queue.Queue(maxsize=depth), False, 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                break
            self._feed(item)
        try:
            self.stream.close()
        except (BrokenPipeError, OSError):
            self.failed = True

    def _feed(self, data: bytes) -> None:
        if not self.failed:
            self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
            self.fed += len(data)
        except (BrokenPipeError, OSError):
            self.failed = True

    def put(self, data: bytes) -> bool:
        if self.failed:
            return False
        self.q.put(data)
        return not self.failed

    def close(self, waiting: Callable[[], None] | None = None) -> bool:
        self.q.put(None)
        while self.thread.is_alive():
            self.thread.join(0.25)
            if waiting:
                waiting()
        return not self.failed

    def abort(self) -> None:
        self.failed = True
        try:
            while True:
                self.q.get_nowait()
        except queue.Empty:
            pass
        self.q.put(None)


class _Spool(_Writer):
    """A writer whose queue is chunk files on disk: the mix can run ahead of this encoder
    (while another encoder waits for later audio) without holding the lead in memory.
    Each chunk is deleted once fed; past LIMIT bytes of lead the mix waits, so long
    recordings cannot fill the disk."""

    CHUNK = 8 << 20
    LIMIT = int(os.environ.get("MEDIATOOLS_SPOOL_MAX_MB", "1024")) << 20

    def __init__(self, stream, folder: Path):  # noqa: ANN001
        self.folder, self.file, self.size, self.count, self.written = folder, None, 0, 0, 0
        super().__init__(stream, depth=0)

    def _feed(self, path: Path) -> None:  # type: ignore[override]
        if not self.failed:
            try:
                with open(path, "rb") as f:
                    while not self.failed and (data := f.read(1 << 20)):
                        self._write(data)
            except OSError:
                self.failed = True
        path.unlink(missing_ok=True)

    def put(self, data: bytes) -> bool:
        if self.failed:
            return False
        try:
            if self.file is None:
                self.count += 1
                self.file = open(self.folder / f"spool-{self.count:06d}.f32", "wb")
            self.file.write(data)
        except OSError as exc:
            raise MediatoolsError(f"cannot write temporary audio ({exc.strerror})", file=str(self.folder),
                                  code="unwritable") from None
        self.size += len(data)
        self.written += len(data)
        if self.size >= self.CHUNK:
            self._seal()
            while self.written - self.fed > self.LIMIT and not self.failed and self.thread.is_alive():
                self.thread.join(0.05)
        return not self.failed

    def _seal(self) -> None:
        if self.file is not None:
            self.file.close()
            self.q.put(Path(self.file.name))
            self.file, self.size = None, 0

    def close(self, waiting: Callable[[], None] | None = None) -> bool:
        self._seal()
        return super().close(waiting)

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        super().abort()


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
    """One mixing pass feeding two AAC encoders, one per half, joined at a frame boundary.

    Each half is encoded as raw ADTS with its first 1024 samples dropped (the encoder's
    priming then lines decoded frame k up with the half's sample k·1024). The first half
    keeps frames [0, m); the second starts WARMUP_FRAMES early and keeps its frames from
    there on. The decoder's overlap-add at the join pairs two encodings of the same samples,
    so the join is as clean as any frame; runs keep their sample-exact places (tests
    measure both).

    The mix is made once, in order, so only the runs sounding at once are being decoded.
    The first half's encoder is fed through a disk spool: the mix runs ahead of it to reach
    the second half, and the lead waits in chunk files (capped, see :class:`_Spool`), not
    in memory.
    """
    import tempfile

    out = Path(out)
    total, users = _window(tl, rate, window_start_ms, window_end_ms)
    m = (total // 2) // FRAME
    split = m * FRAME
    # [from, to) of the mix each encoder is fed (after the priming it cannot signal)
    spans = [(FRAME, split + 2 * FRAME), (split - WARMUP_FRAMES * FRAME + FRAME, total)]
    gains = gains_db or {}
    adts = FORMATS["aac"]
    frame_bytes = 4 * channels
    owed = sum(b - a for a, b in spans) * frame_bytes

    with tempfile.TemporaryDirectory(dir=out.parent if str(out.parent) else ".", prefix=".mediatools-tmp-") as td:
        paths = [Path(td) / "a.aac", Path(td) / "b.aac"]
        cmds = [encoder_cmd(adts, rate, channels, bitrate or fmt.bitrate, normalize, p) for p in paths]
        encoders = [_Encoder(cmds[0], out, spool=Path(td)), _Encoder(cmds[1], out)]

        def tick() -> None:
            if progress:
                progress(sum(e.fed for e in encoders) // frame_bytes, owed // frame_bytes)

        mixer = _Mixer(users, gains, rate, channels)
        try:
            done = 0
            while done < total:
                n = min(BLOCK, total - done)
                block = mixer.block(done, n)
                for enc, (lo, hi) in zip(encoders, spans):
                    a, b = max(lo, done), min(hi, done + n)
                    if a < b:
                        enc.put(block[a - done:b - done])
                done += n
                tick()
            for enc in reversed(encoders):
                enc.finish(tick)
        except BaseException:
            for enc in encoders:
                enc.abort()
            raise
        finally:
            mixer.close()

        def encode_failed(why: str) -> MediatoolsError:
            return MediatoolsError(f"encoding failed: {why}", file=str(out), code="encode_failed")

        with atomic_path(out) as tmp, adts_output(tmp, fmt.name, encode_failed) as put, \
                open(paths[0], "rb") as fa, open(paths[1], "rb") as fb:
            copy_adts_frames(fa, put, count=m)
            copy_adts_frames(fb, put, skip=WARMUP_FRAMES)
    return _result(tl, out, fmt, rate, channels, total, users, gains)
