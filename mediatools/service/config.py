"""The service's settings: a TOML file, then command-line flags, then secrets.

Secrets (the NCS secret, the API token, the outgoing-notification secret) come only
from environment variables or files named by the settings. A TOML file that holds a
secret's value is refused, so one never lands in a config repository. Secrets are
kept out of ``repr`` and out of :meth:`ServeConfig.public`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import UsageError
from ..storage.location import S3Location, Settings, parse_s3_url, settings_from_options

SECRET_ENV = {"ncs_secret": "MEDIATOOLS_NCS_SECRET", "api_token": "MEDIATOOLS_API_TOKEN",
              "notify_secret": "MEDIATOOLS_NOTIFY_SECRET"}
DEFAULT_TASK = "mediatools.service.tasks:run_job"
_FORBIDDEN = set(SECRET_ENV) | {"secret", "token", "password"}


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    sources: list[str] = field(default_factory=list)          # s3://bucket/prefix
    db: str = "mediatools-serve.db"                           # SQLite path or postgresql://…
    workers: int | None = None                                # LocalCluster worker processes
    scheduler: str | None = None                              # tcp://HOST:PORT of an existing cluster
    worker_nice: int = 10                 # local workers' priority: media work yields to the receiver
    notify_url: str | None = None
    accept_sha1: bool = False
    sweep_interval_s: float = 300.0
    sweep_quiet_s: float = 120.0          # a recording untouched this long counts as finished
    lease_s: float = 60.0
    max_attempts: int = 5
    backoff_base_s: float = 5.0
    backoff_max_s: float = 600.0
    incomplete_retry_s: float = 120.0     # 32 / incomplete: look again this much later
    incomplete_deadline_s: float = 48 * 3600.0   # Agora's backup may take this long
    backup_wait_s: float = 60.0           # process's wait for a 32 job, per attempt
    poll_s: float = 0.5
    shutdown_grace_s: float = 20.0        # SIGTERM: how long running jobs may finish
    notify_max_attempts: int = 12
    # storage (fetch's bucket options)
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    vendor: int | None = None
    region_code: int | None = None
    no_sign_request: bool = False
    # process options, passed to ProcessOptions.from_dict
    process: dict[str, Any] = field(default_factory=dict)
    # secret files (paths only; values from here or the environment)
    ncs_secret_file: str | None = None
    api_token_file: str | None = None
    notify_secret_file: str | None = None
    # the function a Dask task runs (module:function): one place wires the pipeline in
    task: str = "mediatools.service.tasks:run_job"   # DEFAULT_TASK
    # filled by load_secrets(), never printed
    ncs_secret: bytes = field(default=b"", repr=False)
    api_token: bytes = field(default=b"", repr=False)
    notify_secret: bytes = field(default=b"", repr=False)

    def locations(self) -> list[S3Location]:
        return [parse_s3_url(s) for s in self.sources]

    def storage(self) -> Settings:
        return settings_from_options(endpoint_url=self.endpoint_url, region=self.region, profile=self.profile,
                                     vendor=self.vendor, region_code=self.region_code,
                                     unsigned=self.no_sign_request)

    def public(self) -> dict[str, Any]:
        """Settings safe to show: no secret values (file paths only say where they are)."""
        skip = {"ncs_secret", "api_token", "notify_secret"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def storage_flags(cfg: ServeConfig) -> dict[str, Any]:
    """The bucket options as process takes them."""
    return {"endpoint_url": cfg.endpoint_url, "region": cfg.region, "profile": cfg.profile, "vendor": cfg.vendor,
            "region_code": cfg.region_code, "no_sign_request": cfg.no_sign_request}


def from_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read ({exc.strerror})", file=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"not TOML ({exc})", file=str(p)) from None
    top = doc
    doc = dict(doc.get("serve", doc))          # a [serve] table, or the top level
    bad = sorted(k for k in {*doc, *top} if k in _FORBIDDEN)   # beside a [serve] table too
    if bad:
        raise UsageError(f"secrets do not belong in a config file ({', '.join(bad)}): use the environment "
                         f"or the *_file settings", file=str(p))
    known = {f.name for f in fields(ServeConfig)} - {"ncs_secret", "api_token", "notify_secret"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise UsageError(f"unknown settings: {', '.join(unknown)}", file=str(p))
    return doc


def build(toml: dict[str, Any], flags: dict[str, Any]) -> ServeConfig:
    """TOML values, overridden by flags that were given (not None, not empty)."""
    merged = dict(toml)
    for k, v in flags.items():
        if v is None or v == () or v == []:
            continue
        if k == "process":
            merged["process"] = {**merged.get("process", {}), **v}
        else:
            merged[k] = list(v) if isinstance(v, tuple) else v
    cfg = ServeConfig(**{k: _typed(k, v) for k, v in merged.items()})
    if not cfg.sources:
        raise UsageError("give at least one --source s3://bucket/prefix (or sources in --config)")
    cfg.sources = [source_folder(s) for s in cfg.sources]
    if cfg.scheduler and cfg.workers:
        raise UsageError("--workers starts a local cluster; it does not go with --scheduler")
    if not 0 <= cfg.worker_nice <= 19:
        raise UsageError("--worker-nice must be 0 to 19")
    if cfg.notify_url:
        check_notify_url(cfg.notify_url)
    return cfg


#: (lowest, highest) for numeric settings; every float must also be finite
_RANGES: dict[str, tuple[float, float]] = {
    "port": (1, 65535), "workers": (1, 256), "sweep_interval_s": (1, 86400 * 7),
    "sweep_quiet_s": (0, 86400 * 7), "lease_s": (1, 86400), "max_attempts": (1, 1000), "backoff_base_s": (0, 86400),
    "backoff_max_s": (0, 86400 * 7), "incomplete_retry_s": (1, 86400), "incomplete_deadline_s": (0, 86400 * 365),
    "backup_wait_s": (0, 86400), "poll_s": (0.01, 3600), "shutdown_grace_s": (0, 3600),
    "notify_max_attempts": (1, 1000), "vendor": (0, 100), "region_code": (0, 1000)}
_KINDS = {f.name: f.type for f in fields(ServeConfig)}


def _typed(name: str, value: Any) -> Any:
    """A setting checked against its field's type and range (a TOML ``lease_s = "60"`` ran a
    service whose dispatcher failed every round; ``port = 99999`` listened on 34463)."""
    import math
    kind = str(_KINDS.get(name, "")).replace(" ", "")
    optional = kind.endswith("|None")
    base = kind.removesuffix("|None")
    if value is None and optional:
        return None

    def bad(what: str) -> UsageError:
        return UsageError(f"setting {name} must be {what}, not {value!r}")

    if base == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if base in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (base == "int" and not
                                                                              isinstance(value, int)):
            raise bad("an integer" if base == "int" else "a number")
        if not math.isfinite(value):
            raise bad("a finite number")
        lo, hi = _RANGES.get(name, (-math.inf, math.inf))
        if not lo <= value <= hi:
            raise bad(f"from {lo:g} to {hi:g}")
        return float(value) if base == "float" else value
    if base == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if base == "list[str]":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return list(value)
    if base.startswith("dict"):
        if not isinstance(value, dict):
            raise bad("a table")
        return value
    return value


def check_notify_url(url: str) -> None:
    """An http(s) URL with a host and no credentials in it: a ``user:password@`` would be a
    secret in the command line or config file, and in every error urllib then logs. (The
    URL itself is never echoed here.)"""
    from urllib.parse import urlsplit
    try:
        u = urlsplit(url)
        u.port   # noqa: B018 - raises on a port that is no number
    except ValueError:
        raise UsageError("--notify-url is not a valid URL") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise UsageError("--notify-url must be an http:// or https:// URL with a host")
    if u.username is not None or u.password is not None or "@" in u.netloc:
        raise UsageError("--notify-url must not carry credentials (user:password@host): the receiver checks "
                         "the Agora-Signature-V2 header, keyed with MEDIATOOLS_NOTIFY_SECRET")


def source_folder(url: str) -> str:
    """A source as the folder it names: ``s3://b/recordings`` is ``s3://b/recordings/``, never
    every key beginning with "recordings" (nor, through the folder above it, the whole bucket)."""
    loc = parse_s3_url(url)
    prefix = loc.prefix if not loc.prefix or loc.prefix.endswith("/") else loc.prefix + "/"
    return f"s3://{loc.bucket}/{prefix}"


def _read_secret(env: str, path: str | None, what: str) -> bytes:
    if path:
        try:
            value = Path(path).read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the {what} file ({exc.strerror})", file=path) from None
    else:
        value = os.environ.get(env, "").strip().encode()
    return value


def load_secrets(cfg: ServeConfig) -> None:
    """Fill the secrets; both the NCS secret and the API token are required."""
    cfg.ncs_secret = _read_secret(SECRET_ENV["ncs_secret"], cfg.ncs_secret_file, "NCS secret")
    cfg.api_token = _read_secret(SECRET_ENV["api_token"], cfg.api_token_file, "API token")
    cfg.notify_secret = (_read_secret(SECRET_ENV["notify_secret"], cfg.notify_secret_file, "notify secret")
                         or cfg.ncs_secret)
    for name in SECRET_ENV.values():   # read once: the workers and every ffmpeg they start need none
        os.environ.pop(name, None)
    if not cfg.ncs_secret:
        raise UsageError("no NCS secret: set MEDIATOOLS_NCS_SECRET or give --ncs-secret-file")
    if not cfg.api_token:
        raise UsageError("no API token: set MEDIATOOLS_API_TOKEN or give --api-token-file")
    if len(cfg.api_token) < 16:
        raise UsageError("the API token is too short (16 characters at least)")
