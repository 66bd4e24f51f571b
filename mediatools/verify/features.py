"""Compact spectral features for comparing a mix with its recording.

Audio is decoded at 48 kHz, averaged in threes to 16 kHz (:mod:`mediatools.media.thirds`,
exactly as the mix's own decoding feeds verify's Reference) and reduced, as it streams, to
band energies every 10 ms (24 log-spaced bands): a 60-minute file becomes ~35 MB, never the
waveform.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from ..media.ffmpeg import FFmpegProcess, base_cmd, concat_url, mono_filter, raw_to_stdout, start
from ..media.thirds import RATE_IN, Thirds

RATE = 16000
HOP = 160           # 10 ms
WIN = 512           # 32 ms
EDGES = np.geomspace(100.0, 7800.0, 25)
_BINS = np.fft.rfftfreq(WIN, 1.0 / RATE)
_BAND_OF = np.digitize(_BINS, EDGES) - 1   # -1 or 24 = outside
_WINDOW = np.hanning(WIN)                  # float64: numpy's float64 FFT is ~3x its float32 one
#: bins → bands: every band is a contiguous run of bins, so band sums are one ``reduceat`` over
#: the squared (re, im) pairs of the bins in 100–7800 Hz. (A matrix product did the same in
#: OpenBLAS, whose threads, spinning against the mix's decoder and encoders for the 2 cores,
#: made it ~5 s per stream-hour against 0.8 s here; a loop over bands cost as much as the FFT.)
_IN = np.flatnonzero((_BAND_OF >= 0) & (_BAND_OF < len(EDGES) - 1))
_LO, _HI = int(_IN[0]), int(_IN[-1]) + 1
_FILLED = np.unique(_BAND_OF[_LO:_HI])                      # bands holding a bin (the lowest holds none)
_STARTS = 2 * np.searchsorted(_BAND_OF[_LO:_HI], _FILLED)   # where each starts among the (re, im) pairs
_FFT_ROWS = 512
HOP_MS = HOP * 1000.0 / RATE


def band_energies(x: np.ndarray) -> np.ndarray:
    """(frames × 24) energies of a mono block; frame i covers samples [i*HOP, i*HOP+WIN)."""
    if len(x) < WIN:
        x = np.concatenate([x, np.zeros(WIN - len(x), np.float32)])
    n = 1 + (len(x) - WIN) // HOP
    out = np.zeros((n, len(EDGES) - 1), np.float32)
    for a in range(0, n, _FFT_ROWS):  # a few MB of temporaries at a time, whatever the block
        b = min(n, a + _FFT_ROWS)
        part = x[a * HOP:(b - 1) * HOP + WIN]
        frames = np.lib.stride_tricks.as_strided(part, shape=(b - a, WIN), strides=(x.strides[0] * HOP, x.strides[0]))
        z = np.fft.rfft(frames * _WINDOW, axis=1).view(np.float64)[:, 2 * _LO:2 * _HI]   # re, im pairs
        np.square(z, out=z)
        out[a:b, _FILLED] = np.add.reduceat(z, _STARTS, axis=1)
    return out


def stream_features(args: list[str], what: str, *, channels: int = 1, filters: list[str] | None = None,
                    block_s: float = 4.0, sink: Callable[[np.ndarray], None] | None = None) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg ``args`` (inputs, then output options) to 48 kHz mono, streaming,
    averaged in threes to 16 kHz; → (features, 48 kHz samples decoded). The input's
    ``channels`` are averaged as the mix averages them (the expected sum adds runs at their
    levels: ``-ac 1`` made a stereo user 3 dB louder than the mix has it, and a correct mix
    failed), then ``filters`` run. With ``sink`` the features go there as they are computed
    and none are returned."""
    chain = [f for f in [mono_filter(channels)] + list(filters or []) if f]
    af = ["-af", ",".join(chain)] if chain else []
    cmd = base_cmd() + args + ["-map", "0:a:0"] + af + ["-ac", "1", "-ar", str(RATE_IN)] + raw_to_stdout("f32le")
    with start(cmd, stdout=True, big_pipes=True) as proc:
        feats, total = _reduce(proc, step_s=block_s, sink=sink)
        if proc.wait() != 0:
            raise proc.error(f"cannot decode {what}: {{last}}", file=what, code="unreadable")
    return feats, total


