"""Azurite (Microsoft's Azure Storage emulator, from npm) for tests and benchmarks.

``Azurite()`` starts ``azurite-blob`` on 127.0.0.1 and a free port, in memory, with its
telemetry off, and stops it on exit. The binary is found at ``$AZURITE_BLOB``, in
``.cache/azurite`` (where ``.ci/run`` installs it: ``npm install --no-save --prefix
.cache/azurite azurite@3.35.0``), or on PATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from s3support import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret; the same in every Azurite)
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
INSTALL_HINT = "npm install --no-save --prefix .cache/azurite azurite@3.35.0"


def azurite_binary() -> str | None:
    for cand in (os.environ.get("AZURITE_BLOB"), str(ROOT / ".cache/azurite/node_modules/.bin/azurite-blob"),
                 shutil.which("azurite-blob")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class Azurite:
    def __init__(self) -> None:
        self.binary = azurite_binary()
        if not self.binary:
            raise RuntimeError(f"azurite-blob not found; install it with: {INSTALL_HINT}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.mkdtemp(prefix="mediatools-azurite-")
        self._proc: subprocess.Popen | None = None

    def connection_string(self, endpoint: str | None = None) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={(endpoint or self.url)}/{ACCOUNT};")

    def __enter__(self) -> "Azurite":
        log = open(Path(self._dir) / "azurite.log", "wb")
        self._proc = subprocess.Popen(
            [self.binary, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self._dir)
        log.close()
        if not wait_for_port(self.port, tries=600):
            text = (Path(self._dir) / "azurite.log").read_text(errors="replace")[-2000:]
            self.__exit__()
            raise RuntimeError("azurite did not start: " + text)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def service(self, endpoint: str | None = None):  # noqa: ANN201
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(self.connection_string(endpoint))

    def container(self, name: str):  # noqa: ANN201
        """A new, empty container."""
        c = self.service().get_container_client(name)
        c.create_container()
        return c


def upload_folder(container, folder: Path, prefix: str = "", *, jobs: int = 16) -> int:  # noqa: ANN001
    """Every file below ``folder`` as a blob named ``prefix + relative path``; returns the count."""
    from concurrent.futures import ThreadPoolExecutor
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "truth.json"]

    def up(p: Path) -> None:
        container.upload_blob(prefix + p.relative_to(folder).as_posix(), p.read_bytes(), overwrite=True)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(up, files))
    return len(files)
