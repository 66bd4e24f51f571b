"""What a mix's taps share: a worker thread off the decoding path, and 16 kHz mono samples.

A tap (verify's :class:`~mediatools.verify.Reference`, activity's
:class:`~mediatools.activity.SpeechTap`) sees every run's samples as the mix decodes them, so
the stages after the mix need not decode the recording again. Its work runs on a thread of
its own, fed through a short queue (numpy does most of its work without the GIL), and a
failure there never fails the mix: it is kept, later work is skipped, and the stage that
wanted the tap's result decodes for itself.

Both taps want the run as 16 kHz mono (:class:`Mono16k`). A tap says so by offering
``run16k`` (a :class:`Run16k` per run, fed 16 kHz blocks); :func:`mix_taps` then gives every
such tap of one mix a single thread and brings each run down once for all of them
(:class:`Shared16k`). Down to 16 kHz is averaging in threes (:mod:`.thirds`), as verify
treats the mix file: libswresample through PyAV was ~1 s of CPU per user-hour, most of what
the taps cost the mix.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import numpy as np

from .thirds import RATE_IN, Thirds

if TYPE_CHECKING:
    from .decode import Decoder

log = logging.getLogger(__name__)

RATE = 16000


class RunTap(Protocol):
    def feed(self, x: np.ndarray) -> None: ...   # (frames, channels) float32 at the mix's rate
    def close(self) -> None: ...                 # the run was read to its end


class MixTap(Protocol):
    """What ``mix`` hands each run's samples to: ``begin`` when it starts, a :class:`RunTap` per
    run, ``finish`` when it ends."""
    def begin(self, span_ms: float) -> None: ...
    def tap(self, uid: str, index: int, offset_ms: float, duration_ms: float, rate: int) -> RunTap: ...
    def finish(self) -> None: ...


class Run16k(Protocol):
    """A run's 16 kHz mono float32 samples, in blocks of any size; ``end`` once all are in."""
    def put(self, x: np.ndarray) -> None: ...
    def end(self) -> None: ...


class TapThread:
    """One worker thread running submitted calls in order; ``error`` is the first failure."""

    QUEUE = 32   # batches in flight (two seconds of a run's audio each: :class:`_OwnThread`)

    def __init__(self, name: str, *, warn: bool = True) -> None:
        self.name = name
        self.warn = warn   # a tap's failure is only logged; a side thread's owner raises it instead
        self.error: BaseException | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Ready for work. The thread itself starts with the first :meth:`submit`: a tap whose
        runs a :class:`Shared16k` feeds never needs its own."""
        self.finish()
        self.error = None
        self._queue = queue.Queue(self.QUEUE)

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        if self._queue is None:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        self._queue.put((fn, args))

    def finish(self) -> None:
        """Wait until everything submitted is done."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._thread, self._queue = None, None

    def fail(self, exc: BaseException) -> None:
        """Note the first failure (later work is skipped; never the mix's failure)."""
        if self.error is None:
            if self.warn:
                log.warning("%s dropped (the stage after the mix decodes for itself): %s", self.name, exc)
            self.error = exc

    def run(self, fn: Callable[..., None], *args: object) -> None:
        """``fn(*args)`` unless this tap already failed; a failure is noted, not raised."""
        if self.error is None:
            try:
                fn(*args)
            except BaseException as exc:   # noqa: BLE001 - never the mix's failure
                self.fail(exc)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            self.run(fn, *args)


_HALF = np.float32(0.5)


