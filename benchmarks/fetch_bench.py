"""Fetch benchmark (issue 5): `mediatools fetch` against `aws s3 sync` on the same
local S3 server, in one invocation.

A bucket holds one 8-user × 60-min recording (~1,600 slices of ~90 KB, each user
with a few gaps) and 5,000 unrelated objects under the same prefix (another
recording). Both clients fetch only the recording: mediatools by ``--sid``, aws by
``--exclude '*' --include '<sid>_*'``. (a) straight to moto's server on loopback
(the server's own CPU is the ceiling); (b) through a loopback proxy that delays
every request by 100 ms, like a bucket in another region. Wall time, objects per
second and the client's CPU seconds (user+sys of its process tree) are reported.

moto runs in its own process so its CPU is not charged to either client; the
proxy runs in this process for the same reason.

Azure column (issue 17, ``--stores s3,azure``): the same recording and unrelated blobs
in a container of Azurite (Microsoft's emulator, its own node process), ``mediatools fetch
azure://… --sid`` against a plain azure-storage-blob loop with the SDK's defaults (list
``<prefix><sid>_``, then ``download_blob().readinto()`` one blob after another: what a
script written from the SDK's quickstart does). The Azure CLI's ``download-batch`` was not
used: azure-cli is on PyPI but brings well over a hundred packages into the environment.

Usage: python benchmarks/fetch_bench.py [--slices 200] [--unrelated 5000] [--delay-ms 100] [--stores s3,azure]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from azuresupport import ACCOUNT, Azurite  # noqa: E402
from s3support import CREDS, FaultProxy, free_port, s3_client, wait_for_port  # noqa: E402

from mediatools.agora.names import playlist_name, slice_name  # noqa: E402
from mediatools.agora.playlist import PlaylistEntry, format_playlist  # noqa: E402

SID = "be11c0ffee0000000000000000000001"
OTHER = "0e11c0ffee0000000000000000000002"
BUCKET, PREFIX = "bench", "agora/app/"
T0 = 1_773_480_413_589


def start_moto() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port(port, tries=200):
        raise SystemExit("moto server did not start")
    return proc, port


def objects(slices: int, unrelated: int) -> list[tuple[str, bytes]]:
    body = os.urandom(90_000)
    jobs: list[tuple[str, bytes]] = []
    for u in range(8):
        uid = str(1000 + u)
        entries = []
        t = T0 + u * 1000
        for i in range(slices):
            if i and i % 50 == 0:
                t += 30_000          # a gap every 50 slices
            name = slice_name(SID, "room", uid, t)
            jobs.append((PREFIX + name, body[: 80_000 + (i * 997) % 10_000]))
            entries.append(PlaylistEntry(name, 15.0, discontinuity=bool(i and i % 50 == 0)))
            t += 15_000
        jobs.append((PREFIX + playlist_name(SID, "room", uid), format_playlist(entries).encode()))
    for i in range(unrelated):
        jobs.append((PREFIX + slice_name(OTHER, "room", str(i % 50), T0 + i * 15_000), body[:1000]))
    return jobs


def populate(port: int, slices: int, unrelated: int) -> int:
    c = s3_client(f"http://127.0.0.1:{port}")
    c.create_bucket(Bucket=BUCKET)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: c.put_object(Bucket=BUCKET, Key=kv[0], Body=kv[1]), objects(slices, unrelated)))
    return 8 * (slices + 1)


def populate_azure(az: Azurite, slices: int, unrelated: int) -> int:
    c = az.container(BUCKET)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: c.upload_blob(kv[0], kv[1]), objects(slices, unrelated)))
    return 8 * (slices + 1)


# the reference: the SDK's defaults, one blob after another
SDK_LOOP = """
import os, sys
from azure.storage.blob import ContainerClient
cs, container, prefix, out = sys.argv[1:5]
c = ContainerClient.from_connection_string(cs, container)
for b in c.list_blobs(name_starts_with=prefix):
    path = os.path.join(out, b.name[len(prefix.rsplit('/', 1)[0]) + 1:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        c.download_blob(b.name).readinto(f)
"""


def run(name: str, cmd: list[str], objects: int, env: dict | None = None) -> dict:
    env = {**os.environ, **CREDS, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true", **(env or {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"name": name, "wall": wall, "cpu": cpu, "ops": objects / wall}


def count(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def print_table(title: str, reference: str, results: list[tuple[str, dict, dict]]) -> None:
    """Each store's rows: the reference client, then mediatools with its ratios against it."""
    print(f"\n{title:24} {'client':18} {'wall s':>8} {'obj/s':>8} {'cpu s':>7}   ratios vs {reference}")
    for label, ref, got in results:
        for r in (ref, got):
            extra = "" if r is ref else (f"   wall ×{got['wall'] / ref['wall']:.2f}  cpu ×{got['cpu'] / ref['cpu']:.2f}"
                                         f"  obj/s ×{got['ops'] / ref['ops']:.2f}")
            print(f"{label:24} {r['name']:18} {r['wall']:8.2f} {r['ops']:8.0f} {r['cpu']:7.2f}{extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", type=int, default=200, help="slices per user (8 users)")
    ap.add_argument("--unrelated", type=int, default=5000)
    ap.add_argument("--delay-ms", type=float, default=100.0)
    ap.add_argument("--jobs", type=int, default=32)
    ap.add_argument("--stores", default="s3,azure", help="which columns: s3 (moto), azure (Azurite)")
    a = ap.parse_args()
    stores = set(a.stores.split(","))
    if "azure" in stores:
        bench_azure(a)
    if "s3" not in stores:
        return
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if not aws:
        raise SystemExit("aws CLI not found (pip install awscli)")
    moto, port = start_moto()
    try:
        t = time.monotonic()
        n = populate(port, a.slices, a.unrelated)
        print(f"bucket: {n} recording objects + {a.unrelated} unrelated, filled in {time.monotonic() - t:.0f} s")
        results = []
        with tempfile.TemporaryDirectory() as td, FaultProxy(port, delay_s=a.delay_ms / 1000) as proxy:
            for label, url in (("(a) loopback", f"http://127.0.0.1:{port}"),
                               (f"(b) +{a.delay_ms:g} ms/request", proxy.url)):
                out_m, out_a = Path(td) / "m", Path(td) / "a"
                for d in (out_m, out_a):
                    shutil.rmtree(d, ignore_errors=True)
                ref = run("aws s3 sync", [aws, "s3", "sync", f"s3://{BUCKET}/{PREFIX}", str(out_a),
                                          "--endpoint-url", url, "--only-show-errors",
                                          "--exclude", "*", "--include", f"{SID}_*"], n)
                got = run("mediatools fetch", [sys.executable, "-m", "mediatools", "fetch",
                                               f"s3://{BUCKET}/{PREFIX}", "-o", str(out_m), "--sid", SID,
                                               "--endpoint-url", url, "-q", "--jobs", str(a.jobs)], n)
                assert count(out_m) == count(out_a) == n, (count(out_m), count(out_a), n)
                results.append((label, ref, got))
        print_table("", "aws s3 sync", results)
        print("\ntargets: (a) wall ≤ 0.8× and cpu ≤ 0.6× aws s3 sync; (b) obj/s ≥ 2×")
    finally:
        moto.terminate()
        moto.wait()


def bench_azure(a: argparse.Namespace) -> None:
    with Azurite() as az:
        t = time.monotonic()
        n = populate_azure(az, a.slices, a.unrelated)
        print(f"azurite container: {n} recording blobs + {a.unrelated} unrelated, filled in "
              f"{time.monotonic() - t:.0f} s")
        results = []
        with tempfile.TemporaryDirectory() as td, FaultProxy(az.port, delay_s=a.delay_ms / 1000) as proxy:
            for label, url in (("(a) loopback", az.url), (f"(b) +{a.delay_ms:g} ms/request", proxy.url)):
                out_m, out_r = Path(td) / "m", Path(td) / "r"
                for d in (out_m, out_r):
                    shutil.rmtree(d, ignore_errors=True)
                    d.mkdir()
                cs = az.connection_string(url)
                ref = run("SDK download loop", [sys.executable, "-c", SDK_LOOP, cs, BUCKET, f"{PREFIX}{SID}_",
                                                str(out_r)], n)
                got = run("mediatools fetch", [sys.executable, "-m", "mediatools", "fetch",
                                               f"azure://{ACCOUNT}/{BUCKET}/{PREFIX}", "-o", str(out_m), "--sid", SID,
                                               "--endpoint-url", url, "-q", "--jobs", str(a.jobs)], n,
                          env={"AZURE_STORAGE_CONNECTION_STRING": az.connection_string()})
                assert count(out_m) == count(out_r) == n, (count(out_m), count(out_r), n)
                results.append((label, ref, got))
    print_table("Azurite", "the SDK loop", results)
    print("\ntarget (Azure): (b) obj/s ≥ 2× the SDK loop\n")


if __name__ == "__main__":
    main()
