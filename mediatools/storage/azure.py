"""Azure Blob Storage (Agora's vendor 5) on Microsoft's SDK, ``azure-storage-blob``.

One place knows Azure: the account URL and credentials, the client (a connection pool
sized for ``jobs`` requests in flight, short exponential backoff on 500/503 and dropped
connections), the listing (name, size, ETag, Content-MD5) and a verified GET that plugs
into the vendor-neutral :class:`~mediatools.storage.transfer.Downloader` loop.

Credentials, first found wins: the ``Settings`` (Agora's storageConfig ``secretKey``),
then ``AZURE_STORAGE_CONNECTION_STRING`` (used only when it names this account),
``AZURE_STORAGE_KEY`` (account key), ``AZURE_STORAGE_SAS_TOKEN``; none → anonymous
(public containers). Their values never reach a message: errors are built from status
codes and Azure's error codes only. The SDK is imported only when a client is made.
"""
from __future__ import annotations

import logging
import os
import random
import threading
from base64 import b64decode
from typing import Any
from urllib.parse import urlsplit

from ..errors import MediatoolsError
from .location import AzureLocation, Settings
from .selection import ObjectInfo
from .transfer import Downloader, RetryBody, TransferError

log = logging.getLogger(__name__)

BLOB_SUFFIX = "blob.core.windows.net"
#: files up to this size are one Put Blob; larger ones are staged as blocks of this size, in parallel
SINGLE_PUT_MAX = 8 * 1024 * 1024
BLOCK_SIZE = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 4


def parse_connection_string(cs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in cs.split(";"):
        k, sep, v = part.strip().partition("=")
        if sep and k:
            out[k.strip()] = v.strip()
    return out


def account_url(account: str, endpoint: str | None) -> str:
    """``https://ACCOUNT.blob.core.windows.net``, or the endpoint given: a host that already
    names the account (``https://ACCOUNT.blob.core.chinacloudapi.cn``) or a path ending in it
    is used as it is; otherwise (an emulator such as Azurite: ``http://127.0.0.1:10000``) the
    account is its first path segment."""
    if not endpoint:
        return f"https://{account}.{BLOB_SUFFIX}"
    url = endpoint if "://" in endpoint else f"https://{endpoint}"
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if (parts.hostname or "").startswith(f"{account}.") or path.endswith(f"/{account}"):
        return url.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}/{account}"


def resolve_credentials(account: str, settings: Settings) -> tuple[str, Any, str]:
    """(account URL, SDK credential or None, a safe name for where it came from)."""
    endpoint = settings.endpoint_url
    if settings.azure_connection_string:
        got = _from_connection_string(account, settings.azure_connection_string, endpoint, "connection string")
        if got:
            return got
    if settings.azure_account_key:
        return account_url(account, endpoint), {"account_name": account, "account_key": settings.azure_account_key}, \
            "account key"
    if settings.azure_sas_token:
        return account_url(account, endpoint), _sas(settings.azure_sas_token), "SAS token"
    cs = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if cs:
        got = _from_connection_string(account, cs, endpoint, "AZURE_STORAGE_CONNECTION_STRING")
        if got:
            return got
        log.info("AZURE_STORAGE_CONNECTION_STRING is for another account; not used for %s", account)
    key = os.environ.get("AZURE_STORAGE_KEY")
    if key:
        return account_url(account, endpoint), {"account_name": account, "account_key": key}, "AZURE_STORAGE_KEY"
    sas = os.environ.get("AZURE_STORAGE_SAS_TOKEN")
    if sas:
        return account_url(account, endpoint), _sas(sas), "AZURE_STORAGE_SAS_TOKEN"
    return account_url(account, endpoint), None, "anonymous"


def _sas(token: str) -> Any:
    from azure.core.credentials import AzureSasCredential
    return AzureSasCredential(token.strip().lstrip("?"))


def _from_connection_string(account: str, cs: str, endpoint: str | None, what: str) -> tuple[str, Any, str] | None:
    d = parse_connection_string(cs)
    name = d.get("AccountName")
    if name and name != account:
        return None
    url = endpoint and account_url(account, endpoint)
    if not url:
        if d.get("BlobEndpoint"):
            url = d["BlobEndpoint"].rstrip("/")
        else:
            url = f"{d.get('DefaultEndpointsProtocol', 'https')}://{account}.blob." \
                  f"{d.get('EndpointSuffix', 'core.windows.net')}"
    if d.get("AccountKey"):
        return url, {"account_name": account, "account_key": d["AccountKey"]}, what
    if d.get("SharedAccessSignature"):
        return url, _sas(d["SharedAccessSignature"]), what
    return url, None, what


