"""Issue 14 on a real Dask cluster: `dask scheduler` and two `dask worker` processes started here,
passed to `mediatools process --scheduler`; one worker is SIGKILLed while it uploads the mix."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from s3support import FaultProxy, free_port, wait_for_port
from test_process import (
    BUCKET,
    CNAME,
    ISOLATED,
    SIDS,
    assert_mix_on_time,
    get,
    keys,
    manifest_key,
    mix_key,
    recordings,  # noqa: F401  (recordings is a fixture)
    upload,
)

DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import Client
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **ISOLATED}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        assert wait_for_port(port, tries=600), "dask scheduler did not start"
        for i in range(2):
            procs.append(subprocess.Popen([DASK, "worker", addr, "--nthreads", "1", "--nworkers", "1",
                                           "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client = Client(addr, timeout="30s")
        client.wait_for_workers(2, timeout=120)
        yield addr, client
        client.close()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_sigkilled_worker_mid_upload_is_redone_once(recordings, dask_cluster, s3_server, tmp_path):  # noqa: F811
    addr, client = dask_cluster
    c = s3_server.client()
    if BUCKET not in [b["Name"] for b in c.list_buckets()["Buckets"]]:
        c.create_bucket(Bucket=BUCKET)
    prefix, sid = "killed/", SIDS["good"]
    folder, truth = recordings["good"]
    upload(c, prefix, folder)
    inputs = set(keys(c, prefix))
    target = f"/{BUCKET}/{mix_key(prefix, sid)}"
    hit, release = threading.Event(), threading.Event()

    def hold_first_mix_upload(method: str, path: str, n: int) -> None:
        if method == "PUT" and path == target and not hit.is_set():
            hit.set()
            release.wait(60)    # the worker is killed while its upload hangs here
        return None

    with FaultProxy(s3_server.port, rule=hold_first_mix_upload) as proxy:
        proc = subprocess.Popen([sys.executable, "-m", "mediatools", "process", f"s3://{BUCKET}/{prefix}",
                                 "--endpoint-url", proxy.url, "--sid", sid, "--scheduler", addr, "--json"],
                                env={**os.environ, **ISOLATED}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert hit.wait(180), "the mix upload never started"
            busy = [w for w, ks in client.processing().items() if any("mediatools-process-" in str(k) for k in ks)]
            assert len(busy) == 1
            pids = client.run(os.getpid)
            os.kill(pids[busy[0]], signal.SIGKILL)
        finally:
            release.set()
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["cluster"] == addr
    res = doc["recordings"][0]
    assert res["status"] == "processed" and res["worker"] != busy[0]
    # exactly one set of outputs: the mix and its manifest, no pending claim, no temporaries
    assert set(keys(c, prefix)) - inputs == {mix_key(prefix, sid), manifest_key(prefix, sid)}
    m = json.loads(get(c, manifest_key(prefix, sid)))
    assert m["outputs"][0]["key"] == mix_key(prefix, sid) and m["cname"] == CNAME
    import hashlib
    assert m["outputs"][0]["md5"] == hashlib.md5(get(c, mix_key(prefix, sid))).hexdigest()
    assert_mix_on_time(c, mix_key(prefix, sid), truth, tmp_path)


def test_the_local_cluster_serves_nothing_but_health_on_loopback():
    """Dask's scheduler and workers serve HTTP (Prometheus metrics naming every task, logs) even
    without a dashboard; the cluster process and serve start answers only /health, on 127.0.0.1."""
    import urllib.error
    import urllib.request

    from mediatools.pipeline.cluster import local_cluster

    with local_cluster(1) as cluster:
        servers = [cluster.scheduler.http_server]
        addrs = [s.getsockname() for srv in servers for s in srv._sockets.values()]
        worker_http = cluster.scheduler_info["workers"]
        assert addrs and all(host == "127.0.0.1" for host, *_ in addrs), addrs
        ports = [a[1] for a in addrs] + [w["services"]["dashboard"] for w in worker_http.values()
                                         if "dashboard" in w.get("services", {})]
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                assert r.status == 200
            for path in ("/metrics", "/json/identity.json", "/info/main/logs.html"):
                with pytest.raises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
                assert e.value.code == 404, (port, path)
        for w in cluster.workers.values():
            assert w.worker_address.startswith("tls://127.0.0.1:")
        # the comms: TLS with this cluster's own key; nobody else gets to run code in it
        # (on plain TCP any local user could read the service's secrets through Client.run)
        from distributed import Client
        from distributed.security import Security
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        with Client(cluster) as ours:
            assert ours.submit(sum, [1, 2]).result(timeout=30) == 3
        for bad in (dict(address=cluster.scheduler_address.replace("tls://", "tcp://")),
                    dict(address=cluster.scheduler_address, security=Security.temporary())):
            with pytest.raises((OSError, TimeoutError)):
                Client(**bad, timeout=3)
