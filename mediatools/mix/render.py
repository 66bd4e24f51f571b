"""Mixing every user onto one wall-clock timeline, streaming, in bounded memory.

Pipeline (both cores busy, nothing whole in RAM): each run is decoded in-process
(:mod:`mediatools.media.decode`, PyAV), opened just before the mix reaches it, as one
stream (its TS slices joined), resampled and trimmed to its exact samples, at its own
channel count, lazily as the mix asks for samples. Python places the runs
sample-exactly in fixed-size blocks — silence costs nothing, channel conversion is
explicit (a mono user at its own level in every channel, stereo → mono as (L+R)/2) —
applies per-user gains with numpy and feeds one ffmpeg *encoder* that limits or
normalizes and writes under a temporary name. Long AAC mixes feed one encoder per
part, a part per core (:func:`mediatools.mix.split.render_mix_split`): the encoder is the slowest stage.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..atomic import atomic_path
from ..errors import Problem
from ..interrupts import deferred
from ..media.decode import DecodeError, Decoder
from ..media.formats import FORMATS, OutputFormat, check_rate, format_for
from ..timeline.contract import Timeline, UserTimeline
from ..timeline.span import Span, window
from .encode import Encoder, encoder_cmd

if TYPE_CHECKING:
    import numpy as np

    from ..media.tap import MixTap, RunTap

log = logging.getLogger(__name__)

BLOCK = 48000  # samples per channel per block (1 s at 48 kHz)

__all__ = ["BLOCK", "FORMATS", "OutputFormat", "format_for", "MixResult", "render_mix", "user_segments"]


@dataclass
class Segment:
    """One placed run of one user, in output samples."""
    start: int
    length: int
    slices: list[Path]
    src_channels: int
    run: int = 0                 # the run's index (its key in a verify Reference)
    offset_ms: float = 0.0       # the run's session offset and duration, per the contract
    duration_ms: float = 0.0
    holes: list[str] = field(default_factory=list)   # damaged slices: lost audio is silence in place


def user_segments(ut: UserTimeline, rate: int, *, window_start_ms: float = 0.0,
                  window_end_ms: float | None = None) -> list[Segment]:
    """Runs → sample-exact segments relative to the output's t=0 (the window start)."""
    segs = []
    out = window(0.0, None if window_end_ms is None else window_end_ms - window_start_ms)
    for pr in ut.runs:
        start_ms = pr.offset_ms - window_start_ms
        end_ms = start_ms + pr.duration_ms
        if Span(start_ms, end_ms).crop(out) is None:
            continue
        ch = min(pr.run.media.channels, 2) if pr.run.media else 1
        segs.append(Segment(start=int(round(start_ms * rate / 1000.0)),
                            length=int(round(end_ms * rate / 1000.0)) - int(round(start_ms * rate / 1000.0)),
                            slices=[Path(p) for p in pr.run.paths], src_channels=ch,
                            run=pr.index, offset_ms=pr.offset_ms, duration_ms=pr.duration_ms,
                            holes=pr.run.holes))
    return segs


