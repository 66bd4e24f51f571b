"""Speech frames of one run, judged frame by frame.

A run (slices played back to back, see the timing contract) is decoded as one stream and
brought to 16 kHz mono, converted to 16 bits — what webrtcvad takes — by the mix's speech
tap or by activity's own workers (:mod:`.runs`), and fed here in pieces, so memory is flat
in the run's length. Each frame is speech or not; consecutive speech frames come back as raw
spans (ms from the run's start), which :mod:`mediatools.activity.smooth` turns into turns.

Frames quieter than ``GATE_DBFS`` are never speech. webrtcvad still hears the quiet frames
of a pause (its state carries across frames: skipping them changed its verdict on the loud
frames after), but not the middle of a long silence (a listener's microphone after the
sender's noise suppression is mostly that), which costs no detector call (:class:`_Webrtc`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

RATE = 16000
GATE_DBFS = -60.0          # frames below this RMS are silence for every detector
ENERGY_DBFS = -42.0        # the energy detector's speech threshold


def _frame_judge(detector: str, aggressiveness: int, frame_ms: int
                 ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function judging frames: (frames × samples in 16-bit units as float32, per-frame RMS
    dBFS) → a speech flag per frame (one per run: webrtcvad's keeps state, see :class:`_Webrtc`)."""
    n = RATE * frame_ms // 1000 * 2
    if detector == "webrtc":
        try:
            import webrtcvad
        except ImportError:  # pragma: no cover - the wheel is a dependency
            log.warning("webrtcvad is not installed; using the energy detector")
            detector = "energy"
        else:
            vad = webrtcvad.Vad(aggressiveness)
            try:   # the wrapper's checks cost a third of each call; these frames are whole
                from _webrtcvad import process
                handle = vad._vad
            except (ImportError, AttributeError):  # pragma: no cover - another webrtcvad build
                def process(_h: object, rate: int, buf: memoryview, _n: int) -> bool:
                    return vad.is_speech(buf, rate)
                handle = None

            return _Webrtc(process, handle, n)

    def energy(q: np.ndarray, db: np.ndarray) -> np.ndarray:
        return db > ENERGY_DBFS
    return energy


class _Webrtc:
    """webrtcvad over a run's frames, in order, with state across calls.

    webrtcvad adapts to what it heard: skipping the quiet frames of a pause (below the gate)
    made it judge the loud frames after the pause with stale state (a 130 ms syllable after a
    short pause dropped, a turn split). So every frame of a quiet stretch up to ``FEED`` frames
    is fed to it as well; of a longer stretch (a listener's silence: most of the frames of a
    call) only the first ``FEED`` and the last ``WARM`` before the next loud frame are, which
    leaves it where a pause of that length would. Frames below the gate are never speech."""

    FEED = 100     # frames (1 s) of a quiet stretch always fed
    WARM = 30      # frames fed again before a loud frame after a longer one

    def __init__(self, process: Callable, handle: object, nbytes: int) -> None:
        self.process, self.handle, self.n, self.half = process, handle, nbytes, nbytes // 2
        self.quiet = 0                  # quiet frames since the last loud one (across calls)
        self.held: list[bytes] = []     # the last WARM quiet frames past FEED, not fed yet

    def _vad(self, buf: bytes) -> list[bool]:
        mv, n, proc, h, r = memoryview(buf), self.n, self.process, self.handle, RATE
        return [proc(h, r, mv[i:i + n], self.half) for i in range(0, len(buf), n)]

    def __call__(self, q: np.ndarray, db: np.ndarray) -> np.ndarray:
        import numpy as np
        flags = np.zeros(len(db), bool)
        if not len(db):
            return flags
        loud = db > GATE_DBFS
        pcm = q.astype("<i2")
        cuts = np.flatnonzero(loud[1:] != loud[:-1]) + 1
        for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(db)]):
            if loud[a]:
                if self.held:   # after a long quiet stretch: warm up on its last frames
                    self._vad(b"".join(self.held))
                    self.held = []
                flags[a:b] = self._vad(pcm[a:b].tobytes())
                self.quiet = 0
                continue
            fed = max(0, min(b - a, self.FEED - self.quiet))
            if fed:
                self._vad(pcm[a:a + fed].tobytes())
            if b - a > fed:
                rest = pcm[max(a + fed, b - self.WARM):b]
                self.held = (self.held + [row.tobytes() for row in rest])[-self.WARM:]
            self.quiet += b - a
        return flags


