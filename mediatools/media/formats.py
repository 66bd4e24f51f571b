"""The output formats mix and merge write: container, codec, default bitrate, constraints."""
from __future__ import annotations

import re
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


#: the rates AAC signals (ADTS / MPEG-4 sampling-frequency index) and MPEG audio layer III has
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
MP3_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)

FORMATS: dict[str, OutputFormat] = {
    "m4a": OutputFormat("m4a", "ipod", "aac", "128k", rates=AAC_RATES),
    "aac": OutputFormat("aac", "adts", "aac", "128k", priming=1024, rates=AAC_RATES),
    "mp3": OutputFormat("mp3", "mp3", "libmp3lame", "128k", rates=MP3_RATES),
    "wav": OutputFormat("wav", "wav", "pcm_s16le", None),
    "flac": OutputFormat("flac", "flac", "flac", None),
    "opus": OutputFormat("opus", "opus", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
    "ogg": OutputFormat("ogg", "ogg", "libopus", "96k", rates=(48000, 24000, 16000, 12000, 8000)),
}


_BITRATE = re.compile(r"[1-9][0-9]*(\.[0-9]+)?[kKmM]?\Z")


def check_rate(fmt: OutputFormat, rate: int) -> None:
    """A usage error unless ``fmt`` can store ``rate`` (and the rate is a sound one at all)."""
    if not 8000 <= rate <= 192000 and not (fmt.rates and rate in fmt.rates):
        raise UsageError(f"--sample-rate {rate} Hz: use 8000 to 192000")
    if fmt.rates and rate not in fmt.rates:
        raise UsageError(f"{fmt.name} cannot store {rate} Hz (use one of {', '.join(map(str, fmt.rates))})",
                         code="bad_rate")


def check_bitrate(bitrate: str | None) -> None:
    """A usage error unless ``bitrate`` reads as ffmpeg's bit rates do (``128k``, ``96000``, ``1.5M``)."""
    if bitrate is not None and not _BITRATE.match(str(bitrate)):
        raise UsageError(f"--bitrate {bitrate!r}: give bits per second, e.g. 128k or 96000")


def format_for(path: str | Path, explicit: str | None = None) -> OutputFormat:
    name = (explicit or Path(path).suffix.lstrip(".")).lower()
    if name not in FORMATS:
        raise UsageError(f"unknown output format {name!r} (use one of {', '.join(FORMATS)})",
                         file=str(path), code="bad_format")
    return FORMATS[name]