class _Source:
    """A run being decoded: opened when the mix reaches it, read block by block."""

    def __init__(self, seg: Segment, rate: int, gain: float, uid: str, taps: Sequence[RunTap] = ()):
        self.seg, self.rate, self.gain, self.uid = seg, rate, gain, uid
        self.start = max(seg.start, 0)
        self.end = seg.start + seg.length
        self.decoder: Decoder | None = None
        self.pos = self.start          # next output sample this source will deliver
        self.dry = False               # decoder ended early: the rest is silence (the run is shorter)
        self.taps = list(taps)         # the mix's taps' views of this run's samples

    def open(self) -> None:
        try:
            self.decoder = Decoder(self.seg.slices, self.rate, self.seg.src_channels,
                                   skip=max(0, -self.seg.start), length=self.seg.length, holes=self.seg.holes)
        except DecodeError as exc:
            self._undecodable(exc)

    def _undecodable(self, exc: DecodeError) -> None:
        """Nothing in the run decodes (it cannot be opened, or no packet decodes). The slices'
        problem is already in the report (probe found them unreadable; strict mode stopped
        there): tolerant mode mixes the run as silence and goes on, as the ffmpeg decoders did."""
        log.warning("%s: uid %s: run mixed as silence: %s", exc.file, self.uid, exc.message)
        self.dry = True

    def read(self, n: int, channels: int) -> np.ndarray:
        """Next ``n`` frames, shaped (n, 1) or (n, channels) for broadcasting into the mix."""
        import numpy as np  # lazily: merge's copy path does not need numpy
        ch = self.seg.src_channels
        x = np.zeros((0, ch), np.float32)
        if not self.dry:
            try:
                x = self.decoder.read(n)
            except DecodeError as exc:
                self._undecodable(exc)
        if len(x) < n:
            self.dry = True
            x = np.concatenate([x, np.zeros((n - len(x), ch), np.float32)])
        for tap in self.taps:
            tap.feed(x)
        if ch == 2 and channels == 1:
            x = x.mean(axis=1, keepdims=True)   # (L+R)/2
        # a mono column broadcasts into every output channel at its own level
        self.pos += n
        return x

    def close(self) -> None:
        if self.decoder:
            self.decoder.close()
            self.decoder = None
        if self.pos >= self.end:   # only a run read to its end counts
            for tap in self.taps:
                tap.close()
        self.taps = []


@dataclass
class MixResult:
    output: Path
    format: str
    sample_rate: int
    channels: int
    duration_ms: float
    users: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def render_mix(tl: Timeline, out: str | Path, *, fmt: OutputFormat, rate: int = 48000, channels: int = 2,
               bitrate: str | None = None, gains_db: dict[str, float] | None = None, normalize: str = "limit",
               window_start_ms: float = 0.0, window_end_ms: float | None = None,
               progress: Callable[[int, int], None] | None = None, taps: Sequence[MixTap] = ()) -> MixResult:
    """Render the timeline's users to ``out``. Returns where everyone was placed. ``taps`` see
    each run's samples as they are decoded (what a verify of ``out`` expects, speech activity;
    the whole span only)."""
    out = Path(out)
    check_rate(fmt, rate)
    total, users = _window(tl, rate, window_start_ms, window_end_ms)
    gains = gains_db or {}
    with atomic_path(out) as tmp:
        enc = mixer = None
        try:   # an interrupt kills the encoder: left running, it would write ``tmp`` anew after it is gone
            fed = fed_channels(users, channels)
            with deferred():   # not cut between starting the encoder and holding it
                enc = Encoder(encoder_cmd(fmt, rate, channels, bitrate, normalize, tmp, fed=fed), out)
            mixer = _Mixer(users, gains, rate, fed, taps, tl.span_ms)
            skip = fmt.priming  # raw ADTS cannot signal the encoder delay: feed it that much later audio
            done = 0
            while done < total:
                n = min(BLOCK, total - done)
                block = mixer.block(done, n)
                cut = min(skip, n)
                enc.put(block[cut:])
                skip -= cut
                done += n
                if progress:
                    progress(done, total)
            enc.finish()
        except BaseException:
            if enc is not None:
                enc.abort()
            raise
        finally:
            if mixer is not None:
                mixer.close()
    return _result(tl, out, fmt, rate, channels, total, users, gains)


def fed_channels(users: list[tuple[UserTimeline, list[Segment]]], channels: int) -> int:
    """How many channels the encoder is fed: one when every run is mono (Agora's usual
    recording), whatever ``channels`` the output has, since each mono user sounds at its own
    level in every channel and the channels are then identical. The encoder copies it
    out (:func:`~mediatools.mix.encode.encoder_cmd`): half the samples to mix, pipe and spool."""
    mono = all(seg.src_channels == 1 for _, segs in users for seg in segs)
    return 1 if mono and channels > 1 else channels


