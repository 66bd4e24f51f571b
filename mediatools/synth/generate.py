"""Realistic synthetic Agora recordings, deterministic from a seed.

Each run of each user is encoded by ffmpeg in one pass and cut by ffmpeg's segment
muxer into ~15 s MPEG-TS slices, so timestamps are continuous within a run exactly as
in Agora's uploads. Files are named and listed the way Agora does (DISCONTINUITY and
TRACK-EVENT on every run start, EXTINF without comma, ENDLIST). Faults are injected
afterwards. ``truth.json`` records what the timeline must find: every run's start (the
file-name UTC of its first slice), duration, and the instant its tone becomes audible.
"""
from __future__ import annotations

import csv
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..agora.names import playlist_name, slice_name
from ..agora.playlist import PlaylistEntry, format_playlist
from ..errors import MediatoolsError
from ..media.ffmpeg import base_cmd, start
from ..media.tones import TONE_FREQS

BASE_UTC_MS = 1_773_480_413_589  # 2026-03-14T09:26:53.589Z
FAULT_KINDS = ("missing_slice", "truncated_slice", "garbage_slice", "zero_byte_slice", "no_endlist",
               "duplicate_entry", "out_of_order", "bak_overlap", "bak_gap", "reupload", "no_playlist",
               "orphan_slice", "codec_change")
CODECS = {"aac": ("aac", "48k"), "opus": ("libopus", "32k")}


@dataclass
class Fault:
    kind: str
    uid: str
    run: int = 0
    slice: int = 1


@dataclass
class UserSpec:
    uid: str
    freq: float
    runs: list[tuple[float, float]]       # (offset_s from session start, duration_s)
    codec: str = "aac"
    sample_rate: int = 48000
    channels: int = 1
    turns: list[tuple[float, float]] | None = None   # signal "voice": (offset_s, duration_s) spoken


@dataclass
class SynthSpec:
    users: list[UserSpec]
    sid: str = "6f1b2c3d4e5f60718293a4b5c6d7e8f9"
    cname: str = "demo_room-1"
    start_utc_ms: int = BASE_UTC_MS
    slice_s: float = 15.0
    signal: str = "tone"                  # "tone", "speech" (syllable-gated tone) or "voice" (formant speech, turns)
    faults: list[Fault] = field(default_factory=list)
    seed: int = 0
    extinf_comma: bool = False
    time_format: str = "utc"              # TRACK-EVENT TIME: "utc" or "unix"
    amplitude: float = 0.25


def plan(users: int = 3, duration_s: float = 60.0, *, seed: int = 0, codec: str = "aac",
         sample_rates: list[int] | None = None, channels: list[int] | None = None, gaps: int = 1,
         late_join: bool = True, string_uids: bool = False, signal: str = "tone",
         faults: list[Fault] | None = None, slice_s: float = 15.0) -> SynthSpec:
    """A varied but deterministic session: late joiners, mutes, codecs and rates per user."""
    rng = np.random.default_rng(seed)
    specs = []
    for k in range(users):
        uid = f"user-{k + 1}_x" if string_uids and k % 2 else str(1000 + 111 * (k + 1))
        join = 0.0 if k == 0 or not late_join else round(float(rng.uniform(0.05, 0.25)) * duration_s, 3)
        leave = duration_s if k == 0 else round(duration_s - float(rng.uniform(0.0, 0.1)) * duration_s, 3)
        runs = _runs_with_gaps(rng, join, leave, gaps)
        c = codec if codec != "mixed" else ("aac", "opus")[k % 2]
        sr = (sample_rates or [48000])[k % len(sample_rates or [48000])]
        ch = (channels or [1])[k % len(channels or [1])]
        specs.append(UserSpec(uid=uid, freq=TONE_FREQS[k % len(TONE_FREQS)], runs=runs, codec=c,
                              sample_rate=sr, channels=ch))
    if signal == "voice":
        from .voice import conversation
        for u, turns in zip(specs, conversation(users, duration_s, seed=seed)):
            u.turns = turns
    return SynthSpec(users=specs, seed=seed, signal=signal, faults=list(faults or []), slice_s=slice_s)


def _runs_with_gaps(rng: np.random.Generator, start: float, end: float, gaps: int) -> list[tuple[float, float]]:
    length = end - start
    if gaps <= 0 or length < 8.0 * (gaps + 1):
        return [(start, round(length, 3))]
    cuts = sorted(rng.uniform(0.15, 0.85, size=gaps) * length + start)
    runs, t = [], start
    for c in cuts:
        g = float(rng.uniform(2.0, min(9.0, length / (4 * (gaps + 1)))))
        c = max(c, t + 3.0)
        runs.append((round(float(t), 3), round(float(c - t), 3)))
        t = c + g
    runs.append((round(float(t), 3), round(float(end - t), 3)))
    return [r for r in runs if r[1] > 1.0]


