"""Prometheus metrics, in a registry of the app's own (no global state between apps)."""
from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

_KNOWN_EVENTS = {"10", "11", "12", "31", "32", "33", "40", "41", "42", "43", "1001"}


class _JobStates:
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Any:
        g = GaugeMetricFamily("mediatools_jobs", "Jobs in the ledger by state", labels=["state"])
        try:
            for state, n in self._counts().items():
                g.add_metric([state], n)
        except Exception:   # the ledger away: no sample rather than a failed scrape
            pass
        yield g


class Metrics:
    def __init__(self, job_counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter("mediatools_ncs_notifications", "NCS notifications received",
                                     ["event_type", "outcome"], registry=self.registry)
        self.durations = Histogram("mediatools_job_duration_seconds", "Job run time on the cluster",
                                   ["kind", "outcome"], registry=self.registry,
                                   buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600))
        self.registry.register(_JobStates(job_counts))

    def notification(self, event_type: int | None, outcome: str) -> None:
        et = str(event_type) if event_type is not None else "none"
        # label values are bounded: an attacker-chosen eventType must not grow the series
        self.notifications.labels(et if et in _KNOWN_EVENTS or et == "none" else "other", outcome).inc()

    def job_finished(self, kind: str, outcome: str, seconds: float) -> None:
        self.durations.labels(kind, outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
