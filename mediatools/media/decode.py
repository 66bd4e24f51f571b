"""Decoding audio in-process with PyAV: how the mix decodes a run (no ffmpeg process per run).

Why in-process: the ffmpeg CLI (>= 7) hands every 1024-sample frame between its demuxer,
decoder, filter and muxer threads; decoding one user-hour that way cost ~1.45 M futex calls
and 3.5 s of system time, against ~0.06 s in one thread here. The libraries are PyAV's own
bundled FFmpeg, so decoding does not depend on which ffmpeg binary the encoder runs.

Why one byte stream: a run's TS slices are one MPEG-TS stream cut every ~15 s, and the
timing contract plays them back to back. :class:`SliceChain` presents them to the demuxer
as ffmpeg's ``concat:`` protocol does (the files' bytes in order, seekable, one file open
at a time), so packets that straddle a cut are reassembled and the decoder's state runs
on across slices; and no path needs escaping (``concat:`` splits on ``|``).

:class:`Decoder` then behaves like the command the mix used to run,
``ffmpeg -i concat:... -map 0:a:0 -af aresample=R,atrim=start_sample=S:end_sample=E -ac C``:
the first audio stream, every decoded sample converted by one libswresample (rate, packed
format, channel layout, flushed at the end), samples ``[skip, length)`` of that stream kept
by count, not by timestamp. Like the CLI it logs a packet that fails to decode and goes on,
and ends the stream at a read error; unlike it, inside a slice named in ``holes`` (one that
discovery found damaged: packets lost or garbled inside) audio the frames' timestamps say is
missing is played as silence where it was, so what follows the damage keeps its time
(timestamps are trusted only there: between slices the contract plays them back to back).
A stream that cannot be opened, has no audio or decodes to nothing but errors raises
:class:`DecodeError`. Samples are produced only as
:meth:`Decoder.read` asks, so memory is flat in the run's length.
"""
from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from .. import interrupts
from ..errors import MediatoolsError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

#: what a channel count becomes (what ``-ac N`` picks: libswresample's default layouts)
LAYOUTS = {1: "mono", 2: "stereo"}


class DecodeError(MediatoolsError):
    """A stream that cannot be decoded at all (``file`` names the first slice)."""


