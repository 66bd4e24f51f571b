"""Every setting mediatools reads from the environment, documented in one place.

Values are read when they are used, never at import time, so a long-running worker
(the service, a Dask worker) picks up a changed environment without a restart, and a
test can set one for one call. ``python -m mediatools.settings`` prints the table.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    parse: Callable[[str], object]
    doc: str

    def get(self) -> object:
        raw = os.environ.get(self.name, "")
        if raw.strip() == "":
            return self.parse(self.default) if self.default != "" else None
        try:
            return self.parse(raw)
        except ValueError:
            from .errors import UsageError
            raise UsageError(f"{self.name}={raw!r} is not valid ({self.doc})", code="bad_setting") from None


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("MEDIATOOLS_FFMPEG", "", str,
            "path of the ffmpeg to run (encoders, probes, merge, verify, activity; the mix decodes runs in-process by PyAV); "
            "default: ffmpeg on PATH, else the one in the imageio-ffmpeg wheel"),
    Setting("MEDIATOOLS_SPLIT_MIN_S", "600", float,
            "AAC mixes at least this long (seconds) are encoded in parts, one encoder per part, all at once"),
    Setting("MEDIATOOLS_SPLIT_PARTS", "0", int,
            "how many parts (and encoders) a split mix has; 0: the CPU cores this process may use, at most 8"),
    Setting("MEDIATOOLS_SPOOL_MAX_MB", "1024", int,
            "cap (MiB, shared by all parts) on the disk spools that let the mix run ahead of the earlier parts' encoders"),
    Setting("MEDIATOOLS_S3_DIRECT", "1", lambda v: v.strip() != "0",
            "0 sends every S3 GET through botocore instead of presigned URLs over urllib3"),
    Setting("MEDIATOOLS_NCS_SECRET", "", str,
            "serve: the NCS secret that signs Agora's notifications (or --ncs-secret-file); never logged"),
    Setting("MEDIATOOLS_API_TOKEN", "", str,
            "serve: the bearer token of the API and the page (or --api-token-file); never logged"),
    Setting("MEDIATOOLS_NOTIFY_SECRET", "", str,
            "serve: the key signing outgoing notifications (or --notify-secret-file); default: the NCS secret"),
)}


def get(name: str) -> object:
    """The setting's current value (parsed; the default when unset or empty)."""
    return SETTINGS[name].get()


def table() -> str:
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    rows += [f"| `{s.name}` | {s.default or '-'} | {s.doc} |" for s in SETTINGS.values()]
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(table())
