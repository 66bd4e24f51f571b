"""Signal measurements shared by the synthesizer's truth, the tests and ``verify``.

Each synthetic user speaks at its own frequency, so where a user is audible in a mix
is measured by complex demodulation at that frequency with a short moving window.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: Per-user tone frequencies: far apart, no one a harmonic of another, below 8 kHz
#: (a 16 kHz sender's Nyquist) with room for the AAC low-pass.
TONE_FREQS = (500.0, 1100.0, 1700.0, 2300.0, 2900.0, 3500.0, 4100.0, 4700.0,
              650.0, 1250.0, 1850.0, 2450.0, 3050.0, 3650.0, 4250.0, 4850.0)


def decode_pcm(path: str | Path, rate: int, channels: int = 1, *, start_s: float | None = None,
               duration_s: float | None = None, inputs_args: list[str] | None = None) -> np.ndarray:
    """Decode any file ffmpeg reads to float32 samples (frames × channels, or 1-D for mono).

    Channel conversion is done here, not by ffmpeg (whose defaults change levels by ±3 dB):
    mono is the mean of the source channels; more channels repeat a mono source.
    An MP4 file is cut to the length its edit list signals, as ffmpeg 9 does by itself:
    ffmpeg 5.1 also plays the encoder's padding after the last sample.
    """
    from .ffmpeg import base_cmd, raw_to_stdout, run
    from .probe import probe

    src_ch = probe(str(path))[0].channels or 1
    args = base_cmd() + (inputs_args or [])
    if start_s is not None:
        args += ["-ss", f"{start_s:.6f}"]
    if duration_s is not None:
        args += ["-t", f"{duration_s:.6f}"]
    args += ["-i", str(path), "-map", "0:a:0", "-ar", str(rate)] + raw_to_stdout("f32le")
    proc = run(args, error="cannot decode: {last}", file=Path(str(path)).name, code="error")
    a = np.frombuffer(proc.stdout, dtype=np.float32).reshape(-1, src_ch)
    if start_s is None and not inputs_args and Path(str(path)).suffix.lower() in _MP4_SUFFIXES:
        a = a[:signalled_samples(path, rate)]
    if channels == 1:
        return a[:, 0].copy() if src_ch == 1 else a.mean(axis=1, dtype=np.float32)
    if src_ch == channels:
        return a
    if src_ch == 1:
        return np.repeat(a, channels, axis=1)
    raise ValueError(f"cannot map {src_ch} channels to {channels}")


_MP4_SUFFIXES = {".m4a", ".mp4", ".mov"}


def signalled_samples(path: str | Path, rate: int) -> int:
    """Samples (at ``rate``) an MP4's first audio track says are playable from t=0: the end of
    its last packet as the demuxer times it (the edit list's priming skip puts the first
    packets before 0, and a short last packet's duration excludes the encoder's padding).

    Both ffmpeg 5.1 and 9 time the packets so; only 9 also drops that padding when decoding.
    """
    from .ffmpeg import base_cmd, run

    proc = run(base_cmd() + ["-i", str(path), "-map", "0:a:0", "-c", "copy", "-f", "framecrc", "-"],
               error="cannot read packets: {last}", file=Path(str(path)).name, code="error")
    num, den, end = 1, 1, 0
    for line in proc.stdout.decode().splitlines():
        if line.startswith("#tb 0:"):
            num, den = (int(v) for v in line.split(":", 1)[1].strip().split("/"))
        elif line and not line.startswith("#"):
            f = [v.strip() for v in line.split(",")]
            end = max(end, int(f[2]) + int(f[3]))   # pts + duration
    return int(round(end * num * rate / den))


def envelope(x: np.ndarray, rate: int, freq: float, window_ms: float = 5.0) -> np.ndarray:
    """Amplitude of the ``freq`` component over time (same length as ``x``).

    Complex demodulation smoothed by two passes of a ``window_ms`` boxcar (a triangular
    kernel, centred, so a step's half-level crossing stays at the step). Its nulls fall at
    multiples of 1/window (200 Hz for 5 ms): every spacing in TONE_FREQS' first eight, so
    other users' tones do not leak into the measurement.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    n = np.arange(len(x))
    z = x * np.exp(-2j * np.pi * freq * n / rate)
    w = max(1, int(round(window_ms * rate / 1000.0)))
    z = _boxcar(_boxcar(z, w), w)
    return 2.0 * np.abs(z)


def _boxcar(z: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average of length ``w`` (zeros outside the signal)."""
    n = np.arange(len(z))
    c = np.concatenate(([0j], np.cumsum(z)))
    half = w // 2
    lo = np.clip(n - half, 0, len(z))
    hi = np.clip(n - half + w, 0, len(z))
    return (c[hi] - c[lo]) / w


def active_spans(env: np.ndarray, rate: int, *, threshold: float | None = None,
                 min_gap_ms: float = 30.0, min_len_ms: float = 30.0) -> list[tuple[float, float]]:
    """(start_ms, end_ms) where the envelope is above half its robust level."""
    if threshold is None:
        top = np.percentile(env, 99) if len(env) else 0.0
        threshold = 0.5 * top
    on = env > threshold
    if not on.any():
        return []
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    starts = list(edges[~on[edges]] + 1) if len(edges) else []
    ends = list(edges[on[edges]] + 1) if len(edges) else []
    if on[0]:
        starts.insert(0, 0)
    if on[-1]:
        ends.append(len(on))
    spans = []
    for s, e in zip(starts, ends):
        s_ms, e_ms = s * 1000.0 / rate, e * 1000.0 / rate
        if spans and s_ms - spans[-1][1] < min_gap_ms:
            spans[-1] = (spans[-1][0], e_ms)
        else:
            spans.append((s_ms, e_ms))
    return [sp for sp in spans if sp[1] - sp[0] >= min_len_ms]


def onset_ms(x: np.ndarray, rate: int, freq: float, *, level: float | None = None) -> float | None:
    """First instant the tone reaches half its steady level (ms from the start of ``x``)."""
    env = envelope(x, rate, freq)
    spans = active_spans(env, rate, threshold=None if level is None else 0.5 * level)
    return spans[0][0] if spans else None


def level_db(x: np.ndarray, rate: int, freq: float) -> float:
    """Median tone amplitude in dBFS (robust against a few transients)."""
    env = envelope(x, rate, freq, window_ms=20.0)
    v = float(np.median(env)) if len(env) else 0.0
    return 20.0 * np.log10(max(v, 1e-12))
