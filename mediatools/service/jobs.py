"""Pure rules for jobs: where a recording lies, how long to back off, what a result means.

The dispatcher does the I/O; everything it decides comes from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..storage.location import S3Location


def location_for(folder: str | None, sources: list[S3Location]) -> str | None:
    """The recording's folder as an s3:// URL, when it lies inside a configured source.

    A folder outside every source is not trusted (the service never writes beyond its
    sources), and a folder that lies inside sources in two buckets does not say which (NCS
    keys name no bucket): ``None`` sends the worker to list ``<sid>_`` under each source instead.
    """
    if folder is None:
        return None
    buckets = {loc.bucket for loc in sources if folder.startswith(loc.folder)}
    if len(buckets) != 1:
        return None
    return f"s3://{buckets.pop()}/{folder}"


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Doubling delay after the ``attempt``-th failure (1-based), capped."""
    return min(max_s, base_s * (2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Outcome:
    """``action``: ``done``, ``retry`` (a failure: counts), ``later`` (not ready: refunded) or ``failed``."""

    action: str
    delay_s: float = 0.0
    error: str | None = None


def judge(result: dict[str, Any] | None, error: str | None, *, attempts: int, age_s: float,
          max_attempts: int, base_s: float, max_s: float, later_s: float, deadline_s: float) -> Outcome:
    """What to do with a finished task: its result dict, or the error it raised."""
    status = (result or {}).get("status") if error is None else "failed"
    if status in ("processed", "skipped", "verified"):
        return Outcome("done")
    if status == "superseded":   # the job's files grew while it ran: at once, the attempt refunded
        return Outcome("later", 0.0, (result or {}).get("error") or "a later notification named more files")
    if status in ("incomplete", "not_found", "unreachable"):
        # not ready, not listed yet, or the store away: the attempt is refunded and the job looks
        # again, until the deadline (an outage of a minute failed jobs for good after 5 attempts)
        why = (result or {}).get("error") or {"incomplete": "recording not complete yet",
                                              "not_found": "recording not found under any source",
                                              "unreachable": "the store could not be reached"}[status]
        if age_s + later_s > deadline_s:
            return Outcome("failed", error=f"gave up after {age_s / 3600:.1f} h: {why}")
        return Outcome("later", later_s, why)
    why = error or (result or {}).get("error") or f"status {status!r}"
    if error is None and (result or {}).get("retryable") is False:
        return Outcome("failed", error=f"{why} (a retry cannot fix this)")
    if attempts >= max_attempts:
        return Outcome("failed", error=f"{why} (after {attempts} attempts)")
    return Outcome("retry", backoff_s(attempts, base_s, max_s), why)


def agora_result(job_state: str, result: dict[str, Any] | None) -> str:
    """The ``result`` word of a 1001-shaped notification for a finished process job."""
    if job_state != "done" or not result:
        return "failed"
    verdict = result.get("verify")
    if isinstance(verdict, dict) and (verdict.get("passed") is False or verdict.get("ok") is False):
        return "partial_success"
    return "total_success"
