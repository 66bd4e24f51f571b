"""The output formats mix and merge write: container, codec, default bitrate, constraints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class OutputFormat:
    name: str
    muxer: str
    codec: str
    bitrate: str | None       # default bitrate
    priming: int = 0          # decoder delay the container cannot signal (samples), fed early instead
    rates: tuple[int, ...] = ()  # allowed sample rates, () = any


FORMATS: dict[str, OutputFormat] = {
    "m4a": OutputFormat("m4a", "ipod", "aac", "128k"),
    "aac": OutputFormat("aac", "adts", "aac", "128k", priming=1024),
    "mp3": OutputFormat("mp3", "mp3", "libmp3lame", "128k"),
    "wav": OutputFormat("wav", "wav", "pcm_s16le", None),
    "flac": OutputFormat("flac", "flac", "flac", None),
    "opus": OutputFormat("opus", "opus", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
    "ogg": OutputFormat("ogg", "ogg", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
}


def format_for(path: str | Path, explicit: str | None = None) -> OutputFormat:
    name = (explicit or Path(path).suffix.lstrip(".")).lower()
    if name not in FORMATS:
        raise UsageError(f"unknown output format {name!r} (use one of {', '.join(FORMATS)})",
                         file=str(path), code="bad_format")
    return FORMATS[name]
