"""The manifest published last beside a recording's outputs: what went in, how, what came out.

A rerun compares the current inputs (keys, sizes, ETags) and output options with the
manifest's digests; equal means the published outputs are current (``skipped``).
The manifest holds no credential: sources are named by their URL only.
"""
from __future__ import annotations

import platform
import time
from typing import Any

from ..agora.names import iso_utc
from ..storage.publish import MANIFEST_SCHEMA
from .completeness import RecordingFiles


def build(*, rec: RecordingFiles, source: str, dest: str, options: dict[str, Any], options_digest: str,
          outputs: list[dict[str, Any]], verify: dict[str, Any] | None, problems: list[dict[str, Any]],
          versions: dict[str, str], seconds: dict[str, float], worker: str | None) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "sid": rec.sid, "cname": rec.cname, "source": source, "dest": dest,
        "first_utc": iso_utc(rec.first_utc_ms) if rec.first_utc_ms is not None else None,
        "inputs": rec.inputs(), "inputs_digest": rec.inputs_digest(),
        "options": options, "options_digest": options_digest,
        "outputs": outputs, "verify": verify, "problems": problems,
        "versions": {**versions, "python": platform.python_version()},
        "seconds": seconds, "worker": worker,
        "created_utc": iso_utc(int(time.time() * 1000)),
    }


def is_current(manifest: dict[str, Any] | None, rec: RecordingFiles, options_digest: str) -> tuple[bool, str]:
    """(current, why not) for an existing manifest against the current inputs and options."""
    if not manifest:
        return False, "not published yet"
    if manifest.get("inputs_digest") != rec.inputs_digest():
        old = {i.get("key") for i in manifest.get("inputs", []) if isinstance(i, dict)}
        new = {o.key for o in rec.objects}
        added = len(new - old)
        return False, f"inputs changed ({added} new, {len(old - new)} gone, or sizes/ETags differ)"
    if manifest.get("options_digest") != options_digest:
        return False, "options changed"
    return True, "published outputs match the current inputs and options"


def verify_summary(v: dict[str, Any]) -> dict[str, Any]:
    """The manifest's and report's short form of a verify report."""
    checks = v.get("checks", [])
    return {"passed": bool(v.get("passed")), "failed": [c["name"] for c in checks if not c.get("passed")],
            "checks": {c["name"]: c.get("message") for c in checks},
            "reference": v.get("reference", "recording")}   # "mix": the runs as the mix decoded them
