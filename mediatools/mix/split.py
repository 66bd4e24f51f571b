"""Long AAC mixes in parts: one mixing pass, one encoder per part, all encoding at once, the
parts joined at frame boundaries. The AAC encoder alone is slower than everything else
together, so one encoder would set the pace. ``MEDIATOOLS_SPLIT_MIN_S`` (read per mix) sets
from which length on a mix is split, ``MEDIATOOLS_SPLIT_PARTS`` into how many parts (default:
the cores this process may use, at most 8)."""
from __future__ import annotations

import os
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
from .render import BLOCK, MixResult, _Mixer, _result, _window, fed_channels

if TYPE_CHECKING:
    from ..media.tap import MixTap

#: frames each encoder after the first runs before its join, so its psychoacoustic model, bit
#: rate control and the limiter have settled where its frames are kept
WARMUP_FRAMES = 235
#: more encoders than this gain little: the single mixing pass (decoding every run) sets the pace
MAX_PARTS = 8


def usable_cores() -> int:
    """The cores this process may run on (its affinity: ``taskset``, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # pragma: no cover - not Linux
        return os.cpu_count() or 1


def split_parts(total_samples: int) -> int:
    """How many parts a split mix of ``total_samples`` gets: MEDIATOOLS_SPLIT_PARTS, else the
    usable cores (at most MAX_PARTS); never so many that a part is shorter than two warm-ups."""
    from .. import settings
    asked = int(settings.get("MEDIATOOLS_SPLIT_PARTS"))
    want = asked if asked > 0 else min(MAX_PARTS, usable_cores())
    return max(1, min(want, total_samples // (2 * WARMUP_FRAMES * FRAME), total_samples // (2 * BLOCK)))


def can_split(fmt: OutputFormat, normalize: str, total_samples: int, rate: int) -> bool:
    """Loudness normalization looks at the whole file; only AAC frames join cleanly (MP3's
    bit reservoir reaches back across frames); one core gains nothing from a second encoder."""
    from .. import settings
    return (fmt.codec == "aac" and fmt.name in ("m4a", "aac") and normalize != "ebu"
            and total_samples >= float(settings.get("MEDIATOOLS_SPLIT_MIN_S")) * rate and total_samples >= 4 * BLOCK
            and split_parts(total_samples) >= 2)


def part_plan(total: int, parts: int) -> list[tuple[int, int, int, int | None]]:
    """Per part: the [from, to) of the mix its encoder is fed, then how many of its ADTS frames
    to skip and to keep (None: the rest). Part j covers mix frames [m_j, m_j+1), m_j = the
    frame at j/parts of the way. Each encoder is fed from one frame past where its decoded
    frame 0 sits (its priming then lines decoded frame k up with sample k·1024 of that
    place), every part after the first WARMUP_FRAMES early, and two frames past its end
    (the decoder's overlap needs the next frame)."""
    marks = [((total * j) // parts) // FRAME for j in range(parts)]
    plan = []
    for j, m in enumerate(marks):
        start = 0 if j == 0 else (m - WARMUP_FRAMES) * FRAME
        last = j == parts - 1
        end = total if last else marks[j + 1] * FRAME + 2 * FRAME
        plan.append((start + FRAME, end, 0 if j == 0 else WARMUP_FRAMES, None if last else marks[j + 1] - m))
    return plan


def render_mix_split(tl: Timeline, out: str | Path, *, fmt: OutputFormat, rate: int = 48000,
                     channels: int = 2, bitrate: str | None = None, gains_db: dict[str, float] | None = None,
                     normalize: str = "limit", window_start_ms: float = 0.0, window_end_ms: float | None = None,
                     progress: Callable[[int, int], None] | None = None, taps: Sequence[MixTap] = ()) -> MixResult:
    """One mixing pass feeding one AAC encoder per part (:func:`split_parts`), all at once,
    the parts joined at frame boundaries (:func:`part_plan`).

    Each part is encoded as raw ADTS, fed from one frame past where its kept audio starts
    (the encoder's priming then lines decoded frame k up with that place's sample k·1024);
    every part after the first starts WARMUP_FRAMES early and drops those frames. The
    decoder's overlap-add at a join pairs two encodings of the same samples, so a join is as
    clean as any frame; runs keep their sample-exact places (tests measure both).

    The mix is made once, in order, so only the runs sounding at once are being decoded.
    Every encoder but the last is fed through a disk spool: the mix runs ahead of it to reach
    the later parts, and the lead waits in chunk files (capped in all by
    MEDIATOOLS_SPOOL_MAX_MB, see :class:`~mediatools.mix.encode.Spool`), not in memory.
    """
    from .. import settings
    out = Path(out)
    total, users = _window(tl, rate, window_start_ms, window_end_ms)
    parts = split_parts(total)
    plan = part_plan(total, parts)
    gains = gains_db or {}
    adts = FORMATS["aac"]
    fed = fed_channels(users, channels)
    frame_bytes = 4 * fed
    owed = sum(b - a for a, b, _, _ in plan) * frame_bytes
    spool_limit = (int(settings.get("MEDIATOOLS_SPOOL_MAX_MB")) << 20) // (parts - 1)

    with tempfile.TemporaryDirectory(dir=out.parent if str(out.parent) else ".", prefix=".mediatools-tmp-") as td:
        paths = [Path(td) / f"part{j}.aac" for j in range(parts)]
        cmds = [encoder_cmd(adts, rate, channels, bitrate or fmt.bitrate, normalize, p, fed=fed) for p in paths]
        spools: list[Path | None] = [Path(td) / f"spool{j}" for j in range(parts - 1)] + [None]
        encoders: list[Encoder] = []

        def tick() -> None:
            if progress:
                progress(sum(e.fed for e in encoders) // frame_bytes, owed // frame_bytes)

        mixer = None
        try:   # an interrupt from here on kills every encoder started
            for cmd, spool in zip(cmds, spools):
                if spool is not None:
                    spool.mkdir()
                with deferred():   # not cut between starting an encoder and holding it
                    encoders.append(Encoder(cmd, out, spool=spool, spool_limit=spool_limit))
            mixer = _Mixer(users, gains, rate, fed, taps, tl.span_ms)
            done = 0
            while done < total:
                n = min(BLOCK, total - done)
                block = mixer.block(done, n)
                for enc, (lo, hi, _, _) in zip(encoders, plan):
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

        with atomic_path(out) as tmp, adts_output(tmp, fmt.name, encode_failed) as put:
            for path, (_, _, skip, count) in zip(paths, plan):
                with open(path, "rb") as f:
                    copy_adts_frames(f, put, skip=skip, count=count)
    return _result(tl, out, fmt, rate, channels, total, users, gains)
