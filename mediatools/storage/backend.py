"""A small object-store interface: list / head / get / put-file / put-bytes / exists / delete.

``process`` reads recordings from, and publishes results to, an S3-compatible bucket, an
Azure Blob container or a local folder through this one interface. Keys are
``/``-separated strings; a local store refuses any key that could land outside its root
(the same rules as fetch). Remote stores also say where fetch should read a prefix from
(``location(prefix)``).
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Protocol

from ..atomic import atomic_path
from ..errors import MediatoolsError, UsageError
from .location import AzureLocation, S3Location, Settings, parse_azure_url
from .selection import ObjectInfo, etag_not_md5, refusal

log = logging.getLogger(__name__)

CONTENT_TYPES = {".m4a": "audio/mp4", ".mp3": "audio/mpeg", ".aac": "audio/aac", ".wav": "audio/wav",
                 ".flac": "audio/flac", ".opus": "audio/ogg", ".ogg": "audio/ogg", ".json": "application/json",
                 ".ts": "video/mp2t", ".mka": "audio/x-matroska", ".webm": "audio/webm",
                 ".html": "text/html; charset=utf-8", ".vtt": "text/vtt; charset=utf-8",
                 ".rttm": "text/plain; charset=utf-8", ".csv": "text/csv; charset=utf-8",
                 ".txt": "text/plain; charset=utf-8"}
MULTIPART_THRESHOLD = 8 * 1024 * 1024


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


class Store(Protocol):
    """Where recordings are read from and results are published to."""

    url: str      # safe to print: no credentials

    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def head(self, key: str) -> ObjectInfo | None: ...
    def get(self, key: str) -> bytes: ...
    def put_file(self, path: Path, key: str, content_type: str) -> ObjectInfo: ...
    def put_bytes(self, data: bytes, key: str, content_type: str) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class RemoteStore(Store, Protocol):
    def location(self, prefix: str) -> S3Location | AzureLocation: ...


def _check_key(key: str) -> None:
    why = refusal(key)
    if why:
        raise MediatoolsError(f"refused key ({why})", file=key, code="refused_key")


class LocalStore:
    """A folder as a store. ETags are ``size-mtime_ns`` so a rewritten file reads as changed."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.url = str(root)

    def path(self, key: str) -> Path:
        _check_key(key)
        p = (self.root / key).resolve()
        if p != self.root and self.root not in p.parents:
            raise MediatoolsError("key would land outside the destination", file=key, code="refused_key")
        return p

    def _info(self, key: str, p: Path) -> ObjectInfo:
        st = p.stat()
        return ObjectInfo(key, st.st_size, f"{st.st_size}-{st.st_mtime_ns}")

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        if not self.root.is_dir():
            raise MediatoolsError("no such folder", file=self.url, code="not_found")
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for fn in sorted(filenames):
                if fn.startswith("."):
                    continue   # temporaries and hidden files are not objects
                key = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                if key.startswith(prefix):
                    try:
                        out.append(self._info(key, Path(dirpath) / fn))
                    except OSError:
                        continue
        return out

    def head(self, key: str) -> ObjectInfo | None:
        p = self.path(key)
        return self._info(key, p) if p.is_file() else None

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except OSError as exc:
            raise MediatoolsError(f"cannot read ({exc.strerror})", file=key, code="store_read") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put_file(self, path: Path, key: str, content_type: str) -> ObjectInfo:
        target = self.path(key)
        with _written(target) as tmp:
            shutil.copyfile(path, tmp)
        return self._info(key, target)

    def put_bytes(self, data: bytes, key: str, content_type: str) -> ObjectInfo:
        target = self.path(key)
        with _written(target) as tmp:
            tmp.write_bytes(data)
        return self._info(key, target)

    def delete(self, key: str) -> None:
        """Remove the file and any folders it leaves empty (up to the root)."""
        p = self.path(key)
        try:
            p.unlink()
        except FileNotFoundError:
            return
        for folder in p.parents:
            if folder == self.root or self.root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def _written(target: Path) -> Iterator[Path]:
    """A temporary name beside ``target`` (its folders made), renamed to it at the end; a
    destination that is a file, read-only or full is one line naming it, not an OSError."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            yield tmp
    except OSError as exc:
        raise MediatoolsError(f"cannot write ({exc.strerror or exc})", file=str(target),
                              code="store_write") from None


class S3Store:
    """An S3-compatible bucket; uploads use boto3's managed transfer (multipart past 8 MiB)."""

    def __init__(self, bucket: str, settings: Settings | None = None, *, client: Any = None, retries: int = 5):
        from .client import make_client
        self.bucket = bucket
        self.settings = settings or Settings()
        self.client = client or make_client(self.settings, jobs=8, retries=retries)
        self.url = f"s3://{bucket}/"

    def location(self, prefix: str) -> S3Location:
        return S3Location(self.bucket, prefix)

    def _error(self, exc: BaseException, key: str, what: str) -> MediatoolsError:
        from botocore.exceptions import ClientError, NoCredentialsError
        if isinstance(exc, NoCredentialsError):
            return MediatoolsError("no credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile "
                                   "or --agora-storage-config)", file=f"s3://{self.bucket}/{key}",
                                   code="no_credentials")
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            msg = f"cannot {what}: {err.get('Code', 'error')} ({err.get('Message', '')})".replace(" ()", "")
        else:
            msg = f"cannot {what}: {type(exc).__name__}: {exc}"
        return MediatoolsError(msg, file=f"s3://{self.bucket}/{key}", code="s3_error")

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        from .fetch import list_objects
        return list_objects(self.client, S3Location(self.bucket, prefix), prefix)

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._error(exc, key, "read") from None
        except BotoCoreError as exc:
            raise self._error(exc, key, "read") from None
        return ObjectInfo(key, int(r.get("ContentLength", 0)), str(r.get("ETag", "")).strip('"'),
                          opaque_etag=etag_not_md5(r))

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "read") from None

    def download(self, key: str, path: Path) -> None:
        """The object into the local file ``path`` (boto3's managed transfer)."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.client.download_file(self.bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "read") from None

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def put_file(self, path: Path, key: str, content_type: str) -> ObjectInfo:
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError
        cfg = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD,
                             max_concurrency=4)
        size = Path(path).stat().st_size
        last: BaseException | None = None
        for attempt in (1, 2):   # botocore retries each request; this retries a whole failed transfer once
            try:
                self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type},
                                        Config=cfg)
                got = self.head(key)
                if got is not None and got.size == size:
                    return got
                last = MediatoolsError(f"uploaded object has {got.size if got else 'no'} bytes, expected {size}",
                                       file=f"s3://{self.bucket}/{key}", code="s3_error")
            except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
                last = exc
            log.info("upload of %s failed (attempt %d): %s", key, attempt, last)
        if isinstance(last, MediatoolsError):
            raise last
        # boto3 says "Failed to upload <local file> to <bucket>/<key>: <why>"; keep only the why
        why = _short(last).split(f"{self.bucket}/{key}: ", 1)[-1]
        raise MediatoolsError(f"upload failed: {why}", file=f"s3://{self.bucket}/{key}", code="s3_upload") from None

    def put_bytes(self, data: bytes, key: str, content_type: str) -> ObjectInfo:
        from botocore.exceptions import BotoCoreError, ClientError
        digest = hashlib.md5(data, usedforsecurity=False)
        md5 = digest.hexdigest()
        try:   # Content-MD5: S3 itself refuses a body that arrived damaged, encrypted or not
            r = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                       ContentMD5=base64.b64encode(digest.digest()).decode())
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "write") from None
        etag = str(r.get("ETag", "")).strip('"')
        opaque = etag_not_md5(r)
        if etag and not opaque and etag != md5:
            raise MediatoolsError("stored object's ETag does not match its MD5", file=f"s3://{self.bucket}/{key}",
                                  code="s3_error")
        return ObjectInfo(key, len(data), etag, opaque_etag=opaque)

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "delete") from None


class AzureStore:
    """An Azure Blob Storage container. Uploads: one Put Blob up to 8 MiB, past that 8 MiB
    blocks staged in parallel (4 at once) and committed as one block list; Content-Type and
    Content-MD5 are set on every blob, so fetch can check it later."""

    def __init__(self, account: str, container: str, settings: Settings | None = None, *, client: Any = None,
                 retries: int = 5):
        from .azure import container_client
        self.account, self.container_name = account, container
        self.settings = settings or Settings()
        loc = AzureLocation(account, container)
        self.container = client or container_client(loc, self.settings, jobs=8, retries=retries)
        self.url = f"azure://{account}/{container}/"

    def location(self, prefix: str) -> AzureLocation:
        return AzureLocation(self.account, self.container_name, prefix)

    def _where(self, key: str) -> str:
        return f"{self.url}{key}"

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        from .azure import list_blobs
        return list_blobs(self.container, self.url, prefix)

    def head(self, key: str) -> ObjectInfo | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        from .azure import error, md5_hex
        try:
            p = self.container.get_blob_client(key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise error(exc, self._where(key), "read") from None
        return ObjectInfo(key, int(p.size or 0), str(p.etag or "").strip('"'),
                          content_md5=md5_hex(p.content_settings.content_md5))

    def get(self, key: str) -> bytes:
        from azure.core.exceptions import AzureError

        from .azure import error
        try:
            return self.container.get_blob_client(key).download_blob(max_concurrency=1).readall()
        except AzureError as exc:
            raise error(exc, self._where(key), "read") from None

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def _upload(self, data: Any, key: str, content_type: str, md5_hex_: str, size: int) -> ObjectInfo:
        from azure.core.exceptions import AzureError
        from azure.storage.blob import ContentSettings

        from .azure import UPLOAD_CONCURRENCY, error, md5_bytes
        settings = ContentSettings(content_type=content_type, content_md5=md5_bytes(md5_hex_))
        try:
            r = self.container.get_blob_client(key).upload_blob(data, length=size, overwrite=True,
                                                                content_settings=settings,
                                                                max_concurrency=UPLOAD_CONCURRENCY)
        except AzureError as exc:
            raise error(exc, self._where(key), "write", "azure_upload") from None
        got = self.head(key)
        if got is None or got.size != size:
            raise MediatoolsError(f"uploaded blob has {got.size if got else 'no'} bytes, expected {size}",
                                  file=self._where(key), code="azure_upload")
        if got.md5 and got.md5 != md5_hex_:
            raise MediatoolsError("stored blob's Content-MD5 differs from the file's", file=self._where(key),
                                  code="azure_upload")
        return ObjectInfo(key, size, str(r.get("etag") or got.etag).strip('"'), content_md5=md5_hex_)

    def put_file(self, path: Path, key: str, content_type: str) -> ObjectInfo:
        from .transfer import file_md5
        md5 = file_md5(Path(path))
        size = Path(path).stat().st_size
        last: MediatoolsError | None = None
        for attempt in (1, 2):   # the SDK retries each request; this retries a whole failed upload once
            try:
                with open(path, "rb") as f:
                    return self._upload(f, key, content_type, md5, size)
            except MediatoolsError as exc:
                last = exc
                log.info("upload of %s failed (attempt %d): %s", key, attempt, exc.message)
        assert last is not None
        raise last

    def put_bytes(self, data: bytes, key: str, content_type: str) -> ObjectInfo:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return self._upload(data, key, content_type, md5, len(data))

    def delete(self, key: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        from .azure import error
        try:
            self.container.get_blob_client(key).delete_blob()
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise error(exc, self._where(key), "delete") from None


def _short(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else "unknown error"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def split_location(where: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ("s3://bucket/", "a/b/"); ``azure://acct/cont/a/b`` → ("azure://acct/cont/",
    "a/b/"); a folder → (folder, ""). Prefixes are folders here."""
    if where.startswith("azure://"):
        loc = parse_azure_url(where)
        prefix = loc.prefix if (not loc.prefix or loc.prefix.endswith("/")) else loc.prefix + "/"
        return f"azure://{loc.account}/{loc.container}/", prefix
    if where.startswith("s3://"):
        rest = where[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise UsageError(f"no bucket in {where}")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return f"s3://{bucket}/", prefix
    return where, ""


def open_store(where: str, settings: Settings | None = None, *, retries: int = 5) -> tuple[Store, str]:
    """(store, key prefix) for ``s3://bucket/prefix``, ``azure://account/container/prefix`` or a local
    folder; ``retries``: attempts per request."""
    from ..agora.vendors import AZURE_VENDOR
    base, prefix = split_location(where)
    if base.startswith("azure://"):
        loc = parse_azure_url(base)
        return AzureStore(loc.account, loc.container, settings, retries=retries), prefix
    if base.startswith("s3://") and settings is not None and settings.vendor == AZURE_VENDOR:
        raise UsageError("vendor 5 (Microsoft Azure Blob) has no S3 API; give the address as "
                         "azure://ACCOUNT/CONTAINER/PREFIX")
    if base.startswith("s3://"):
        return S3Store(base[len("s3://"):].rstrip("/"), settings, retries=retries), prefix
    return LocalStore(base), prefix
