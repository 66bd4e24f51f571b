"""SOURCE arguments: a local folder, or an ``s3://`` / ``azure://`` URL fetched into a reusable cache."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MediatoolsError, UsageError

if TYPE_CHECKING:
    from .fetch import FetchReport

log = logging.getLogger(__name__)


def store_target(source: str | None, opts: dict[str, Any]):  # noqa: ANN201
    """(S3Location or AzureLocation, Settings) from a SOURCE and the shared bucket options."""
    from . import load_agora_storage_config, settings_from_options
    from .location import AzureLocation, S3Location, parse_location, with_overrides

    cfg_file = opts.get("agora_storage_config")
    if cfg_file:
        loc, settings = load_agora_storage_config(cfg_file, endpoint_url=opts.get("endpoint_url"),
                                                  region=opts.get("region"))
        settings = with_overrides(settings, profile=opts.get("profile"),
                                  unsigned=opts.get("no_sign_request") or None)
        if source:
            given = parse_location(source)
            if type(given) is not type(loc):
                raise UsageError(f"{source} is not where the storage config's vendor keeps files "
                                 f"({'azure://ACCOUNT/CONTAINER/PREFIX' if isinstance(loc, AzureLocation) else 's3://BUCKET/PREFIX'})")
            loc = given.at(given.prefix or loc.prefix) if isinstance(given, AzureLocation) else \
                S3Location(given.bucket, given.prefix or loc.prefix)
        return loc, settings
    if not source:
        raise UsageError("give s3://BUCKET/PREFIX, azure://ACCOUNT/CONTAINER/PREFIX or --agora-storage-config FILE")
    loc = parse_location(source)
    settings = settings_from_options(endpoint_url=opts.get("endpoint_url"), region=opts.get("region"),
                                     profile=opts.get("profile"), vendor=opts.get("vendor"),
                                     region_code=opts.get("region_code"),
                                     unsigned=bool(opts.get("no_sign_request")))
    return loc, settings


s3_target = store_target   # the name before Azure


def cache_folder(cache_dir: str | None, endpoint: str | None, bucket: str) -> Path:
    """One folder per endpoint and bucket (``azure-<account>/<container>`` for Azure), so equal
    bucket names on two stores never mix."""
    if cache_dir:
        root = Path(cache_dir)
    else:
        from platformdirs import user_cache_dir
        root = Path(user_cache_dir("mediatools")) / "s3"
    default = "azure" if "/" in bucket else "aws"   # an Azure key is azure-<account>/<container>
    host = default if not endpoint else hashlib.sha1(endpoint.encode()).hexdigest()[:10]
    return root / host / bucket


def resolve_source(source: str, opts: dict[str, Any], *, sid: str | None = None,
                   uids: list[str] | None = None) -> tuple[Path, FetchReport | None]:
    """The local folder holding the recording, and the fetch report when ``source`` is ``s3://`` or
    ``azure://`` (fetched, or refreshed, into the cache first). ``opts``: the bucket options by name."""
    from .location import is_remote
    if is_remote(source) or (opts.get("agora_storage_config") and not Path(source).exists()):
        return fetch_to_cache(source if is_remote(source) else None, opts, sid=sid, uids=uids)
    p = Path(source)
    if not p.exists():
        raise MediatoolsError("no such file or folder", file=source, code="not_found")
    if not p.is_dir():
        raise MediatoolsError("not a folder (SOURCE is the folder holding the recording)", file=source,
                              code="not_a_folder")
    return p, None


def fetch_to_cache(source: str | None, opts: dict[str, Any], *, sid: str | None,
                   uids: list[str] | None) -> tuple[Path, FetchReport]:
    """Fetch what a command needs into the cache folder and return that folder; a file that
    cannot be fetched is an error (a partial recording would mix wrongly)."""
    from . import FetchOptions, Selection, fetch

    loc, settings = store_target(source, opts)
    folder = cache_folder(opts.get("cache_dir"), settings.endpoint_url, loc.cache_key)
    dest = folder / loc.folder
    dest.mkdir(parents=True, exist_ok=True)
    rep = fetch(loc, dest, FetchOptions(selection=Selection(sid=sid, uids=frozenset(uids or ())), settings=settings,
                                        jobs=opts.get("jobs") or 32, retries=opts.get("retries") or 5))
    log.info("%s: %d fetched, %d reused from cache %s", loc.url, len(rep.fetched), len(rep.skipped), dest)
    if rep.failed:
        f = rep.failed[0]
        raise MediatoolsError(f"{f['error']} ({len(rep.failed)} file(s) could not be fetched)", file=f["file"],
                              code="fetch_failed")
    return dest, rep
