"""Atomic outputs: write under a temporary name beside the target, rename when complete.

A failure, Ctrl-C or SIGTERM (turned into KeyboardInterrupt by the CLI) removes the
temporary file, so no half-written file ever sits under the final name.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import MediatoolsError

TMP_PREFIX = ".mediatools-tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder (same suffix, so ffmpeg picks the muxer)."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise MediatoolsError("output folder does not exist", file=str(folder), code="no_output_dir")
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=folder)
    except OSError as exc:
        raise MediatoolsError(f"cannot write here ({exc.strerror})", file=str(folder), code="unwritable") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal modes
            os.replace(tmp_path, target)
        except OSError as exc:
            raise MediatoolsError(f"cannot write ({exc.strerror})", file=str(target), code="unwritable") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stray_temp_files(folder: str | Path) -> list[Path]:
    """Leftover temporaries (tests assert there are none)."""
    return sorted(Path(folder).rglob(f"{TMP_PREFIX}*"))
