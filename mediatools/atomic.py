"""Atomic outputs: write under a temporary name beside the target, rename when complete.

A failure, Ctrl-C or SIGTERM (turned into KeyboardInterrupt by the CLI) removes the
temporary file, so no half-written file ever sits under the final name. Every local
output of every stage goes through here: :func:`atomic_path` when another program (ffmpeg)
writes the file, :func:`atomic_write` when we write the bytes ourselves.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import MediatoolsError
from .interrupts import deferred

TMP_PREFIX = ".mediatools-tmp-"
PART_SUFFIX = ".part"


def part_path(target: Path) -> Path:
    """A temporary name that is the same for every run: a killed run's leftover is overwritten
    by the next, and :func:`sweep_parts` finds it."""
    return target.with_name(f"{TMP_PREFIX}{target.name}{PART_SUFFIX}")


@contextlib.contextmanager
def atomic_path(target: str | Path, *, part: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder (same suffix, so ffmpeg picks the muxer), renamed
    onto ``target`` when the block completes. ``part``: the deterministic name of :func:`part_path`
    (the folder must exist) instead of a unique one."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    tmp_path: Path | None = None
    if part:
        tmp_path = part_path(target)
    elif not folder.is_dir():
        raise MediatoolsError("output folder does not exist", file=str(folder), code="no_output_dir")
    try:
        if tmp_path is None:
            with deferred():   # an interrupt cannot fall between creating the file and owning it
                try:
                    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=folder)
                except OSError as exc:
                    raise MediatoolsError(f"cannot write here ({exc.strerror})", file=str(folder),
                                          code="unwritable") from None
                os.close(fd)
                tmp_path = Path(tmp)
        yield tmp_path
        try:
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal modes
            os.replace(tmp_path, target)
        except OSError as exc:
            raise MediatoolsError(f"cannot write ({exc.strerror})", file=str(target), code="unwritable") from None
    finally:
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()


@contextlib.contextmanager
def atomic_write(target: str | Path, *, part: bool = True) -> Iterator[BinaryIO]:
    """A file opened for writing under its temporary name, renamed onto ``target`` only if the
    block completes; any OS error while writing is one error naming ``target``."""
    target = Path(target)
    try:
        with atomic_path(target, part=part) as tmp, open(tmp, "wb") as f:
            yield f
    except OSError as exc:
        raise MediatoolsError(f"cannot write ({exc.strerror})", file=str(target), code="unwritable") from None


def sweep_parts(folder: Path) -> None:
    """Remove the :func:`part_path` temporaries a killed earlier run left in ``folder``."""
    for stale in folder.glob(f"{TMP_PREFIX}*{PART_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stray_temp_files(folder: str | Path) -> list[Path]:
    """Leftover temporaries (tests assert there are none)."""
    return sorted(Path(folder).rglob(f"{TMP_PREFIX}*"))
