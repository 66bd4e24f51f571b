"""Finding and running ffmpeg: the one place every ffmpeg (and ffprobe) subprocess starts.

Order: ``$MEDIATOOLS_FFMPEG``, ``ffmpeg`` on PATH, then the binary inside the
``imageio-ffmpeg`` wheel — so no system ffmpeg is ever required. ffprobe is optional.
Commands are always argument lists (never a shell).

:func:`run` runs a command to completion; :func:`start` gives a :class:`FFmpegProcess`
whose stdin/stdout the caller streams. Either way stderr is drained by a thread (a chatty
ffmpeg can never stall on a full pipe), only its tail is kept, the process is killed and
reaped when the caller fails or is cancelled, and a failure is one :class:`FFmpegError`
that names the file and carries ffmpeg's last line.
"""
from __future__ import annotations

import collections
import functools
import itertools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from ..errors import MediatoolsError

log = logging.getLogger(__name__)


class FFmpegError(MediatoolsError):
    pass

def last_line(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"


def _grow_pipe(stream) -> None:  # noqa: ANN001
    """1 MiB pipes: fewer wake-ups between the processes (Linux only; harmless elsewhere)."""
    try:
        import fcntl
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (OSError, ImportError, ValueError):
        pass


def _shown(cmd: list[str]) -> str:
    """A command line for the debug log (arguments are paths and options, never secrets)."""
    return " ".join(cmd)


class Completed:
    """A finished command: exit code, stdout and the tail of stderr."""

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def last(self) -> str:
        return last_line(self.stderr)


def run(cmd: list[str], *, input: bytes | None = None, check: bool = True,
        error: str = "ffmpeg failed: {last}", file: str | None = None, code: str = "ffmpeg_failed",
        need_output: bool = False) -> Completed:
    """Run ``cmd`` to completion. With ``check``, a non-zero exit (or, with ``need_output``,
    an empty stdout) raises ``FFmpegError(error.format(last=<ffmpeg's last line>))``.
    An exception here (Ctrl-C included) kills and reaps the process."""
    log.debug("run %s", _shown(cmd))
    proc = subprocess.run(cmd, input=input, capture_output=True,
                          stdin=None if input is not None else subprocess.DEVNULL)
    done = Completed(proc.returncode, proc.stdout or b"", proc.stderr or b"")
    if check and (done.returncode != 0 or (need_output and not done.stdout)):
        raise FFmpegError(error.format(last=done.last), file=file, code=code)
    return done


class FFmpegProcess:
    """A running ffmpeg whose stdin and/or stdout the caller streams.

    Use as a context manager: leaving the block kills (if still running) and reaps it and
    closes its pipes, whether the block finished, failed or was interrupted."""

    TAIL = 64 << 10

    def __init__(self, cmd: list[str], *, stdin: bool = False, stdout: bool = False, bufsize: int = -1,
                 big_pipes: bool = False):
        log.debug("start %s", _shown(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, bufsize=bufsize)
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        if big_pipes:
            for s in (self.stdin, self.stdout):
                if s is not None:
                    _grow_pipe(s)
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        err = self.proc.stderr
        while True:
            try:
                chunk = err.read1(1 << 14) if hasattr(err, "read1") else err.read(1 << 14)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            while self._tail_size > self.TAIL and len(self._tail) > 1:
                self._tail_size -= len(self._tail.popleft())

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self) -> int:
        return self.proc.wait()

    def last_line(self) -> str:
        """ffmpeg's last stderr line (waits for the process and its stderr to end)."""
        self.proc.wait()
        self._drain.join(5)
        return last_line(b"".join(self._tail))

    def error(self, template: str = "ffmpeg failed: {last}", *, file: str | None = None,
              code: str = "ffmpeg_failed") -> FFmpegError:
        """The one-line error for this process (killing it first if it still runs)."""
        self.kill()
        return FFmpegError(template.format(last=self.last_line()), file=file, code=code)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """Kill if still running, reap, close the pipes."""
        self.kill()
        for s in (self.stdin, self.stdout):
            if s is not None and not s.closed:
                try:
                    s.close()
                except OSError:
                    pass
        self._drain.join(5)
        if not self.proc.stderr.closed:
            self.proc.stderr.close()

    def __enter__(self) -> FFmpegProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start(cmd: list[str], *, stdin: bool = False, stdout: bool = False, bufsize: int = -1,
          big_pipes: bool = False) -> FFmpegProcess:
    """Start ``cmd`` with the pipes asked for (the rest go to /dev/null)."""
    return FFmpegProcess(cmd, stdin=stdin, stdout=stdout, bufsize=bufsize, big_pipes=big_pipes)


def ffmpeg_path() -> str:
    """The ffmpeg to run, by ``MEDIATOOLS_FFMPEG`` and PATH as they are now."""
    from .. import settings
    return _resolve_ffmpeg(settings.get("MEDIATOOLS_FFMPEG"), os.environ.get("PATH", ""))


#: the oldest ffmpeg mediatools is tested with (Debian 12's); older ones are refused at start
MIN_VERSION = (5, 1)
_INSTALL = ("install ffmpeg 5.1 or newer (Debian 12: apt-get install ffmpeg), or point MEDIATOOLS_FFMPEG at one; "
            "with no ffmpeg on PATH the one in the imageio-ffmpeg wheel is used")


@functools.lru_cache(maxsize=16)
def _resolve_ffmpeg(env: str | None, path: str) -> str:
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise FFmpegError(f"MEDIATOOLS_FFMPEG={env} is not an executable file: {_INSTALL}")
        return _checked(env)
    found = shutil.which("ffmpeg")
    if found:
        return _checked(found)
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # pragma: no cover - depends on the wheel
        raise FFmpegError(f"no ffmpeg found ({exc}): {_INSTALL}") from None


def version_tuple(version: str) -> tuple[int, int] | None:
    """(major, minor) of an ffmpeg version string ("5.1.6-0+deb12u1", "n7.0", "7.1-static");
    None for a git build ("N-113385-g…"), which is taken as new enough."""
    m = re.match(r"n?(\d+)\.(\d+)", version)
    return (int(m[1]), int(m[2])) if m else None


def _checked(ffmpeg: str) -> str:
    """``ffmpeg`` when it runs and is at least :data:`MIN_VERSION`: a user's old ffmpeg on PATH
    fails here, once, in one line, instead of as every slice "unreadable"."""
    try:
        version = _version_of(ffmpeg)
    except (OSError, MediatoolsError) as exc:
        raise FFmpegError(f"{ffmpeg} does not run ({exc}): {_INSTALL}") from None
    if version == "unknown":
        raise FFmpegError(f"{ffmpeg} is not ffmpeg (no version line): {_INSTALL}")
    vt = version_tuple(version)
    if vt is not None and vt < MIN_VERSION:
        raise FFmpegError(f"{ffmpeg} is ffmpeg {version}, older than {MIN_VERSION[0]}.{MIN_VERSION[1]}: {_INSTALL}")
    return ffmpeg


def ffprobe_path() -> str | None:
    """ffprobe beside the chosen ffmpeg, else on PATH, else None."""
    return _resolve_ffprobe(ffmpeg_path())


@functools.lru_cache(maxsize=16)
def _resolve_ffprobe(ffmpeg: str) -> str | None:
    sib = Path(ffmpeg).with_name("ffprobe")
    if sib.is_file() and os.access(sib, os.X_OK):
        return str(sib)
    return shutil.which("ffprobe")


def ffmpeg_version() -> str:
    return _version_of(ffmpeg_path())


@functools.lru_cache(maxsize=16)
def _version_of(ffmpeg: str) -> str:
    out = run([ffmpeg, "-hide_banner", "-version"], check=False).stdout.decode("utf-8", "replace")
    m = re.match(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else "unknown"


def base_cmd() -> list[str]:
    return [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error"]


def raw_to_stdout(fmt: str) -> list[str]:
    """Output options for raw PCM (``f32le``, ``s16le``) read from ffmpeg's stdout.

    ``-flush_packets 0``: ffmpeg otherwise writes every decoded frame to the pipe on its own
    (≈ 1.3 KB at 16 kHz), and the reader wakes for each; with it, writes fill the 32 KB I/O
    buffer. verify of 8 users × 20 min: system time 5.5 → 3.6 s. The bytes are the same."""
    return ["-flush_packets", "0", "-f", fmt, "pipe:1"]


_ALIAS_LOCK = threading.Lock()
_ALIAS_COUNT = itertools.count()


@functools.lru_cache(maxsize=None)
def _alias_dir() -> tempfile.TemporaryDirectory:
    """One private folder per process; the cache keeps it alive until exit, when it is removed."""
    return tempfile.TemporaryDirectory(prefix="mediatools-alias-")


def mono_filter(channels: int) -> str | None:
    """The mix's own downmix to mono, the channels' mean ((L+R)/2), as a filter; None for mono.
    Not ``-ac 1``: libswresample gives (L+R)/sqrt(2), a centred voice 3 dB louder than the same
    voice sent mono, which is not what the mix (or its taps) hear."""
    if channels <= 1:
        return None
    return "pan=mono|c0=" + "+".join(f"{1 / channels:.6g}*c{i}" for i in range(channels))


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