class SliceChain:
    """A read-only, seekable file object over ``paths`` joined byte-wise, like ``concat:``.

    Sizes are taken once, at the start (as ``concat:`` opens every file at once); a missing
    file is an error then, not halfway through the run. One file is open at a time."""

    def __init__(self, paths: list[str | Path]):
        self.paths = [str(p) for p in paths]
        self.starts = [0]
        for p in self.paths:
            self.starts.append(self.starts[-1] + os.stat(p).st_size)
        self.size = self.starts[-1]
        self.pos = 0
        self._index = -1
        self._fh = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes from the file under the position (a short read at a file's end,
        as ``concat:`` does); b"" at the end of the last file."""
        if n is None or n < 0:
            n = self.size - self.pos
        while self.pos < self.size and n > 0:
            i = bisect.bisect_right(self.starts, self.pos) - 1
            if i != self._index:
                self._close_file()
                self._fh = open(self.paths[i], "rb")  # noqa: SIM115 - kept open across reads
                self._index = i
            self._fh.seek(self.pos - self.starts[i])
            data = self._fh.read(min(n, self.starts[i + 1] - self.pos))
            if data:
                self.pos += len(data)
                return data
            self.pos = self.starts[i + 1]   # the file shrank since it was measured: go on
        return b""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def _close_file(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh, self._index = None, -1

    def close(self) -> None:
        self._close_file()


class Decoder:
    """A run's first audio track as float32 numpy blocks shaped (frames, channels), at ``rate``,
    decoded lazily as :meth:`read` asks.

    ``source``: the run's TS slices (one stream, :class:`SliceChain`, demuxed as MPEG-TS), or
    with ``container=None`` one file of any format FFmpeg recognises (a mix, for verify).
    ``skip`` and ``length`` keep samples ``[skip, length)`` of
    the converted stream (``atrim=start_sample=skip:end_sample=length``); ``length`` None keeps
    everything. ``holes``: the slices of ``source`` whose lost audio is silence in place (the
    damaged ones). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, source: list[str | Path], rate: int, channels: int, *,
                 skip: int = 0, length: int | None = None, container: str | None = "mpegts",
                 holes: Iterable[str | Path] = ()):
        import av  # lazily: importing mediatools does not load FFmpeg's libraries

        self.channels, self.rate = channels, rate
        self.skip, self.length = max(0, skip), length
        self.bad_packets = 0
        self.frames = 0                 # decoded frames (codec frames, not samples)
        self.lost_s = 0.0               # seconds of lost audio played as silence (damaged slices)
        self._spans: list[tuple[int, int]] = []   # damaged slices' timestamp spans (stream time base)
        self._pos = 0                   # converted samples produced so far (before the trim)
        self._pending: list[np.ndarray] = []
        self._have = 0
        self._chain: SliceChain | None = None
        self._container = None
        if not source:
            raise DecodeError("no slices to decode", code="decode_failed")
        self.name = Path(str(source[0])).name
        try:
            self._chain = SliceChain(list(source))
            self._container = av.open(self._chain, format=container)
            audio = self._container.streams.audio
            if not audio:
                raise DecodeError("Stream map '0:a:0' matches no streams (no audio)", file=self.name,
                                  code="decode_failed")
            self._stream = audio[0]
            damaged = {str(p) for p in holes}
            self._spans = [sp for p in self._chain.paths if p in damaged
                           for sp in [_pts_span(p, container)] if sp is not None]
        except (OSError, av.error.FFmpegError) as exc:   # a missing slice; FFmpeg's own errors
            self.close()
            interrupts.check()   # a failed header read may be an interrupt PyAV swallowed
            why = _reason(exc, self.name)
            if isinstance(exc, EOFError):   # the demuxer found no stream before the end
                why = f"no audio stream ({why})"
            raise DecodeError(why, file=self.name, code="decode_failed") from None
        except BaseException:
            self.close()
            raise
        self._blocks = self._decoded()

    # ------------------------------------------------------------------ reading

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` frames; fewer only at the end of the stream (or of ``length``)."""
        import numpy as np
        while self._have < n and self._blocks is not None:
            x = next(self._blocks, None)
            if x is None:
                break
            self._pending.append(x)
            self._have += len(x)
        if not self._pending:
            return np.zeros((0, self.channels), np.float32)
        data = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        out, rest = data[:n], data[n:]
        self._pending = [rest] if len(rest) else []
        self._have = len(rest)
        return out

    def _decoded(self) -> Iterator[np.ndarray]:
        """Trimmed, converted blocks; stops decoding once ``length`` samples are out."""
        for x in self._converted():
            a, b = self._pos, self._pos + len(x)
            self._pos = b
            lo = max(self.skip - a, 0)
            hi = len(x) if self.length is None else min(self.length - a, len(x))
            if hi > lo:
                yield x[lo:hi]
            if self.length is not None and b >= self.length:
                break
        self.close()

    def _converted(self) -> Iterator[np.ndarray]:
        """Every decoded frame at the output's rate, format and channels. A float frame already
        at the rate and layout asked for is only interleaved, in numpy: that is all
        libswresample would do with it (float to float, no rematrixing), and a filter graph
        per frame cost more than decoding it."""
        ch, layout = self.channels, LAYOUTS.get(self.channels, self.channels)
        resampler, template, plain, packed = None, None, False, True
        batch: list = []     # frames to resample in one call (libswresample's output does not
        held = 0             # depend on how its input is cut; the graph costs per call)
        views: list[list[memoryview]] = [[] for _ in range(ch)]   # plain frames' samples, by plane
        for frame in self._frames():
            fmt = frame.format.name
            key = (fmt, frame.layout.name, frame.sample_rate)
            if key != template:   # the stream's parameters changed: flush, then a new converter
                if batch:
                    yield from self._arrays(resampler.resample(_joined(batch)))
                    batch, held = [], 0
                if views[0]:
                    yield _plain_block(views, packed)
                    held = 0
                if resampler is not None:
                    yield from self._arrays(resampler.resample(None))
                template = key
                plain = fmt in ("flt", "fltp") and frame.layout.name == layout and frame.sample_rate == self.rate
                packed = fmt == "flt" or ch == 1
                resampler = None if plain else self._resampler()
            n = frame.samples
            if not plain:
                batch.append(frame)
                held += n
                if held >= _BATCH or fmt not in ("flt", "fltp"):
                    yield from self._arrays(resampler.resample(_joined(batch)))
                    batch, held = [], 0
                continue
            # a plain frame's samples are gathered, in _BATCH-sample blocks: per frame,
            # an array, a trim and a join cost more than the copy
            if not n:
                continue
            planes = frame.planes
            if packed:
                views[0].append(memoryview(planes[0])[:n * ch * 4])
            else:
                for c in range(ch):
                    views[c].append(memoryview(planes[c])[:n * 4])
            held += n
            if held >= _BATCH:
                yield _plain_block(views, packed)
                held = 0
        if views[0]:
            yield _plain_block(views, packed)
        if batch:
            yield from self._arrays(resampler.resample(_joined(batch)))
        if resampler is not None:
            yield from self._arrays(resampler.resample(None))   # the resampler's tail

    def _resampler(self):  # noqa: ANN202
        import av
        return av.AudioResampler(format="flt", layout=LAYOUTS.get(self.channels, self.channels),
                                 rate=self.rate)

    def _arrays(self, frames: list) -> Iterator[np.ndarray]:
        """The resampler's (packed) frames as arrays, without PyAV's per-plane vstack."""
        import numpy as np
        for f in frames:
            if f.samples:
                yield np.frombuffer(f.planes[0], np.float32, f.samples * self.channels) \
                    .reshape(-1, self.channels)

    def _frames(self) -> Iterator:
        """Decoded frames; inside a damaged slice's timestamp span, placed by their timestamps.
        A frame that starts later than the one before ends is preceded by silence of the
        difference, once the frame after it confirms its timestamp (a garbled packet's timestamp
        is not believed on its own: unconfirmed, the frame is dropped); a frame that starts
        earlier would play over audio already out, and is dropped."""
        if not self._spans:
            yield from self._decoded_frames()
            return
        tb = float(self._stream.time_base)
        prev: tuple[int, float] | None = None     # (pts, end pts) of the last frame out
        held = None                               # (silence in samples, frame) awaiting confirmation
        for f in self._decoded_frames():
            if held is not None:
                gap, g = held
                held = None
                if f.pts is not None and abs(f.pts - _end(g, tb)) * tb * f.sample_rate <= f.samples / 2:
                    self.lost_s += gap / g.sample_rate
                    yield _silence_like(g, gap, g.pts - gap / g.sample_rate / tb)
                    yield g
                    prev = (g.pts, _end(g, tb))
            if f.pts is None:
                prev = None
                yield f
                continue
            if prev is not None and self._inside(prev[0], f.pts):
                late = (f.pts - prev[1]) * tb * f.sample_rate     # in samples
                if late > f.samples / 2:
                    held = (int(round(late)), f)
                    continue
                if late < -f.samples / 2:
                    continue
            prev = (f.pts, _end(f, tb))
            yield f
        if held is not None:       # the stream's last frame: nothing to confirm it, kept as it comes
            yield held[1]

    def _inside(self, a: int, b: int) -> bool:
        """Timestamps ``a`` and ``b`` both lie in one damaged slice's span."""
        return any(lo <= a <= hi and lo <= b <= hi for lo, hi in self._spans)

    def _decoded_frames(self) -> Iterator:
        """Decoded frames. A packet the decoder rejects is counted and skipped, as the CLI does;
        a demuxer error ends the stream (the CLI logs it and treats it as the input's end)."""
        import av
        ctx = self._stream.codec_context
        errors = 0
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                interrupts.check()   # the read that ended the stream may have swallowed an interrupt
                break
            except av.error.FFmpegError as exc:
                interrupts.check()
                log.debug("%s: read error, ending the stream there: %s", self.name, _reason(exc, self.name))
                break
            interrupts.check()       # Ctrl-C inside the read callback is "ignored" by PyAV
            if packet.size == 0:
                continue             # PyAV's end-of-stream marker: drained below
            try:
                frames = ctx.decode(packet)
            except av.error.FFmpegError as exc:
                errors += 1
                if errors <= 3:
                    log.debug("%s: skipping a packet that does not decode: %s", self.name, _reason(exc, self.name))
                continue
            for f in frames:
                self.frames += 1
                yield f
        try:
            tail = ctx.decode(None)   # whatever the decoder still holds
        except av.error.FFmpegError:
            tail = []
        for f in tail:
            self.frames += 1
            yield f
        self.bad_packets = errors
        if errors:
            log.debug("%s: %d packets did not decode", self.name, errors)
            if not self.frames:
                raise DecodeError(f"no packet decodes ({errors} errors)", file=self.name, code="decode_failed")

    def close(self) -> None:
        # drop the stream (its codec context) and the frame generators too: a run read to its
        # length leaves them suspended, holding about a megabyte of FFmpeg's buffers, and a
        # mix keeps its finished runs (its memory grew ~1.1 MB a minute of an 8-user call)
        self._stream = None
        blocks, self._blocks = getattr(self, "_blocks", None), None
        if blocks is not None and not blocks.gi_running:   # (close() may come from inside it)
            blocks.close()
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None
        if self._chain is not None:
            self._chain.close()
            self._chain = None

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BATCH = 8192   # samples resampled per call

#: sample formats' numpy types (FFmpeg's names, planar or packed)
_DTYPES = {"u8": "u1", "s16": "i2", "s32": "i4", "s64": "i8", "flt": "f4", "dbl": "f8"}


def _pts_span(path: str, container: str | None) -> tuple[int, int] | None:
    """The first and last audio packet timestamps of one slice read alone (its packets only,
    nothing decoded): where in the run's time base its frames lie. None when it has none.
    First and last, not least and most: a garbled packet's timestamp can be anything."""
    import av
    try:
        with av.open(path, format=container) as c:
            if not c.streams.audio:
                return None
            ts = [p.pts for p in c.demux(c.streams.audio[0]) if p.size and p.pts is not None]
    except (OSError, av.error.FFmpegError):
        return None
    return (ts[0], ts[-1]) if ts and ts[0] < ts[-1] else None


def _end(frame, tb: float) -> float:  # noqa: ANN001
    """Where ``frame`` ends, in its stream's time base ``tb`` (seconds per tick)."""
    return frame.pts + frame.samples / frame.sample_rate / tb


def _silence_like(frame, n: int, pts: float):  # noqa: ANN001, ANN202
    """``n`` samples of silence in ``frame``'s format, layout and rate, at ``pts``."""
    import av
    import numpy as np
    fmt = frame.format
    ch = len(frame.layout.channels)
    base = fmt.name.rstrip("p") if fmt.is_planar else fmt.name
    data = np.zeros((ch, n) if fmt.is_planar else (1, n * ch), _DTYPES.get(base, "f4"))
    if base == "u8":
        data += 128
    out = av.AudioFrame.from_ndarray(data, format=fmt.name, layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    out.pts, out.time_base = int(round(pts)), frame.time_base
    return out


def _plain_block(views: list[list[memoryview]], packed: bool) -> np.ndarray:
    """The gathered float samples as one (frames, channels) block; empties ``views``.
    ``packed``: one interleaved plane (or mono); else a plane per channel."""
    import numpy as np
    ch = len(views)
    if packed:
        x = np.frombuffer(b"".join(views[0]), np.float32).reshape(-1, ch)
    else:
        cols = [np.frombuffer(b"".join(v), np.float32) for v in views]
        x = np.empty((len(cols[0]), ch), np.float32)
        for c, col in enumerate(cols):
            x[:, c] = col
    for v in views:
        v.clear()
    return x


def _joined(frames: list):  # noqa: ANN202
    """One float frame holding ``frames``' samples back to back (the first frame when alone)."""
    if len(frames) == 1:
        return frames[0]
    import av
    import numpy as np
    first = frames[0]
    fmt = first.format.name
    if fmt == "fltp":
        data = np.concatenate([np.stack([np.frombuffer(p, np.float32, f.samples) for p in f.planes[:len(first.layout.channels)]])
                               for f in frames], axis=1)
    else:
        ch = len(first.layout.channels)
        data = np.concatenate([np.frombuffer(f.planes[0], np.float32, f.samples * ch) for f in frames]).reshape(1, -1)
    out = av.AudioFrame.from_ndarray(data, format=fmt, layout=first.layout.name)
    out.sample_rate = first.sample_rate
    out.pts, out.time_base = first.pts, first.time_base
    return out


def _reason(exc: BaseException, first: str = "") -> str:
    """FFmpeg's (or the OS's) words for an error, without PyAV's errno prefix; a file an OS
    error is about (a slice missing from the run) is named unless it is ``first``."""
    words = getattr(exc, "strerror", None) or str(exc)
    name = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and isinstance(name, str) and name and Path(name).name != first:
        return f"{Path(name).name}: {words}"
    return words
