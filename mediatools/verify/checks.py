"""``verify``: is a mix (Agora's postpone mix, or ours) complete and aligned with its recording?

Checks, each pass/fail with the measured value: format/rate/channels (against
``transcodeOptions`` when given), duration vs the recording's span, the global offset
(found by cross-correlation, not assumed), every run of every user present at its
place, and silence where nobody spoke. Both sides are reduced to 10 ms band energies
(:mod:`mediatools.verify.features`), so memory stays small for any length.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import MediatoolsError
from ..media.probe import probe
from ..progress import Progress
from ..recording.discovery import load_recording
from ..recording.model import Recording
from ..timeline.contract import build_timeline
from .features import HOP_MS, add_at, file_features, run_features
from .options import Check, VerifyOptions, VerifyReport
from .reference import Dominant, Reference, dominant, grid_place

log = logging.getLogger(__name__)

PRESENCE_MIN = 0.5          # correlation a run must reach to count as present
MATCH_MIN = 0.45            # band-amplitude correlation for "this mix is of this recording"
SEARCH_S = 30.0             # global offset search range, ±
RUN_SEARCH_MS = 1000.0      # per-run search range around the global offset, ±
CONTEXT = 50                # frames of context either side of a run (0.5 s)
SILENCE_DB = -50.0
BITRATE_TOLERANCE = 0.25     # average file bitrate against transcodeOptions' bitrate


_CODEC_OF = {"mp3": "mp3", "m4a": "aac", "aac": "aac"}


def verify(mixfile: str | Path, source: str | Path | Recording, options: VerifyOptions | None = None, *,
           progress: Progress | None = None, reference: Reference | None = None) -> VerifyReport:
    """Check ``mixfile`` (Agora's postpone mix, or ours) against the recording ``source``.

    Both are reduced to 10 ms band energies as they stream, so memory stays small for any
    length. ``progress(done, total)`` counts the runs decoded. ``reference``: what the mix
    that wrote ``mixfile`` collected as it decoded the runs (:class:`Reference`); runs found
    there are not decoded again. The report passes when every check does.
    """
    o = options or VerifyOptions()
    sid, tolerance_ms, expected = o.sid, o.tolerance_ms, o.expected
    mixfile = Path(mixfile)
    if not mixfile.is_file():
        raise MediatoolsError("no such file", file=str(mixfile), code="not_found")
    log.info("verifying %s", mixfile)
    rec = source if isinstance(source, Recording) else load_recording(source, sid=sid)
    tl = build_timeline(rec)
    rep = VerifyReport(mix=str(mixfile), sid=rec.sid)
    info, _ = probe(mixfile)

    # 1. format, rate, channels
    if expected:
        for name, got, want in [("format", info.codec, _CODEC_OF.get(expected.format or "", expected.format)),
                                ("sample_rate", info.sample_rate, expected.sample_rate),
                                ("channels", info.channels, expected.channels)]:
            if want is not None:
                rep.checks.append(Check(name, got == want, got, want,
                                        f"{name} is {got}, expected {want}" if got != want else f"{name} {got}"))
    else:
        rep.checks.append(Check("format", True, f"{info.codec} {info.sample_rate} Hz {info.channels} ch", None,
                                "no transcodeOptions given: format not checked"))

    mix, samples = file_features(mixfile)
    dur_ms = samples * 1000.0 / 16000
    # 2. duration
    d = dur_ms - tl.span_ms
    rep.checks.append(Check("duration", abs(d) <= tolerance_ms + 50.0, round(dur_ms, 1), round(tl.span_ms, 1),
                            f"mix is {dur_ms / 1000:.3f} s, recording spans {tl.span_ms / 1000:.3f} s "
                            f"({d:+.0f} ms)"))

    if expected and expected.bitrate and dur_ms > 0:
        # average over the file: encoders are VBR or padded, so ask for the right ballpark only
        got = int(mixfile.stat().st_size * 8 / (dur_ms / 1000))
        ok = abs(got - expected.bitrate) <= BITRATE_TOLERANCE * expected.bitrate
        rep.checks.append(Check("bitrate", ok, got, expected.bitrate,
                                f"bitrate is {got / 1000:.0f} kb/s, expected {expected.bitrate / 1000:.0f} kb/s"
                                f"{'' if ok else f' (beyond ±{BITRATE_TOLERANCE:.0%})'}"))

    # reference: every run's features at its place, summed as they arrive; each run keeps only
    # its dominant bands (what placement scores), so memory is a fraction of one stream per run
    ref = np.zeros((max(len(mix), int(tl.span_ms / HOP_MS) + 1), mix.shape[1]), np.float32)
    if reference is not None:
        reference.finish()   # the mix's last runs may still be on their way
    if reference is not None and reference.sum is not None:
        add_at(ref, 0, reference.sum)
    lock = threading.Lock()

    def features_of(pr):  # noqa: ANN001, ANN202
        at, lead = grid_place(pr.offset_ms)
        f = run_features([s.path for s in pr.run.slices], pr.duration_ms, lead)
        with lock:
            add_at(ref, at, f)
        return at, dominant(f)

    runs, todo = [], []
    for ut in tl.users:
        for pr in ut.runs:
            hit = reference.get(ut.uid, pr.index, pr.offset_ms) if reference is not None else None
            if hit is None:
                todo.append((ut.uid, pr))
            else:
                runs.append((ut.uid, pr, hit[1], hit[0]))
    rep.reference = "mix" if not todo else "recording" if not runs else "mix+recording"
    # decoding dominates: one ffmpeg per core
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        jobs = [(uid, pr, pool.submit(features_of, pr)) for uid, pr in todo]
        for i, (uid, pr, job) in enumerate(jobs):
            at, dom = job.result()
            runs.append((uid, pr, dom, at))
            if progress:
                progress(i + 1, len(jobs))
    order = {(ut.uid, pr.index): i for i, (ut, pr) in enumerate((ut, pr) for ut in tl.users for pr in ut.runs)}
    runs.sort(key=lambda r: order[(r[0], r[1].index)])

    # 3. global offset: coarse by cross-correlating energy envelopes, refined by the runs
    lag, score = _xcorr_lag(mix, ref, int(SEARCH_S * 1000 / HOP_MS))
    search = int(RUN_SEARCH_MS / HOP_MS)
    margin = CONTEXT + search
    # the mix on the reference's grid (silence outside the mix), at the reference's level
    n = len(ref)
    aligned = np.zeros((n + 2 * margin, mix.shape[1]), np.float32)
    src_a, src_b = max(lag, 0), min(len(mix), lag + n)
    if src_b > src_a:
        aligned[margin + src_a - lag:margin + src_b - lag] = mix[src_a:src_b]
    rr = float(np.vdot(ref, ref))
    gain = float(np.vdot(aligned[margin:margin + n], ref)) / rr if rr > 0 else 1.0
    if gain > 0:
        aligned /= gain
    aligned[margin:margin + n] -= ref  # what the mix holds beyond the expected sum: ~0 when right
    ref = None  # the sum is large (span × bands); free it before the per-run search
    placed_runs = [(uid, pr, *_place_run(aligned, f, at + margin, search)) for uid, pr, f, at in runs]
    local = [off for _, _, off, pres in placed_runs if off is not None and pres >= PRESENCE_MIN]
    fine = float(np.median(local)) if local else 0.0
    offset_ms = (lag + fine) * HOP_MS
    matched = score >= MATCH_MIN and len(local) > 0
    rep.checks.append(Check("global_offset", matched and abs(offset_ms) <= tolerance_ms, round(offset_ms, 1), 0.0,
                            f"mix starts {offset_ms:+.1f} ms against the session origin (correlation {score:.2f})"
                            if matched else f"mix does not match this recording (correlation {score:.2f})"))

    # 4. every run present at its place (relative to the mix's own start)
    missing, misplaced = [], []
    for uid, pr, off, pres in placed_runs:
        err = None if off is None else (off - fine) * HOP_MS
        present = bool(pres >= PRESENCE_MIN)
        placed = bool(present and err is not None and abs(err) <= tolerance_ms)
        rep.runs.append({"uid": uid, "run": pr.index, "offset_ms": round(pr.offset_ms, 1),
                         "duration_ms": round(pr.duration_ms, 1), "presence": round(float(pres), 3),
                         "error_ms": None if err is None else round(float(err), 1), "present": present,
                         "placed": placed})
        if not present:
            missing.append(f"uid {uid} run {pr.index} at {pr.offset_ms / 1000:.3f} s (presence {pres:.2f})")
        elif not placed:
            misplaced.append(f"uid {uid} run {pr.index} at {pr.offset_ms / 1000:.3f} s off by {err:+.0f} ms")
    users_missing = sorted({r["uid"] for r in rep.runs} - {r["uid"] for r in rep.runs if r["present"]})
    rep.checks.append(Check("users_present", not users_missing, len({r["uid"] for r in rep.runs}) - len(users_missing),
                            len({r["uid"] for r in rep.runs}),
                            f"missing user(s): {', '.join(users_missing)}" if users_missing else "every user found"))
    rep.checks.append(Check("runs_present", not missing, len(rep.runs) - len(missing), len(rep.runs),
                            "missing: " + "; ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
                            if missing else "every run found"))
    rep.checks.append(Check("runs_aligned", not misplaced, len(rep.runs) - len(missing) - len(misplaced),
                            len(rep.runs) - len(missing),
                            "misplaced: " + "; ".join(misplaced[:5]) + (" …" if len(misplaced) > 5 else "")
                            if misplaced else f"every run within ±{tolerance_ms:.0f} ms"))

    # 5. silence where nobody spoke
    active = np.zeros(len(mix), bool)
    pad = int(100 / HOP_MS)
    for uid, pr, dom, at in runs:
        a, b = at + lag - pad, at + lag + dom.frames + pad
        active[max(a, 0):max(min(b, len(mix)), 0)] = True
    quiet = ~active
    loud_db = -120.0
    if quiet.any():
        rms = np.sqrt(mix[quiet].sum(axis=1) / (256 * 96)) + 1e-12  # Hann-window energy → RMS approx
        loud_db = float(20 * np.log10(np.percentile(rms, 99)))
    rep.checks.append(Check("silence", loud_db <= SILENCE_DB, round(loud_db, 1), SILENCE_DB,
                            f"where nobody spoke the mix peaks at {loud_db:.1f} dBFS"))
    return rep


def _xcorr_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, float]:
    """Lag L (frames) maximising the correlation of band amplitudes a[t+L] with b[t].

    Per band rather than of total energy: a tone or a voice is told apart by its
    bands, so who speaks when aligns even when somebody is always speaking.
    """
    a = np.sqrt(np.maximum(a, 0), dtype=np.float32)
    b = np.sqrt(np.maximum(b, 0), dtype=np.float32)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    if den <= 0:
        return 0, 0.0
    size = 1 << (len(a) + len(b) - 1).bit_length()
    spec = np.zeros(size // 2 + 1, np.complex128)
    for k in range(a.shape[1]):  # one band at a time keeps memory at one spectrum
        spec += np.fft.rfft(a[:, k], size) * np.conj(np.fft.rfft(b[:, k], size))
    c = np.fft.irfft(spec, size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = c[lags % size]
    i = int(np.argmax(vals))
    return int(lags[i]), float(vals[i] / den)


def _place_run(resid: np.ndarray, dom: Dominant, at: int, search: int) -> tuple[float | None, float]:
    """Best lag (frames, sub-frame) of a run and how much of it the mix holds.

    ``resid`` is the mix minus every run's expected energy, so adding this run back
    leaves the mix minus the *other* users: their talk does not mask this one, however
    many share its bands. Presence is the squared cosine between that and the run's
    energy over its dominant bands (scale free: a cloud mix may level users its own way).
    """
    bands, run = dom.bands, dom.energy
    if not dom.frames or not len(bands):
        return None, 0.0
    r = np.concatenate([np.zeros((CONTEXT, len(bands)), np.float32), run,
                        np.zeros((CONTEXT, len(bands)), np.float32)])
    rn = float(np.linalg.norm(r))
    lo = at - CONTEXT - search
    win = resid[max(lo, 0):at - CONTEXT + search + len(r), bands].copy()
    if lo < 0:
        win = np.concatenate([np.zeros((-lo, len(bands)), np.float32), win])
    win[search + CONTEXT:search + CONTEXT + len(run)] += run  # others removed, this run kept
    scores = np.full(2 * search + 1, -1.0)
    for k in range(2 * search + 1):
        seg = win[k:k + len(r)]
        if len(seg) < len(r):
            continue
        den = rn * float(np.linalg.norm(seg))
        scores[k] = float(np.vdot(seg, r)) / den if den > 0 else 0.0
    k = int(np.argmax(scores))
    best = scores[k]
    if best <= -1.0:
        return None, 0.0
    frac = 0.0
    if 0 < k < len(scores) - 1 and scores[k - 1] > -1 and scores[k + 1] > -1:
        den = scores[k - 1] - 2 * best + scores[k + 1]
        frac = 0.5 * (scores[k - 1] - scores[k + 1]) / den if den < 0 else 0.0
    return k - search + frac, max(best, 0.0) ** 2
