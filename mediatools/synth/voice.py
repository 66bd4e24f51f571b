"""A speech-like voice with real pauses and known turns, for testing speech activity.

Tones and syllable-gated tones are easy to place but a voice activity detector trained on
speech need not call them speech. This source is additive formant synthesis: a glottal
harmonic series at a jittered F0 (one voice per user), shaped by vowel formants, with
fricative noise bursts opening some syllables. Syllables (60–260 ms) join into words with
short gaps (≤ 120 ms, inside the turn), words into turns of ~0.6–4.5 s, turns are separated
by pauses of 0.7 s or more (a −55 dBFS noise floor: what is left after a sender's noise suppression). A turn starts
at its first syllable's first sample and ends at its last syllable's last non-zero sample,
so the turn list is exact truth for a detector.

Everything is deterministic from a seed and generated in chunks (bounded memory).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

#: (F1, F2, F3) in Hz of a few vowels (adult averages)
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410), (300, 870, 2240),
          (660, 1720, 2410), (490, 1350, 1690))
F0S = (110.0, 205.0, 135.0, 180.0, 120.0, 225.0, 150.0, 195.0)
MAX_INNER_GAP_S = 0.12


@dataclass(frozen=True)
class Syllable:
    start: float     # seconds, session clock
    dur: float
    vowel: int
    f0: float
    level: float
    fricative: float  # seconds of noise burst at its start (0: none)


def conversation(users: int, duration_s: float, *, seed: int = 0, overlap_share: float = 0.15,
                 min_pause_s: float = 0.7) -> list[list[tuple[float, float]]]:
    """Turns (start_s, dur_s) per user: people take the floor in turn, with pauses, and now and
    then someone starts before the other has finished (an overlap or interruption)."""
    rng = np.random.default_rng(seed + 9173)
    turns: list[list[tuple[float, float]]] = [[] for _ in range(users)]
    last_end = [-10.0] * users
    t, who = float(rng.uniform(0.3, 1.5)), 0
    while t < duration_s - 1.0:
        dur = float(min(rng.uniform(0.6, 4.5), duration_s - 0.3 - t))
        if dur < 0.5:
            break
        start = max(t, last_end[who] + min_pause_s)
        if start + dur > duration_s - 0.3:
            break
        turns[who].append((round(start, 3), round(dur, 3)))
        last_end[who] = start + dur
        nxt = int(rng.integers(0, users - 1)) if users > 1 else 0
        who = nxt + (nxt >= who) if users > 1 else 0
        if users > 1 and rng.random() < overlap_share:
            t = start + dur - float(rng.uniform(0.2, min(1.5, dur * 0.8)))   # starts while the other speaks
        else:
            t = start + dur + float(rng.uniform(0.2, 1.8))
    return turns


def syllables(turn_start: float, turn_dur: float, rng: np.random.Generator, f0: float) -> list[Syllable]:
    """Fill one turn with syllables whose union spans it exactly: first starts at its start,
    last ends at its end, gaps inside at most MAX_INNER_GAP_S."""
    out: list[Syllable] = []
    t, end = turn_start, turn_start + turn_dur
    level = float(10 ** (rng.uniform(-8, 0) / 20))
    while True:
        d = float(rng.uniform(0.06, 0.26))
        if end - (t + d) < 0.1:    # the last syllable ends the turn exactly
            d = end - t
        v = int(rng.integers(0, len(VOWELS)))
        fr = float(rng.uniform(0.03, 0.07)) if rng.random() < 0.3 and d > 0.12 else 0.0
        out.append(Syllable(t, d, v, f0 * float(rng.uniform(0.85, 1.2)), level * float(rng.uniform(0.6, 1.0)), fr))
        t += d
        if t >= end - 1e-9:
            return out
        gap = float(rng.choice([0.0, 0.02, 0.04, 0.08, MAX_INNER_GAP_S], p=[0.3, 0.25, 0.2, 0.15, 0.1]))
        if end - (t + gap) < 0.06:
            gap = 0.0
        t += gap


class Voice:
    """Samples of one user's voice over the session clock, chunk by chunk."""

    def __init__(self, turns: list[tuple[float, float]], rate: int, *, user: int = 0, seed: int = 0,
                 amplitude: float = 0.3, noise_dbfs: float = -55.0):
        rng = np.random.default_rng(seed * 7919 + user)
        f0 = F0S[user % len(F0S)]
        self.syl = [s for a, d in sorted(turns) for s in syllables(a, d, rng, f0)]
        self.rate, self.amp = rate, amplitude
        self.noise = 10 ** (noise_dbfs / 20)
        self.rng = np.random.default_rng(seed * 31 + user + 1)
        self._i = 0

    def chunks(self, offset_s: float, duration_s: float, chunk_s: float = 1.0) -> Iterator[np.ndarray]:
        """float32 mono samples for [offset_s, offset_s + duration_s) of the session clock."""
        sr = self.rate
        first = int(round(offset_s * sr))
        total = int(round(duration_s * sr))
        step = int(chunk_s * sr)
        done = 0
        while done < total:
            n = min(step, total - done)
            yield self._render(first + done, n)
            done += n

    def _render(self, a: int, n: int) -> np.ndarray:
        sr = self.rate
        x = self.noise * self.rng.standard_normal(n)
        b = a + n
        while self._i < len(self.syl) and (self.syl[self._i].start + self.syl[self._i].dur) * sr <= a:
            self._i += 1
        j = self._i
        while j < len(self.syl) and self.syl[j].start * sr < b:
            s = self.syl[j]
            s0, s1 = int(round(s.start * sr)), int(round((s.start + s.dur) * sr))
            lo, hi = max(s0, a), min(s1, b)
            if hi > lo:
                x[lo - a:hi - a] += self._syllable(s, s0, s1, lo, hi)
            j += 1
        return (self.amp * x).astype(np.float32)

    def _syllable(self, s: Syllable, s0: int, s1: int, lo: int, hi: int) -> np.ndarray:
        """Samples [lo, hi) of syllable ``s`` that spans [s0, s1): voiced harmonics under the
        vowel's formant envelope, a raised-cosine envelope, a noise burst at the front."""
        sr = self.rate
        idx = np.arange(lo, hi)
        t = (idx - s0) / sr
        n_syl = s1 - s0
        f1, f2, f3 = VOWELS[s.vowel]
        f0 = s.f0 * (1.0 + 0.06 * np.sin(2 * np.pi * 3.0 * t))   # slow intonation
        phase = 2 * np.pi * np.cumsum(f0) / sr + 2 * np.pi * s.f0 * (lo - s0) / sr
        y = np.zeros(len(idx))
        k_max = int(min(4000.0, sr / 2 - 200) // s.f0)
        for k in range(1, k_max + 1):
            f = k * s.f0
            g = sum(1.0 / (1.0 + ((f - fm) / (60.0 + 0.06 * fm)) ** 2) for fm in (f1, f2, f3)) / k ** 0.5
            if g > 1e-3:
                y += g * np.sin(k * phase)
        y *= 0.35
        if s.fricative:
            fr_n = int(s.fricative * sr)
            w = np.clip(1.0 - (idx - s0) / max(fr_n, 1), 0.0, 1.0)
            noise = self.rng.standard_normal(len(idx))
            noise = np.diff(noise, prepend=0.0) * 0.35
            y = y * (1.0 - w) + noise * w
        # raised-cosine edges: 12 ms attack, 25 ms release; first and last samples non-zero
        att, rel = max(1, int(0.012 * sr)), max(1, int(0.025 * sr))
        pos = idx - s0
        env = np.ones(len(idx))
        m = pos < att
        env[m] = 0.5 - 0.5 * np.cos(np.pi * (pos[m] + 1) / (att + 1))
        m = pos >= n_syl - rel
        env[m] = np.minimum(env[m], 0.5 - 0.5 * np.cos(np.pi * (n_syl - pos[m]) / (rel + 1)))
        return s.level * env * y
