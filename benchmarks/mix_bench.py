"""Mix benchmark (issue 3): mediatools mix vs a one-process ffmpeg reference vs the pydub way.

8 users × N minutes (default 60), AAC 48 kHz mono with gaps, synthesized once into a
cache folder. All three are timed in the same invocation; figures are ratios against
the reference (machines are noisy). Usage: python benchmarks/mix_bench.py [--minutes 60]

``--floor`` also measures the CPU floor (the speed issue's): decoding every run once, plus one
encode of the output's length at the same settings (the mix re-encoded, less its decoding),
by the same ffmpeg as the reference. ``--cores 1`` also runs the mix pinned to fewer cores
(``taskset``): the AAC encode is split into one part per usable core, and the figures give
what 8 and 16 cores would do (see ``predict``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Measure, measure  # noqa: E402

from mediatools.media.ffmpeg import ffmpeg_path  # noqa: E402
from mediatools.recording.discovery import load_recording  # noqa: E402
from mediatools.synth.generate import plan, synthesize  # noqa: E402
from mediatools.timeline.contract import build_timeline  # noqa: E402

BITRATE = "128k"


def recording(minutes: float, cache: Path) -> Path:
    folder = cache / f"mix8x{minutes:g}"
    if not (folder / "truth.json").exists():
        print(f"synthesizing 8 users × {minutes:g} min into {folder} (once) ...", file=sys.stderr)
        synthesize(plan(8, minutes * 60.0, seed=42, gaps=max(1, int(minutes / 10))), folder, measure_onsets=False)
    return folder


def reference_cmd(folder: Path, out: Path, codec: str) -> list[str]:
    """The hand-written one-process way: concat-protocol input per run, adelay, amix."""
    tl = build_timeline(load_recording(folder, measure=None))
    args, chains, labels = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"], [], []
    i = 0
    for u in tl.users:
        for pr in u.runs:
            args += ["-i", "concat:" + "|".join(str(s.path) for s in pr.run.slices)]
            ms = int(round(pr.offset_ms))
            chains.append(f"[{i}:a]atrim=end={pr.duration_ms / 1000:.6f},pan=stereo|c0=c0|c1=c0,"
                          f"adelay=delays={ms}:all=1[a{i}]")
            labels.append(f"[a{i}]")
            i += 1
    graph = ";".join(chains) + f";{''.join(labels)}amix=inputs={i}:normalize=0:duration=longest[out]"
    return args + ["-filter_complex", graph, "-map", "[out]", "-c:a", codec, "-b:a", BITRATE, str(out)]


DECODE_RUNS = r'''
import subprocess
import sys
from mediatools.media.ffmpeg import ffmpeg_path
from mediatools.recording.discovery import load_recording
from mediatools.timeline.contract import build_timeline
tl = build_timeline(load_recording(sys.argv[1], measure=None))
for u in tl.users:
    for pr in u.runs:   # every slice decoded once, a run at a time, to nothing
        subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error",
                        "-i", "concat:" + "|".join(str(s.path) for s in pr.run.slices), "-f", "null", "-"], check=True)
'''


def ffmpeg_null(src: Path, *codec: str) -> list[str]:
    return [ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(src), *codec, "-f", "null", "-"]


def predict(m: Measure, cores: int, parts_max: int = 8) -> float:
    """Wall time on ``cores`` cores from one run's figures: the mixing pass (decoding every run,
    mixing; the command's own process, ``root_cpu_s``) is one thread; the encoders' CPU (the
    rest) splits into min(cores, parts_max) parts for AAC, one for MP3; nothing beats the CPU
    over all cores. A model, not a measurement."""
    mixing, encoding = m.root_cpu_s, max(0.0, m.cpu_s - m.root_cpu_s)
    parts = min(cores, parts_max)
    return max(mixing, encoding / parts, m.cpu_s / cores)


PYDUB = r'''
import io
import subprocess
import sys
from pydub import AudioSegment
from mediatools.media.ffmpeg import ffmpeg_path
from mediatools.recording.discovery import load_recording
from mediatools.timeline.contract import build_timeline
AudioSegment.converter = ffmpeg_path()
folder, out, fmt = sys.argv[1:4]
tl = build_timeline(load_recording(folder, measure=None))
base = AudioSegment.silent(duration=int(tl.span_ms) + 1, frame_rate=48000).set_channels(2)
for u in tl.users:
    for pr in u.runs:
        # load each run whole (its slices concatenated), then overlay at its offset
        # pydub's from_file needs ffprobe (absent here); do what it does inside: ffmpeg → WAV, whole
        wav = subprocess.run([ffmpeg_path(), "-v", "error", "-i", "concat:" + "|".join(str(s.path) for s in pr.run.slices),
                              "-f", "wav", "-"], capture_output=True, check=True).stdout
        seg = AudioSegment.from_wav(io.BytesIO(wav))
        seg = seg[: int(round(pr.duration_ms))].set_frame_rate(48000).set_channels(2)
        base = base.overlay(seg, position=int(round(pr.offset_ms)))
base.export(out, format=fmt, bitrate="128k", codec="aac" if fmt == "ipod" else None)
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mediatools-bench")
    ap.add_argument("--skip-pydub", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--floor", action="store_true", help="also measure the CPU floor (decode every run + one encode)")
    ap.add_argument("--cores", default="", help="also run the mixes pinned to these core counts, e.g. 1")
    a = ap.parse_args()
    folder = recording(a.minutes, a.cache)
    with tempfile.TemporaryDirectory() as td:
        t = Path(td)
        py = sys.executable
        results = {}
        results["reference m4a"] = measure("ffmpeg one-process ref (m4a)", reference_cmd(folder, t / "ref.m4a", "aac"))
        results["mediatools m4a"] = measure("mediatools mix (m4a)", [py, "-m", "mediatools", "mix", str(folder),
                                                                    "-o", str(t / "mt.m4a"), "-q"])
        results["reference mp3"] = measure("ffmpeg one-process ref (mp3)",
                                           reference_cmd(folder, t / "ref.mp3", "libmp3lame"))
        results["mediatools mp3"] = measure("mediatools mix (mp3)", [py, "-m", "mediatools", "mix", str(folder),
                                                                    "-o", str(t / "mt.mp3"), "-q"])
        pinned = [int(c) for c in a.cores.split(",") if c.strip()]
        if pinned and not shutil.which("taskset"):
            raise SystemExit("--cores needs taskset (util-linux)")
        for n in pinned:
            cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:n])
            for fmt in ("m4a", "mp3"):
                results[f"mediatools {fmt} on {n} core(s)"] = measure(
                    f"mediatools mix ({fmt}), {n} core(s)",
                    ["taskset", "-c", cpus, py, "-m", "mediatools", "mix", str(folder), "-o", str(t / f"p{n}.{fmt}"),
                     "-q"])
        if a.floor:
            script = t / "decode_runs.py"
            script.write_text(DECODE_RUNS)
            results["floor: decode every run"] = measure("floor: decode every run", [py, str(script), str(folder)])
            results["floor: decode the mix"] = measure("floor: decode the mix", ffmpeg_null(t / "mt.m4a"))
            results["floor: decode + encode m4a"] = measure("floor: decode the mix + aac",
                                                            ffmpeg_null(t / "mt.m4a", "-c:a", "aac", "-b:a", BITRATE))
            results["floor: decode + encode mp3"] = measure(
                "floor: decode the mix + mp3", ffmpeg_null(t / "mt.m4a", "-c:a", "libmp3lame", "-b:a", BITRATE))
        if not a.skip_pydub:
            script = t / "pydub_way.py"
            script.write_text(PYDUB)
            results["pydub m4a"] = measure("pydub overlay (m4a)", [py, str(script), str(folder), str(t / "pd.m4a"),
                                                                  "ipod"])
    ref = results["reference m4a"]
    import av

    from mediatools.media.ffmpeg import ffmpeg_version
    print(f"\n8 users × {a.minutes:g} min, AAC 48 kHz mono with gaps → stereo 48 kHz {BITRATE}")
    print(f"reference, floor and mediatools' encoders: ffmpeg {ffmpeg_version()} ({ffmpeg_path()}); "
          f"mediatools' decoding: PyAV {av.__version__}, FFmpeg libraries {av.ffmpeg_version_info}")
    for k, m in results.items():
        r = results["reference mp3"] if k.endswith("mp3") else ref
        print(m.row(None if k.startswith("reference") else r))
    cores = len(os.sched_getaffinity(0))
    for fmt in ("m4a", "mp3"):
        m = results[f"mediatools {fmt}"]
        print(f"{fmt}: mixing pass {m.root_cpu_s:.1f} s CPU, encoders and the rest {m.cpu_s - m.root_cpu_s:.1f} s; "
              f"wall ×{m.wall_s / results[f'reference {fmt}'].wall_s:.2f} the reference")
        if a.floor:
            dec, mixdec = results["floor: decode every run"], results["floor: decode the mix"]
            floor = dec.cpu_s + results[f"floor: decode + encode {fmt}"].cpu_s - mixdec.cpu_s
            print(f"  CPU floor {floor:.1f} s (decoding every run {dec.cpu_s:.1f} s + one {fmt} encode "
                  f"{floor - dec.cpu_s:.1f} s): mediatools CPU ×{m.cpu_s / floor:.2f} the floor")
        for n in pinned:
            p = results[f"mediatools {fmt} on {n} core(s)"]
            print(f"  on {n} core(s): wall {p.wall_s:.1f} s (model: {predict(p, n):.1f} s)")
        print(f"  on {cores} cores: wall {m.wall_s:.1f} s (model: {predict(m, cores):.1f} s); the model from this "
              f"run: 8 cores {predict(m, 8):.1f} s, 16 cores {predict(m, 16):.1f} s")
    if "pydub m4a" in results:
        p, mt = results["pydub m4a"], results["mediatools m4a"]
        print(f"mediatools vs pydub: {p.wall_s / mt.wall_s:.2f}× faster, {mt.peak_rss_mb / p.peak_rss_mb:.3f}× the memory")
    if a.json:
        a.json.write_text(json.dumps({k: vars(m) for k, m in results.items()}, indent=2))


if __name__ == "__main__":
    main()
