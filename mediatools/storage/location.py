"""Which bucket (or Azure container), which prefix, which endpoint and which credentials.

Two kinds of address: ``s3://BUCKET/PREFIX`` (:class:`S3Location`, every S3-compatible
vendor) and ``azure://ACCOUNT/CONTAINER/PREFIX`` (:class:`AzureLocation`, Agora's vendor 5).
Credentials only ever live in :class:`Settings` fields that are excluded from its
``repr`` and never copied into reports or messages.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Union

from ..agora.documents import find_key, read_json
from ..agora.vendors import AZURE_VENDOR, endpoint_for
from ..errors import MediatoolsError, UsageError


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str = ""   # "" or ending in "/" unless the user asked for a partial key prefix

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def folder(self) -> str:
        return prefix_folder(self.prefix)

    @property
    def cache_key(self) -> str:
        """The cache sub-folder for this store (joined below an endpoint folder)."""
        return self.bucket

    def at(self, prefix: str) -> "S3Location":
        return S3Location(self.bucket, prefix)


@dataclass(frozen=True)
class AzureLocation:
    """A prefix in an Azure Blob Storage container: ``azure://ACCOUNT/CONTAINER/PREFIX``."""
    account: str
    container: str
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"azure://{self.account}/{self.container}/{self.prefix}"

    @property
    def bucket(self) -> str:   # the name fetch reports use for "where"
        return self.container

    @property
    def folder(self) -> str:
        return prefix_folder(self.prefix)

    @property
    def cache_key(self) -> str:
        return f"azure-{self.account}/{self.container}"

    def at(self, prefix: str) -> "AzureLocation":
        return AzureLocation(self.account, self.container, prefix)


Location = Union[S3Location, AzureLocation]


def prefix_folder(prefix: str) -> str:
    """The folder a key prefix names: itself when it ends in ``/``, else up to its last ``/``
    (``a/b/sid`` → ``a/b/``): names below it keep their sub-path locally."""
    return prefix if (not prefix or prefix.endswith("/")) else prefix[:prefix.rfind("/") + 1]


def parse_s3_url(url: str) -> S3Location:
    if not url.startswith("s3://"):
        raise UsageError(f"not an s3:// URL: {url}")
    rest = url[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"no bucket in {url}")
    return S3Location(bucket, prefix)


_AZURE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_AZURE_CONTAINER = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def is_azure_account(name: str) -> bool:
    return bool(_AZURE_ACCOUNT.fullmatch(name))


def azure_name_problem(account: str, container: str) -> tuple[str, str] | None:
    """Which name breaks Azure's rules (``"account"`` or ``"container"``) and how, or None.

    The account becomes the host name (``ACCOUNT.blob.core.windows.net``), so nothing but
    Azure's own alphabet may reach it: no dot, slash or colon can point a request elsewhere."""
    if not is_azure_account(account):
        return "account", "a storage account name is 3-24 lowercase letters and digits"
    if not _AZURE_CONTAINER.fullmatch(container):
        return "container", "a container name is 3-63 lowercase letters, digits and single hyphens"
    return None


def parse_azure_url(url: str) -> AzureLocation:
    if not url.startswith("azure://"):
        raise UsageError(f"not an azure:// URL: {url}")
    account, _, rest = url[len("azure://"):].partition("/")
    container, _, prefix = rest.partition("/")
    if not account or not container:
        raise UsageError(f"give azure://ACCOUNT/CONTAINER/PREFIX, not {url}")
    bad = azure_name_problem(account, container)
    if bad:
        raise UsageError(f"{bad[1]}: {url}")
    return AzureLocation(account, container, prefix)


def is_remote(source: str) -> bool:
    return source.startswith(("s3://", "azure://"))


def parse_location(url: str) -> S3Location | AzureLocation:
    """``s3://…`` or ``azure://…`` → its location."""
    if url.startswith("azure://"):
        return parse_azure_url(url)
    if url.startswith("s3://"):
        return parse_s3_url(url)
    raise UsageError(f"not a bucket URL (s3://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX): {url}")