class _Edges:
    """Speech flags → spans, with each span's edges moved to where the energy says.

    webrtcvad holds speech for a few frames after it ends (its own hangover) and may
    catch an onset a frame or two late; a listener would put the edges where the voice
    rises above, and falls back to, the background. So a span ends after its last frame
    louder than the background by ``EDGE_DB`` and starts at the first such frame before
    the detector's first speech frame (looking back at most ``LOOKBACK`` frames). The
    background is tracked on the frames the detector calls non-speech. Bounded memory.

    Frames below the gate (most of a listener's track, and every pause) are never speech
    nor loud: a stretch of them is taken at once (:meth:`_quiet`), which gives what pushing
    them one by one gives, at numpy's speed instead of Python's."""

    EDGE_DB = 9.0
    LOOKBACK = 30
    DECAY = 0.98       # the background's running mean: noise ← DECAY·noise + (1 − DECAY)·dB
    MEMORY = 2000      # frames of a quiet stretch that still weigh on it (DECAY**2000 ≈ 3e-18)

    def __init__(self, frame_ms: int):
        self.frame_ms = frame_ms
        self.spans: list[tuple[float, float]] = []
        self.noise = GATE_DBFS
        self.opened: int | None = None
        self.last_loud = -1
        self.recent: list[float] = []      # dB of the last LOOKBACK non-speech frames
        self.frame = 0

    def push_many(self, flags: np.ndarray, db: np.ndarray) -> None:
        """Frames in order: a stretch below the gate, or of speech frames, at once; the rest
        (non-speech above the gate, where the background moves) one by one."""
        import numpy as np
        quiet = db <= GATE_DBFS
        kind = np.where(quiet, 0, np.where(flags, 1, 2))
        cuts = np.flatnonzero(kind[1:] != kind[:-1]) + 1
        bounds = [0, *cuts.tolist(), len(db)]
        dbl = db.tolist()
        for a, b in zip(bounds, bounds[1:]):
            k = kind[a]
            if k == 0:
                self.push(False, dbl[a])           # closes a span still open, starts the noise
                if b - a > 1:
                    self._quiet(db[a + 1:b], dbl[a + 1:b])
            elif k == 1:
                self._speech(db[a:b])
            else:
                for d in dbl[a:b]:
                    self.push(False, d)

    def _speech(self, db: np.ndarray) -> None:
        """Speech frames: the background stands still over them, so only the span's start (on
        the first) and its last loud frame move, as :meth:`push` would move them."""
        import numpy as np
        i = self.frame
        if self.opened is None:
            self.push(True, float(db[0]))
            db, i = db[1:], i + 1
        loud = np.flatnonzero(db > max(self.noise + self.EDGE_DB, GATE_DBFS))
        if len(loud):
            self.last_loud = i + int(loud[-1])
        self.recent.clear()
        self.frame = i + len(db)

    def _quiet(self, db: np.ndarray, dbl: list[float]) -> None:
        """Frames below the gate, right after :meth:`push` took the one before them (so no span
        is open): only the background and the look-back move."""
        import numpy as np
        if self.noise == GATE_DBFS:   # no background yet (the stretch's first frame sat at the gate)
            for d in dbl:
                self.push(False, d)
            return
        k = len(db)
        tail = db[-self.MEMORY:].astype(np.float64)
        w = (1.0 - self.DECAY) * self.DECAY ** np.arange(len(tail) - 1, -1, -1, dtype=np.float64)
        self.noise = float(self.DECAY ** k * self.noise + w @ tail)   # (underflows to 0 for long k)
        self.recent = (self.recent + dbl[-self.LOOKBACK:])[-self.LOOKBACK:]
        self.frame += k

    def push(self, flag: bool, db: float) -> None:
        loud = db > max(self.noise + self.EDGE_DB, GATE_DBFS)
        i = self.frame
        if flag:
            if self.opened is None:
                start = i
                for k, d in enumerate(reversed(self.recent), 1):   # walk back over the rising edge
                    if d <= max(self.noise + self.EDGE_DB, GATE_DBFS):
                        break
                    start = i - k
                self.opened = start
                self.last_loud = i
            if loud:
                self.last_loud = i
        else:
            if self.opened is not None:
                if loud:                      # the detector let go while the voice is still up
                    self.last_loud = i
                else:
                    self._close()
            if not loud:
                self.noise = db if self.noise == GATE_DBFS else self.DECAY * self.noise + (1 - self.DECAY) * db
            self.recent.append(db)
            if len(self.recent) > self.LOOKBACK:
                del self.recent[0]
        if flag:
            self.recent.clear()
        self.frame += 1

    def _close(self) -> None:
        if self.opened is not None and self.last_loud >= self.opened:
            self.spans.append((self.opened * self.frame_ms, (self.last_loud + 1) * self.frame_ms))
        self.opened = None

    def finish(self) -> list[tuple[float, float]]:
        self._close()
        return self.spans


