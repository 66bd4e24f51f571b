"""Agora request JSON: the ``transcodeOptions`` a postpone mix was asked for."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .documents import find_key, read_json

#: what ``transcodeOptions.container.format`` may say
AGORA_FORMATS = ("mp3", "m4a", "aac")


@dataclass
class TranscodeOptions:
    format: str | None = None        # mp3, m4a, aac
    sample_rate: int | None = None
    bitrate: int | None = None       # bits/s
    channels: int | None = None


def load_transcode_options(path: str | Path) -> TranscodeOptions:
    p = Path(path)
    doc = read_json(p)
    opts = find_key(doc, "transcodeOptions") or doc
    if not isinstance(opts, dict) or not ({"container", "audio"} & set(opts)):
        raise UsageError("no transcodeOptions (container/audio) found", file=str(p), code="bad_json")
    container = opts.get("container") or {}
    audio = opts.get("audio") or {}
    fmt = container.get("format") or None
    if fmt is not None and (not isinstance(fmt, str) or fmt.lower() not in AGORA_FORMATS):
        raise UsageError(f"container.format {fmt!r} is not one Agora's postpone mix offers "
                              f"({', '.join(AGORA_FORMATS)})", file=str(p), code="bad_json")
    try:
        return TranscodeOptions(
            format=fmt.lower() if fmt else None,
            sample_rate=int(audio["sampleRate"]) if audio.get("sampleRate") else None,
            bitrate=int(audio["bitrate"]) if audio.get("bitrate") else None,
            channels=int(audio["channels"]) if audio.get("channels") else None)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad audio value in transcodeOptions ({exc})", file=str(p), code="bad_json") from None
