"""Load on ``mediatools serve``: 2,000 signed NCS notifications from 50 concurrent clients
while jobs run (the serve issue's benchmark).

Mix: event types 31, 33, 40, 41 over 40 recordings (4 of them real synthesized recordings
in moto's S3 server, so real processing runs on the LocalCluster meanwhile), 20 % repeats
of an earlier notice, 5 % bad signatures. Checks: every good one 200, every bad one 401,
the ledger holds each distinct noticeId once, exactly one job per recording with a 31.
Reports p50/p99 latency and throughput. Everything on 127.0.0.1; bounded in count and time.

    .venv/bin/python benchmarks/serve_bench.py [--total 2000] [--clients 50]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from s3support import MotoServer  # noqa: E402
from serve_support import ServeProc, notice, signed, uploaded_details  # noqa: E402

from mediatools.synth.generate import plan, synthesize  # noqa: E402

CNAME = "bench_room"


def build(total: int, sids: list[str], rng: random.Random) -> list[tuple[bytes, dict, int]]:
    """(body, headers, expected status) in send order."""
    out: list[tuple[bytes, dict, int]] = []
    sent: list[tuple[bytes, dict]] = []
    for i in range(total):
        r = rng.random()
        if r < 0.20 and sent:                       # a repeat (NCS resend / redundant delivery)
            body, h = rng.choice(sent)
            out.append((body, h, 200))
            continue
        sid = rng.choice(sids)
        et = rng.choice((31, 33, 40, 41))
        details = uploaded_details(sid, CNAME, ["1111", "1222"], "rec/") if et == 31 else {"msgName": "x"}
        doc = notice(et, sid, CNAME, details=details, notice_id=str(uuid.uuid4()), sequence=i)
        if r < 0.25:                                # 5 %: signed with the wrong secret
            body, h = signed(doc, secret="not-the-secret")
            out.append((body, h, 401))
        else:
            body, h = signed(doc)
            sent.append((body, h))
            out.append((body, h, 200))
    return out


async def fire(port: int, reqs: list[tuple[bytes, dict, int]], clients: int) -> tuple[list[float], list[str]]:
    """``clients`` keep-alive HTTP/1.1 connections on raw asyncio streams: a load generator
    that costs little CPU, so the 2 cores go to the service being measured."""
    lat: list[float] = []
    wrong: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    body, h, want = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
                msg = (f"POST /agora/ncs HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                t0 = time.perf_counter()
                writer.write(msg)
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                await reader.readexactly(length)
                lat.append(time.perf_counter() - t0)
                code = int(status_line.split()[1])
                if code != want:
                    wrong.append(f"{code} != {want}")
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return lat, wrong


def _cpu(pid: int) -> float:
    """user+sys seconds of one process (the service itself, not its Dask workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--total", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-jobs", action="store_true", help="the scripted stand-in task instead of process")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    real = [f"{k:02d}" + uuid.UUID(int=rng.getrandbits(128)).hex[2:] for k in range(4)]
    sids = real + [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(36)]
    with MotoServer() as s3:
        c = s3.client()
        c.create_bucket(Bucket="bench")
        for sid in real:
            spec = plan(users=2, duration_s=20.0, seed=int(sid[:2]) + 1)
            spec.sid, spec.cname = sid, CNAME
            folder = tmp / sid
            synthesize(spec, folder)
            for p in folder.iterdir():
                if p.suffix in (".m3u8", ".ts"):
                    c.put_object(Bucket="bench", Key=f"rec/{p.name}", Body=p.read_bytes())
        spec_users = [u.uid for u in spec.users]
        st = {"sources": ["s3://bench/rec/"], "db": str(tmp / "ledger.db"), "endpoint_url": s3.url,
              "region": "us-east-1", "sweep_interval_s": 3600.0, "workers": 1, "incomplete_retry_s": 600.0}
        reqs = build(a.total, sids, rng)
        if a.no_jobs:
            st["task"] = "serve_tasks:fake_job"
        with ServeProc(tmp, st, process={"fake_dir": str(tmp / "calls")} if a.no_jobs else None) as srv:
            cpu0, own0 = _cpu(srv.proc.pid), time.process_time()
            t0 = time.perf_counter()
            lat, wrong = asyncio.run(fire(srv.port, reqs, a.clients))
            wall = time.perf_counter() - t0
            server_cpu, client_cpu = _cpu(srv.proc.pid) - cpu0, time.process_time() - own0
            running = srv.http.get("/jobs?state=running", headers=srv.auth()).json()["jobs"]
        with sqlite3.connect(st["db"]) as db:
            stored = {r[0] for r in db.execute("select notice_id from notifications")}
            jobs = [r[0] for r in db.execute("select sid from jobs")]
    good = {json.loads(b)["noticeId"] for b, _h, want in reqs if want == 200}
    with31 = {json.loads(b)["payload"]["sid"] for b, _h, want in reqs if want == 200 and json.loads(b)["eventType"] == 31}
    lat.sort()
    p50, p99 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000
    bad = sum(1 for *_x, w in reqs if w == 401)
    repeats = len(reqs) - bad - len(good)
    print(f"serve_bench: {len(reqs)} notifications ({bad} badly signed, {repeats} repeats), {a.clients} clients, "
          f"users per recording {len(spec_users)}")
    print(f"  wall {wall:.2f} s  throughput {len(reqs) / wall:.0f}/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
          f"max {lat[-1] * 1000:.1f} ms")
    print(f"  wrong answers {len(wrong)}  ledger distinct {len(stored)} / sent distinct good {len(good)}  "
          f"jobs {len(jobs)} (distinct sids with a 31: {len(with31)}, duplicates {len(jobs) - len(set(jobs))})  "
          f"jobs running at the end {len(running)}")
    print(f"  CPU: service process {server_cpu:.2f} s ({server_cpu / len(reqs) * 1000:.2f} ms per notification), "
          f"load generator {client_cpu:.2f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = not wrong and stored == good and sorted(jobs) == sorted(with31) and p99 < 100 and len(reqs) / wall >= 300
    print("  targets met" if ok else "  TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
