"""verify's comparisons on spooled streams (issue 18: memory flat in the length): the block-wise
global offset and run placement give what a full-resolution, all-in-memory computation gives,
and nothing is left on disk afterwards."""
from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import run_cli

from mediatools.verify.align import BLOCK, Placed, dominant_bands, envelope, expected_sum, global_lag, place_run
from mediatools.verify.store import BANDS, FeatureStore


def _talk(rng: np.random.Generator, frames: int, band: int) -> np.ndarray:
    """Band energies of someone talking: bursts in a few bands around ``band``, quiet between."""
    on = np.repeat(rng.random(frames // 20 + 1) < 0.6, 20)[:frames]
    x = np.zeros((frames, BANDS), np.float32)
    for k, w in ((band - 1, 0.3), (band, 1.0), (band + 1, 0.5)):
        if 0 <= k < BANDS:
            x[:, k] = on * w * (0.5 + rng.random(frames))
    return x + np.float32(1e-4) * rng.random((frames, BANDS), dtype=np.float32)


def _spool(store: FeatureStore, x: np.ndarray, name: str):
    w = store.writer(name)
    for a in range(0, len(x), 777):           # blocks of an odd size: rows must land in order
        w(x[a:a + 777])
    return w.close()


def _full_lag(mix: np.ndarray, ref: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The all-in-memory search verify did before streams: FFT cross-correlation at every lag."""
    a = np.sqrt(mix) - np.sqrt(mix).mean(axis=0)
    b = np.sqrt(ref) - np.sqrt(ref).mean(axis=0)
    size = 1 << (len(a) + len(b) - 1).bit_length()
    spec = sum(np.fft.rfft(a[:, k], size) * np.conj(np.fft.rfft(b[:, k], size)) for k in range(BANDS))
    c = np.fft.irfft(spec, size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    i = int(np.argmax(c[lags % size]))
    return int(lags[i]), float(c[lags[i] % size] / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("shift", [0, 1234, -877, 2999])
def test_global_lag_is_the_full_resolution_answer(shift, tmp_path):
    rng = np.random.default_rng(abs(shift) + 5)
    n = 3 * BLOCK + 345
    ref = sum(_talk(rng, n, 3 + 6 * u) for u in range(3))
    mix = np.zeros((n + 400, BANDS), np.float32)      # the mix is longer and starts `shift` frames late
    src = np.arange(n)
    dst = src + shift
    ok = (dst >= 0) & (dst < len(mix))
    mix[dst[ok]] = 0.5 * ref[src[ok]]
    want_lag, want_corr = _full_lag(mix, np.concatenate([ref, np.zeros((len(mix) - n, BANDS), np.float32)]), 3000)
    with FeatureStore(tmp_path) as store:
        m = _spool(store, mix, "mix")
        runs = [Placed(_spool(store, ref, "all"), 0, dominant_bands(m))]
        r, env, rr, _ = expected_sum(runs, len(mix), store)
        lag, corr, cross = global_lag(m, envelope(m), r, env, 3000, len(mix))
    assert lag == want_lag == shift
    assert corr == pytest.approx(want_corr, abs=1e-4)
    assert cross / rr == pytest.approx(0.5 * ok.sum() / n, rel=0.02)   # the mix's level: half


def _full_place(resid: np.ndarray, run: np.ndarray, bands: np.ndarray, at: int, search: int, context: int):
    """The all-in-memory placement verify did before streams (``resid``: mix − expected over every
    frame, padded by context + search frames either side, so frame t is row t + context + search)."""
    run = run[:, bands]
    r = np.concatenate([np.zeros((context, len(bands))), run, np.zeros((context, len(bands)))])
    win = resid[at:at + len(r) + 2 * search, bands].astype(np.float64)   # frames at − context − search …
    win[search + context:search + context + len(run)] += run
    win = np.maximum(win, 0.0)     # no energy is negative: what others lack says nothing of this run
    scores = np.array([np.vdot(win[k:k + len(r)], r) / (np.linalg.norm(r) * np.linalg.norm(win[k:k + len(r)]))
                       for k in range(2 * search + 1)])
    k = int(np.argmax(scores))
    d = scores[k - 1] - 2 * scores[k] + scores[k + 1]
    return k - search + (0.5 * (scores[k - 1] - scores[k + 1]) / d if d < 0 else 0.0), max(scores[k], 0) ** 2


def test_each_run_is_placed_by_itself_and_a_missing_one_is_absent(tmp_path):
    """Three users talking at once in overlapping bands; the mix holds user 1 seven frames late
    and not user 2 at all: placement says +7 for 1, 0 for 0, and no presence for 2, exactly as
    the all-in-memory computation says."""
    rng = np.random.default_rng(11)
    at = [100, 2500, 4000]
    feats = [_talk(rng, 9000, b) for b in (4, 5, 12)]
    n = 16000
    mix = np.zeros((n, BANDS), np.float32)
    mix[at[0]:at[0] + 9000] += feats[0]
    mix[at[1] + 7:at[1] + 7 + 9000] += feats[1]
    with FeatureStore(tmp_path) as store:
        m = _spool(store, mix, "mix")
        runs = []
        for i, f in enumerate(feats):
            s = _spool(store, f, f"run{i}")
            runs.append(Placed(s, at[i], dominant_bands(s)))
        ref, env, rr, _ = expected_sum(runs, n, store)
        assert ref.frames == n
        got = [place_run(m, ref, r, 0, 1.0, n, 100, 50) for r in runs]            # lag from the edges
        whole = [place_run(m, ref, r, 0, 1.0, n, 100, 50, edge=10 ** 9) for r in runs]   # scored whole
    (o0, p0, _), (o1, p1, v1), (_, p2, v2) = got
    assert abs(o0) < 0.5 and p0 > 0.5        # user 1's misplaced talk is left in its bands
    assert abs(o1 - 7) < 0.5 and p1 > 0.9
    # user 2's bands hold only what is left of user 1's misplaced talk: some likeness, at a
    # level far below user 2's own, which verify takes as absent (checks.LEVEL_MIN)
    assert p2 < 0.3
    assert v1 == pytest.approx(1.0, abs=0.05) and v2 < 0.02   # the level the mix holds each at
    pad = 150
    expected = np.zeros((n, BANDS))
    for f, a in zip(feats, at):
        expected[a:a + len(f)] += f
    resid = np.zeros((n + 2 * pad, BANDS))
    resid[pad:pad + n] = mix - expected
    for (off, pres, _), (w_off, w_pres, _), f, a in zip(got, whole, feats, at):
        want_off, want_pres = _full_place(resid, f, dominant_bands_of(f), a, 100, 50)
        # presence is also scored on 30 ms sums of frames, which can only find more of a run
        assert w_off == pytest.approx(want_off, abs=1e-3) and w_pres >= want_pres - 1e-4
        if pres > 0.5:   # (a missing run has no place to agree on)
            assert round(off) == round(want_off)      # the edges agree where the whole run is clear


def dominant_bands_of(f: np.ndarray) -> np.ndarray:
    prof = f.mean(axis=0)
    return np.flatnonzero(prof >= 0.1 * prof.max())


@pytest.mark.parametrize("tmp_name", ["tmp", "t" * 110], ids=["short-tmpdir", "tmpdir-too-long-for-a-socket"])
def test_verify_leaves_no_spool_behind(tmp_path, tmp_name):
    """Also under a TMPDIR too long for the fork server's socket (107 bytes): workers are
    spawned instead, not "internal error: AF_UNIX path too long"."""
    from mediatools.synth import plan, synthesize
    folder = tmp_path / "rec"
    synthesize(plan(2, 20.0, seed=3, gaps=1), folder, measure_onsets=False)
    out = tmp_path / "mix.m4a"
    run_cli("mix", str(folder), "-o", str(out), "-q", check=True)
    tmp = tmp_path / tmp_name
    tmp.mkdir()
    proc = run_cli("verify", str(out), str(folder), "--json", env={**os.environ, "TMPDIR": str(tmp)})
    assert proc.returncode == 0, proc.stderr
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("how", ["script-file", "stdin"])
def test_a_library_script_without_a_main_guard_works(tmp_path, how):
    """verify and activity decode on worker processes; multiprocessing would run the caller's
    script again in each (as __mp_main__): a plain script without `if __name__ == "__main__":`
    then ran its verify inside the fork server and failed ("a decoding worker stopped"), and
    one read from stdin could not be found. The script runs once and both calls work."""
    import subprocess
    import sys

    from mediatools.synth import plan, synthesize
    folder = tmp_path / "rec"
    synthesize(plan(2, 20.0, seed=3, gaps=1), folder, measure_onsets=False)
    mix = tmp_path / "mix.m4a"
    run_cli("mix", str(folder), "-o", str(mix), "-q", check=True)
    script = (f"import mediatools\n"
              f"print('started', flush=True)\n"
              f"r = mediatools.verify({str(mix)!r}, {str(folder)!r})\n"
              f"a = mediatools.activity({str(folder)!r})\n"
              f"print('verify', r.passed, 'users', len(a.users), flush=True)\n")
    if how == "stdin":
        proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
    else:
        (tmp_path / "plain.py").write_text(script)
        proc = subprocess.run([sys.executable, "plain.py"], capture_output=True, text=True, cwd=tmp_path,
                              timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["started", "verify True users 2"], proc.stdout