# ---------------------------------------------------------------- signal

def _signal_chunks(u: UserSpec, spec: SynthSpec, offset_s: float, duration_s: float, run_seed: int,
                   chunk_s: float = 1.0):
    """Yield float32 interleaved chunks for one run (bounded memory for long runs)."""
    if spec.signal == "voice":
        from .voice import Voice
        voice = Voice(u.turns or [], u.sample_rate, user=spec.users.index(u), seed=spec.seed,
                      amplitude=spec.amplitude)
        for x in voice.chunks(offset_s, duration_s, chunk_s):
            yield (np.repeat(x[:, None], u.channels, axis=1) if u.channels > 1 else x).tobytes()
        return
    sr, n_total = u.sample_rate, int(round(duration_s * u.sample_rate))
    rng = np.random.default_rng(run_seed)
    env_state = _SyllableEnvelope(rng, sr) if spec.signal == "speech" else None
    done = 0
    step = int(chunk_s * sr)
    while done < n_total:
        n = min(step, n_total - done)
        t = (offset_s * sr + done + np.arange(n)) / sr   # phase follows session time
        if spec.signal == "speech":
            x = (np.sin(2 * np.pi * u.freq * t) + 0.35 * np.sin(4 * np.pi * u.freq * t)) / 1.35
            x = x * env_state.next(n)
        else:
            x = np.sin(2 * np.pi * u.freq * t)
        x = (spec.amplitude * x).astype(np.float32)
        if u.channels > 1:
            x = np.repeat(x[:, None], u.channels, axis=1)
        yield x.tobytes()
        done += n


class _SyllableEnvelope:
    """Syllables of 80–300 ms at ~4/s with pauses: speech-like on/off structure."""

    def __init__(self, rng: np.random.Generator, sr: int):
        self.rng, self.sr, self.buf = rng, sr, np.zeros(0)

    def next(self, n: int) -> np.ndarray:
        while len(self.buf) < n:
            syl = int(self.rng.uniform(0.08, 0.30) * self.sr)
            pause = int(self.rng.choice([0.03, 0.06, 0.12, 0.5], p=[0.4, 0.3, 0.2, 0.1]) * self.sr)
            shape = np.sin(np.pi * np.arange(syl) / syl) ** 0.5
            self.buf = np.concatenate([self.buf, shape, np.zeros(pause)])
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


# ---------------------------------------------------------------- encoding

@dataclass
class _SliceOut:
    path: Path
    rel_start_s: float
    duration_s: float


def _encode_run(u: UserSpec, spec: SynthSpec, offset_s: float, duration_s: float, workdir: Path,
                run_seed: int, codec: str | None = None) -> list[_SliceOut]:
    enc, br = CODECS[codec or u.codec]
    listfile = workdir / "list.csv"
    pattern = workdir / "s%05d.ts"
    args = base_cmd() + ["-f", "f32le", "-ar", str(u.sample_rate), "-ac", str(u.channels), "-i", "pipe:0",
                         "-c:a", enc, "-b:a", br, "-f", "segment", "-segment_time", f"{spec.slice_s}",
                         "-segment_format", "mpegts", "-segment_list", str(listfile),
                         "-segment_list_type", "csv", str(pattern)]
    with start(args, stdin=True) as proc:
        try:
            for chunk in _signal_chunks(u, spec, offset_s, duration_s, run_seed):
                proc.stdin.write(chunk)
        finally:
            proc.stdin.close()
        if proc.wait() != 0:
            raise proc.error("synth encode failed: {last}", code="error")
    out = []
    with open(listfile, newline="") as fh:
        for row in csv.reader(fh):
            out.append(_SliceOut(workdir / row[0], float(row[1]), float(row[2]) - float(row[1])))
    return out