class Mono16k:
    """A run's samples, (frames × channels) float32 at ``rate``, as 16 kHz mono float32 blocks:
    channels averaged (as the mix downmixes, and as verify and activity decode them:
    :func:`~mediatools.media.ffmpeg.mono_filter`), brought to 48 kHz by libswresample if the
    mix runs at another rate, then averaged in threes (:mod:`mediatools.media.thirds`), as
    verify brings the mix file to 16 kHz."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = None
        self._thirds = Thirds()
        if rate != RATE_IN:
            import av
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE_IN)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        if x.shape[1] == 2:   # numpy's mean over a row of two took 2.6 s a stereo hour; this 0.08 s
            mono = x[:, 0] + x[:, 1]
            mono *= _HALF
        else:
            mono = np.ascontiguousarray(x[:, 0] if x.shape[1] == 1 else x.mean(axis=1), np.float32)
        if self._resampler is None:
            return [self._thirds(mono)]
        import av
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.rate
        return [self._thirds(a) for a in self._arrays(self._resampler.resample(frame))]

    def flush(self) -> list[np.ndarray]:
        out = []
        if self._resampler is not None:
            out = [self._thirds(a) for a in self._arrays(self._resampler.resample(None))]
            self._resampler = None
        return out + [self._thirds.flush()]

    @staticmethod
    def _arrays(frames: list) -> list[np.ndarray]:
        return [np.frombuffer(f.planes[0], np.float32, f.samples) for f in frames if f.samples]


DECODE_BLOCK = 8 * 8192   # samples asked of a Decoder at a time (~1.4 s at 48 kHz)


def decode_16k(dec: Decoder, feed: Callable[[np.ndarray], None]) -> int:
    """Everything ``dec`` (at 48 kHz) decodes, as 16 kHz mono blocks into ``feed``
    (:class:`Mono16k`, as a mix's taps get them); → the 48 kHz samples decoded. Verify's and
    activity's workers decode a run (or a mix file) so."""
    mono, samples = Mono16k(RATE_IN), 0
    while True:
        x = dec.read(DECODE_BLOCK)
        if not len(x):
            break
        samples += len(x)
        for b in mono(x):
            feed(b)
    for b in mono.flush():
        feed(b)
    return samples


class Tap16k:
    """The thread and the per-run plumbing of a tap that works on 16 kHz mono: subclasses give
    :meth:`run16k` (and call :meth:`begin` / :meth:`finish` from theirs)."""

    def __init__(self, name: str) -> None:
        self.worker = TapThread(name)

    @property
    def error(self) -> BaseException | None:
        return self.worker.error

    def begin(self, span_ms: float) -> None:
        self.worker.start()

    def finish(self) -> None:
        self.worker.finish()

    def run16k(self, uid: str, index: int, offset_ms: float, duration_ms: float) -> Run16k:
        raise NotImplementedError

    def tap(self, uid: str, index: int, offset_ms: float, duration_ms: float, rate: int) -> RunTap:
        return _OwnThread(self.worker, Mono16k(rate), [(self.worker, self.run16k(uid, index, offset_ms, duration_ms))])


class _OwnThread:
    """A run's samples resampled once, on ``worker``, and handed to every (tap thread, run) in ``runs``.

    The mix reads a run ~8192 samples at a time; they go to the worker in batches of
    :data:`BATCH_S`: per block of 2730 samples at 16 kHz, the numpy calls' fixed costs were a
    third of what the speech detector (1.36 against 0.80 s per stream-hour with 3 s blocks) and
    verify's band energies (1.33 against 0.95 s) cost; what they compute does not depend on
    how the stream is cut."""

    BATCH_S = 2.0

    def __init__(self, worker: TapThread, mono: Mono16k, runs: list[tuple[TapThread, Run16k]]):
        self.worker, self.mono, self.runs = worker, mono, runs
        self.pending: list[np.ndarray] = []
        self.held, self.batch = 0, int(mono.rate * self.BATCH_S)

    def feed(self, x: np.ndarray) -> None:
        self.pending.append(x)
        self.held += len(x)
        if self.held >= self.batch:
            self._submit()

    def close(self) -> None:
        self._submit()
        self.worker.submit(self._end)

    def _submit(self) -> None:
        if self.pending:
            self.worker.submit(self._put, self.pending)
            self.pending, self.held = [], 0

    def _put(self, blocks: list[np.ndarray]) -> None:
        self._hand(self.mono(blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), end=False)

    def _end(self) -> None:
        self._hand(self.mono.flush(), end=True)

    def _hand(self, blocks: list[np.ndarray], end: bool) -> None:
        for owner, run in self.runs:
            for b in blocks:
                owner.run(run.put, b)
            if end:
                owner.run(run.end)


class Shared16k:
    """Several :class:`Tap16k` of one mix on one thread, each run resampled once for all of them.
    A failure of one tap leaves the others going; a failed resampling fails them all (at
    :meth:`finish`)."""

    def __init__(self, taps: Sequence[Tap16k]) -> None:
        self.taps = list(taps)
        self.worker = TapThread("mix-taps")

    def begin(self, span_ms: float) -> None:
        for t in self.taps:
            t.begin(span_ms)
        self.worker.start()

    def tap(self, uid: str, index: int, offset_ms: float, duration_ms: float, rate: int) -> RunTap:
        runs = [(t.worker, t.run16k(uid, index, offset_ms, duration_ms)) for t in self.taps]
        return _OwnThread(self.worker, Mono16k(rate), runs)

    def finish(self) -> None:
        self.worker.finish()
        if self.worker.error is not None:
            for t in self.taps:
                t.worker.fail(self.worker.error)
        for t in self.taps:
            t.finish()


def mix_taps(taps: Sequence[MixTap]) -> list[MixTap]:
    """The taps a mix feeds: every :class:`Tap16k` among ``taps`` shares one thread and one
    resampling per run when there are two or more."""
    t16 = [t for t in taps if isinstance(t, Tap16k)]
    if len(t16) < 2:
        return list(taps)
    return [Shared16k(t16)] + [t for t in taps if not isinstance(t, Tap16k)]
