"""A stand-in for the pipeline in the dispatcher tests: a Dask task with scripted behaviour.

Driven by the ``[serve.process]`` table: ``fake_dir`` (where each call leaves a line),
``fake_sleep`` (seconds per call), ``fake_fail`` (how many first calls fail). It does no
media work; the tests with real processing use the real task.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def fake_job(kind: str, sid: str, location: str | None, sources: list[str], options: dict[str, Any],
             storage: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    d = Path(options["fake_dir"])
    d.mkdir(parents=True, exist_ok=True)
    calls = d / f"{sid}.calls"
    with open(calls, "a") as fh:
        # the niceness the task runs at, and what an ffmpeg it started would get
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        fh.write(f"start {os.getpid()} {time.time()} nice={os.getpriority(os.PRIO_PROCESS, 0)} child={child}\n")
    n = sum(1 for line in calls.read_text().splitlines() if line.startswith("start"))
    time.sleep(float(options.get("fake_sleep", 0)))
    if n <= int(options.get("fake_fail", 0)):
        return {"status": "failed", "error": f"scripted failure {n}"}
    with open(calls, "a") as fh:
        fh.write("done\n")
    folder = location or sources[0]
    return {"status": "processed", "location": folder, "verify": {"passed": True},
            "outputs": [{"key": f"{folder.split('/', 3)[-1]}{sid}_room_0.m4a", "size": 123}]}
