"""The local Dask cluster that ``process`` and ``serve`` start: worker processes on loopback only.

Dask's scheduler serves HTTP (Prometheus metrics naming every task, logs, identity, the
dashboard) even with ``dashboard_address=None``, on port 8787 and, for an address like
``":0"``, on every interface. mediatools' own services answer only authenticated requests,
so the cluster it starts keeps nothing but the health check there, on 127.0.0.1, at a free
port; workers the same.

Its comms are TLS with a certificate made for this cluster alone (``Security.temporary()``:
mutual TLS, encryption required): on plain TCP any local user could connect to the scheduler
and run code in the workers and the scheduler (the service's own process), reading the NCS
secret, the API token and the storage keys. Only the ``Client(cluster)`` this process makes
holds the key. A cluster someone runs themselves (``--scheduler``) is theirs to configure.
"""
from __future__ import annotations

import logging
from typing import Any

#: what the scheduler's and workers' HTTP servers still answer: liveness only
HTTP_ROUTES = ["distributed.http.health"]


def local_cluster(n_workers: int, *, silence_logs: int = logging.ERROR, **kwargs: Any) -> Any:
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes on 127.0.0.1, its
    comms TLS with a key only this process holds (``Client(cluster)`` picks it up)."""
    import dask
    from distributed import LocalCluster
    from distributed.security import Security

    try:
        import cryptography  # noqa: F401 - what Security.temporary() makes the certificate with
    except ImportError:   # pragma: no cover - a declared dependency
        from ..errors import MediatoolsError
        raise MediatoolsError("the local cluster's TLS needs the cryptography package: pip install cryptography",
                              code="usage") from None
    kwargs.setdefault("security", Security.temporary())
    kwargs.setdefault("protocol", "tls")

    # the nanny hands this configuration to the worker processes it starts
    with dask.config.set({"distributed.scheduler.http.routes": HTTP_ROUTES,
                          "distributed.worker.http.routes": HTTP_ROUTES}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0", worker_dashboard_address=None,
                            silence_logs=silence_logs, **kwargs)
