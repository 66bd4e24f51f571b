"""Where a mix sits against the expected sum of its runs, and where each run sits in it.

Both work on spooled streams (:mod:`.store`) a block of rows at a time, so memory does not
grow with the recording's length:

* :func:`expected_sum` adds every run at its place into one more stream (what the mix should
  hold), and keeps a 100 ms envelope of it;
* :func:`global_lag` finds the mix's offset: the band-amplitude cross-correlation is searched
  on the 100 ms envelopes over the whole ±30 s range, then computed exactly on the 10 ms
  frames around the best few coarse peaks (the same number the full-resolution search gave);
* :func:`place_run` finds a run's lag within ±1 s of that and how much of it the mix holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .store import BANDS, FeatureStore, Stream

COARSE = 10          # frames per envelope step (100 ms)
BLOCK = 6000         # rows read at a time (60 s, ~0.6 MB per stream)
PEAKS = 3            # coarse peaks refined at full resolution
REFINE = 12          # ± frames around each coarse peak
EDGE = 3000          # frames (30 s) at each end of a long run that its lag is scored on


@dataclass
class Placed:
    """A run's features at frame ``at`` (its place by the timing contract); ``bands``: its
    dominant ones. ``held``: where the expected sum holds it: ``at`` at first; where the mix
    was found to hold it (at the ``level`` found), or None when it was found missing, once
    verify explains the mix again (so a missing, misplaced or relevelled run does not make
    its neighbours look wrong)."""
    stream: Stream
    at: int
    bands: np.ndarray
    held: int | None = -1
    level: float = 1.0       # and at what level: the run's energy in the mix against its own

    def __post_init__(self) -> None:
        if self.held == -1:
            self.held = self.at

    @property
    def frames(self) -> int:
        return self.stream.frames


def dominant_bands(s: Stream) -> np.ndarray:
    """Bands holding ≥ 10 % of the run's strongest band's mean energy (what placement scores)."""
    prof = s.profile()
    if not s.frames or prof.max() <= 0:
        return np.zeros(0, int)
    return np.flatnonzero(prof >= 0.1 * prof.max())


class Envelope:
    """A stream's mean band amplitude per 100 ms (steps × 24), kept band-major: the coarse
    offset search reads one band's whole envelope at a time. With a ``path`` it is spooled
    there (3.5 MB per stream-hour: a 3-hour verify's two were 20 MB of its peak), else held
    in memory."""

    def __init__(self, steps: int, path: Path | None = None) -> None:
        self.steps = steps
        self._mem = np.zeros((BANDS, steps), np.float32) if path is None else None
        self._fh = None
        if path is not None:
            self._fh = open(path, "w+b")  # noqa: SIM115 - closed by close()
            self._fh.truncate(steps * BANDS * 4)

    def __len__(self) -> int:
        return self.steps

    def put(self, k: int, block: np.ndarray) -> None:
        """Steps ``k``… of every band (``block``: steps × bands)."""
        if self._mem is not None:
            self._mem[:, k:k + len(block)] = block.T
            return
        for j in range(BANDS):
            self._fh.seek((j * self.steps + k) * 4)
            self._fh.write(np.ascontiguousarray(block[:, j], np.float32).tobytes())

    def band(self, j: int) -> np.ndarray:
        if self._mem is not None:
            return self._mem[j]
        self._fh.seek(j * self.steps * 4)
        return np.fromfile(self._fh, np.float32, self.steps)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def envelope(s: Stream, n: int | None = None, store: FeatureStore | None = None) -> Envelope:
    """Mean band amplitude per 100 ms over ``n`` frames (default: the stream's), spooled to
    ``store`` if given."""
    n = s.frames if n is None else n
    out = Envelope((n + COARSE - 1) // COARSE, store.path("envelope") if store is not None else None)
    for a in range(0, n, BLOCK):
        _envelope_into(out, a, s.rows(a, min(a + BLOCK, n)))
    return out


def _envelope_into(out: Envelope, a: int, rows: np.ndarray) -> None:
    amp = np.sqrt(np.maximum(rows, 0))
    whole = len(amp) // COARSE * COARSE
    parts = []
    if whole:
        parts.append(amp[:whole].reshape(-1, COARSE, BANDS).mean(axis=1))
    if whole < len(amp):
        parts.append(amp[whole:].sum(axis=0, keepdims=True) / COARSE)
    out.put(a // COARSE, parts[0] if len(parts) == 1 else np.concatenate(parts))


def expected_sum(runs: list[Placed], n: int, store: FeatureStore, mix: Stream | None = None,
                 lag: int = 0, with_envelope: bool = True) -> tuple[Stream, Envelope | None, float, float]:
    """The sum of every run where it is ``held`` over ``n`` frames, spooled; with its 100 ms
    envelope (spooled too, unless not wanted), its total squared energy (the gain's
    denominator) and, given the ``mix`` at ``lag``, their cross energy (the gain's numerator)."""
    w = store.writer("expected")
    env = Envelope((n + COARSE - 1) // COARSE, store.path("expected-envelope")) if with_envelope else None
    rr = cross = 0.0
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        blk = np.zeros((b - a, BANDS), np.float32)
        for r in runs:
            if r.held is None:
                continue
            lo, hi = max(a, r.held), min(b, r.held + r.frames)
            if hi > lo:
                rows = r.stream.rows(lo - r.held, hi - r.held)
                blk[lo - a:hi - a] += rows if r.level == 1.0 else rows * np.float32(r.level)
        w(blk)
        if env is not None:
            _envelope_into(env, a, blk)
        rr += float(np.vdot(blk, blk))
        if mix is not None:
            cross += float(np.vdot(mix.rows(a + lag, b + lag), blk))
    return w.close(), env, rr, cross


def _coarse_peaks(a: Envelope, b: Envelope, max_lag: int, k: int) -> list[int]:
    """The ``k`` best lags (in envelope steps, ≥ 3 apart) of the mean-removed per-band correlation."""
    size = 1 << (len(a) + len(b) - 1).bit_length()
    spec = np.zeros(size // 2 + 1, np.complex128)
    for j in range(BANDS):   # a band at a time
        x, y = a.band(j), b.band(j)
        spec += np.fft.rfft(x - x.mean(), size) * np.conj(np.fft.rfft(y - y.mean(), size))
    c = np.fft.irfft(spec, size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = c[lags % size].copy()
    peaks = []
    for _ in range(k):
        i = int(np.argmax(vals))
        if not np.isfinite(vals[i]):
            break
        peaks.append(int(lags[i]))
        vals[np.abs(lags - lags[i]) <= 3] = -np.inf
    return peaks


def global_lag(mix: Stream, mix_env: Envelope, ref: Stream, ref_env: Envelope, max_lag: int,
               n: int) -> tuple[int, float, float]:
    """(lag L in frames, correlation, raw cross energy at L): L maximises the correlation of
    band amplitudes mix[t+L] with ref[t], per band and mean-removed, normalised by both
    streams' norms; the cross energy Σ mix[t+L]·ref[t] gives the mix's level."""
    na = mix.frames
    ma, mb = mix.amp / max(na, 1), ref.amp / max(n, 1)
    # ‖a − ā‖² = Σ a² − n ā² per band, a being the amplitude (so a² the energy)
    den = float(np.sqrt(max(float((mix.energy - na * ma ** 2).sum()), 0.0) *
                        max(float((ref.energy - n * mb ** 2).sum()), 0.0)))
    if den <= 0 or na == 0:
        return 0, 0.0, 0.0
    cands = set()
    for p in _coarse_peaks(mix_env, ref_env, max_lag // COARSE + 1, PEAKS):
        cands.update(range(p * COARSE - REFINE, p * COARSE + REFINE + 1))
    lags = np.array(sorted(c for c in cands if -max_lag <= c <= max_lag) or [0])
    lo, hi = int(lags.min()), int(lags.max())
    dot = np.zeros(len(lags))
    cross = np.zeros(len(lags))
    sum_b = np.zeros((len(lags), BANDS))   # Σ ref amplitude where the mix has a frame
    sum_a = np.zeros((len(lags), BANDS))   # Σ mix amplitude where the reference has a frame
    count = np.zeros(len(lags))
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        r = ref.rows(a, b)
        sb = np.sqrt(np.maximum(r, 0))
        m = mix.rows(a + lo, b + hi)            # zero where the mix has no frame
        sa = np.sqrt(np.maximum(m, 0))
        # running sums along time: any lag's sums over its valid frames are two lookups
        csb = np.concatenate([np.zeros((1, BANDS)), np.cumsum(sb, axis=0, dtype=np.float64)])
        csa = np.concatenate([np.zeros((1, BANDS)), np.cumsum(sa, axis=0, dtype=np.float64)])
        for i, L in enumerate(lags):
            off = L - lo
            dot[i] += float(np.vdot(sa[off:off + b - a], sb))
            cross[i] += float(np.vdot(m[off:off + b - a], r))
            v0, v1 = max(a, -L), min(b, na - L)       # frames t with a mix frame at t + L
            if v1 > v0:
                sum_b[i] += csb[v1 - a] - csb[v0 - a]
                sum_a[i] += csa[v1 - a + off] - csa[v0 - a + off]
                count[i] += v1 - v0
    corr = (dot - sum_b @ ma - sum_a @ mb + count * float(ma @ mb)) / den
    i = int(np.argmax(corr))
    return int(lags[i]), float(corr[i]), float(cross[i])


def place_run(mix: Stream, ref: Stream, run: Placed, lag: int, gain: float, n: int, search: int,
              context: int, edge: int = EDGE) -> tuple[float | None, float, float]:
    """Best lag (frames, sub-frame) of ``run`` within ±``search``, how much of it the mix holds,
    and at what level (its energy there against its own, the mix brought to the expected level).

    The mix (brought to the reference's grid and level) minus every other run's expected
    energy leaves the mix minus the *other* users: their talk does not mask this one, however
    many share its bands. Presence is the squared cosine between that and the run's energy
    over its dominant bands (scale free: a cloud mix may level users its own way), with
    ``context`` frames of expected silence either side, over the whole run, on 30 ms sums of
    frames (a run a few ms off the 10 ms grid, within tolerance, scored 0.48 frame by frame).

    The lag is scored on the run's first and last ``edge`` frames only (with their context):
    over a steady sound (a tone, a hum) the whole-run score moves by ~1/length per frame of
    lag, which the mix's coding noise outweighs once a run lasts half an hour (a correct
    3-hour mix had two such runs "misplaced" by 68 and 197 ms). Runs shorter than two edges
    are scored whole. A run the mix file's end cuts is scored on the frames the file has at
    every searched lag: a steady one scored best where its end met the file's (-321 ms for a
    mix 500 ms late).
    """
    bands = run.bands
    if not run.frames or not len(bands):
        return None, 0.0, 1.0
    at, frames = run.at, run.frames
    scale = 1.0 / gain if gain > 0 else 1.0

    def window(t0: int, t1: int) -> np.ndarray:
        return _residual(mix, ref, run, lag, scale, n, t0, t1)

    # ‖segment at lag k‖²: the window's row energies over [at − context − search + k, … + frames + 2·context)
    w0 = at - context - search
    length = frames + 2 * context + 2 * search
    energy = np.zeros(length + 1)
    for a in range(0, length, BLOCK):
        b = min(length, a + BLOCK)
        rows = window(w0 + a, w0 + b)
        energy[a + 1:b + 1] = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
    cum = np.cumsum(energy)
    k = np.arange(2 * search + 1)

    def seg2(p: int, q: int) -> np.ndarray:
        """‖window over run frames [p, q)‖² at every lag, with the context where p or q is an end."""
        p = p - context if p == 0 else p
        q = q + context if q == frames else q
        return cum[k + context + q] - cum[k + context + p]

    # the frames scored for the lag: the run's, but for a run the mix file's end cuts, only
    # those the file has at every lag (its end and the silence after it are not in the file
    # to pin the lag); then their edges
    # held: the run's frames the file has (its presence and level are judged on those: the
    # rest of a run the file's end cuts is reported as past the end, not as a run missing)
    s0, s1, held = 0, frames, frames
    if at + lag + frames > mix.frames:
        s1 = max(0, mix.frames - lag - at - search)
        if s1 < min(frames, 2 * context):      # (nearly) all of it past the file's end: score it all
            s1 = frames
        held = max(0, mix.frames - lag - at)
        if held < min(frames, 2 * context):
            held = frames
    scored = [(s0, s1)] if s1 - s0 <= 2 * edge else [(s0, s0 + edge), (s1 - edge, s1)]
    # Σ window[t + k − search] · run[t] over the run's frames, block by block, in float64 (sums
    # over an hour of frames)
    dot, dot_s = np.zeros(2 * search + 1), np.zeros(2 * search + 1)
    rn2 = rn2_s = 0.0
    cuts = sorted({0, frames, held, *(x for pq in scored for x in pq)})
    for lo, hi in zip(cuts, cuts[1:]):
        in_scored = any(p <= lo and hi <= q for p, q in scored)
        for j in range(lo, hi, BLOCK):
            e = min(hi, j + BLOCK)
            r = run.stream.rows(j, e, bands).astype(np.float64)
            w = window(at + j - search, at + e + search).astype(np.float64)
            d = np.array([np.vdot(w[i:i + e - j], r) for i in range(2 * search + 1)])
            r2 = float(np.vdot(r, r))
            if hi <= held:
                dot += d
                rn2 += r2
            if in_scored:
                dot_s += d
                rn2_s += r2
    by_scored = _cosines(dot_s, rn2_s, sum(seg2(p, q) for p, q in scored))
    i = int(np.argmax(by_scored))
    frac = 0.0
    if 0 < i < len(by_scored) - 1:
        d = by_scored[i - 1] - 2 * by_scored[i] + by_scored[i + 1]
        frac = 0.5 * (by_scored[i - 1] - by_scored[i + 1]) / d if d < 0 else 0.0
    frame_by_frame = float(_cosines(dot, rn2, seg2(0, held))[i])
    smooth = max(_smoothed_cosine(window, run, context, j - search, held)
                 for j in (i - 1, i, i + 1) if 0 <= j < len(by_scored))
    level = float(dot[i] / rn2) if rn2 > 0 else 1.0
    return i - search + float(frac), max(frame_by_frame, smooth, 0.0) ** 2, level


SMOOTH = 3   # frames summed for presence (30 ms)


def _smoothed_cosine(window: Callable[[int, int], np.ndarray], run: Placed, context: int, shift: int,
                     held: int | None = None) -> float:
    """The cosine of the run's and the window's energies (the run ``shift`` frames late), each
    summed over SMOOTH frames, over the run's first ``held`` frames (all of them by default)
    and ``context`` frames either side (before only, when not all)."""
    at, frames = run.at, run.frames
    end = frames + context if held is None or held >= frames else held
    dot = ww = rr = 0.0
    for a in range(-context, end, BLOCK):
        b = min(a + BLOCK, end)
        w = window(at + a + shift, at + b + SMOOTH - 1 + shift).astype(np.float64)
        r = run.stream.rows(a, b + SMOOTH - 1, run.bands).astype(np.float64)   # zero outside the run
        ws = sum(w[m:m + b - a] for m in range(SMOOTH))
        rs = sum(r[m:m + b - a] for m in range(SMOOTH))
        dot += float(np.vdot(ws, rs))
        ww += float(np.vdot(ws, ws))
        rr += float(np.vdot(rs, rs))
    return dot / np.sqrt(ww * rr) if ww > 0 and rr > 0 else 0.0


def _residual(mix: Stream, ref: Stream, run: Placed, lag: int, scale: float, n: int, t0: int, t1: int) -> np.ndarray:
    """Rows t0..t1 of (mix/gain − expected + this run where the expected sum holds it), in the
    run's bands: the mix less everyone else; zero off the grid."""
    bands, frames = run.bands, run.frames
    w = np.zeros((t1 - t0, len(bands)), np.float32)
    a, b = max(t0, 0), min(t1, n)
    if b > a:
        w[a - t0:b - t0] = mix.rows(a + lag, b + lag, bands) * np.float32(scale) - ref.rows(a, b, bands)
    if run.held is not None:
        ra, rb = max(t0, run.held, 0), min(t1, run.held + frames, n)
        if rb > ra:
            w[ra - t0:rb - t0] += run.stream.rows(ra - run.held, rb - run.held, bands) * np.float32(run.level)
    # no energy is negative: where the mix lacks what others were expected to hold (one left
    # out, shifted, or dropping out), that says nothing of this run, and subtracted it made
    # the runs they overlap look missing too
    return np.maximum(w, 0.0, out=w)


#: stretches of a run judged on their own (5 s): a mix missing a slice's worth of a long run
#: still scored over 0.5 on the whole run, and passed
STRETCH = 500
#: a stretch needs this many frames (0.5 s) louder than the caller's level to be judged at all:
#: where the user says nothing, the mix has nothing of theirs to find
STRETCH_LOUD = 50


def _frame_power(level_db: float) -> float:
    """A frame's band-energy sum at ``level_db`` dBFS (approximately: Hann-window energy)."""
    return 10 ** (level_db / 10) * (256 * 96)


def stretches(mix: Stream, ref: Stream, run: Placed, lag: int, gain: float, n: int, shift: int,
              level_db: float) -> list[tuple[int, int, float]]:
    """(first frame, end frame, presence) of each judgeable STRETCH of ``run`` (STRETCH_LOUD
    frames louder than ``level_db``) with the mix at global ``lag`` plus the run's own
    ``shift``: presence as :func:`place_run` measures it, over that stretch alone. A run
    shorter than two stretches is not cut (its whole-run presence says it all); a short tail
    joins the stretch before it."""
    power = _frame_power(level_db)
    frames = run.frames
    if frames < 2 * STRETCH or not len(run.bands):
        return []
    scale = 1.0 / gain if gain > 0 else 1.0
    cuts = list(range(0, frames - STRETCH // 2, STRETCH))[1:] + [frames]
    out = []
    for j, e in zip([0] + cuts[:-1], cuts):
        loud = int((run.stream.rows(j, e).sum(axis=1) > power).sum())
        if loud < STRETCH_LOUD:
            continue
        r = run.stream.rows(j, e, run.bands).astype(np.float64)
        w = _residual(mix, ref, run, lag, scale, n, run.at + j + shift, run.at + e + shift).astype(np.float64)
        c = _cosines(np.array([np.vdot(w, r)]), float(np.vdot(r, r)), np.array([float(np.vdot(w, w))]))[0]
        out.append((j, e, max(float(c), 0.0) ** 2))
    return out


#: where a slice boundary's dropout is looked for: from 50 ms before the boundary to 300 ms
#: after (Agora's converter leaves its 30–80 ms hole ~44 ms late, drifting +30 ms an hour),
#: against the run's level in the mix over the 2 s around it
DIP_BEFORE, DIP_AFTER, DIP_LOCAL = 5, 30, 100
DIP_RATIO = 0.1        # a frame holding under a tenth (−10 dB) of the run's local level in the mix
DIP_NEIGHBOUR = 0.5    # beside a frame holding under half of it
DIP_DOMINANT = 0.5     # judged only where the run is at least half the expected energy in its bands
DIP_LOCAL_MIN = 20     # loud frames around a boundary needed to know the run's level there


def _frame_ratios(mix: Stream, ref: Stream, run: Placed, lag: int, scale: float, n: int, shift: int,
                  j0: int, j1: int, power: float) -> tuple[np.ndarray, np.ndarray]:
    """For the run's frames [j0, j1), ``shift`` frames late: the mix's level of the run (the
    residual's projection on it, 1 where it holds the run as expected) and which frames can be
    judged (the run louder than ``power`` and at least DIP_DOMINANT of the expected energy in
    its bands)."""
    r = run.stream.rows(j0, j1, run.bands).astype(np.float64)
    e = r.sum(axis=1)
    others = ref.rows(run.at + j0 + shift, run.at + j1 + shift, run.bands).sum(axis=1)
    if run.held == run.at + shift:
        others = np.maximum(others - e, 0.0)
    w = _residual(mix, ref, run, lag, scale, n, run.at + j0 + shift, run.at + j1 + shift).astype(np.float64)
    rr = np.einsum("ij,ij->i", r, r)
    ratio = np.einsum("ij,ij->i", w, r) / np.where(rr > 0, rr, 1.0)
    share = e / np.maximum(e + others, 1e-30)     # the run's share of the expected energy
    return ratio, (e > power) & (share >= DIP_DOMINANT)


def dips(mix: Stream, ref: Stream, run: Placed, lag: int, gain: float, n: int, shift: int,
         bounds: list[int], level_db: float) -> list[tuple[int, int, float]]:
    """(boundary frame, dropped frames, depth) at each of the run's slice ``bounds`` (frames
    into the run) where the mix, less everyone else, loses the run for a while: frames where
    the run is loud (``level_db``) and dominant, yet the mix holds under DIP_RATIO of the run's
    local level there. Depth: the lowest such ratio. A hole where the user says nothing
    cannot be heard and is not looked for."""
    power = _frame_power(level_db)
    scale = 1.0 / gain if gain > 0 else 1.0
    out = []
    for b in bounds:
        j0, j1 = max(0, b - DIP_LOCAL), min(run.frames, b + DIP_LOCAL)
        if j1 - j0 < 2 * DIP_AFTER:
            continue
        ratio, judged = _frame_ratios(mix, ref, run, lag, scale, n, shift, j0, j1, power)
        if judged.sum() < DIP_LOCAL_MIN:
            continue
        level = float(np.median(ratio[judged]))
        if level <= 0:
            continue
        near = np.zeros(len(ratio), bool)
        near[max(0, b - DIP_BEFORE - j0):max(0, b + DIP_AFTER - j0)] = True
        low = judged & near & (ratio < DIP_RATIO * level)
        # a hole of 30 ms or more also takes half a neighbouring frame's energy (the 32 ms window
        # overlaps it): one lone deep frame is the codec's (MP3 at 64k through an AGC made one)
        half = ratio < DIP_NEIGHBOUR * level
        low &= np.concatenate([[False], half[:-1]]) | np.concatenate([half[1:], [False]])
        if low.any():
            out.append((b, int(low.sum()), float(ratio[low].min() / level)))
    return out


LOSS_MIN = 20      # frames (200 ms) of a run's loud, dominant sound the mix lacks, to count as lost


def losses(mix: Stream, ref: Stream, run: Placed, lag: int, gain: float, n: int, shift: int,
           level_db: float) -> list[tuple[int, int, float]]:
    """(first frame, end frame, depth) of each stretch, anywhere in ``run``, where the mix, less
    everyone else, lacks it: at least LOSS_MIN frames where the run is loud and dominant (as
    :func:`dips` judges them) but the mix holds under DIP_RATIO of the run's level over the
    minute around them, with no such frame held in between. A second gone from a user's
    loudest talk left its 5 s stretch above STRETCH_MIN, and passed."""
    power = _frame_power(level_db)
    scale = 1.0 / gain if gain > 0 else 1.0
    out: list[tuple[int, int, float]] = []
    cur: list[int] = []          # [first, last, count] of the lost stretch being followed
    worst = 1.0
    for j in range(0, run.frames, BLOCK):
        e = min(run.frames, j + BLOCK)
        ratio, judged = _frame_ratios(mix, ref, run, lag, scale, n, shift, j, e, power)
        if judged.sum() < DIP_LOCAL_MIN:
            continue
        level = _local_levels(ratio, judged)
        for t in np.flatnonzero(judged):
            if level[t] <= 0:
                continue
            if ratio[t] < DIP_RATIO * level[t]:
                if cur:
                    cur[1], cur[2] = j + t, cur[2] + 1
                else:
                    cur, worst = [j + t, j + t, 1], 1.0
                worst = min(worst, float(ratio[t] / level[t]))
            elif cur:
                if cur[2] >= LOSS_MIN:
                    out.append((cur[0], cur[1] + 1, worst))
                cur = []
    if cur and cur[2] >= LOSS_MIN:
        out.append((cur[0], cur[1] + 1, worst))
    return out


def _local_levels(ratio: np.ndarray, judged: np.ndarray, step: int = 100, reach: int = 200) -> np.ndarray:
    """Per frame, the run's level in the mix around it: the median ratio of the judged frames
    within ``reach`` frames of each ``step``-frame chunk (the whole block's where too few are
    judged). Local, so a level that moves slowly (an AGC finding its gain at the start: ffmpeg's
    dynaudnorm took 0.7 s) is not a loss; a second gone stays under it."""
    whole = float(np.median(ratio[judged]))
    out = np.empty(len(ratio))
    for c in range(0, len(ratio), step):
        a, b = max(0, c - reach), min(len(ratio), c + step + reach)
        near = ratio[a:b][judged[a:b]]
        out[c:c + step] = float(np.median(near)) if len(near) >= DIP_LOCAL_MIN else whole
    return out


def _cosines(dot: np.ndarray, rn2: float, seg2: np.ndarray) -> np.ndarray:
    den = np.sqrt(rn2) * np.sqrt(np.maximum(seg2, 0))
    return np.where(den > 0, dot / np.where(den > 0, den, 1.0), 0.0)


def loud_frames(run: Placed, level_db: float) -> int:
    """How many of a run's 10 ms frames are louder than ``level_db`` (dBFS, approximately, as
    :func:`quiet_level_db` measures): a run with (almost) none holds nothing to find in a mix.
    Counted, not averaged: a listener who says one word in ten minutes has a mean level as low
    as silence, and is not silent."""
    power = _frame_power(level_db)
    return int(sum(int((rows.sum(axis=1) > power).sum()) for _, rows in run.stream.blocks(BLOCK)))


def quiet_level_db(mix: Stream, quiet_of: Callable[[int, int], np.ndarray], floor_db: float = -120.0) -> float:
    """The 99th percentile level (dBFS, approximately) of the mix's frames where ``quiet_of(a, b)``
    (a boolean mask over frames [a, b)) says nobody spoke."""
    levels = []
    for a, rows in mix.blocks(BLOCK):
        q = quiet_of(a, a + len(rows))
        if q.any():
            levels.append(np.sqrt(rows[q].sum(axis=1) / (256 * 96)) + 1e-12)  # Hann-window energy → RMS
    if not levels:
        return floor_db
    return float(20 * np.log10(np.percentile(np.concatenate(levels), 99)))