def _retry_policy(retries: int) -> Any:
    from azure.storage.blob import ExponentialRetry

    class QuickRetry(ExponentialRetry):
        """The SDK's retry rules (500, 503, timeouts, refused and dropped connections) with
        backoff 0.2 s, 0.4 s, 0.8 s … (≤ 5 s, jittered) instead of 15 s, 18 s, 24 s."""

        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            return min(5.0, 0.2 * (2 ** settings["count"])) * (0.5 + random.random() / 2)

    n = max(0, retries - 1)
    return QuickRetry(retry_total=n, retry_connect=n, retry_read=n, retry_status=n)


def make_service_client(account: str, settings: Settings, *, jobs: int = 32, retries: int = 5,
                        connect_timeout: float = 10, read_timeout: float = 60) -> Any:
    """A ``BlobServiceClient`` whose connection pool holds ``jobs`` connections."""
    try:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import BlobServiceClient
    except ImportError:  # pragma: no cover - a declared dependency
        raise MediatoolsError("azure-storage-blob is not installed (pip install azure-storage-blob)",
                              code="azure_client") from None
    url, credential, source = resolve_credentials(account, settings)
    log.info("azure: %s as %s (%s)", url, account, source)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(10, jobs + 2), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    transport = RequestsTransport(session=session, session_owner=True, connection_timeout=connect_timeout,
                                  read_timeout=read_timeout)
    try:
        return BlobServiceClient(url, credential=credential, transport=transport, retry_policy=_retry_policy(retries),
                                 max_single_put_size=SINGLE_PUT_MAX, max_block_size=BLOCK_SIZE,
                                 max_single_get_size=32 * 1024 * 1024, user_agent="mediatools")
    except (ValueError, TypeError) as exc:
        raise MediatoolsError(f"cannot set up the Azure client: {type(exc).__name__}", code="azure_client") from None


def container_client(loc: AzureLocation, settings: Settings, **kw: Any) -> Any:
    return make_service_client(loc.account, settings, **kw).get_container_client(loc.container)


def md5_hex(content_md5: Any) -> str:
    """Azure's Content-MD5 (bytes from the SDK, or base64 text) as lowercase hex; "" when absent."""
    if not content_md5:
        return ""
    if isinstance(content_md5, str):
        try:
            content_md5 = b64decode(content_md5)
        except ValueError:
            return ""
    raw = bytes(content_md5)
    return raw.hex() if len(raw) == 16 else ""


def md5_bytes(hex_md5: str) -> bytearray:
    return bytearray(bytes.fromhex(hex_md5))


def error_code(exc: BaseException) -> str | None:
    """Azure's error code (``InternalError``, ``AuthenticationFailed``…) as text."""
    c = getattr(exc, "error_code", None)
    return str(getattr(c, "value", c)) if c else None


