"""Feeding the encoder: one ffmpeg per output (or per half), fed from a thread so mixing the
next blocks overlaps encoding, from memory or from a capped disk spool."""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import MediatoolsError
from ..media.decode import LAYOUTS
from ..media.ffmpeg import base_cmd, start
from ..media.formats import OutputFormat

if TYPE_CHECKING:
    import numpy as np


def encoder_cmd(fmt: OutputFormat, rate: int, channels: int, bitrate: str | None, normalize: str,
                out: Path, loudness: float = -16.0, fed: int | None = None) -> list[str]:
    """The encoding ffmpeg, reading f32le at ``rate`` from stdin. ``fed``: the channels fed, when
    fewer than the output's (1 for 2: a mix of mono users is the same in both channels, so it
    is fed once and copied to both at unity, ``pan``, not ``-ac``'s −3 dB upmix)."""
    fed = fed or channels
    args = base_cmd() + ["-f", "f32le", "-ar", str(rate), "-ac", str(fed), "-i", "pipe:0"]
    spread = [f"pan={LAYOUTS[channels]}|" + "|".join(f"c{c}=c0" for c in range(channels))] if fed < channels else []
    if normalize == "limit":   # the limiter's gain follows the loudest channel: same on one copy
        chain = ["alimiter=limit=0.944:level=false:latency=true:attack=5:release=50"] + spread
    elif normalize == "ebu":   # loudness sums the channels' power: measured on what is written
        chain = spread + [f"loudnorm=I={loudness}:TP=-1.5:LRA=11", f"aresample={rate}"]
    else:
        chain = spread
    if chain:
        args += ["-af", ",".join(chain)]
    args += ["-c:a", fmt.codec]
    if fmt.bitrate or bitrate:
        if fmt.codec not in ("pcm_s16le", "flac"):
            args += ["-b:a", bitrate or fmt.bitrate]
    if fmt.muxer in _MP4_MUXERS:
        # the edit list's length is counted in the movie timescale: ffmpeg 5.1 defaults it to
        # 1/1000 s and so cuts up to 1 ms of audio off the end; ffmpeg 9 already uses the rate
        args += ["-movie_timescale", str(rate)]
    args += ["-ar", str(rate), "-ac", str(channels), "-f", fmt.muxer, "-y", str(out)]
    return args


#: muxers whose edit list (priming skip and playable length) is counted in the movie timescale
_MP4_MUXERS = {"ipod", "mp4", "mov"}


class Encoder:
    """One encoding ffmpeg fed from a thread (mixing the next blocks overlaps encoding),
    from memory or, with ``spool``, from chunk files in that folder."""

    def __init__(self, cmd: list[str], out: Path, spool: Path | None = None, spool_limit: int | None = None):
        self.out = out
        self.proc = start(cmd, stdin=True, big_pipes=True)
        self.feed: Writer | Spool = (Writer(self.proc.stdin) if spool is None
                                     else Spool(self.proc.stdin, spool, spool_limit))

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
        self.proc.kill()
        self.feed.abort()
        self.proc.close()

    def _failed(self) -> MediatoolsError:
        self.proc.wait()
        return self.proc.error("encoding failed: {last}", file=str(self.out), code="encode_failed")


class Writer:
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


class Spool(Writer):
    """A writer whose queue is chunk files on disk: the mix can run ahead of this encoder
    (while another encoder waits for later audio) without holding the lead in memory.
    Each chunk is deleted once fed; past MEDIATOOLS_SPOOL_MAX_MB of lead the mix waits, so long
    recordings cannot fill the disk."""

    CHUNK = 8 << 20

    def __init__(self, stream, folder: Path, limit: int | None = None):  # noqa: ANN001
        self.folder, self.file, self.size, self.count, self.written = folder, None, 0, 0, 0
        from .. import settings
        # read per mix, not per process; ``limit`` (bytes): this spool's share when there are several
        self.limit = limit if limit is not None else int(settings.get("MEDIATOOLS_SPOOL_MAX_MB")) << 20
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
            while self.written - self.fed > self.limit and not self.failed and self.thread.is_alive():
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
