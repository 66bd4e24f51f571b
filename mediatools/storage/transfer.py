"""The transfer layer: one verified GET per object, written under a temporary name.

:class:`Downloader` holds the vendor-neutral part (the retry loop, length and MD5 checks,
temporary name then rename, resume checks) and S3's GET; ``azure.AzureDownloader``
replaces only the GET and where the expected MD5 comes from.

Agora slices are small (~100-300 KB), so each is one GET: no HEAD (the listing
already gave size and ETag) and no ranged parts. botocore retries whole requests
(throttling, 5xx, refused connections); this layer also retries a body that
breaks off mid-way, comes up short, or does not match its MD5 ETag, because
those fail after botocore has handed the response over.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import threading
from pathlib import Path
from typing import Any, BinaryIO

from ..atomic import atomic_write
from ..errors import MediatoolsError
from .selection import ObjectInfo, etag_not_md5

CHUNK = 1 << 20
#: per folder, what was written for objects whose store gives no MD5 (a multipart or SSE-KMS
#: ETag, an Azure blob without Content-MD5): name → [ETag, size, MD5 of the bytes written]
RECORD = ".mediatools-fetched.json"


class TransferError(MediatoolsError):
    """An object that could not be fetched correctly after every retry."""


class Cancelled(Exception):
    """Raised inside workers once the run is interrupted."""


class RetryBody(Exception):
    """Raised by a transport's ``_open`` when the response arrived but its body broke off
    (the SDK read it already): the loop in ``_get`` waits and tries again."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def _body_errors() -> tuple[type[BaseException], ...]:
    from botocore import exceptions as be
    errs: list[type[BaseException]] = [be.IncompleteReadError, be.ReadTimeoutError, be.ConnectionClosedError,
                                       be.EndpointConnectionError, ConnectionError, TimeoutError]
    for name in ("ResponseStreamingError", "ConnectTimeoutError"):
        if hasattr(be, name):
            errs.append(getattr(be, name))
    try:
        from urllib3.exceptions import HTTPError as U3Error
        errs.append(U3Error)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def file_md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class Downloader:
    """Fetches objects of one bucket through one (thread-safe) boto3 client."""

    def __init__(self, client: Any, bucket: str, *, retries: int = 5, checksum: bool = True,
                 backoff_s: float = 0.2, stop: threading.Event | None = None, jobs: int = 32,
                 direct: bool | None = None):
        self.client = client
        self.bucket = bucket
        self.retries = max(1, retries)
        self.checksum = checksum
        self.backoff_s = backoff_s
        self.stop = stop or threading.Event()
        self._body_errors = self._errors()
        self._http = _direct_pool(client, jobs, self.retries) if direct is not False else None
        self._pools: dict[str, Any] = {}
        self._made: set[Path] = set()
        self._records: dict[Path, dict[str, list]] = {}
        self._dirty: set[Path] = set()
        self._rec_lock = threading.Lock()

    def _errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions that mean "the body broke off": retried by the loop in ``_get``."""
        return _body_errors()

    def _folder(self, target: Path) -> None:
        """Create the target's folder once per run."""
        if target.parent not in self._made:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MediatoolsError(f"cannot write ({exc.strerror})", file=str(target), code="unwritable") from None
            self._made.add(target.parent)

    # -- checks ---------------------------------------------------------------
    def is_complete(self, obj: ObjectInfo, path: Path) -> bool:
        """A local file already holds this object: same length and the same MD5, the store's or,
        when the store gives none, the one recorded when this tool wrote the file for the same
        ETag (a file it cannot vouch for is fetched again: length alone says nothing)."""
        try:
            if path.stat().st_size != obj.size:
                return False
        except OSError:
            return False
        if not self.checksum:
            return True
        entry = self._record_of(path.parent).get(path.name)
        recorded = isinstance(entry, list) and len(entry) == 3 and entry[0] == obj.etag and entry[1] == obj.size
        if not obj.md5 and not recorded:
            return False
        have = file_md5(path)
        # an SSE-KMS object's ETag looks like an MD5 in a listing and is none: the record vouches
        return have == obj.md5 or (recorded and have == entry[2])

    def _remember(self, obj: ObjectInfo, path: Path, md5: str) -> None:
        """Note what was just written for ``obj`` (``md5``: of those bytes) when the store gives
        no MD5 to check it by (none, or an ETag that is no MD5: multipart, SSE-KMS, SSE-C)."""
        if obj.md5 == md5 or not self.checksum:
            return
        rec = self._record_of(path.parent)
        with self._rec_lock:
            rec[path.name] = [obj.etag, obj.size, md5]
            self._dirty.add(path.parent)

    def save_records(self) -> None:
        """Write the folders' records (at the end of a fetch, interrupted or not)."""
        with self._rec_lock:
            dirty, self._dirty = sorted(self._dirty), set()
            for folder in dirty:
                try:
                    with atomic_write(folder / RECORD, part=False) as f:
                        f.write(json.dumps(self._records[folder], sort_keys=True).encode())
                except (OSError, MediatoolsError):
                    pass   # the next run fetches those objects again

    def _record_of(self, folder: Path) -> dict[str, list]:
        with self._rec_lock:
            rec = self._records.get(folder)
            if rec is None:
                try:
                    rec = json.loads((folder / RECORD).read_text())
                except (OSError, ValueError):
                    rec = {}
                rec = rec if isinstance(rec, dict) else {}
                self._records[folder] = rec
            return rec

    # -- fetching -------------------------------------------------------------
    def read(self, obj: ObjectInfo) -> bytes:
        buf = io.BytesIO()
        self._get(obj, buf)
        return buf.getvalue()

    def download(self, obj: ObjectInfo, target: Path) -> int:
        """GET into ``.mediatools-tmp-<name>.part``, verify, rename. Returns bytes written."""
        self._folder(target)
        with atomic_write(target) as f:
            n, md5 = self._get(obj, f)
        self._remember(obj, target, md5)
        return n

    def write(self, data: bytes, target: Path, obj: ObjectInfo | None = None) -> None:
        """Store bytes already fetched and verified (playlists are read before slices are chosen),
        as those of ``obj`` when given."""
        self._folder(target)
        with atomic_write(target) as f:
            f.write(data)
        if obj is not None:
            self._remember(obj, target, hashlib.md5(data, usedforsecurity=False).hexdigest())

    def _get(self, obj: ObjectInfo, sink: BinaryIO) -> tuple[int, str]:
        """(bytes written to ``sink``, their MD5)."""
        last = ""
        for attempt in range(1, self.retries + 1):
            if self.stop.is_set():
                raise Cancelled()
            sink.seek(0)
            sink.truncate()
            try:
                resp = self._open(obj)
            except RetryBody as exc:
                last = exc.why
                self._sleep(attempt)
                continue
            body = resp["Body"]
            h = hashlib.md5(usedforsecurity=False)
            n = 0
            try:
                for chunk in body.iter_chunks(CHUNK):
                    if self.stop.is_set():
                        body.close()
                        raise Cancelled()
                    h.update(chunk)
                    sink.write(chunk)
                    n += len(chunk)
            except self._body_errors as exc:
                last = f"connection dropped mid-body after {n} bytes ({type(exc).__name__})"
                self._sleep(attempt)
                continue
            expected = resp.get("ContentLength")
            if expected is not None and n != expected:
                last = f"body is {n} bytes, expected {expected}"
                self._sleep(attempt)
                continue
            want, what = self._expected_md5(resp)
            if self.checksum and want and h.hexdigest() != want:
                last = f"MD5 {h.hexdigest()} does not match {what} {want}"
                self._sleep(attempt)
                continue
            return n, h.hexdigest()
        raise TransferError(f"failed after {self.retries} attempts: {last}", file=obj.key,
                            code=f"{self.code_prefix}failed")

    code_prefix = "s3_"

    def _expected_md5(self, resp: dict[str, Any]) -> tuple[str | None, str]:
        """(hex MD5 the body must have, what it came from); S3: a single-part, unencrypted ETag."""
        etag = (resp.get("ETag") or "").strip('"').lower()
        md5_etag = etag if len(etag) == 32 and "-" not in etag else None
        return (None if etag_not_md5(resp) else md5_etag), "ETag"

    def _open(self, obj: ObjectInfo) -> dict[str, Any]:
        """Send the GET; {"Body", "ContentLength", "ETag", …} like boto3's get_object."""
        if self._http is not None:
            return self._open_direct(obj)
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=obj.key)
        except ClientError as exc:
            # botocore has already retried throttling and 5xx ``retries`` times
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise self._http_error(obj, status, str(err.get("Code", "error")), err.get("Message")) from None
        except self._body_errors as exc:
            raise TransferError(f"failed after {self.retries} attempts: connection failed ({type(exc).__name__})",
                                file=obj.key, code="s3_connection") from None
        except BotoCoreError as exc:
            raise TransferError(str(exc), file=obj.key, code="s3_error") from None

    def _open_direct(self, obj: ObjectInfo) -> dict[str, Any]:
        """botocore signs (a presigned URL), urllib3 fetches: half the CPU per small object.

        urllib3 retries refused connections, 5xx and 503 SlowDown with backoff, as
        botocore's standard mode would. Its exception texts hold the signed URL, so
        only their type names ever reach a message.
        """
        from urllib3.exceptions import HTTPError as U3Error
        url = self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": obj.key},
                                                 ExpiresIn=3600)
        try:
            _, _, host, path = url.split("/", 3)
            pool = self._pools.get(host)   # one endpoint: skip the manager's per-request pool lookup
            if pool is None:
                pool = self._pools.setdefault(host, self._http.connection_from_url(url))
            # the pool carries the manager's Retry (5xx, SlowDown, refused connections)
            r = pool.urlopen("GET", "/" + path, preload_content=False, decode_content=False, redirect=False)
        except U3Error as exc:
            why = type(getattr(exc, "reason", None) or exc).__name__
            raise TransferError(f"failed after {self.retries} attempts: connection failed ({why})",
                                file=obj.key, code="s3_connection") from None
        if r.status != 200:
            data = r.data[:4096].decode("utf-8", "replace")
            r.release_conn()
            code = _xml_field(data, "Code") or f"HTTP{r.status}"
            raise self._http_error(obj, r.status, code, _xml_field(data, "Message"))
        h = r.headers
        length = h.get("Content-Length")
        return {"Body": _Stream(r), "ContentLength": int(length) if length is not None else None,
                "ETag": h.get("ETag", ""), "ServerSideEncryption": h.get("x-amz-server-side-encryption"),
                "SSECustomerAlgorithm": h.get("x-amz-server-side-encryption-customer-algorithm")}

    def _http_error(self, obj: ObjectInfo, status: int, code: str, message: str | None) -> TransferError:
        msg = f"{code} (HTTP {status})" + (f": {message}" if message else "")
        if status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout"):
            msg = f"failed after {self.retries} attempts: {msg}"
        return TransferError(msg, file=obj.key, code="s3_" + code.lower())

    def _sleep(self, attempt: int) -> None:
        if attempt >= self.retries:
            return
        delay = min(5.0, self.backoff_s * (2 ** (attempt - 1))) * (0.5 + random.random() / 2)
        if self.stop.wait(delay):
            raise Cancelled()


