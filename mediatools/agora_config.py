"""Agora request JSON: the ``transcodeOptions`` a postpone mix was asked for."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import MediatoolsError


@dataclass
class TranscodeOptions:
    format: str | None = None        # mp3, m4a, aac
    sample_rate: int | None = None
    bitrate: int | None = None       # bits/s
    channels: int | None = None


def _find(doc: object, key: str) -> object | None:
    """Depth-first search for ``key``: accepts the bare object or a whole request body."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for v in doc.values():
            found = _find(v, key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for v in doc:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def load_transcode_options(path: str | Path) -> TranscodeOptions:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise MediatoolsError(f"cannot read ({exc.strerror})", file=str(p), code="unreadable") from None
    except ValueError as exc:
        raise MediatoolsError(f"not JSON ({exc})", file=str(p), code="bad_json") from None
    opts = _find(doc, "transcodeOptions") or doc
    if not isinstance(opts, dict) or not ({"container", "audio"} & set(opts)):
        raise MediatoolsError("no transcodeOptions (container/audio) found", file=str(p), code="bad_json")
    container = opts.get("container") or {}
    audio = opts.get("audio") or {}
    try:
        return TranscodeOptions(
            format=(container.get("format") or None),
            sample_rate=int(audio["sampleRate"]) if audio.get("sampleRate") else None,
            bitrate=int(audio["bitrate"]) if audio.get("bitrate") else None,
            channels=int(audio["channels"]) if audio.get("channels") else None)
    except (TypeError, ValueError) as exc:
        raise MediatoolsError(f"bad audio value in transcodeOptions ({exc})", file=str(p), code="bad_json") from None
