"""Helpers for the serve tests: the real service in a subprocess, signed notifications.

``ServeProc`` runs ``python -m mediatools serve --config FILE`` on 127.0.0.1 and a free
port with the secrets in its environment, waits for /livez and stops it with SIGTERM.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from s3support import CREDS, free_port, wait_for_port

from mediatools.service.signature import sign_v1, sign_v2

ROOT = Path(__file__).resolve().parents[1]
NCS_SECRET = "ncs-secret-for-tests-7f3a"
API_TOKEN = "api-token-for-tests-0123456789abcdef"


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_toml(path: Path, settings: dict[str, Any], process: dict[str, Any] | None = None) -> Path:
    lines = ["[serve]"] + [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    if process:
        lines.append("[serve.process]")
        lines += [f"{k} = {toml_value(v)}" for k, v in process.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def notice(event_type: int, sid: str, cname: str, *, details: dict | None = None, notice_id: str | None = None,
           sequence: int = 0) -> dict:
    now = int(time.time() * 1000)
    return {"noticeId": notice_id or str(uuid.uuid4()), "productId": 3, "eventType": event_type, "notifyMs": now,
            "payload": {"cname": cname, "uid": "527", "sid": sid, "sequence": sequence, "sendts": now,
                        "serviceType": 0, "details": details or {}}}


def uploaded_details(sid: str, cname: str, uids: list[str], folder: str = "") -> dict:
    return {"msgName": "uploaded", "status": 0, "fileList": [
        {"fileName": f"{folder}{sid}_{cname}__uid_s_{u}__uid_e_audio.m3u8", "trackType": "audio", "uid": u,
         "mixedAllUser": False, "isPlayable": True, "sliceStartTime": 1773480413589} for u in uids]}


def signed(doc: dict | bytes, secret: str = NCS_SECRET, *, v1: bool = False) -> tuple[bytes, dict[str, str]]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc, separators=(",", ":")).encode()
    h = {"Content-Type": "application/json"}
    if v1:
        h["Agora-Signature"] = sign_v1(secret.encode(), body)
    else:
        h["Agora-Signature-V2"] = sign_v2(secret.encode(), body)
    return body, h


class ServeProc:
    def __init__(self, tmp: Path, settings: dict[str, Any], *, process: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.tmp = tmp
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"host": "127.0.0.1", "port": self.port, "workers": 1, "poll_s": 0.2, **settings}
        self.config = write_toml(tmp / f"serve-{self.port}.toml", settings, process)
        self.log = tmp / f"serve-{self.port}.log"
        self.env = {**os.environ, **CREDS, "MEDIATOOLS_NCS_SECRET": NCS_SECRET, "MEDIATOOLS_API_TOKEN": API_TOKEN,
                    "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]), **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, timeout=15)

    def start(self, wait: float = 60) -> "ServeProc":
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "mediatools", "serve", "--config", str(self.config)],
                                     stdout=self._fh, stderr=subprocess.STDOUT, env=self.env, cwd=self.tmp,
                                     start_new_session=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            if wait_for_port(self.port, tries=2):
                try:
                    if self.http.get("/livez").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not come up:\n{self.log.read_text()}")

    def __enter__(self) -> "ServeProc":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait(10)
        self._fh.close()
        return rc

    def kill(self) -> None:
        """SIGKILL the service and every process it started (its Dask workers too)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._fh.close()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_TOKEN}"}

    def post_ncs(self, doc: dict | bytes, **kw: Any) -> httpx.Response:
        body, h = signed(doc, **kw)
        return self.http.post("/agora/ncs", content=body, headers=h)

    def job(self, sid: str) -> dict | None:
        r = self.http.get(f"/jobs/{sid}", headers=self.auth())
        return r.json() if r.status_code == 200 else None

    def wait_state(self, sid: str, states: tuple[str, ...] = ("done", "failed"), timeout: float = 90,
                   kind: str = "process") -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            doc = self.job(sid)
            if doc:
                last = next((j for j in doc["jobs"] if j["kind"] == kind), None)
                if last and last["state"] in states:
                    return last
            time.sleep(0.2)
        raise AssertionError(f"job {kind}:{sid} not in {states} after {timeout} s: {last}\n{self.log.read_text()[-4000:]}")


class PostgresServer:
    """A throwaway PostgreSQL from Debian's packages: initdb in a temp folder, TCP on
    127.0.0.1 and a free port, trust auth for the loopback only. Run as the ``postgres``
    user when we are root (the server refuses root)."""

    def __init__(self, base: Path) -> None:
        import glob
        import shutil
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin = Path(bins[-1]).parent if bins else None
        self.base = base
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 and shutil.which("runuser") else [])

    @property
    def available(self) -> bool:
        return self.bin is not None

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> "PostgresServer":
        data = self.base / "pgdata"
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as:
            os.chmod(self.base, 0o777)
            for p in self.base.parents:
                if str(p).startswith(("/tmp", "/var/tmp")) and p != Path("/tmp"):
                    os.chmod(p, os.stat(p).st_mode | 0o011)
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.base / "pg.log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off", "start")
        self.data = data
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
