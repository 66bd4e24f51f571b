"""Speech frames of one run: decoded as one stream by ffmpeg, judged frame by frame.

A run (slices played back to back, see the timing contract) is decoded at 16 kHz mono
16-bit — what webrtcvad takes — and read in one-second blocks, so memory is flat in the
run's length. Each frame is speech or not; consecutive speech frames come back as raw
spans (ms from the run's start), which :mod:`mediatools.activity.smooth` turns into turns.

Frames quieter than ``GATE_DBFS`` are non-speech without asking the detector: webrtcvad
says the same of them (it has its own energy floor), and a listener's microphone after the
sender's noise suppression is mostly such frames, so they cost no detector call.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import MediatoolsError
from ..media.ffmpeg import base_cmd, concat_url, start

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

RATE = 16000
GATE_DBFS = -60.0          # frames below this RMS are silence for every detector
ENERGY_DBFS = -42.0        # the energy detector's speech threshold
BLOCK_FRAMES = 100


def decode_cmd(paths: list[Path], duration_ms: float) -> list[str]:
    """One ffmpeg decoding a run as one stream: 16 kHz mono s16le, trimmed to the run's length
    (a failover overlap may have cut its end)."""
    end = int(round(duration_ms * RATE / 1000.0))
    return base_cmd() + ["-threads", "1", "-filter_threads", "1", "-i", concat_url(paths), "-map", "0:a:0",
                         "-af", f"aresample={RATE},atrim=end_sample={end}", "-ac", "1", "-ar", str(RATE),
                         "-f", "s16le", "pipe:1"]


def _frame_judge(detector: str, aggressiveness: int, frame_ms: int) -> Callable[[bytes, np.ndarray], list[bool]]:
    """A function judging one block: (raw s16le bytes, per-frame RMS dBFS) → speech flag per frame."""
    n = RATE * frame_ms // 1000 * 2
    if detector == "webrtc":
        try:
            import webrtcvad
        except ImportError:  # pragma: no cover - the wheel is a dependency
            log.warning("webrtcvad is not installed; using the energy detector")
            detector = "energy"
        else:
            vad = webrtcvad.Vad(aggressiveness)
            is_speech = vad.is_speech

            def judge(buf: bytes, db: np.ndarray) -> list[bool]:
                mv = memoryview(buf)
                return [bool(loud) and is_speech(mv[i * n:(i + 1) * n], RATE)
                        for i, loud in enumerate((db > GATE_DBFS).tolist())]
            return judge

    def energy(buf: bytes, db: np.ndarray) -> list[bool]:
        return (db > ENERGY_DBFS).tolist()
    return energy


class _Edges:
    """Speech flags → spans, with each span's edges moved to where the energy says.

    webrtcvad holds speech for a few frames after it ends (its own hangover) and may
    catch an onset a frame or two late; a listener would put the edges where the voice
    rises above, and falls back to, the background. So a span ends after its last frame
    louder than the background by ``EDGE_DB`` and starts at the first such frame before
    the detector's first speech frame (looking back at most ``LOOKBACK`` frames). The
    background is tracked on the frames the detector calls non-speech. Bounded memory."""

    EDGE_DB = 9.0
    LOOKBACK = 30

    def __init__(self, frame_ms: int):
        self.frame_ms = frame_ms
        self.spans: list[tuple[float, float]] = []
        self.noise = GATE_DBFS
        self.opened: int | None = None
        self.last_loud = -1
        self.recent: list[float] = []      # dB of the last LOOKBACK non-speech frames
        self.frame = 0

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
                self.noise = db if self.noise == GATE_DBFS else 0.98 * self.noise + 0.02 * db
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
    """Raw speech spans of a 16 kHz mono s16le stream fed in pieces of any size.

    Judged in blocks of ``BLOCK_FRAMES`` whole frames, so memory is a block whatever the
    length; the same samples give the same spans however they were cut (ffmpeg's stdout,
    or the mix's own decoding through :class:`mediatools.activity.SpeechTap`)."""

    def __init__(self, detector: str = "webrtc", aggressiveness: int = 3, frame_ms: int = 10) -> None:
        self.judge = _frame_judge(detector, aggressiveness, frame_ms)
        self.edges = _Edges(frame_ms)
        self.frame_ms = frame_ms
        self.spf = RATE * frame_ms // 1000
        self.want = self.spf * 2 * BLOCK_FRAMES
        self.carry = b""

    @property
    def judged_ms(self) -> float:
        return self.edges.frame * self.frame_ms

    def feed(self, buf: bytes) -> None:
        data = self.carry + buf if self.carry else buf
        whole = len(data) // self.want * self.want
        for a in range(0, whole, self.want):
            self._judge(data[a:a + self.want])
        self.carry = data[whole:]

    def finish(self) -> list[tuple[float, float]]:
        whole = len(self.carry) // (self.spf * 2) * self.spf * 2
        if whole:
            self._judge(self.carry[:whole])
        self.carry = b""
        return self.edges.finish()

    def _judge(self, buf: bytes) -> None:
        db = _dbfs(buf, self.spf)
        push = self.edges.push
        for flag, d in zip(self.judge(buf, db), db.tolist()):
            push(flag, d)


def speech_spans(paths: list[Path], duration_ms: float, *, detector: str = "webrtc", aggressiveness: int = 3,
                 frame_ms: int = 10, stop: Callable[[], bool] | None = None,
                 progress: Callable[[float], None] | None = None) -> list[tuple[float, float]]:
    """Raw speech spans (start, end) in ms from the run's start: runs of speech frames, edges on the energy."""
    frames = SpeechFrames(detector, aggressiveness, frame_ms)
    with start(decode_cmd(paths, duration_ms), stdout=True, bufsize=0, big_pipes=True) as proc:
        while True:
            chunk = proc.stdout.read(frames.want)
            if not chunk:
                break
            frames.feed(chunk)
            if progress:
                progress(frames.judged_ms)
            if stop and stop():
                return frames.finish()
        if proc.wait() != 0:
            raise MediatoolsError(f"decoding failed: {proc.last_line()}", file=paths[0].name, code="decode_failed")
    return frames.finish()


def _dbfs(buf: bytes, spf: int) -> np.ndarray:
    import numpy as np  # lazily: importing mediatools stays numpy-free
    x = np.frombuffer(buf, dtype="<i2").astype(np.float32).reshape(-1, spf)
    rms = np.sqrt(np.mean(x * x, axis=1)) / 32768.0
    return 20.0 * np.log10(np.maximum(rms, 1e-9))

