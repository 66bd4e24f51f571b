"""Two encoders for long AAC mixes: one mixing pass, each half encoded in parallel, joined at
a frame boundary. The AAC encoder alone is slower than everything else together, so one
encoder would set the pace; ``MEDIATOOLS_SPLIT_MIN_S`` (read per mix) sets from which
length on the mix is split."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..atomic import atomic_path
from ..errors import MediatoolsError
from ..interrupts import deferred
from ..media.adts import FRAME, adts_output, copy_adts_frames
from ..media.formats import FORMATS, OutputFormat
from ..timeline.contract import Timeline
from .encode import Encoder, encoder_cmd
from .render import BLOCK, MixResult, _Mixer, _result, _window

if TYPE_CHECKING:
    from ..media.tap import MixTap

#: frames the second encoder runs before the join, so its psychoacoustic model, bit rate
#: control and the limiter have settled where its frames are kept
WARMUP_FRAMES = 235


def can_split(fmt: OutputFormat, normalize: str, total_samples: int, rate: int) -> bool:
    """Loudness normalization looks at the whole file; only AAC frames join cleanly (MP3's
    bit reservoir reaches back across frames)."""
    from .. import settings
    return (fmt.codec == "aac" and fmt.name in ("m4a", "aac") and normalize != "ebu"
            and total_samples >= float(settings.get("MEDIATOOLS_SPLIT_MIN_S")) * rate and total_samples >= 4 * BLOCK)


def render_mix_split(tl: Timeline, out: str | Path, *, fmt: OutputFormat, rate: int = 48000,
                     channels: int = 2, bitrate: str | None = None, gains_db: dict[str, float] | None = None,
                     normalize: str = "limit", window_start_ms: float = 0.0, window_end_ms: float | None = None,
                     progress: Callable[[int, int], None] | None = None, taps: Sequence[MixTap] = ()) -> MixResult:
    """One mixing pass feeding two AAC encoders, one per half, joined at a frame boundary.

    Each half is encoded as raw ADTS with its first 1024 samples dropped (the encoder's
    priming then lines decoded frame k up with the half's sample k·1024). The first half
    keeps frames [0, m); the second starts WARMUP_FRAMES early and keeps its frames from
    there on. The decoder's overlap-add at the join pairs two encodings of the same samples,
    so the join is as clean as any frame; runs keep their sample-exact places (tests
    measure both).

    The mix is made once, in order, so only the runs sounding at once are being decoded.
    The first half's encoder is fed through a disk spool: the mix runs ahead of it to reach
    the second half, and the lead waits in chunk files (capped, see :class:`~mediatools.mix.encode.Spool`), not
    in memory.
    """
    out = Path(out)
    total, users = _window(tl, rate, window_start_ms, window_end_ms)
    m = (total // 2) // FRAME
    split = m * FRAME
    # [from, to) of the mix each encoder is fed (after the priming it cannot signal)
    spans = [(FRAME, split + 2 * FRAME), (split - WARMUP_FRAMES * FRAME + FRAME, total)]
    gains = gains_db or {}
    adts = FORMATS["aac"]
    frame_bytes = 4 * channels
    owed = sum(b - a for a, b in spans) * frame_bytes

    with tempfile.TemporaryDirectory(dir=out.parent if str(out.parent) else ".", prefix=".mediatools-tmp-") as td:
        paths = [Path(td) / "a.aac", Path(td) / "b.aac"]
        cmds = [encoder_cmd(adts, rate, channels, bitrate or fmt.bitrate, normalize, p) for p in paths]
        encoders: list[Encoder] = []

        def tick() -> None:
            if progress:
                progress(sum(e.fed for e in encoders) // frame_bytes, owed // frame_bytes)

        mixer = None
        try:   # an interrupt from here on kills every encoder started
            for cmd, spool in zip(cmds, (Path(td), None)):
                with deferred():   # not cut between starting an encoder and holding it
                    encoders.append(Encoder(cmd, out, spool=spool))
            mixer = _Mixer(users, gains, rate, channels, taps, tl.span_ms)
            done = 0
            while done < total:
                n = min(BLOCK, total - done)
                block = mixer.block(done, n)
                for enc, (lo, hi) in zip(encoders, spans):
                    a, b = max(lo, done), min(hi, done + n)
                    if a < b:
                        enc.put(block[a - done:b - done])
                done += n
                tick()
            for enc in reversed(encoders):
                enc.finish(tick)
        except BaseException:
            for enc in encoders:
                enc.abort()
            raise
        finally:
            if mixer is not None:
                mixer.close()

        def encode_failed(why: str) -> MediatoolsError:
            return MediatoolsError(f"encoding failed: {why}", file=str(out), code="encode_failed")

        with atomic_path(out) as tmp, adts_output(tmp, fmt.name, encode_failed) as put, \
                open(paths[0], "rb") as fa, open(paths[1], "rb") as fb:
            copy_adts_frames(fa, put, count=m)
            copy_adts_frames(fb, put, skip=WARMUP_FRAMES)
    return _result(tl, out, fmt, rate, channels, total, users, gains)