class SpeechFrames:
    """Raw speech spans of a 16 kHz mono stream of float samples fed in pieces of any size
    (converted to 16 bits as libswresample converts them, so the spans are those ffmpeg's s16le
    would give). ``duration_ms``: where the run ends; samples past it are dropped, as the mix's
    decoder trims a run (``atrim=end_sample``), so the tap and ``activity`` judge the same audio.

    Frames are judged as whole frames arrive; memory is one piece whatever the length."""

    def __init__(self, detector: str = "webrtc", aggressiveness: int = 3, frame_ms: int = 10,
                 duration_ms: float | None = None) -> None:
        import numpy as np
        self.judge = _frame_judge(detector, aggressiveness, frame_ms)
        self.edges = _Edges(frame_ms)
        self.frame_ms = frame_ms
        self.spf = RATE * frame_ms // 1000
        self.carry = np.zeros(0, np.float32)       # samples of a frame not yet whole
        self.left = int(round(duration_ms * RATE / 1000.0)) if duration_ms is not None else None

    @property
    def judged_ms(self) -> float:
        return self.edges.frame * self.frame_ms

    def feed_float(self, x: np.ndarray) -> None:
        """float32 samples in [-1, 1], to 16 bits as libswresample does (lrintf(x · 32768), clipped)."""
        import numpy as np
        if self.left is not None:
            x = x[: max(0, self.left)]
            self.left -= len(x)
        if len(x):
            self._feed(np.clip(np.rint(x * np.float32(32768.0)), -32768, 32767).astype(np.float32, copy=False))

    def finish(self) -> list[tuple[float, float]]:
        self._feed(None)
        return self.edges.finish()

    def _feed(self, q: np.ndarray | None) -> None:
        import numpy as np
        if q is None:
            data, self.carry = self.carry, np.zeros(0, np.float32)
        else:
            data = np.concatenate([self.carry, q]) if len(self.carry) else q
        whole = len(data) // self.spf * self.spf
        if q is not None:
            self.carry = data[whole:]
        if whole:
            frames = data[:whole].reshape(-1, self.spf)
            db = _dbfs(frames)
            self.edges.push_many(self.judge(frames, db), db)


def _dbfs(frames: np.ndarray) -> np.ndarray:
    """Per-frame RMS level in dBFS of frames × samples in 16-bit units."""
    import numpy as np  # lazily: importing mediatools stays numpy-free
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames) / frames.shape[1]) / 32768.0
    return 20.0 * np.log10(np.maximum(rms, 1e-9))
