from __future__ import annotations

from pathlib import Path

import click

from ..agora.transcode import load_transcode_options
from ..errors import UsageError
from ..media.formats import FORMATS
from ..mix import NORMALIZE, MixOptions, mix
from . import cli
from .common import (
    exclude_uid_option,
    json_option,
    quiet_option,
    run_stage,
    sid_option,
    source_options,
    strict_option,
    uid_option,
)

#: --gain bounds in dB: beyond them a user is silent or the mix is one limiter-crushed square wave
GAIN_DB = (-120.0, 60.0)


def _gains(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for v in values:
        uid, sep, db = v.rpartition("=")
        try:
            if not sep or not uid:
                raise ValueError
            out[uid] = float(db)
        except ValueError:
            raise UsageError(f"--gain takes UID=DB, got {v!r}") from None
        if not GAIN_DB[0] <= out[uid] <= GAIN_DB[1]:   # also false for nan
            raise UsageError(f"--gain {v!r}: DB must be a number from {GAIN_DB[0]:g} to {GAIN_DB[1]:g}")
    return out


@cli.command("mix")
@click.argument("source")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file; the format follows the suffix (.m4a .mp3 .aac .wav .flac .opus .ogg).")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), help="Override the suffix.")
@sid_option
@uid_option
@exclude_uid_option
@click.option("--sample-rate", type=int, default=None, help="Output rate in Hz.  [default: 48000]")
@click.option("--channels", type=click.IntRange(1, 2), default=None, help="1 or 2.  [default: 2]")
@click.option("--bitrate", help="e.g. 128k (default per format: 128k AAC/MP3, 96k Opus).")
@click.option("--gain", "gains", multiple=True, metavar="UID=DB", help="Per-user gain in dB, -120 to 60 (repeatable).")
@click.option("--normalize", type=click.Choice(NORMALIZE), default="limit", show_default=True,
              help="limit: sum unscaled, peak limiter so nothing clips; ebu: EBU R128 loudness; none.")
@click.option("--start", help="Cut from here: seconds / H:MM:SS.mmm from the start, or UTC.")
@click.option("--end", help="Cut up to here (same forms as --start).")
@click.option("--transcode-options", type=click.Path(exists=True, dir_okay=False),
              help="Agora transcodeOptions JSON (or a whole start request): format, rate, bitrate, channels.")
@strict_option
@json_option
@quiet_option
@source_options
@click.pass_context
def mix_cmd(ctx: click.Context, source: str, out: str, fmt: str | None, sid: str | None, uids: tuple[str, ...],
            exclude: tuple[str, ...], sample_rate: int | None, channels: int | None, bitrate: str | None,
            gains: tuple[str, ...], normalize: str, start: str | None, end: str | None,
            transcode_options: str | None, strict: bool, as_json: bool, quiet: bool) -> None:
    """Mix every user onto one wall-clock timeline (silence where nobody spoke).

    The local alternative to Agora's cloud postpone mixing: t=0 of OUT is the session
    origin (the first instant anyone was recorded); each run sits at its file-name UTC.
    """
    opts = MixOptions(sid=sid, uids=list(uids), exclude_uids=list(exclude), format=fmt, bitrate=bitrate,
                      gains_db=_gains(gains), normalize=normalize, start=start, end=end, strict=strict)
    if transcode_options:
        t = load_transcode_options(transcode_options)
        named = Path(out).suffix.lstrip(".").lower()
        if t.format and not fmt and named in FORMATS and named != t.format:
            raise UsageError(f"the transcodeOptions ask for {t.format}, but OUT is .{named}: name the output "
                             f".{t.format}, or give --format")
        opts.format = fmt or t.format or opts.format
        opts.sample_rate = t.sample_rate or opts.sample_rate
        opts.channels = t.channels or opts.channels
        if t.bitrate and not bitrate:
            opts.bitrate = str(t.bitrate)
    if sample_rate is not None:   # 0 too: the options refuse it (it was taken as "not given")
        opts.sample_rate = sample_rate
    opts.channels = channels or opts.channels
    run_stage(ctx, mix, source, out, opts, label="mixing", sid=sid, uids=list(uids), quiet=quiet, as_json=as_json,
              summary=lambda r: f"wrote {r.output} ({r.format}, {r.duration_ms / 1000:.3f} s, "
                                f"{len(r.users)} users, {len(r.problems)} problems)")