class _Mixer:
    """The placed, gained sum of every run, block by block. A run's decoder opens one block
    before the mix reaches it and is closed when the run ends, so only the runs sounding at
    once hold a decoder (and at most about a block of samples each)."""

    def __init__(self, users: list[tuple[UserTimeline, list[Segment]]], gains_db: dict[str, float],
                 rate: int, channels: int, taps: Sequence[MixTap] = (), span_ms: float = 0.0):
        from ..media.tap import mix_taps
        self.channels = channels
        self.taps = mix_taps(taps)   # taps wanting 16 kHz mono share a thread and each run's resampling
        for t in self.taps:
            t.begin(span_ms)

        def run_taps(ut: UserTimeline, seg: Segment) -> list[RunTap]:
            return [t.tap(ut.uid, seg.run, seg.offset_ms, seg.duration_ms, rate) for t in self.taps]

        self.sources = sorted((_Source(seg, rate, 10 ** (gains_db.get(ut.uid, 0.0) / 20.0), ut.uid, run_taps(ut, seg))
                               for ut, segs in users for seg in segs), key=lambda s: s.start)
        self.active: list[_Source] = []
        self.nxt = 0

    def block(self, done: int, n: int) -> np.ndarray:
        """Output samples [done, done + n), shaped (n, channels)."""
        import numpy as np  # lazily: merge's copy path does not need numpy
        sources, active = self.sources, self.active
        while self.nxt < len(sources) and sources[self.nxt].start < done + n + BLOCK:  # open one block ahead
            sources[self.nxt].open()
            active.append(sources[self.nxt])
            self.nxt += 1
        acc = np.zeros((n, self.channels), dtype=np.float32)
        mono = None   # mono runs sum in one column, spread over the channels once per block:
        for src in active:   # numpy's (n, 1) → (n, 2) broadcast add is ~30× slower than a column add
            a, b = max(src.pos, done), min(src.end, done + n)
            if b <= a:
                continue
            x = src.read(b - a, self.channels)
            if src.gain != 1.0:
                x = x * np.float32(src.gain)
            if x.shape[1] == 1 and self.channels > 1:
                if mono is None:
                    mono = np.zeros(n, dtype=np.float32)
                mono[a - done:b - done] += x[:, 0]
            else:
                acc[a - done:b - done] += x
        if mono is not None:
            for c in range(self.channels):
                acc[:, c] += mono
        for src in [s for s in active if s.pos >= s.end]:
            src.close()
            active.remove(src)
        return acc

    def close(self) -> None:
        for src in self.active + self.sources[self.nxt:]:
            src.close()
        for t in self.taps:
            t.finish()


def _window(tl: Timeline, rate: int, start_ms: float, end_ms: float | None) -> tuple[
        int, list[tuple[UserTimeline, list[Segment]]]]:
    """The output's length in samples and each user's segments in it."""
    end = tl.span_ms if end_ms is None else min(end_ms, tl.span_ms)
    total = max(0, int(round((end - start_ms) * rate / 1000.0)))
    return total, [(ut, user_segments(ut, rate, window_start_ms=start_ms, window_end_ms=end)) for ut in tl.users]


def _result(tl: Timeline, out: Path, fmt: OutputFormat, rate: int, channels: int, total: int,
            users: list[tuple[UserTimeline, list[Segment]]], gains: dict[str, float]) -> MixResult:
    """The report: where each user's runs went in the output."""
    placed = [{"uid": ut.uid, "gain_db": gains.get(ut.uid, 0.0),
               "runs": [{"offset_ms": round(s.start * 1000.0 / rate, 3), "duration_ms": round(s.length * 1000.0 / rate, 3)}
                        for s in segs]} for ut, segs in users]
    return MixResult(output=out, format=fmt.name, sample_rate=rate, channels=channels,
                     duration_ms=round(total * 1000.0 / rate, 3), users=placed, problems=list(tl.problems))

