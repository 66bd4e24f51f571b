"""The band energies of a mix file and, when verify decodes the recording itself, of every
run, in worker processes.

On its own, verify decodes every run of every user: most of its work. One ffmpeg per run
piping 48 kHz floats into this process spent a third of the CPU moving bytes (11 s of
system time for 8 user-hours, the pipes' writes and reads) and left every run's averaging
and FFTs on this process's one interpreter, where they waited for each other. Here a few
worker processes each decode a run (or the mix file) in-process (the mix's own :class:`~mediatools.media.decode.Decoder`,
through :class:`~mediatools.media.tap.Mono16k` as the mix feeds verify's Reference, so a
run's features are the same whichever way verify got them), reduce it to band energies as
it streams and spool them into the store's folder; only the spooled stream's path and sums
come back.

Where processes cannot be started (a daemonic process, such as a Dask worker), the same
work runs on one thread here: PyAV hands the interpreter over around every frame it
decodes, and two decoding threads took 1.6 times as long as one.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import MediatoolsError
from ..media.decode import DecodeError, Decoder
from ..media.tap import Mono16k, TapThread
from ..media.thirds import RATE_IN
from ..mix.split import usable_cores
from .features import BandStream
from .store import Stream, StreamWriter

__all__ = ["RunDecoders", "file_stream", "run_stream"]

_BLOCK = 8 * 8192        # 48 kHz samples read at a time (~1.4 s)


def run_stream(slices: list[str], duration_ms: float, lead: int, channels: int, path: str, limit: int) -> Stream:
    """Decode one run (its slices as one stream, ``duration_ms`` of it) to band energies,
    delayed by ``lead`` 16 kHz samples onto the mix's 10 ms grid, keeping ``limit`` rows,
    spooled to ``path``. Runs in a worker process: everything it takes and returns pickles."""
    writer = StreamWriter(Stream(Path(path)), limit)
    with Decoder(slices, RATE_IN, channels, length=int(round(duration_ms * RATE_IN / 1000.0))) as dec:
        _reduce(dec, writer, lead)
    _give_back()
    return writer.close()


def file_stream(file: str, channels: int, path: str) -> tuple[Stream, int]:
    """A mix file's band energies, spooled to ``path``, and how many 48 kHz samples it decoded
    to (its duration). The file is decoded on its own: a run placed wrongly, missing or damaged
    in it is found whatever decoded the runs."""
    writer = StreamWriter(Stream(Path(path)))
    try:
        with Decoder([file], RATE_IN, channels, container=None) as dec:
            samples = _reduce(dec, writer)
    except DecodeError as exc:
        raise MediatoolsError(f"cannot decode {Path(file).name}: {exc.message}", file=Path(file).name,
                              code="unreadable") from None
    _give_back()
    return writer.close(), samples


def _reduce(dec: Decoder, writer: StreamWriter, lead: int = 0) -> int:
    """Everything ``dec`` decodes, as 16 kHz mono band energies into ``writer``; → samples decoded.

    Outside a worker (one thread for verify: inside a Dask worker, where that is the mix file
    alone) the band energies are computed on a thread of their own while the next blocks decode,
    as the ffmpeg decoder of the mix file used to run beside them."""
    bands, mono, samples = BandStream(writer), Mono16k(RATE_IN), 0
    side = None if _IN_WORKER else TapThread("verify-bands")
    feed = bands.feed
    if side is not None:
        side.start()
        def feed(b: np.ndarray) -> None:  # noqa: E306
            side.submit(bands.feed, b)
    if lead:
        feed(np.zeros(lead, np.float32))
    try:
        while True:
            x = dec.read(_BLOCK)
            if not len(x):
                break
            samples += len(x)
            for b in mono(x):
                feed(b)
        for b in mono.flush():
            feed(b)
    finally:
        if side is not None:
            side.finish()
    if side is not None and side.error is not None:
        raise side.error
    bands.finish()
    return samples


_IN_WORKER = False


def _quiet_worker() -> None:
    """A worker leaves Ctrl-C to its parent, which stops it (the whole process group gets it)."""
    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _give_back() -> None:
    """In a worker, hand the heap freed by a decode back to the system: glibc keeps it, and a
    3-hour mix file's index (~30 MB, freed when its container closed) stayed with the worker
    while verify's own alignment grew beside it. (malloc_trim is glibc's; elsewhere, nothing.)"""
    if _IN_WORKER:
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):   # pragma: no cover - not glibc
            pass


class RunDecoders:
    """Where :func:`run_stream` and :func:`file_stream` run: one process per core (at most 4;
    from a fork server, :func:`_context`), or, without
    ``processes`` (a verify whose runs the mix decoded: the mix file is all there is) or in a
    daemonic process, one thread here. Leaving the block with an error stops the workers at
    once instead of waiting for their runs."""

    def __init__(self, *, processes: bool = True) -> None:
        workers = min(4, usable_cores())
        self.processes = processes and workers > 1 and not multiprocessing.current_process().daemon
        self.pool: Executor = (
            ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_quiet_worker)
            if self.processes else ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-decode"))

    def submit(self, fn: Callable[..., object], *args: object) -> Future:
        """``fn(*args)`` on a worker (a module-level function of picklable arguments:
        :func:`run_stream`, :func:`file_stream`, verify's judging of a run)."""
        return self.pool.submit(fn, *args)

    def __enter__(self) -> RunDecoders:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None and self.processes:
            _stop_workers(self.pool)
        self.pool.shutdown(wait=True, cancel_futures=True)


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server that has numpy, PyAV and this module loaded: they start at
    once and share those pages (a spawned worker imported them itself, 43 MB each). Not forked
    from here: verify may run among threads, where a fork is unsafe."""
    if "forkserver" not in multiprocessing.get_all_start_methods():   # pragma: no cover - not POSIX
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "av", __name__])
    try:
        forkserver.ensure_running()
    except OSError:
        # Its socket lives under TMPDIR, and a socket's path holds at most 107 bytes: under a
        # long TMPDIR (a CI work tree, pytest's tmp_path) "AF_UNIX path too long". Spawned
        # workers are slower to start and import numpy and PyAV each; the results are the same.
        return multiprocessing.get_context("spawn")
    return ctx


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    stop = getattr(pool, "terminate_workers", None)   # Python 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
