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
come back. The workers: :class:`~mediatools.media.processes.RunDecoders`.

Where processes cannot be started (a daemonic process, such as a Dask worker), the same
work runs on one thread here: PyAV hands the interpreter over around every frame it
decodes, and two decoding threads took 1.6 times as long as one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import MediatoolsError
from ..media.decode import DecodeError, Decoder
from ..media.processes import give_back, in_worker
from ..media.tap import TapThread, decode_16k
from ..media.thirds import RATE_IN
from .features import BandStream
from .store import Stream, StreamWriter

__all__ = ["file_stream", "run_stream"]

def run_stream(slices: list[str], duration_ms: float, lead: int, channels: int, path: str, limit: int,
               holes: Sequence[str] = ()) -> Stream:
    """Decode one run (its slices as one stream, ``holes`` its damaged ones, ``duration_ms`` of it) to band energies,
    delayed by ``lead`` 16 kHz samples onto the mix's 10 ms grid, keeping ``limit`` rows,
    spooled to ``path``. Runs in a worker process: everything it takes and returns pickles."""
    writer = StreamWriter(Stream(Path(path)), limit)
    with Decoder(slices, RATE_IN, channels, length=int(round(duration_ms * RATE_IN / 1000.0)),
                 holes=holes) as dec:
        _reduce(dec, writer, lead)
    give_back()
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
    give_back()
    return writer.close(), samples


def _reduce(dec: Decoder, writer: StreamWriter, lead: int = 0) -> int:
    """Everything ``dec`` decodes, as 16 kHz mono band energies into ``writer``; → samples decoded.

    Outside a worker (one thread for verify: inside a Dask worker, where that is the mix file
    alone) the band energies are computed on a thread of their own while the next blocks decode,
    as the ffmpeg decoder of the mix file used to run beside them."""
    bands = BandStream(writer)
    side = None if in_worker() else TapThread("verify-bands", warn=False)
    feed = bands.feed
    if side is not None:
        side.start()
        def feed(b: np.ndarray) -> None:  # noqa: E306
            side.submit(bands.feed, b)
    if lead:
        feed(np.zeros(lead, np.float32))
    try:
        samples = decode_16k(dec, feed)
    finally:
        if side is not None:
            side.finish()
    if side is not None and side.error is not None:
        raise side.error
    bands.finish()
    return samples