class BandStream:
    """Band energies of a 16 kHz mono stream fed in blocks of any size.

    Frames fall on the stream's own 10 ms grid, whatever the blocks' sizes, so the same
    samples give the same features whether ffmpeg's stdout or the mix's decoder fed them.
    Kept in memory, or handed to ``sink`` as they are computed (a spool file: see
    :mod:`.store`)."""

    def __init__(self, sink: Callable[[np.ndarray], None] | None = None) -> None:
        self.chunks: list[np.ndarray] = []
        self.sink = sink if sink is not None else self.chunks.append
        self.carry = np.zeros(0, np.float32)
        self.total = 0

    def feed(self, x: np.ndarray) -> None:
        self.total += len(x)
        data = np.concatenate([self.carry, x]) if len(self.carry) else x
        usable = (len(data) - WIN) // HOP + 1 if len(data) >= WIN else 0
        if usable > 0:
            self.sink(band_energies(data[: (usable - 1) * HOP + WIN]))
            self.carry = data[usable * HOP:]
        else:
            self.carry = data

    def finish(self) -> np.ndarray:
        if len(self.carry):
            tail = band_energies(np.concatenate([self.carry, np.zeros(WIN, np.float32)]))
            self.sink(tail[: max(1, len(self.carry) // HOP)])
            self.carry = np.zeros(0, np.float32)
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, len(EDGES) - 1), np.float32)


def _reduce(proc: FFmpegProcess, *, step_s: float, sink: Callable[[np.ndarray], None] | None = None
            ) -> tuple[np.ndarray, int]:
    """Band energies of ffmpeg's f32le stdout, block by block.

    A thread reads the pipe while this one computes: read and compute in turn, ffmpeg
    stood still whenever its pipe was full, and decoding and the FFTs took the sum of their
    times instead of the longer one (an hour's mix: 6 s + 3.3 s, against ~6 s now)."""
    bands, thirds, decoded = BandStream(sink), Thirds(), 0
    step = int(step_s * RATE_IN) // (3 * HOP) * (3 * HOP)
    blocks: queue.Queue = queue.Queue(4)
    stop = threading.Event()

    def reader() -> None:
        try:
            while True:
                buf = proc.stdout.read(step * 4)
                while not stop.is_set():
                    try:
                        blocks.put(buf, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if not buf or stop.is_set():
                    return
        except BaseException as exc:   # noqa: BLE001 - handed to the computing thread
            blocks.put(exc)

    thread = threading.Thread(target=reader, name="verify-reader", daemon=True)
    thread.start()
    try:
        while True:
            buf = blocks.get()
            if isinstance(buf, BaseException):
                raise buf
            if not buf:
                break
            x = np.frombuffer(buf[: len(buf) // 4 * 4], np.float32)
            decoded += len(x)
            bands.feed(thirds(x))
    finally:
        stop.set()
    thread.join()
    bands.feed(thirds.flush())
    return bands.finish(), decoded


def file_features(path: str | Path, sink: Callable[[np.ndarray], None] | None = None, *,
                  channels: int = 1) -> tuple[np.ndarray, int]:
    return stream_features(["-i", str(path)], Path(path).name, channels=channels, sink=sink)


def run_features(slices: list[Path], duration_ms: float, lead_samples: int = 0,
                 sink: Callable[[np.ndarray], None] | None = None, *, channels: int = 1) -> np.ndarray:
    """A run decoded per the contract (one stream, trimmed to its duration), delayed by
    ``lead_samples`` so its frames fall on the same 10 ms grid as the mix's. With ``sink``
    (which must keep only :func:`run_frames` rows) the features go there instead."""
    # resampled first: adelay counts samples at its input's rate; the lead is in 16 kHz samples,
    # three times as many at 48 kHz (averaged in threes back into exactly ``lead_samples``)
    af = [f"aresample={RATE_IN}", f"adelay=delays={3 * lead_samples}S:all=1"] if lead_samples else []
    feats, _ = stream_features(["-i", concat_url(slices), "-t", f"{duration_ms / 1000 + lead_samples / RATE:.6f}"],
                               slices[0].name, channels=channels, filters=af, sink=sink)
    return feats[: run_frames(duration_ms)]


def run_frames(duration_ms: float) -> int:
    """How many 10 ms frames of a run's features count (its duration, the partial last frame)."""
    return int(round(duration_ms / HOP_MS)) + 1


def add_at(total: np.ndarray, at: int, f: np.ndarray) -> None:
    """Add a run's features ``f`` into the expected sum ``total`` from frame ``at`` on (cut at its end)."""
    seg = f[: max(0, len(total) - at)]
    total[at:at + len(seg)] += seg
