"""Process benchmark (issue 14): `mediatools process` against doing it by hand, in one invocation.

(1) Throughput: R recordings of U users × M minutes (default 12 × 4 × 10 min) on moto's S3
server (its own process, on loopback). By hand, one at a time: `mediatools fetch` +
`mediatools mix` + `aws s3 cp` per recording. Then `mediatools process --all --workers 2`
(fetch + mix + verify + publish with manifest), and the same with `--no-verify` (the same
work as by hand). Each way gets its own copy of the recordings under its own prefix.

(2) Time to result for one recording of 8 users × 60 min: `mediatools mix` of the
already-fetched folder alone, against `mediatools process --sid` (fetch + mix + verify +
publish) on one worker; each step's share is printed.

The recordings are synthesized once (cached) and copied under other sids, so the
bucket fills quickly. Usage:
  python benchmarks/process_bench.py [--recordings 12] [--users 4] [--minutes 10] [--big-minutes 60] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from fetch_bench import start_moto  # noqa: E402
from mix_bench import recording as big_recording  # noqa: E402
from s3support import CREDS, s3_client  # noqa: E402

from mediatools.synth.generate import plan, synthesize  # noqa: E402

BUCKET = "bench"
ENV = {**os.environ, **CREDS, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
       "AWS_EC2_METADATA_DISABLED": "true"}
MT = [sys.executable, "-m", "mediatools"]


def small_recording(users: int, minutes: float, cache: Path) -> Path:
    folder = cache / f"proc{users}x{minutes:g}"
    if not (folder / "truth.json").exists():
        print(f"synthesizing {users} users × {minutes:g} min into {folder} (once) ...", file=sys.stderr)
        synthesize(plan(users, minutes * 60.0, seed=43, gaps=1), folder, measure_onsets=False)
    return folder


def copies(folder: Path, n: int) -> list[tuple[str, dict[str, bytes]]]:
    """n copies of the recording, each under its own sid (names and playlist text rewritten)."""
    sid = json.loads((folder / "truth.json").read_text())["sid"]
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in (".ts", ".m3u8")}
    out = []
    for i in range(n):
        new = f"{i:02d}" + sid[2:]
        out.append((new, {name.replace(sid, new): (data.replace(sid.encode(), new.encode())
                                                   if name.endswith(".m3u8") else data)
                          for name, data in files.items()}))
    return out


def upload(url: str, prefix: str, recs: list[tuple[str, dict[str, bytes]]]) -> None:
    c = s3_client(url)
    jobs = [(prefix + name, data) for _, files in recs for name, data in files.items()]
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: c.put_object(Bucket=BUCKET, Key=kv[0], Body=kv[1]), jobs))


def timed(cmds: list[list[str]]) -> tuple[float, float, list[str]]:
    """Run the commands one after another: (wall s, CPU s of the children, their stdouts)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    outs = []
    for cmd in cmds:
        p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])} … failed: {p.stderr[-2000:]}")
        outs.append(p.stdout)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=12, help="part (1)'s recordings; 0 skips part (1)")
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--big-minutes", type=float, default=60.0, help="the 8-user recording of part (2); 0 skips it")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="part (2): alternating (mix alone, process) pairs")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mediatools-bench")
    a = ap.parse_args()
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if not aws:
        raise SystemExit("aws CLI not found (pip install awscli)")
    small = small_recording(a.users, a.minutes, a.cache) if a.recordings else None
    big = big_recording(a.big_minutes, a.cache) if a.big_minutes else None
    moto, port = start_moto()
    url = f"http://127.0.0.1:{port}"
    ep = ["--endpoint-url", url]
    try:
        s3_client(url).create_bucket(Bucket=BUCKET)
        if small is not None:
            recs = copies(small, a.recordings)
            for prefix in ("byhand/", "process/", "noverify/"):
                upload(url, prefix, recs)
            cname = json.loads((small / "truth.json").read_text())["cname"]
            print(f"(1) {a.recordings} recordings of {a.users} users × {a.minutes:g} min, {a.workers} workers, "
                  f"{os.cpu_count()} cores")
            with tempfile.TemporaryDirectory() as td:
                cmds = []
                for sid, _ in recs:
                    d = Path(td) / sid
                    cmds += [MT + ["fetch", f"s3://{BUCKET}/byhand/", "-o", str(d), "--sid", sid, "-q"] + ep,
                             MT + ["mix", str(d), "-o", f"{d}.m4a", "--sid", sid, "-q"],
                             [aws, "s3", "cp", f"{d}.m4a", f"s3://{BUCKET}/byhand/{sid}_{cname}_0.m4a",
                              "--only-show-errors"] + ep]
                hand = timed(cmds)
            proc = timed([MT + ["process", f"s3://{BUCKET}/process/", "--all", "--workers", str(a.workers), "--json"]
                          + ep])
            nover = timed([MT + ["process", f"s3://{BUCKET}/noverify/", "--all", "--workers", str(a.workers),
                                 "--no-verify", "--json"] + ep])
            for label, (_, _, outs) in (("process", proc), ("process --no-verify", nover)):
                doc = json.loads(outs[0])
                assert doc["counts"]["processed"] == a.recordings, (label, doc["counts"])
            print(f"{'':34} {'wall s':>8} {'cpu s':>8} {'rec/min':>8}   throughput vs by hand")
            for label, (wall, cpu, _) in (("by hand: fetch + mix + aws s3 cp", hand), ("process --all", proc),
                                          ("process --all --no-verify", nover)):
                ratio = "" if label.startswith("by hand") else f"   ×{hand[0] / wall:.2f}"
                print(f"{label:34} {wall:8.1f} {cpu:8.1f} {a.recordings / wall * 60:8.1f}{ratio}")
            print("target: process --all ≥ 1.8× the by-hand throughput")

        if big is not None:
            big_copy = copies(big, 1)
            upload(url, "big/", big_copy)
            bsid = big_copy[0][0]
            print(f"\n(2) one recording of 8 users × {a.big_minutes:g} min (sid {bsid})")
            with tempfile.TemporaryDirectory() as td:
                timed([MT + ["fetch", f"s3://{BUCKET}/big/", "-o", td, "--sid", bsid, "-q"] + ep])
                pairs = []
                for i in range(a.repeat):   # alternated: this machine's speed drifts by ±20 % within minutes
                    mix_alone = timed([MT + ["mix", td, "-o", f"{td}/alone.m4a", "--sid", bsid, "-q"]])
                    one = timed([MT + ["process", f"s3://{BUCKET}/big/", "--sid", bsid, "--workers", "1", "--json",
                                       "--force"] + ep])
                    r = json.loads(one[2][0])["recordings"][0]
                    assert r["status"] == "processed", r
                    pairs.append((mix_alone, one, r))
                    print(f"run {i + 1}: {'mix alone (fetched folder)':28} {mix_alone[0]:8.1f} s  cpu {mix_alone[1]:7.1f} s")
                    print(f"       {'process --sid (to result)':28} {one[0]:8.1f} s  cpu {one[1]:7.1f} s   "
                          f"×{one[0] / mix_alone[0]:.2f} the mix alone")
                    steps = {k: v for k, v in r["seconds"].items() if k != "total"}
                    total = sum(steps.values()) or 1.0
                    print("       steps: " + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in steps.items())
                          + f"; cluster start and the rest: {one[0] - r['seconds']['total']:.1f} s")
            ratios = sorted(one[0] / alone[0] for alone, one, _ in pairs)
            med = ratios[len(ratios) // 2]
            mixes = sorted(alone[0] for alone, _, _ in pairs)
            procs = sorted(one[0] for _, one, _ in pairs)
            print(f"median of {len(pairs)}: mix alone {mixes[len(mixes) // 2]:.1f} s, process {procs[len(procs) // 2]:.1f} s; "
                  f"pair ratios {', '.join(f'×{x:.2f}' for x in ratios)}: median ×{med:.2f} (target ≤ 1.4×)")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
