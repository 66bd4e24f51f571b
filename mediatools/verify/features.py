"""Compact spectral features for comparing a mix with its recording.

Audio is decoded in-process (:mod:`mediatools.media.decode`: the mix file as it is, a run's
slices as one stream) at a modest rate and reduced, as it streams, to band energies every
10 ms (24 log-spaced bands): a 60-minute file becomes ~35 MB, never the waveform.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MediatoolsError
from ..media.decode import DecodeError, Decoder

RATE = 16000
HOP = 160           # 10 ms
WIN = 512           # 32 ms
EDGES = np.geomspace(100.0, 7800.0, 25)
_BINS = np.fft.rfftfreq(WIN, 1.0 / RATE)
_BAND_OF = np.digitize(_BINS, EDGES) - 1   # -1 or 24 = outside
_WINDOW = np.hanning(WIN).astype(np.float32)
HOP_MS = HOP * 1000.0 / RATE


def band_energies(x: np.ndarray) -> np.ndarray:
    """(frames × 24) energies of a mono block; frame i covers samples [i*HOP, i*HOP+WIN)."""
    if len(x) < WIN:
        x = np.concatenate([x, np.zeros(WIN - len(x), np.float32)])
    n = 1 + (len(x) - WIN) // HOP
    frames = np.lib.stride_tricks.as_strided(x, shape=(n, WIN), strides=(x.strides[0] * HOP, x.strides[0]))
    spec = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    out = np.zeros((n, len(EDGES) - 1), np.float32)
    for b in range(len(EDGES) - 1):
        m = _BAND_OF == b
        if m.any():
            out[:, b] = spec[:, m].sum(axis=1)
    return out


def stream_features(source: list[Path] | str | Path, what: str, *, lead: int = 0, limit: int | None = None,
                    block_s: float = 20.0) -> tuple[np.ndarray, int]:
    """Decode ``source`` (a run's slices, or one file) to 16 kHz mono, streaming, after ``lead``
    samples of silence and up to ``limit`` samples in all; → (features, samples)."""
    # the downmix level does not matter here: only shapes are compared, never levels
    try:
        with Decoder(source, RATE, 1, length=None if limit is None else max(0, limit - lead)) as dec:
            return _reduce(dec, step_s=block_s, lead=lead)
    except DecodeError as exc:
        raise MediatoolsError(f"cannot decode {what}: {exc.message}", file=what, code="unreadable") from None


def _reduce(dec: Decoder, *, step_s: float, lead: int = 0) -> tuple[np.ndarray, int]:
    """Band energies of the decoder's samples, block by block."""
    chunks: list[np.ndarray] = []
    carry = np.zeros(lead, np.float32)
    total = lead
    step = int(step_s * RATE) // HOP * HOP
    while True:
        x = dec.read(step)[:, 0]
        if not len(x):
            break
        total += len(x)
        data = np.concatenate([carry, x])
        usable = (len(data) - WIN) // HOP + 1 if len(data) >= WIN else 0
        if usable > 0:
            chunks.append(band_energies(data[: (usable - 1) * HOP + WIN]))
            carry = data[usable * HOP:]
        else:
            carry = data
    if len(carry):
        chunks.append(band_energies(np.concatenate([carry, np.zeros(WIN, np.float32)]))[: max(1, len(carry) // HOP)])
    feats = np.concatenate(chunks) if chunks else np.zeros((0, len(EDGES) - 1), np.float32)
    return feats, total


def file_features(path: str | Path) -> tuple[np.ndarray, int]:
    return stream_features(path, Path(path).name)


def run_features(slices: list[Path], duration_ms: float, lead_samples: int = 0) -> np.ndarray:
    """A run decoded per the contract (one stream, trimmed to its duration), delayed by
    ``lead_samples`` (at 16 kHz) so its frames fall on the same 10 ms grid as the mix's."""
    limit = int(round(duration_ms * RATE / 1000.0)) + lead_samples
    feats, _ = stream_features(slices, slices[0].name, lead=lead_samples, limit=limit)
    return feats[: int(round(duration_ms / HOP_MS)) + 1]
