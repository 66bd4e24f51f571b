"""Compact spectral features for comparing a mix with its recording.

Audio is decoded at 48 kHz, averaged in threes to 16 kHz (:mod:`mediatools.media.thirds`,
:class:`~mediatools.media.tap.Mono16k`: the mix file, a run verify decodes and a run the mix
fed verify's Reference alike, :mod:`.runs`) and reduced, as it streams, to band energies
every 10 ms (24 log-spaced bands): a 60-minute file becomes ~35 MB, never the waveform.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

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


class _Work:
    """band_energies' scratch arrays, kept between calls: fresh ones are megabytes each, which
    glibc maps and unmaps per call, and the page faults of touching them again cost more system
    time than the FFTs took (8 s of it for 8 user-hours)."""

    def __init__(self) -> None:
        self.windowed = np.empty((_FFT_ROWS, WIN), np.float64)
        self.spectrum = np.empty((_FFT_ROWS, WIN // 2 + 1), np.complex128)


def band_energies(x: np.ndarray, work: _Work | None = None) -> np.ndarray:
    """(frames × 24) energies of a mono block; frame i covers samples [i*HOP, i*HOP+WIN)."""
    if len(x) < WIN:
        x = np.concatenate([x, np.zeros(WIN - len(x), np.float32)])
    work = work or _Work()
    n = 1 + (len(x) - WIN) // HOP
    out = np.zeros((n, len(EDGES) - 1), np.float32)
    for a in range(0, n, _FFT_ROWS):  # a few MB of scratch at a time, whatever the block
        b = min(n, a + _FFT_ROWS)
        part = x[a * HOP:(b - 1) * HOP + WIN]
        frames = np.lib.stride_tricks.as_strided(part, shape=(b - a, WIN), strides=(x.strides[0] * HOP, x.strides[0]))
        windowed, spectrum = work.windowed[:b - a], work.spectrum[:b - a]
        np.multiply(frames, _WINDOW, out=windowed)
        np.fft.rfft(windowed, axis=1, out=spectrum)
        z = spectrum.view(np.float64)[:, 2 * _LO:2 * _HI]   # re, im pairs
        np.square(z, out=z)
        out[a:b, _FILLED] = np.add.reduceat(z, _STARTS, axis=1)
    return out


class BandStream:
    """Band energies of a 16 kHz mono stream fed in blocks of any size.

    Frames fall on the stream's own 10 ms grid, whatever the blocks' sizes, so the same
    samples give the same features whether verify's decoder or the mix's fed them.
    Kept in memory, or handed to ``sink`` as they are computed (a spool file: see
    :mod:`.store`)."""

    def __init__(self, sink: Callable[[np.ndarray], None] | None = None) -> None:
        self.chunks: list[np.ndarray] = []
        self.sink = sink if sink is not None else self.chunks.append
        self.carry = np.zeros(0, np.float32)
        self.total = 0
        self.work = _Work()

    def feed(self, x: np.ndarray) -> None:
        self.total += len(x)
        data = np.concatenate([self.carry, x]) if len(self.carry) else x
        usable = (len(data) - WIN) // HOP + 1 if len(data) >= WIN else 0
        if usable > 0:
            self.sink(band_energies(data[: (usable - 1) * HOP + WIN], self.work))
            self.carry = data[usable * HOP:]
        else:
            self.carry = data

    def finish(self) -> np.ndarray:
        if len(self.carry):
            tail = band_energies(np.concatenate([self.carry, np.zeros(WIN, np.float32)]), self.work)
            self.sink(tail[: max(1, len(self.carry) // HOP)])
            self.carry = np.zeros(0, np.float32)
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, len(EDGES) - 1), np.float32)


def run_frames(duration_ms: float) -> int:
    """How many 10 ms frames of a run's features count (its duration, the partial last frame)."""
    return int(round(duration_ms / HOP_MS)) + 1


def add_at(total: np.ndarray, at: int, f: np.ndarray) -> None:
    """Add a run's features ``f`` into the expected sum ``total`` from frame ``at`` on (cut at its end)."""
    seg = f[: max(0, len(total) - at)]
    total[at:at + len(seg)] += seg
