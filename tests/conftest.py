"""Shared fixtures: synthetic recordings made by the project's own generator.

``make_recording(name, **plan_kwargs, faults=[...])`` synthesizes once per test session
and returns (folder, truth). Recordings are small (seconds of audio) so the suite stays fast.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mediatools.synth.generate import Fault, plan, synthesize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def synth_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def make_recording(synth_cache):
    cache: dict[str, tuple[Path, dict]] = {}

    def make(name: str, *, faults: list[Fault] | None = None, spec_hook=None, **kw) -> tuple[Path, dict]:
        if name in cache:
            return cache[name]
        spec = plan(**kw)
        if faults:
            # faults given with uid as a user index ("0", "1", ...) are mapped to real uids
            for f in faults:
                if f.uid.isdigit() and int(f.uid) < len(spec.users):
                    f.uid = spec.users[int(f.uid)].uid
            spec.faults = faults
        if spec_hook:
            spec_hook(spec)
        out = synth_cache / name
        truth = synthesize(spec, out)
        cache[name] = (out, truth)
        return out, truth

    return make


@pytest.fixture(scope="session")
def basic_recording(make_recording):
    """3 users, 45 s, late joiners and a mute each, AAC 48 kHz mono."""
    return make_recording("basic", users=3, duration_s=45.0, seed=7)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 and a free port, for the whole test session."""
    from s3support import MotoServer
    with MotoServer() as srv:
        yield srv


def sigint_default() -> None:
    """``preexec_fn`` for children that tests interrupt with SIGINT: when the test run itself
    was started as a background job (``cmd &``), the shell set SIGINT to ignored, every child
    inherits that and Python then installs no KeyboardInterrupt handler. Ctrl-C reaches a
    foreground process, so restore the default disposition."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, check: bool | None = None, env: dict | None = None, timeout: float = 300,
            input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (``python -m mediatools``)."""
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "mediatools", *args], capture_output=True, text=True,
                          env=e, timeout=timeout, input=input)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def load_json(text: str) -> dict:
    return json.loads(text)


@pytest.fixture(scope="session")
def azurite():
    """Azurite's blob service on 127.0.0.1 and a free port, for the whole test session; CI
    installs it (.ci/run), elsewhere the tests skip with the install command."""
    from azuresupport import INSTALL_HINT, Azurite, azurite_binary
    if not azurite_binary():
        if os.environ.get("CI"):
            pytest.fail(f"azurite-blob not found (CI installs it: {INSTALL_HINT})")
        pytest.skip(f"azurite-blob not found; install it with: {INSTALL_HINT}")
    with Azurite() as srv:
        yield srv


def listed_entries(playlist: Path) -> list[str]:
    """The slice names a playlist lists (every line that is not a tag)."""
    return [ln.strip() for ln in playlist.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