def synthesize(spec: SynthSpec, out: str | Path, *, measure_onsets: bool = True) -> dict:
    """Write the recording into ``out`` (created) and return the truth (also ``truth.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    truth_users = []
    faults_by_uid: dict[str, list[Fault]] = {}
    for f in spec.faults:
        if f.kind not in FAULT_KINDS:
            raise MediatoolsError(f"unknown fault kind {f.kind!r} (known: {', '.join(FAULT_KINDS)})")
        faults_by_uid.setdefault(f.uid, []).append(f)
    for ui, u in enumerate(spec.users):
        truth_users.append(_synth_user(spec, u, ui, out, faults_by_uid.get(u.uid, []), measure_onsets))
    starts = [r["start_ms"] for tu in truth_users for r in tu["runs"]]
    origin = min(starts) if starts else spec.start_utc_ms
    for tu in truth_users:
        for r in tu["runs"]:
            r["offset_ms"] = r["start_ms"] - origin
            if r.get("onset_ms") is not None:
                r["onset_offset_ms"] = round(r["onset_ms"] - origin, 3)
        if "turns_utc_ms" in tu:
            tu["turns"] = [[round(a - origin, 3), round(b - origin, 3)] for a, b in tu.pop("turns_utc_ms")]
    ends = [r["start_ms"] + r["duration_ms"] - origin for tu in truth_users for r in tu["runs"]]
    truth = {"sid": spec.sid, "cname": spec.cname, "origin_ms": origin, "span_ms": round(max(ends, default=0), 3),
             "signal": spec.signal, "seed": spec.seed, "faults": [asdict(f) for f in spec.faults],
             "users": truth_users}
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def _synth_user(spec: SynthSpec, u: UserSpec, ui: int, out: Path, faults: list[Fault],
                measure_onsets: bool) -> dict:
    kinds = {f.kind for f in faults}
    entries: dict[str, list[PlaylistEntry]] = {"original": []}
    # truth pieces: list of (utc_ms, duration_ms, name, family, run_index, slice_index, ok)
    pieces: list[dict] = []
    for ri, (off, dur) in enumerate(u.runs):
        run_start = spec.start_utc_ms + int(round(off * 1000))
        with tempfile.TemporaryDirectory(prefix="mt-synth-") as td:
            codec = None
            if "codec_change" in kinds and any(f.kind == "codec_change" and f.run == ri for f in faults):
                codec = "opus" if u.codec == "aac" else "aac"
            slices = _encode_run(u, spec, off, dur, Path(td), spec.seed * 1000 + ui * 100 + ri, codec)
            bak_at = next((f for f in faults if f.kind in ("bak_overlap", "bak_gap") and f.run == ri), None)
            for si, s in enumerate(slices):
                utc = run_start + int(round(s.rel_start_s * 1000))
                family = "original"
                if bak_at is not None and si >= bak_at.slice:
                    family = "bak0"
                name = slice_name(spec.sid, spec.cname, u.uid, utc, bak=0 if family == "bak0" else None)
                shutil.move(str(s.path), out / name)
                e = PlaylistEntry(uri=name, extinf_s=round(s.duration_s, 6),
                                  discontinuity=si == 0 or (bak_at is not None and si == bak_at.slice),
                                  event_time_ms=utc if si == 0 or (bak_at is not None and si == bak_at.slice) else None,
                                  event="START")
                entries.setdefault(family, []).append(e)
                pieces.append({"utc_ms": utc, "duration_ms": s.duration_s * 1000.0, "name": name, "run": ri,
                               "slice": si, "ok": True, "sample_rate": u.sample_rate,
                               # a failover copy is a new stream: it opens a run of its own
                               "run_start": si == 0 or (bak_at is not None and si == bak_at.slice)})
                if bak_at is not None and si == bak_at.slice:
                    orig_copy = slice_name(spec.sid, spec.cname, u.uid, utc)
                    if bak_at.kind == "bak_overlap":
                        # the original server also uploaded this slice before dying
                        shutil.copyfile(out / name, out / orig_copy)
                        entries["original"].append(PlaylistEntry(uri=orig_copy, extinf_s=round(s.duration_s, 6)))
                    else:
                        # bak_gap: the failover lost this slice entirely
                        (out / name).unlink()
                        entries["bak0"].pop()
                        pieces[-1]["ok"] = False
                        pieces[-1]["fault"] = "bak_gap"
                        entries["bak0"].append(None)  # marker: next bak entry starts a run
    # clean up bak markers: the entry after a lost one opens a new run
    bak = entries.get("bak0")
    if bak:
        fixed, opens = [], False
        for e in bak:
            if e is None:
                opens = True
                continue
            if opens:
                e.discontinuity, e.event_time_ms, opens = True, _utc_of(e.uri), False
            fixed.append(e)
        entries["bak0"] = fixed

    _apply_slice_faults(out, faults, pieces, entries, u)
    _write_playlists(spec, u, out, entries, kinds)
    _unlisted_durations(out, pieces, entries, kinds)
    runs = _truth_runs(pieces, out if measure_onsets and spec.signal != "voice" else None, u, spec.amplitude)
    extra = {"turns_utc_ms": _truth_turns(spec, u, runs, out if measure_onsets else None)} \
        if spec.signal == "voice" else {}
    return {"uid": u.uid, "freq": u.freq, "codec": u.codec, "sample_rate": u.sample_rate,
            "channels": u.channels, "runs": runs, **extra,
            "faulted_slices": [{"name": p["name"], "fault": p["fault"]} for p in pieces if p.get("fault")]}


def _truth_turns(spec: SynthSpec, u: UserSpec, runs: list[dict], out: Path | None) -> list[tuple[float, float]]:
    """The voice's turns as recorded, on the contract's clock (UTC ms): cut to the runs that made
    it into storage and moved by the codec's delay, measured per run (the encoder's priming
    plays as the run's first samples, and the contract puts the first decoded sample at the
    slice's file-name UTC; 1024 samples for AAC, 64 ms at 16 kHz)."""
    result = []
    measured = [_measure_delay(out, r, u, spec) if out is not None else None for r in runs]
    # a run with no voice in its first seconds cannot be measured: the codec's delay is the
    # user's own, so it takes another run's (a run left at 0 put its turns a frame early)
    known = next((m for m in measured if m is not None), None)
    if known is None:
        known = 1024 * 1000.0 / u.sample_rate if u.codec == "aac" and out is not None else 0.0
    for r, m in zip(runs, measured):
        delay = m if m is not None else known
        r["codec_delay_ms"] = round(delay, 3)
        for a, d in u.turns or []:
            t0, t1 = spec.start_utc_ms + a * 1000.0 + delay, spec.start_utc_ms + (a + d) * 1000.0 + delay
            lo, hi = max(t0, r["start_ms"]), min(t1, r["start_ms"] + r["duration_ms"])
            if hi > lo:
                result.append((round(lo, 3), round(hi, 3)))
    return sorted(result)


