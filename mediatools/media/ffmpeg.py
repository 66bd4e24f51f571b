"""Finding and running ffmpeg: the I/O edge every media stage goes through.

Order: ``$MEDIATOOLS_FFMPEG``, ``ffmpeg`` on PATH, then the binary inside the
``imageio-ffmpeg`` wheel — so no system ffmpeg is ever required. ffprobe is optional.
Commands are always argument lists (never a shell).
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from ..errors import MediatoolsError
from ..recording.model import MediaInfo


class FFmpegError(MediatoolsError):
    pass


@functools.lru_cache(maxsize=None)
def ffmpeg_path() -> str:
    env = os.environ.get("MEDIATOOLS_FFMPEG")
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise FFmpegError(f"MEDIATOOLS_FFMPEG={env} is not an executable file")
        return env
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # pragma: no cover - depends on the wheel
        raise FFmpegError(f"no ffmpeg found (set MEDIATOOLS_FFMPEG, or install imageio-ffmpeg): {exc}")


@functools.lru_cache(maxsize=None)
def ffprobe_path() -> str | None:
    """ffprobe beside the chosen ffmpeg, else on PATH, else None."""
    sib = Path(ffmpeg_path()).with_name("ffprobe")
    if sib.is_file() and os.access(sib, os.X_OK):
        return str(sib)
    return shutil.which("ffprobe")


@functools.lru_cache(maxsize=None)
def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_path(), "-hide_banner", "-version"], capture_output=True, text=True)
    first = (out.stdout or "").splitlines()[0] if out.stdout else "unknown"
    m = re.match(r"ffmpeg version (\S+)", first)
    return m.group(1) if m else first


def base_cmd() -> list[str]:
    return [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error"]


_ALIAS_LOCK = threading.Lock()
_ALIAS_COUNT = itertools.count()


@functools.lru_cache(maxsize=None)
def _alias_dir() -> tempfile.TemporaryDirectory:
    """One private folder per process; the cache keeps it alive until exit, when it is removed."""
    return tempfile.TemporaryDirectory(prefix="mediatools-alias-")


def concat_url(paths: "list[str | Path]") -> str:
    """ffmpeg's ``concat:`` protocol input joining ``paths`` byte-wise (TS slices of a run).

    The protocol splits on ``|`` with no escape, and Agora allows ``|`` in channel names,
    so such paths are reached through symlinks with plain names in a private temp folder.
    """
    names = [str(p) for p in paths]
    for i, n in enumerate(names):
        if "|" in n:
            with _ALIAS_LOCK:
                link = Path(_alias_dir().name) / f"{next(_ALIAS_COUNT)}{Path(n).suffix}"
            os.symlink(os.path.abspath(n), link)
            names[i] = str(link)
    return "concat:" + "|".join(names)


def run(args: list[str], *, what: str = "ffmpeg", file: str | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg with ``args`` (after the base command); raise a one-line error on failure."""
    proc = subprocess.run(base_cmd() + args, capture_output=True)
    if proc.returncode != 0:
        raise FFmpegError(f"{what} failed: {last_line(proc.stderr)}", file=file, code="ffmpeg_failed")
    return proc


def last_line(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"


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
        proc = subprocess.run([fp, "-v", "error", "-print_format", "json", "-show_streams",
                               "-show_format", "-select_streams", "a:0", path], capture_output=True)
        if proc.returncode == 0:
            data = json.loads(proc.stdout or b"{}")
            streams = data.get("streams") or []
            if streams:
                s = streams[0]
                dur = (data.get("format") or {}).get("duration")
                br = s.get("bit_rate")
                return (MediaInfo(s.get("codec_name", "unknown"), int(s.get("sample_rate", 0)),
                                  int(s.get("channels", 0)), s.get("profile"),
                                  int(br) if br and str(br).isdigit() else None),
                        float(dur) if dur else None)
        raise FFmpegError(f"not a readable audio file ({last_line(proc.stderr)})", file=Path(path).name,
                          code="unreadable")
    proc = subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-i", path], capture_output=True)
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
    return (MediaInfo(m["codec"], int(m["rate"]), ch, profile,
                      int(m["kbps"]) * 1000 if m["kbps"] else None), dur)


def decoded_duration(path: str | Path, rate: int = 48000) -> float:
    """Exact playable duration in seconds, by decoding and counting samples."""
    proc = subprocess.run(base_cmd() + ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate),
                                        "-f", "s16le", "-"], capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise FFmpegError(f"cannot decode ({last_line(proc.stderr)})", file=Path(path).name,
                          code="unreadable")
    return len(proc.stdout) / 2 / rate