@dataclass(frozen=True)
class Settings:
    """How to reach the store. Secrets are kept out of repr().

    S3 uses ``access_key``/``secret_key``/``session_token``; Azure uses
    ``azure_account_key``, ``azure_sas_token`` or ``azure_connection_string`` (when none is
    set, the standard environment variables are read when the client is made).
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: str = "auto"
    unsigned: bool = False
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    vendor: int | None = None
    azure_account_key: str | None = field(default=None, repr=False)
    azure_sas_token: str | None = field(default=None, repr=False)
    azure_connection_string: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """Safe one-line description (no secrets)."""
        if self.vendor == AZURE_VENDOR:
            return self.endpoint_url or "Azure Blob Storage"
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"


def settings_from_options(*, endpoint_url: str | None = None, region: str | None = None,
                          profile: str | None = None, vendor: int | None = None,
                          region_code: int | None = None, unsigned: bool = False) -> Settings:
    if vendor == AZURE_VENDOR:   # no S3 API: the azure:// address says where; region codes do not matter
        return Settings(endpoint_url=endpoint_url, region=region, vendor=vendor, unsigned=unsigned)
    if vendor is not None:
        ep = endpoint_for(vendor, region_code, endpoint_url)
        return Settings(endpoint_url=endpoint_url or ep.endpoint_url, region=region or ep.region,
                        profile=profile, addressing_style=ep.addressing_style, unsigned=unsigned)
    if region_code is not None:
        raise UsageError("--region-code needs --vendor")
    return Settings(endpoint_url=endpoint_url, region=region, profile=profile, unsigned=unsigned)


def load_agora_storage_config(path: str | Path, *, endpoint_url: str | None = None,
                              region: str | None = None) -> tuple[S3Location | AzureLocation, Settings]:
    """Read Agora's ``storageConfig`` (bare, or inside a whole ``start`` request body).

    Vendor 5 (Microsoft Azure): ``bucket`` is the container, ``accessKey`` the storage
    account name and ``secretKey`` its access key; ``region`` (Agora's Azure region code)
    does not change the address, which is ``https://<accessKey>.blob.core.windows.net``
    unless ``endpoint_url`` says otherwise. Errors name the file and the field, never a
    value: the file holds secrets.
    """
    p = Path(path)
    doc = read_json(p)
    cfg = find_key(doc, "storageConfig")
    if cfg is None and isinstance(doc, dict) and "bucket" in doc:
        cfg = doc
    if not isinstance(cfg, dict):
        raise MediatoolsError("no storageConfig object found", file=str(p), code="bad_json")
    missing = [k for k in ("vendor", "bucket") if k not in cfg]
    if missing:
        raise MediatoolsError(f"storageConfig lacks {', '.join(missing)}", file=str(p), code="bad_json")
    try:
        vendor = int(cfg["vendor"])
        code = int(cfg.get("region", 0) or 0)
    except (TypeError, ValueError):
        raise MediatoolsError("storageConfig vendor/region must be numbers", file=str(p), code="bad_json") from None
    prefix_parts = cfg.get("fileNamePrefix") or []
    if isinstance(prefix_parts, str):
        prefix_parts = [prefix_parts]
    if not isinstance(prefix_parts, list) or not all(isinstance(x, str) for x in prefix_parts):
        raise MediatoolsError("storageConfig fileNamePrefix must be a list of strings", file=str(p),
                              code="bad_json")
    prefix = "".join(f"{part}/" for part in prefix_parts if part)
    if vendor == AZURE_VENDOR:
        account = cfg.get("accessKey")
        if not isinstance(account, str) or not account:
            raise MediatoolsError("storageConfig for vendor 5 (Azure) needs accessKey (the storage account name)",
                                  file=str(p), code="bad_storage_config")
        key = cfg.get("secretKey")
        bad = azure_name_problem(account, str(cfg["bucket"]))
        if bad:
            # neither value is echoed: if the two were swapped, accessKey holds the account key
            what, why = bad
            swapped = what == "account" and isinstance(key, str) and is_azure_account(key)
            field_is = "accessKey is the account" if what == "account" else "bucket is the container"
            raise MediatoolsError(f"storageConfig for vendor 5 (Azure): {field_is}, and {why}"
                                  + ("; accessKey and secretKey look swapped (accessKey is the account name, "
                                     "secretKey its key)" if swapped else ""), file=str(p), code="bad_storage_config")
        settings = Settings(endpoint_url=endpoint_url, region=region, vendor=vendor,
                            azure_account_key=key if isinstance(key, str) and key else None)
        return AzureLocation(account, str(cfg["bucket"]), prefix), settings
    ext = cfg.get("extensionParams")
    ext_endpoint = ext.get("endpoint") if isinstance(ext, dict) else None
    try:
        ep = endpoint_for(vendor, code, endpoint_url or ext_endpoint)
    except UsageError as exc:
        raise MediatoolsError(str(exc), file=str(p), code="bad_storage_config") from None
    settings = Settings(endpoint_url=endpoint_url or ep.endpoint_url, region=region or ep.region,
                        addressing_style=ep.addressing_style,
                        access_key=cfg.get("accessKey") or None, secret_key=cfg.get("secretKey") or None)
    return S3Location(str(cfg["bucket"]), prefix), settings


def with_overrides(settings: Settings, **kw: object) -> Settings:
    return replace(settings, **{k: v for k, v in kw.items() if v is not None})