def _measure_delay(out: Path, run: dict, u: UserSpec, spec: SynthSpec, window_s: float = 8.0) -> float | None:
    """Lag (ms) of the decoded run behind the signal written, by cross-correlation over its first
    seconds; None when the window holds no voice to correlate."""
    from ..media.ffmpeg import concat_url
    from ..media.tones import decode_pcm
    from .voice import Voice
    rate = u.sample_rate
    off_s = (run["start_ms"] - spec.start_utc_ms) / 1000.0
    dur = min(window_s, run["duration_ms"] / 1000.0)
    ref = np.concatenate(list(Voice(u.turns or [], rate, user=spec.users.index(u), seed=spec.seed,
                                    amplitude=spec.amplitude).chunks(off_s, dur)))
    if np.sqrt(np.mean(ref ** 2)) < 1e-3:
        return None
    got = decode_pcm(concat_url([out / n for n in run["slices"][:1]]), rate, 1, duration_s=dur)
    n = min(len(ref), len(got))
    if n < rate // 2:
        return None
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(got[:n], size) * np.conj(np.fft.rfft(ref[:n], size)), size)
    max_lag = int(0.25 * rate)
    lag = int(np.argmax(xc[:max_lag]))
    return lag * 1000.0 / rate


def _utc_of(name: str) -> int:
    from ..agora.names import parse_name
    return parse_name(name).utc_ms  # type: ignore[return-value]


