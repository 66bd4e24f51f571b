"""merge speed: 1 user × N minutes of AAC (default 60).

Compares ``mediatools merge`` (copy, gaps kept) with the documented Agora way
``ffmpeg -i playlist.m3u8 -c copy out.m4a`` (no gaps, no fault handling) and with a full
re-encode (``ffmpeg -i playlist.m3u8 -c:a aac`` and ``mediatools merge --reencode``).

    .venv/bin/python benchmarks/merge_bench.py [--minutes 60] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mediatools.ffmpeg import base_cmd
from mediatools.synth import plan, synthesize


def timed(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--workdir")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="merge-bench-"))
    rec = work / "rec"
    if not rec.exists():
        t = time.perf_counter()
        synthesize(plan(users=1, duration_s=a.minutes * 60, seed=1, gaps=3), rec)
        print(f"synthesized {a.minutes:g} min in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    playlist = next(rec.glob("*.m3u8"))
    py = [sys.executable, "-m", "mediatools", "merge", str(rec), "-q"]
    res = {
        "mediatools merge (copy, gaps keep)": timed(py + ["-o", str(work / "copy")]),
        "ffmpeg -i playlist.m3u8 -c copy": timed(base_cmd() + ["-y", "-i", str(playlist), "-c", "copy",
                                                               str(work / "plain.m4a")]),
        "ffmpeg -i playlist.m3u8 -c:a aac (re-encode)": timed(base_cmd() + ["-y", "-i", str(playlist), "-c:a", "aac",
                                                                            str(work / "reenc.m4a")]),
        "mediatools merge --reencode": timed(py + ["-o", str(work / "reenc"), "--reencode"]),
    }
    base = res["ffmpeg -i playlist.m3u8 -c copy"]
    reenc = res["ffmpeg -i playlist.m3u8 -c:a aac (re-encode)"]
    print(f"| {a.minutes:g} min, 1 user, AAC | seconds | vs ffmpeg copy | re-encode / this |")
    print("|---|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {v:.2f} | {v / base:.2f}× | {reenc / v:.1f}× |")


if __name__ == "__main__":
    main()