class _Stream:
    """urllib3 response with the two methods the transfer loop uses."""

    def __init__(self, r: Any):
        self._r = r

    def iter_chunks(self, size: int):  # noqa: ANN201
        try:
            yield from self._r.stream(size)
        finally:
            self._r.release_conn()

    def close(self) -> None:
        self._r.release_conn()


def _xml_field(text: str, tag: str) -> str | None:
    a, b = text.find(f"<{tag}>"), text.find(f"</{tag}>")
    return text[a + len(tag) + 2:b] if 0 <= a < b else None


def _direct_pool(client: Any, jobs: int, retries: int) -> Any:
    """A urllib3 pool for presigned GETs, or None where botocore must send requests
    itself (a proxy configured in the environment, a TLS setting this pool cannot
    mirror, or ``MEDIATOOLS_S3_DIRECT=0``).

    Certificates are checked against the CA bundle botocore resolved for this client
    (``AWS_CA_BUNDLE``, the profile's ``ca_bundle``, ``REQUESTS_CA_BUNDLE``), so both
    paths trust the same authorities.
    """
    from .. import settings
    if not settings.get("MEDIATOOLS_S3_DIRECT") or any(
            os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    try:
        import urllib3
        from botocore.httpsession import get_cert_path
    except ImportError:  # pragma: no cover
        return None
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    verify = getattr(session, "_verify", None)
    if verify is None:
        return None            # botocore internals changed: let it send the requests
    cfg = client.meta.config
    if getattr(cfg, "client_cert", None) or getattr(cfg, "proxies", None):
        return None
    retry = urllib3.util.Retry(total=max(0, retries - 1), connect=max(0, retries - 1), read=0,
                               status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                               backoff_factor=0.2, raise_on_status=False, respect_retry_after_header=True)
    timeout = urllib3.Timeout(connect=cfg.connect_timeout, read=cfg.read_timeout)
    if verify is False:
        tls: dict[str, Any] = {"cert_reqs": "CERT_NONE"}
    else:
        ca = get_cert_path(verify)
        if not ca or not os.path.exists(ca):
            return None        # botocore reports a missing CA bundle in its own words
        tls = {"cert_reqs": "CERT_REQUIRED", ("ca_cert_dir" if os.path.isdir(ca) else "ca_certs"): ca}
    return urllib3.PoolManager(num_pools=4, maxsize=max(10, jobs + 2), retries=retry, timeout=timeout, **tls)
