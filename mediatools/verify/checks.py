"""``verify``: is a mix (Agora's postpone mix, or ours) complete and aligned with its recording?

Checks, each pass/fail with the measured value: format/rate/channels (against
``transcodeOptions`` when given), duration vs the recording's span, the global offset
(found by cross-correlation, not assumed), every run of every user present at its
place, and silence where nobody spoke. Both sides are reduced to 10 ms band energies
(:mod:`mediatools.verify.features`) and spooled to disk as they stream (:mod:`.store`);
the comparisons read them back a block at a time (:mod:`.align`), so memory is flat in
the length.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..agora.transcode import TranscodeOptions
from ..errors import MediatoolsError
from ..media.probe import probe
from ..media.processes import RunDecoders
from ..media.thirds import RATE_IN
from ..progress import Progress
from ..recording.discovery import load_recording
from ..recording.model import MediaInfo, Recording
from ..recording.probe import run_channels
from ..timeline.contract import PlacedRun, Timeline, build_timeline
from .align import (
    Placed,
    dips,
    envelope,
    expected_sum,
    global_lag,
    losses,
    loud_frames,
    place_run,
    quiet_level_db,
    stretches,
)
from .features import HOP_MS, run_frames
from .options import Check, VerifyOptions, VerifyReport
from .reference import Reference, grid_place, placed_at
from .runs import file_stream, run_stream
from .store import FeatureStore, Stream

log = logging.getLogger(__name__)

PRESENCE_MIN = 0.5          # correlation a run must reach to count as present
LEVEL_MIN = 0.02            # a run's energy in the mix against its own (−17 dB), to count as present at all
GONE_MAX = 0.25             # below this a run is taken out of the expected sum when verify looks again
PASSES = 3                  # looks at the runs, each with the mix explained by the last
LEVEL_SETTLED = 0.1         # a run's level found within this of the one it was held at: no need to look again
STRETCH_MIN = 0.2           # and each 5 s stretch of it where the user is heard (correct mixes of voices
                            # score 0.4 and more in their busiest stretches; a stretch left out scores ~0)
MATCH_MIN = 0.45            # band-amplitude correlation for "this mix is of this recording"
SEARCH_S = 30.0             # global offset search range, ±
RUN_SEARCH_MS = 1000.0      # per-run search range around the global offset, ±
CONTEXT = 50                # frames of context either side of a run (0.5 s)
SILENCE_DB = -60.0          # our mixes and Agora's are digital silence there (below -100)
DIP_DB = -40.0              # a frame this loud in a run is heard: a dropout in it is too
SILENT_RUN_DB = -60.0       # a run with fewer than SILENT_RUN_FRAMES frames louder than this (activity's gate)
SILENT_RUN_FRAMES = 10      # (100 ms) holds nothing to find in a mix: not checkable
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
    mixfile = Path(mixfile)
    if not mixfile.is_file():
        raise MediatoolsError("no such file", file=str(mixfile), code="not_found")
    log.info("verifying %s", mixfile)
    info, _ = probe(mixfile)
    # decoding dominates: the mix file and the runs, in worker processes (:mod:`.runs`), the
    # mix file's from the start, while the recording is read (a second of an 8-user hour)
    try:
        return _verify(mixfile, source, o, info, progress, reference)
    except BrokenProcessPool:
        raise MediatoolsError("a decoding worker of verify stopped unexpectedly (killed, or out of memory)",
                              file=mixfile.name, code="worker_died") from None


def _verify(mixfile: Path, source: str | Path | Recording, o: VerifyOptions, info: MediaInfo,
            progress: Progress | None, reference: Reference | None) -> VerifyReport:
    sid, tolerance_ms, expected = o.sid, o.tolerance_ms, o.expected
    with FeatureStore() as store, RunDecoders(processes=reference is None) as decoders:
        mw = store.writer("mix")
        mix_job = decoders.submit(file_stream, str(mixfile), min(2, info.channels or 1), str(mw.stream.path))
        rec = source if isinstance(source, Recording) else load_recording(source, sid=sid)
        tl = build_timeline(rec)
        rep = VerifyReport(mix=str(mixfile), sid=rec.sid)

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
        _compare(rep, mix_job, tl, store, decoders, tolerance_ms, expected, progress, reference)
    return rep


def judge_run(mix: Stream, ref: Stream, run: Placed, lag: int, gain: float, n: int, search: int,
              bounds: list[int] = ()) -> tuple[float | None, float, int, list[tuple[int, int, float]],
                                                list[tuple[int, int, float]], float]:
    """What verify measures of one run once the mix's global lag and gain are known: its best
    place (frames) and presence (:func:`place_run`), how many of its frames are loud, the
    stretches of it that a mix holding it as a whole still lacks, the dropouts at its slice
    ``bounds`` (frames into the run), and its level in the mix. Pure reads of the spooled streams: it runs on
    verify's workers."""
    off, pres, level = place_run(mix, ref, run, lag, gain, n, search, CONTEXT)
    if level < LEVEL_MIN:
        pres = 0.0     # what matched is a leftover far below the run's own level (a missing tone
                       # matched the codec's steady floor in its band at 0.83)
    loud = loud_frames(run, SILENT_RUN_DB)
    lost, holes = [], []
    if loud >= SILENT_RUN_FRAMES and off is not None and pres >= PRESENCE_MIN:
        shift = int(round(off))
        lost = [x for x in stretches(mix, ref, run, lag, gain, n, shift, SILENT_RUN_DB) if x[2] < STRETCH_MIN]
        lost = _merged(lost + losses(mix, ref, run, lag, gain, n, shift, DIP_DB))
        holes = dips(mix, ref, run, lag, gain, n, shift, list(bounds), DIP_DB)
    return off, pres, loud, lost, holes, level


