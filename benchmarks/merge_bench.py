"""merge speed: 1 user × N minutes of AAC (default 60).

Compares ``mediatools merge`` (copy, gaps kept) with the documented Agora way
``ffmpeg -i playlist.m3u8 -c copy out.m4a`` (no gaps, no fault handling) and with a full
re-encode (``ffmpeg -i playlist.m3u8 -c:a aac`` and ``mediatools merge --reencode``).

The two copies take about a second each, where this machine's noise is ±20 %, so they
are run ``--reps`` times, alternating, and compared by their medians (each pair's ratio
is printed too). The package's bytecode is compiled first, as ``pip install`` does: the
development venv otherwise recompiles every module on each start when
PYTHONDONTWRITEBYTECODE is set.

    .venv/bin/python benchmarks/merge_bench.py [--minutes 60] [--reps 7] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mediatools.media.ffmpeg import base_cmd
from mediatools.synth.generate import plan, synthesize


def timed(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--reps", type=int, default=7)
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
    import mediatools
    compileall.compile_dir(str(Path(mediatools.__file__).parent), quiet=1)
    plain = base_cmd() + ["-y", "-i", str(playlist), "-c", "copy", str(work / "plain.m4a")]
    ours_t, plain_t = [], []
    for _ in range(max(1, a.reps)):
        plain_t.append(timed(plain))
        ours_t.append(timed(py + ["-o", str(work / "copy")]))
    pairs = [o / p for o, p in zip(ours_t, plain_t)]
    res = {
        "mediatools merge (copy, gaps keep)": statistics.median(ours_t),
        "ffmpeg -i playlist.m3u8 -c copy": statistics.median(plain_t),
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
    print(f"\ncopy vs ffmpeg copy, {len(pairs)} alternating pairs: median {statistics.median(pairs):.2f}×, "
          f"range {min(pairs):.2f}–{max(pairs):.2f}× (medians of the times above: {res['mediatools merge (copy, gaps keep)'] / base:.2f}×)")


if __name__ == "__main__":
    main()
