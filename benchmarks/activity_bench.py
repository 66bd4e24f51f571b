"""Speech-activity benchmark (issue 16): ``mediatools activity`` against ``mediatools mix`` (m4a)
of the same recording, timed in the same invocation; the target is activity ≤ 10 % of the
mix's wall time with peak memory ≤ 100 MB.

8 users × N minutes (default 60), AAC 48 kHz mono with gaps, the syllable-gated "speech"
signal (talk with pauses, so the detector sees both), synthesized once into a cache folder.
Also measured: the mix with a SpeechTap (what ``process --activity`` runs: the mix judges
speech as it decodes, then activity decodes nothing), as the mix's extra time.
Usage: python benchmarks/activity_bench.py [--minutes 60] [--users 8] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402

from mediatools.synth.generate import plan, synthesize  # noqa: E402


def recording(users: int, minutes: float, cache: Path) -> Path:
    folder = cache / f"activity{users}x{minutes:g}"
    if not (folder / "truth.json").exists():
        print(f"synthesizing {users} users × {minutes:g} min into {folder} (once) ...", file=sys.stderr)
        synthesize(plan(users, minutes * 60.0, seed=42, gaps=max(1, int(minutes / 10)), signal="speech"), folder,
                   measure_onsets=False)
    return folder


# what process --activity does: one decoding for the mix and the speech activity
TAPPED = r"""
import sys
from mediatools.activity import SpeechTap, activity
from mediatools.mix import mix
tap = SpeechTap()
mix(sys.argv[1], sys.argv[2], speech=tap)
activity(sys.argv[1], sys.argv[3], speech=tap)
"""

# what process runs by default (the mix collects verify's reference), and with --activity too
# (both taps on one mix: one thread, each run resampled once for both)
WITH_REFERENCE = r"""
import sys
from mediatools.activity import SpeechTap, activity
from mediatools.mix import mix
from mediatools.verify import Reference
ref, tap = Reference(), (SpeechTap() if sys.argv[3] != "-" else None)
mix(sys.argv[1], sys.argv[2], reference=ref, speech=tap)
if tap is not None:
    activity(sys.argv[1], sys.argv[3], speech=tap)
ref.close()
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mediatools-bench")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    folder = recording(a.users, a.minutes, a.cache)
    py = sys.executable
    with tempfile.TemporaryDirectory() as td:
        t = Path(td)
        mix = measure("mediatools mix (m4a)", [py, "-m", "mediatools", "mix", str(folder), "-o", str(t / "m.m4a"), "-q"])
        act = measure("mediatools activity", [py, "-m", "mediatools", "activity", str(folder), "-o", str(t / "a"), "-q"])
        energy = measure("mediatools activity --detector energy",
                         [py, "-m", "mediatools", "activity", str(folder), "-o", str(t / "e"), "-q", "--detector",
                          "energy"])
        tapped = measure("mix + activity from its decoding", [py, "-c", TAPPED, str(folder), str(t / "t.m4a"),
                                                               str(t / "t")])
        with_ref = measure("mix + verify reference (process)", [py, "-c", WITH_REFERENCE, str(folder),
                                                                  str(t / "r.m4a"), "-"])
        with_both = measure("... + activity (process --activity)", [py, "-c", WITH_REFERENCE, str(folder),
                                                                    str(t / "b.m4a"), str(t / "b")])
        turns = sum(len(u["turns"]) for u in json.loads((t / "a" / "activity.json").read_text())["users"])
        shared = sum(len(u["turns"]) for u in json.loads((t / "t" / "activity.json").read_text())["users"])
    print(f"\n{a.users} users × {a.minutes:g} min, AAC 48 kHz mono with gaps ({turns} turns found)")
    print(mix.row())
    print(act.row(mix))
    print(energy.row(mix))
    print(tapped.row(mix) + f"  ({shared} turns)")
    print(with_ref.row(mix))
    print(with_both.row(mix))
    print(f"activity: {100 * act.wall_s / mix.wall_s:.1f} % of the mix's wall time (target ≤ 10 %), "
          f"peak {act.peak_rss_mb:.0f} MB (target ≤ 100 MB)")
    print(f"activity judged on the mix's decoding: +{100 * (tapped.wall_s - mix.wall_s) / mix.wall_s:.1f} % wall, "
          f"+{100 * (tapped.cpu_s - mix.cpu_s) / mix.cpu_s:.1f} % CPU on the mix")
    print(f"activity inside process (verify's reference already decodes and resamples every run): "
          f"+{100 * (with_both.wall_s - with_ref.wall_s) / mix.wall_s:.1f} % of the mix's wall, "
          f"+{100 * (with_both.cpu_s - with_ref.cpu_s) / mix.cpu_s:.1f} % of its CPU")
    if a.json:
        a.json.write_text(json.dumps({"mix": vars(mix), "activity": vars(act), "energy": vars(energy),
                                      "tapped": vars(tapped), "with_reference": vars(with_ref),
                                      "with_reference_and_activity": vars(with_both), "users": a.users, "minutes": a.minutes}, indent=2))


if __name__ == "__main__":
    main()
