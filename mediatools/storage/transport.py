"""The per-vendor part of fetch: a listing and a verified downloader, behind one shape.

``fetch`` asks a transport for ``list(prefix)`` (``ObjectInfo`` with size, ETag and, where
the store keeps one, the content MD5) and uses its ``downloader`` (a
:class:`~mediatools.storage.transfer.Downloader`: retries, length and MD5 checks, temporary
name then rename). Which objects to fetch stays in ``selection`` (pure, shared). S3 and
every S3-compatible vendor go through :class:`S3Transport`; Azure Blob through
``azure.AzureTransport``.
"""
from __future__ import annotations

import threading
from typing import Any, Protocol

from .location import AzureLocation, S3Location, Settings
from .selection import ObjectInfo
from .transfer import Downloader


class Transport(Protocol):
    downloader: Downloader

    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def close(self) -> None: ...


class S3Transport:
    def __init__(self, loc: S3Location, settings: Settings, *, jobs: int, retries: int, checksum: bool,
                 stop: threading.Event, client: Any = None):
        from .client import make_client
        self.loc = loc
        self.client = client or make_client(settings, jobs=jobs, retries=retries)
        self.downloader = Downloader(self.client, loc.bucket, retries=retries, checksum=checksum, stop=stop, jobs=jobs)

    def list(self, prefix: str) -> list[ObjectInfo]:
        from .fetch import list_objects
        return list_objects(self.client, self.loc, prefix)

    def close(self) -> None:
        pass


def open_transport(loc: S3Location | AzureLocation, settings: Settings, *, jobs: int = 32, retries: int = 5,
                   checksum: bool = True, stop: threading.Event | None = None, client: Any = None) -> Transport:
    """The transport for ``loc``; ``client``: a boto3 S3 client or an Azure ContainerClient to reuse."""
    from ..agora.vendors import AZURE_VENDOR
    from ..errors import UsageError
    stop = stop or threading.Event()
    if isinstance(loc, AzureLocation):
        from .azure import AzureTransport
        return AzureTransport(loc, settings, jobs=jobs, retries=retries, checksum=checksum, stop=stop, container=client)
    if settings.vendor == AZURE_VENDOR:
        raise UsageError("vendor 5 (Microsoft Azure Blob) has no S3 API; give the address as "
                         "azure://ACCOUNT/CONTAINER/PREFIX")
    return S3Transport(loc, settings, jobs=jobs, retries=retries, checksum=checksum, stop=stop, client=client)