def _apply_slice_faults(out: Path, faults: list[Fault], pieces: list[dict],
                        entries: dict[str, list[PlaylistEntry]], u: UserSpec) -> None:
    for f in faults:
        target = next((p for p in pieces if p["run"] == f.run and p["slice"] == f.slice and p["ok"]), None)
        if f.kind in ("missing_slice", "truncated_slice", "garbage_slice", "zero_byte_slice",
                      "orphan_slice") and target is None:
            raise MediatoolsError(f"fault {f.kind}: uid {f.uid} has no slice {f.slice} in run {f.run}")
        path = out / target["name"] if target else None
        if f.kind == "missing_slice":
            path.unlink()
        elif f.kind == "zero_byte_slice":
            path.write_bytes(b"")
        elif f.kind == "garbage_slice":
            rng = np.random.default_rng(len(target["name"]))
            data = rng.integers(0, 256, size=path.stat().st_size, dtype=np.uint8)
            data[0] = 0x00
            path.write_bytes(data.tobytes())
        elif f.kind == "truncated_slice":
            size = path.stat().st_size
            with open(path, "r+b") as fh:
                fh.truncate((size * 2 // 5) // 188 * 188 + 101)
        elif f.kind == "orphan_slice":
            for fam in entries.values():
                for i, e in enumerate(fam):
                    if e.uri == target["name"]:
                        del fam[i]
                        break
            continue
        else:
            continue
        target["ok"] = False
        target["fault"] = f.kind


def _write_playlists(spec: SynthSpec, u: UserSpec, out: Path, entries: dict[str, list[PlaylistEntry]],
                     kinds: set[str]) -> None:
    if "no_playlist" in kinds:
        return
    for family, ents in entries.items():
        if not ents:
            continue
        ents = list(ents)
        if "duplicate_entry" in kinds and family == "original" and len(ents) > 1:
            ents.insert(2, PlaylistEntry(uri=ents[1].uri, extinf_s=ents[1].extinf_s))
        if "out_of_order" in kinds and family == "original" and len(ents) > 2:
            # swap two neighbours within one run (neither opens a run)
            for i in range(1, len(ents) - 1):
                if not ents[i].discontinuity and not ents[i + 1].discontinuity and ents[i].uri != ents[i + 1].uri:
                    ents[i], ents[i + 1] = ents[i + 1], ents[i]
                    break
        bak = None if family == "original" else int(family[3:])
        name = playlist_name(spec.sid, spec.cname, u.uid, bak=bak)
        endlist = not ("no_endlist" in kinds and family == "original")
        text = format_playlist(ents, endlist=endlist, comma=spec.extinf_comma, time_format=spec.time_format)
        if "reupload" in kinds and family == "original":
            tick = 1773480999
            cut = max(1, len(ents) // 2)
            # the first upload failed half way; two re-uploads, the newest complete
            (out / name).write_text(format_playlist(ents[:cut], endlist=False, comma=spec.extinf_comma,
                                                    time_format=spec.time_format))
            (out / playlist_name(spec.sid, spec.cname, u.uid, tick=tick, index=0)).write_text(
                format_playlist(ents[:max(cut, len(ents) - 1)], endlist=False, comma=spec.extinf_comma,
                                time_format=spec.time_format))
            (out / playlist_name(spec.sid, spec.cname, u.uid, tick=tick + 7, index=1)).write_text(text)
        else:
            (out / name).write_text(text)


def _unlisted_durations(out: Path, pieces: list[dict], entries: dict[str, list[PlaylistEntry]],
                        kinds: set[str]) -> None:
    """A slice no playlist lists has no EXTINF: its duration is its decoded length."""
    from ..media.probe import decoded_duration

    listed = set() if "no_playlist" in kinds else {e.uri for fam in entries.values() for e in fam}
    for p in pieces:
        if p["ok"] and p["name"] not in listed:
            p["duration_ms"] = decoded_duration(out / p["name"]) * 1000.0


def _truth_runs(pieces: list[dict], out: Path | None, u: UserSpec, amplitude: float = 0.25) -> list[dict]:
    """Maximal chains of healthy, contiguous slices = the runs the timeline must find."""
    pieces = sorted(pieces, key=lambda p: p["utc_ms"])
    runs: list[list[dict]] = []
    for p in pieces:
        if not p["ok"]:
            runs.append([])
            continue
        if runs and runs[-1] and not p["run_start"] and abs(p["utc_ms"] - (runs[-1][-1]["utc_ms"] +
                                                                          runs[-1][-1]["duration_ms"])) < 250:
            runs[-1].append(p)
        else:
            runs.append([p])
    result = []
    for chain in (r for r in runs if r):
        start = chain[0]["utc_ms"]
        dur = sum(p["duration_ms"] for p in chain)
        onset = None
        if out is not None:
            onset = _measure_onset(out, chain, u, amplitude)
        result.append({"start_ms": start, "duration_ms": round(dur, 3),
                       "onset_ms": None if onset is None else round(start + onset, 3),
                       "slices": [p["name"] for p in chain]})
    return result


def _measure_onset(out: Path, chain: list[dict], u: UserSpec, amplitude: float) -> float | None:
    """Where the tone becomes audible when this run is decoded per the contract."""
    from ..media.ffmpeg import concat_url
    from ..media.tones import decode_pcm, onset_ms
    x = decode_pcm(concat_url([out / p["name"] for p in chain[:2]]), 48000, 1, duration_s=2.0)
    # threshold at half the known tone amplitude, the same rule tests apply to outputs
    return onset_ms(x, 48000, u.freq, level=amplitude)