def error(exc: BaseException, where: str, what: str, code: str = "azure_error") -> MediatoolsError:
    """A one-line error from an SDK exception: status and Azure's error code, never a URL or header
    (a SAS token travels in the URL)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) in (401, 403):
        return MediatoolsError(f"cannot {what}: not authorized ({error_code(exc) or 'denied'}, "
                               f"HTTP {getattr(exc, 'status_code', None) or 403}); "
                               "set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, "
                               "or give --agora-storage-config", file=where, code="no_credentials")
    if isinstance(exc, ResourceNotFoundError):
        return MediatoolsError(f"cannot {what}: {error_code(exc) or 'not found'}", file=where,
                               code="not_found")
    if isinstance(exc, HttpResponseError):
        status = getattr(exc, "status_code", None)
        ecode = error_code(exc)
        if status is None:   # the SDK wraps a broken body this way
            return MediatoolsError(f"cannot {what}: connection failed ({type(exc).__name__})", file=where,
                                   code="azure_connection")
        return MediatoolsError(f"cannot {what}: {ecode or 'error'} (HTTP {status})", file=where, code=code)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return MediatoolsError(f"cannot {what}: connection failed ({type(exc).__name__})", file=where,
                               code="azure_connection")
    return MediatoolsError(f"cannot {what}: {type(exc).__name__}", file=where, code=code)


def list_blobs(container: Any, where: str, prefix: str) -> list[ObjectInfo]:
    from azure.core.exceptions import AzureError
    out: list[ObjectInfo] = []
    try:
        for b in container.list_blobs(name_starts_with=prefix or None, results_per_page=5000):
            cs = getattr(b, "content_settings", None)
            out.append(ObjectInfo(b.name, int(b.size or 0), str(b.etag or "").strip('"'),
                                  content_md5=md5_hex(getattr(cs, "content_md5", None))))
    except AzureError as exc:
        raise error(exc, where, "list", "azure_list") from None
    return out


class AzureDownloader(Downloader):
    """The verified-GET loop of :class:`Downloader` with one SDK download per blob.

    The SDK retries 500/503 and refused connections itself (``QuickRetry``) and reads the
    body; a body that breaks off or comes up short is retried here, and the body is checked
    against the blob's Content-MD5 when it has one (Azure stores it for single-shot uploads).
    """

    code_prefix = "azure_"

    def __init__(self, container: Any, *, retries: int = 5, checksum: bool = True, backoff_s: float = 0.2,
                 stop: threading.Event | None = None, jobs: int = 32):
        super().__init__(container, container.container_name, retries=retries, checksum=checksum,
                         backoff_s=backoff_s, stop=stop, jobs=jobs, direct=False)

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (ConnectionError, TimeoutError)

    def _open(self, obj: ObjectInfo) -> dict[str, Any]:
        from azure.core.exceptions import (
            AzureError,
            DecodeError,
            HttpResponseError,
            IncompleteReadError,
            ServiceResponseError,
        )
        try:
            stream = self.client.get_blob_client(obj.key).download_blob(max_concurrency=1)
            data = stream.readall()
        except (IncompleteReadError, DecodeError, ServiceResponseError) as exc:
            raise RetryBody(f"connection dropped mid-body ({type(exc).__name__})") from None
        except HttpResponseError as exc:
            if getattr(exc, "status_code", None) is None:   # a broken body, wrapped by the SDK's reader
                raise RetryBody(f"connection dropped mid-body ({type(exc).__name__})") from None
            err = error(exc, obj.key, "fetch")
            status = exc.status_code
            msg = err.message.replace("cannot fetch: ", "")
            if status and status >= 500:
                msg = f"failed after {self.retries} attempts: {msg}"
            raise TransferError(msg, file=obj.key, code="azure_" + (error_code(exc) or str(status)).lower()) from None
        except AzureError as exc:
            err = error(exc, obj.key, "fetch")
            raise TransferError(f"failed after {self.retries} attempts: {err.message.replace('cannot fetch: ', '')}",
                                file=obj.key, code=err.code) from None
        props = stream.properties
        return {"Body": _Bytes(data), "ContentLength": stream.size,
                "ContentMD5": md5_hex(getattr(props.content_settings, "content_md5", None)),
                "ETag": str(props.etag or "")}

    def _expected_md5(self, resp: dict[str, Any]) -> tuple[str | None, str]:
        return (resp.get("ContentMD5") or None), "Content-MD5"


class _Bytes:
    """A body already read, with the two methods the transfer loop uses."""

    def __init__(self, data: bytes):
        self._data = data

    def iter_chunks(self, size: int):  # noqa: ANN201
        for i in range(0, len(self._data), size):
            yield self._data[i:i + size]

    def close(self) -> None:
        pass


class AzureTransport:
    """What fetch needs from a vendor: a listing and a verified downloader."""

    def __init__(self, loc: AzureLocation, settings: Settings, *, jobs: int, retries: int, checksum: bool,
                 stop: threading.Event, container: Any = None):
        self.loc = loc
        self.container = container or container_client(loc, settings, jobs=jobs, retries=retries)
        self.downloader = AzureDownloader(self.container, retries=retries, checksum=checksum, stop=stop, jobs=jobs)

    def list(self, prefix: str) -> list[ObjectInfo]:
        return list_blobs(self.container, self.loc.url, prefix)

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass
