"""``ProcessOptions``: every setting of ``process`` in one object, from code, TOML or flags.

A Dask task carries this object, so it holds no secrets: credentials come from the
environment, a named profile, or the Agora storage-config *file* it names (read on the
worker). Only the fields in :data:`OUTPUT_FIELDS` change what is written; their digest
goes into the manifest, so changing one reprocesses a recording and nothing else does.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import MediatoolsError, UsageError

FORMATS = ("m4a", "mp3", "aac")
DEFAULT_TEMPLATE = "{sid}_{cname}_0.{ext}"
#: fields whose values change the published outputs (and so the manifest's options digest)
OUTPUT_FIELDS = ("format", "sample_rate", "channels", "bitrate", "normalize", "stems", "verify", "name_template",
                 "transcode", "activity", "report")


@dataclass
class ProcessOptions:
    # where the recordings are and how to reach the store (no secrets)
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    vendor: int | None = None
    region_code: int | None = None
    agora_storage_config: str | None = None
    no_sign_request: bool = False
    dest: str | None = None                 # default: next to each recording
    # which recordings
    sids: list[str] = field(default_factory=list)
    all: bool = False
    since: str | None = None                # UTC time or relative ("24h"), by the first slice
    until: str | None = None
    # what to make
    format: str = "m4a"
    transcode_options: str | None = None    # Agora transcodeOptions JSON file (read once, by the caller)
    transcode: dict[str, Any] = field(default_factory=dict)  # its values: format, sample_rate, channels, bitrate
    sample_rate: int | None = None
    channels: int | None = None
    bitrate: str | None = None
    normalize: str = "limit"
    stems: bool = False
    activity: bool = False                  # speech-activity exports under <sid>_<cname>_activity/
    report: bool = False                    # the HTML timeline report beside the mix
    verify: bool = True
    name_template: str = DEFAULT_TEMPLATE
    # how to run
    force: bool = False
    wait_s: float = 0.0
    poll_s: float = 30.0
    lost_after: str | None = None           # an age ("6h"): listed slices missing that long after the end are lost
    workers: int | None = None              # LocalCluster workers (default: cores); 0 runs in this process
    scheduler: str | None = None            # tcp://HOST:PORT of an existing Dask cluster
    retries: int = 1
    jobs: int = 16                          # S3 requests in flight per recording
    request_attempts: int = 5               # attempts per S3 request (botocore's retries)
    scratch_dir: str | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, origin: str = "options") -> "ProcessOptions":
        """Keys may use ``-`` or ``_``; an unknown key or a wrong type is a usage error naming it."""
        if not isinstance(doc, dict):
            raise UsageError("expected a table of options", file=origin)
        doc = dict(doc.get("process", doc)) if isinstance(doc.get("process"), dict) else dict(doc)
        known = {f.name: f for f in fields(cls)}
        kw: dict[str, Any] = {}
        for raw, value in doc.items():
            name = str(raw).replace("-", "_")
            name = _FLAG_NAMES.get(name, name)   # the flags' own names: sid, wait, poll
            if name.startswith("no_") and name[3:] in _NEGATABLE and isinstance(value, bool):
                name, value = name[3:], not value        # no-verify = true, as --no-verify
            if name not in known:
                raise UsageError(f"unknown option {raw!r}", file=origin)
            kw[name] = _coerce(name, value, origin)
        return cls(**kw).validated(origin)

    @classmethod
    def from_toml(cls, path: str | Path) -> "ProcessOptions":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read ({exc.strerror})", file=str(p)) from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"not valid TOML ({exc})", file=str(p)) from None
        return cls.from_dict(doc, origin=str(p))

    def merged(self, **overrides: Any) -> "ProcessOptions":
        """These options with every override that is not None (command-line flags over a config file)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None}).validated()

    def validated(self, origin: str = "options") -> "ProcessOptions":
        if self.format not in FORMATS:
            raise UsageError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}", file=origin)
        if self.normalize not in ("none", "limit", "ebu"):
            raise UsageError(f"normalize must be none, limit or ebu, not {self.normalize!r}", file=origin)
        if self.channels not in (None, 1, 2):
            raise UsageError("channels must be 1 or 2", file=origin)
        if self.retries < 0 or self.wait_s < 0 or (self.workers is not None and self.workers < 0):
            raise UsageError("retries, wait and workers must not be negative", file=origin)
        if self.retries > 20:    # as --retries allows
            raise UsageError(f"retries must be 0 to 20, not {self.retries}", file=origin)
        if self.poll_s < 0.1:
            raise UsageError("poll must be at least 0.1 s", file=origin)
        from .naming import check_template
        check_template(self.name_template)
        for sid in self.sids:
            check_sid(sid)
        for when in (self.since, self.until):
            if when is not None:
                parse_when(when)
        if self.since is not None and self.until is not None:
            now = int(time.time() * 1000)
            if parse_when(self.since, now) >= parse_when(self.until, now):
                raise UsageError(f"since ({self.since}) must be before until ({self.until})", file=origin)
        from ..media.formats import FORMATS as OUTPUTS
        from ..media.formats import check_bitrate, check_rate
        check_bitrate(self.bitrate)
        if self.sample_rate is not None:
            check_rate(OUTPUTS[self.format], self.sample_rate)
        if self.lost_after is not None:
            parse_age(self.lost_after, "lost_after")
        return self

    def lost_before_ms(self, now_ms: int | None = None) -> int | None:
        """Slices of a recording whose last slice started before this (Unix ms) may be given up as lost."""
        if self.lost_after is None:
            return None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return now_ms - int(parse_age(self.lost_after, "lost_after") * 1000)

    def with_transcode_file(self) -> "ProcessOptions":
        """Read ``transcode_options`` into ``transcode`` (done once by the caller, not on each worker)."""
        if not self.transcode_options or self.transcode:
            return self
        from ..agora.transcode import load_transcode_options
        t = load_transcode_options(self.transcode_options)
        values = {k: v for k, v in asdict(t).items() if v is not None}
        if values.get("format") and values["format"] not in FORMATS:
            raise MediatoolsError(f"container format {values['format']!r} is not one of {', '.join(FORMATS)}",
                                  file=self.transcode_options, code="bad_json")
        return replace(self, transcode=values)

    # --- what the outputs depend on ----------------------------------------------------------
    @property
    def ext(self) -> str:
        return self.transcode.get("format") or self.format

    def mix_settings(self) -> dict[str, Any]:
        """Effective format, rate, channels and bitrate: flags over transcodeOptions over defaults."""
        t = self.transcode
        bitrate = self.bitrate or (str(t["bitrate"]) if t.get("bitrate") else None)
        return {"format": self.ext, "sample_rate": self.sample_rate or t.get("sample_rate") or 48000,
                "channels": self.channels or t.get("channels") or 2, "bitrate": bitrate, "normalize": self.normalize}

    def output_options(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in OUTPUT_FIELDS}
        d.update(self.mix_settings())
        return d

    def options_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.output_options(), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: command-line flag names whose option field is named otherwise
_FLAG_NAMES = {"sid": "sids", "wait": "wait_s", "poll": "poll_s"}
#: options with a --no-… flag
_NEGATABLE = {"stems", "activity", "report", "verify"}
_INT = {"vendor", "region_code", "sample_rate", "channels", "workers", "retries", "jobs", "request_attempts"}
_FLOAT = {"wait_s", "poll_s"}
_BOOL = {"no_sign_request", "all", "stems", "verify", "force", "activity", "report"}


def _coerce(name: str, value: Any, origin: str) -> Any:
    try:
        if name == "sids":
            return [str(v) for v in (value if isinstance(value, list) else [value])]
        if name == "transcode":
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        if name in _BOOL:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if name in _INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if name in _FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            if not math.isfinite(value):   # TOML has nan and inf
                raise UsageError(f"option {name!r} must be a finite number, not {value}", file=origin)
            return float(value)
        if value is None or isinstance(value, str):
            return value
        if name == "bitrate" and isinstance(value, int):
            return str(value)
        raise TypeError
    except TypeError:
        raise UsageError(f"option {name!r} has the wrong type ({type(value).__name__})", file=origin) from None


_SID = re.compile(r"[A-Za-z0-9]+")


def check_sid(sid: str) -> str:
    """A sid as Agora's name grammar has it (letters and digits): nothing else can reach a key."""
    if not isinstance(sid, str) or not _SID.fullmatch(sid):
        raise UsageError(f"not a recording id (letters and digits only): {sid!r}")
    return sid


_REL = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _relative_s(text: str) -> float | None:
    """``6h``, ``90m``, ``2d`` → seconds; None for anything else."""
    m = _REL.fullmatch(text)
    return float(m[1]) * _UNIT[m[2]] if m else None


def parse_age(text: str, what: str = "age") -> float:
    """An age such as ``6h``, ``90m``, ``2d`` (or plain seconds) → seconds."""
    t = str(text).strip()
    rel = _relative_s(t)
    if rel is not None:
        return rel
    try:
        v = float(t)
    except ValueError:
        v = -1.0
    if v < 0:
        raise UsageError(f"{what} takes an age (6h, 90m, 2d, or seconds), not {text!r}")
    return v


def parse_when(text: str, now_ms: int | None = None) -> int:
    """``--since``/``--until``: relative (``24h``, ``90m``, ``7d``: that long ago) or UTC (ISO 8601,
    or Agora's ``YYYYMMDDHHMMSSmmm``) → Unix ms, rounded up: slice times are whole ms, and
    ``first >= ceil(t)`` is ``first >= t`` for both bounds, so a sub-ms bound never admits a slice
    before it (``--since``) or turns away one before it (``--until``)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    t = text.strip()
    rel = _relative_s(t)
    if rel is not None:
        return now_ms - math.floor(rel * 1000)
    if re.fullmatch(r"\d{17}", t):
        from ..agora.names import parse_utc
        try:
            return parse_utc(t)
        except ValueError:
            pass
    from ..timeline.timespec import iso_utc_us
    try:
        us = iso_utc_us(t)
    except ValueError:
        raise UsageError(f"--since/--until takes a UTC time (2026-03-14T09:00:00Z) or an age (24h, 90m, 7d), "
                         f"not {text!r}") from None
    return -(-us // 1000)
