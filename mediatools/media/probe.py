"""Probing media files: codec, rate and channels, container duration, decoded duration.

ffprobe's JSON where ffprobe exists, else ffmpeg's own stream line (the bundled
imageio-ffmpeg ships no ffprobe).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..recording.model import MediaInfo
from .ffmpeg import FFmpegError, base_cmd, ffmpeg_path, ffprobe_path, last_line, raw_to_stdout, run

_STREAM_RE = re.compile(
    r"Stream #\d+:\d+.*?: Audio: (?P<codec>[\w\-]+)(?: \((?P<profile>[^)]*)\))?.*?, (?P<rate>\d+) Hz, "
    r"(?P<layout>[^,]+)(?:, [^,]+)?(?:, (?P<kbps>\d+) kb/s)?")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.1": 6, "5.1(side)": 6, "7.1": 8}


def probe(path: str | Path) -> tuple[MediaInfo, float | None]:
    """Codec, rate and channels of the first audio stream, and the container duration (s)."""
    path = str(path)
    fp = ffprobe_path()
    if fp:
        proc = run([fp, "-v", "error", "-print_format", "json", "-show_streams",
                    "-show_format", "-select_streams", "a:0", path], check=False)
        if proc.returncode == 0:
            data = json.loads(proc.stdout or b"{}")
            streams = data.get("streams") or []
            if streams:
                s = streams[0]
                dur = (data.get("format") or {}).get("duration")
                br = s.get("bit_rate")
                return _usable(MediaInfo(s.get("codec_name", "unknown"), int(s.get("sample_rate", 0)),
                                         int(s.get("channels", 0)), s.get("profile"),
                                         int(br) if br and str(br).isdigit() else None),
                               float(dur) if dur else None, path)
        raise FFmpegError(f"not a readable audio file ({last_line(proc.stderr)})", file=Path(path).name,
                          code="unreadable")
    proc = run([ffmpeg_path(), "-hide_banner", "-nostdin", "-i", path], check=False)
    err = proc.stderr.decode("utf-8", "replace")
    m = _STREAM_RE.search(err)
    if not m:
        raise FFmpegError(f"not a readable audio file ({last_line(err)})", file=Path(path).name,
                          code="unreadable")
    layout = m["layout"].strip()
    ch = _LAYOUTS.get(layout)
    if ch is None:
        mm = re.match(r"(\d+) channels", layout)
        ch = int(mm.group(1)) if mm else 0
    d = _DURATION_RE.search(err)
    dur = int(d[1]) * 3600 + int(d[2]) * 60 + float(d[3]) if d else None
    profile = m["profile"] if m["profile"] and "/" not in m["profile"] else None
    return _usable(MediaInfo(m["codec"], int(m["rate"]), ch, profile,
                             int(m["kbps"]) * 1000 if m["kbps"] else None), dur, path)


def _usable(info: MediaInfo, dur: float | None, path: str) -> tuple[MediaInfo, float | None]:
    """A stream whose rate or channel count FFmpeg could not find (0 Hz, 0 channels: no frame
    in the file decodes) is unreadable, not a format change that every stage would divide by."""
    if info.sample_rate <= 0 or info.channels <= 0:
        raise FFmpegError(f"not a readable audio file ({info.codec}, {info.sample_rate} Hz, "
                          f"{info.channels} channels: no frame decodes)", file=Path(path).name, code="unreadable")
    return info, dur


def decoded_duration(path: str | Path, rate: int = 48000) -> float:
    """Exact playable duration in seconds, by decoding and counting samples."""
    proc = run(base_cmd() + ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate)] + raw_to_stdout("s16le"),
               error="cannot decode ({last})", file=Path(path).name, code="unreadable", need_output=True)
    return len(proc.stdout) / 2 / rate