def _merged(spans: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Lost stretches in order, overlapping ones as one (the lowest presence)."""
    out: list[tuple[int, int, float]] = []
    for a, b, p in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]), min(p, out[-1][2]))
        else:
            out.append((a, b, p))
    return out


def slice_bounds(pr: PlacedRun, p: Placed) -> list[int]:
    """The frames, into a run's features, where each of its slices after the first starts
    (decoded back to back: each starts where the ones before it end)."""
    out, t = [], pr.offset_ms
    for s in pr.run.slices[:-1]:
        t += s.duration_ms or 0.0
        if t >= pr.end_offset_ms:
            break
        out.append(int(t // HOP_MS) - p.at)
    return out


def fine_offset(found: list[tuple[float, int]], near: float, lag: int = 0) -> float:
    """The mix's offset past the global ``lag`` (frames): the median of the runs' own offsets
    (offset, loud frames) in the group agreeing within ``near`` that holds the most loud frames,
    counted twice for the group that puts the mix at the session origin (the mix is where it
    should be and one user is not, rather than the other way round), the one nearest the
    global lag on a tie. A plain median of two users, one shifted 60 ms, moved the mix 30 ms
    and both users with it."""
    if not found:
        return 0.0

    def weight(c: float) -> tuple[float, float]:
        w = sum(w for o, w in found if abs(o - c) <= near)
        return w * (2 if abs(lag + c) <= near else 1), -abs(c)

    best = max((o for o, _ in found), key=weight)
    return float(np.median([o for o, _ in found if abs(o - best) <= near]))


def _explained(p: Placed, off: float | None, pres: float, loud: int, level: float) -> tuple[int | None, float]:
    """Where, and at what level, the expected sum should hold a run once verify has looked for
    it: where it was found, nowhere when it is plainly missing, as it was when there is
    nothing to find."""
    if loud < SILENT_RUN_FRAMES or off is None:
        return p.held, p.level
    if pres < GONE_MAX:
        return None, 1.0
    return p.at + int(round(off)), float(np.clip(level, 0.05, 20.0))


def _settled(placed: list[Placed], held: list[tuple[int | None, float]]) -> bool:
    """Looking again would change nothing: every run is held where it was found, at about the
    level found. (Comparing places only, a correct mix with users a few dB apart, which puts the
    others' excess into each run's residual, was never judged again at the levels found.)"""
    return all(h == p.held and abs(v - p.level) <= LEVEL_SETTLED * max(p.level, v) for p, (h, v) in zip(placed, held))


def _compare(rep: VerifyReport, mix_job: Future, tl: Timeline, store: FeatureStore, decoders: RunDecoders,
             tolerance_ms: float, expected: TranscodeOptions | None, progress: Progress | None,
             reference: Reference | None) -> None:
    """Checks 2-5, on band energies spooled to ``store`` (memory flat in the length); the mix
    file's are on their way from ``mix_job``."""
    # every run's features at its place, from the mix's own decoding where a Reference has
    # them, else decoded here; each spooled to disk as it streams
    if reference is not None:
        reference.finish()   # the mix's last runs may still be on their way
    runs, todo = [], []
    for ut in tl.users:
        for pr in ut.runs:
            hit = reference.get(ut.uid, pr.index, pr.offset_ms) if reference is not None else None
            if hit is None:
                todo.append((ut.uid, pr))
            else:
                runs.append((ut.uid, pr, hit))

    def submit(pr: PlacedRun) -> Future:
        _, lead = grid_place(pr.offset_ms)
        w = store.writer(f"run{pr.index}", limit=run_frames(pr.duration_ms))
        return decoders.submit(run_stream, pr.run.paths, pr.duration_ms, lead, min(2, run_channels(pr.run)),
                               str(w.stream.path), w.limit, pr.run.holes)

    rep.reference = "mix" if not todo else "recording" if not runs else "mix+recording"
    jobs = [(uid, pr, submit(pr)) for uid, pr in todo]
    for i, (uid, pr, job) in enumerate(jobs):
        if mix_job.done() and mix_job.exception() is not None:
            break                      # the mix file does not decode: say so now, not after every run
        s = job.result()
        runs.append((uid, pr, placed_at(s, pr.offset_ms)))
        if progress:
            progress(i + 1, len(jobs))
    mix, samples = mix_job.result()
    dur_ms = samples * 1000.0 / RATE_IN
    # 2. duration
    d = dur_ms - tl.span_ms
    rep.checks.append(Check("duration", abs(d) <= tolerance_ms + 50.0, round(dur_ms, 1), round(tl.span_ms, 1),
                            f"mix is {dur_ms / 1000:.3f} s, recording spans {tl.span_ms / 1000:.3f} s "
                            f"({d:+.0f} ms)"))

    if expected and expected.bitrate and dur_ms > 0:
        # average over the file: encoders are VBR or padded, so ask for the right ballpark only
        got = int(Path(rep.mix).stat().st_size * 8 / (dur_ms / 1000))
        ok = abs(got - expected.bitrate) <= BITRATE_TOLERANCE * expected.bitrate
        rep.checks.append(Check("bitrate", ok, got, expected.bitrate,
                                f"bitrate is {got / 1000:.0f} kb/s, expected {expected.bitrate / 1000:.0f} kb/s"
                                f"{'' if ok else f' (beyond ±{BITRATE_TOLERANCE:.0%})'}"))

    order = {(ut.uid, pr.index): i for i, (ut, pr) in enumerate((ut, pr) for ut in tl.users for pr in ut.runs)}
    runs.sort(key=lambda r: order[(r[0], r[1].index)])

    # 3. global offset: where the mix's band amplitudes best match the expected sum's
    n = max(mix.frames, int(tl.span_ms / HOP_MS) + 1)
    placed = [p for _, _, p in runs]
    ref, ref_env, rr, _ = expected_sum(placed, n, store)
    mix_env = envelope(mix, store=store)
    lag, score, cross = global_lag(mix, mix_env, ref, ref_env, int(SEARCH_S * 1000 / HOP_MS), n)
    mix_env.close()
    ref_env.close()
    gain = cross / rr if rr > 0 else 1.0     # the mix's level against the expected sum's
    search = int(RUN_SEARCH_MS / HOP_MS)
    bounds = [slice_bounds(pr, p) for _, pr, p in runs]
    # each run's place, presence, loudness, stretches and dropouts, on the workers (a second and
    # a half of an 8-user hour here, after every decode). When one is missing or misplaced, it
    # is judged against everyone else's expected energy, so its absence pulled down the others
    # it overlaps (a quieter user was named missing beside the one really left out): the runs
    # are judged again with the expected sum holding each where it was found, until that holds.
    for attempt in range(PASSES):
        judged = [decoders.submit(judge_run, mix, ref, p, lag, gain, n, search, b) for p, b in zip(placed, bounds)]
        results = [job.result() for job in judged]
        found = [(off, loud) for off, pres, loud, *_ in results
                 if off is not None and pres >= PRESENCE_MIN and loud >= SILENT_RUN_FRAMES]
        fine = fine_offset(found, tolerance_ms / 2 / HOP_MS, lag)
        doubtful = any(loud >= SILENT_RUN_FRAMES and (off is None or pres < PRESENCE_MIN or lost
                                                      or abs(off - fine) * HOP_MS > tolerance_ms)
                       for off, pres, loud, lost, *_ in results)
        held = [_explained(p, off, pres, loud, level) for p, (off, pres, loud, _, _, level) in zip(placed, results)]
        if not doubtful or attempt == PASSES - 1 or _settled(placed, held):
            break
        # the global gain stays: each run's level was measured against it
        log.info("verify: judging the runs again, the mix explained by where they were found")
        placed = [replace(p, held=h, level=v) for p, (h, v) in zip(placed, held)]
        ref, *_ = expected_sum(placed, n, store, with_envelope=False)
    placed_runs, loud, lost_of, holes_of = [], {}, {}, {}
    for (uid, pr, _), (off, pres, lf, lost, holes, _) in zip(runs, results):
        loud[(uid, pr.index)], lost_of[(uid, pr.index)], holes_of[(uid, pr.index)] = lf, lost, holes
        placed_runs.append((uid, pr, off, pres))
    offset_ms = (lag + fine) * HOP_MS
    matched = score >= MATCH_MIN and len(found) > 0
    rep.checks.append(Check("global_offset", matched and abs(offset_ms) <= tolerance_ms, round(offset_ms, 1), 0.0,
                            f"mix starts {offset_ms:+.1f} ms against the session origin (correlation {score:.2f})"
                            if matched else f"mix does not match this recording (correlation {score:.2f})"))

    # 4. every run present at its place (relative to the mix's own start); a silent run (a
    # listener who never spoke) cannot be found in any mix: it is reported, not "missing"
    missing, misplaced, dropped, silent = [], [], [], 0
    bounds_of = {(uid, pr.index): b for (uid, pr, _), b in zip(runs, bounds)}
    for (uid, pr, off, pres), p in zip(placed_runs, placed):
        if loud[(uid, pr.index)] < SILENT_RUN_FRAMES:
            silent += 1
            rep.runs.append({"uid": uid, "run": pr.index, "offset_ms": round(pr.offset_ms, 1),
                             "duration_ms": round(pr.duration_ms, 1), "presence": None, "error_ms": None,
                             "present": None, "placed": None, "silent": True})
            continue
        err = None if off is None else (off - fine) * HOP_MS
        present = bool(pres >= PRESENCE_MIN)
        # a long run present as a whole may still lack a stretch (a slice's worth left out)
        lost = lost_of[(uid, pr.index)] if present else []
        # a mix that ends early lacks the runs' ends (one that starts late, their starts: the
        # global offset says so)
        past = (p.at + fine + p.frames) - (mix.frames - lag) if present else 0
        cut = past * HOP_MS > tolerance_ms + 50.0     # as the duration check allows
        if cut:
            lost = [x for x in lost if x[1] <= p.frames - past] + [(p.frames - int(past), p.frames, 0.0)]
        present = present and not lost
        placed = bool(present and err is not None and abs(err) <= tolerance_ms)
        rep.runs.append({"uid": uid, "run": pr.index, "offset_ms": round(pr.offset_ms, 1),
                         "duration_ms": round(pr.duration_ms, 1), "presence": round(float(pres), 3),
                         "error_ms": None if err is None else round(float(err), 1), "present": present,
                         "placed": placed, "silent": False,
                         "missing_ms": [[round(a * HOP_MS), round(b * HOP_MS)] for a, b, _ in lost],
                         "dropouts": [{"at_ms": round((p.at + f) * HOP_MS),
                                       "frames": k, "depth": round(d, 3)}
                                      for f, k, d in holes_of[(uid, pr.index)]] if present else []})
        if present and holes_of[(uid, pr.index)]:
            hs = holes_of[(uid, pr.index)]
            dropped.append(f"uid {uid} run {pr.index} at {pr.offset_ms / 1000:.3f} s: {len(hs)} of its "
                           f"{len(bounds_of[(uid, pr.index)])} slice boundaries, first at "
                           f"{(p.at + hs[0][0]) * HOP_MS / 1000:.2f} s")
        if lost:
            a, b, worst = lost[0][0], lost[-1][1], min(x[2] for x in lost)
            why = "the mix ends before it does" if cut else f"presence {worst:.2f}"
            missing.append(f"uid {uid} run {pr.index} at {pr.offset_ms / 1000:.3f} s: "
                           f"{sum(y - x for x, y, _ in lost) * HOP_MS / 1000:.1f} s of it missing, between "
                           f"{a * HOP_MS / 1000:.1f} and {b * HOP_MS / 1000:.1f} s into it ({why})")
        elif not present:
            after = p.at + fine + 2 * CONTEXT >= mix.frames - lag     # too little of it in the file to judge
            missing.append(f"uid {uid} run {pr.index} at {pr.offset_ms / 1000:.3f} s "
                           + ("(the mix ends before it starts, or within a second of it)" if after
                              else f"(presence {pres:.2f})"))
        elif not placed:
            misplaced.append(f"uid {uid} run {pr.index} at {pr.offset_ms / 1000:.3f} s off by {err:+.0f} ms")
    heard = [r for r in rep.runs if not r["silent"]]
    quiet_users = sorted({r["uid"] for r in rep.runs} - {r["uid"] for r in heard})
    # a user is there when any run of theirs is found, even one with a stretch missing (a mix
    # cut short lacks the end of a user's one run: the run is incomplete, the user is not missing)
    users_missing = sorted({r["uid"] for r in heard} - {r["uid"] for r in heard if r["presence"] >= PRESENCE_MIN})
    said = f" ({silent} silent, not checkable)" if silent else ""
    rep.checks.append(Check("users_present", not users_missing, len({r["uid"] for r in heard}) - len(users_missing),
                            len({r["uid"] for r in heard}),
                            f"missing user(s): {', '.join(users_missing)}" if users_missing else
                            "every user found" + (f" (silent throughout: {', '.join(quiet_users)})"
                                                  if quiet_users else "")))
    rep.checks.append(Check("runs_present", not missing, len(heard) - len(missing), len(heard),
                            "missing: " + "; ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
                            if missing else "every run found" + said))
    rep.checks.append(Check("runs_aligned", not misplaced, len(heard) - len(missing) - len(misplaced),
                            len(heard) - len(missing),
                            "misplaced: " + "; ".join(misplaced[:5]) + (" …" if len(misplaced) > 5 else "")
                            if misplaced else f"every run within ±{tolerance_ms:.0f} ms"))

    rep.checks.append(Check("dropouts", not dropped, sum(len(h) for h in holes_of.values()), 0,
                            "the mix drops out at slice boundaries: " + "; ".join(dropped[:5])
                            + (" …" if len(dropped) > 5 else "") if dropped else
                            "no dropout at any slice boundary"))

    # 5. silence where nobody spoke (the mix's frames outside every run, 100 ms either side)
    pad = int(100 / HOP_MS)
    spans = sorted((p.at + lag - pad, p.at + lag + p.frames + pad) for _, _, p in runs)

    def quiet(a: int, b: int) -> np.ndarray:
        q = np.ones(b - a, bool)
        for s, e in spans:
            if s < b and e > a:
                q[max(s, a) - a:min(e, b) - a] = False
        return q

    loud_db = quiet_level_db(mix, quiet)
    rep.checks.append(Check("silence", loud_db <= SILENCE_DB, round(loud_db, 1), SILENCE_DB,
                            f"where nobody spoke the mix's loudest 10 ms (99th percentile) are at {loud_db:.1f} dBFS"
                            + (f" (more than {SILENCE_DB:.0f})" if loud_db > SILENCE_DB else "")))
