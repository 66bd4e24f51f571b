"""Verify benchmark (issue 6): `mediatools verify` against `mediatools mix` of the same
8-user recording, timed in one invocation; the figure is verify's wall time as a
fraction of the mix's. Usage: python benchmarks/verify_bench.py [--minutes 60]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402
from mix_bench import recording  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mediatools-bench")
    a = ap.parse_args()
    folder = recording(a.minutes, a.cache)
    py = sys.executable
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "mix.m4a"
        mix = measure("mediatools mix (m4a)", [py, "-m", "mediatools", "mix", str(folder), "-o", str(out), "-q"])
        ver = measure("mediatools verify", [py, "-m", "mediatools", "verify", str(out), str(folder), "--json"])
    print(f"\n8 users × {a.minutes:g} min")
    print(mix.row())
    print(ver.row(mix))
    print(f"verify takes {ver.wall_s / mix.wall_s:.2f}× the mix's wall time, peak {ver.peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
