from __future__ import annotations

import click

from ..merge import MERGE_FORMATS, MergeOptions, MergeReport, merge
from . import cli
from .common import (
    json_option,
    quiet_option,
    run_stage,
    sid_option,
    source_options,
    strict_option,
    uid_option,
)


@cli.command("merge")
@click.argument("source")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for <uid>.<ext> files and merge.json (created if missing).")
@click.option("--format", "fmt", type=click.Choice(MERGE_FORMATS),
              help="Output format.  [default: m4a for AAC input, ogg for Opus input]")
@sid_option
@uid_option
@click.option("--gaps", type=click.Choice(["keep", "drop"]), default="keep", show_default=True,
              help="keep: silence in gaps, the file runs in real time; drop: runs back to back.")
@click.option("--align", type=click.Choice(["user", "session"]), default="user", show_default=True,
              help="user: file starts at the user's first instant; session: at the session origin, "
                   "all files the same length.")
@click.option("--start", help="Cut from here: seconds / H:MM:SS.mmm from the session origin, or UTC.")
@click.option("--end", help="Cut up to here (same forms as --start).")
@click.option("--reencode", is_flag=True, help="Transcode even where the audio could be copied.")
@click.option("--parallel", type=click.IntRange(1, 64), default=None,
              help="Users written at once.  [default: one per CPU core, at most 4]")
@strict_option
@json_option
@quiet_option
@source_options
@click.pass_context
def merge_cmd(ctx: click.Context, source: str, outdir: str, fmt: str | None, sid: str | None,
              uids: tuple[str, ...], gaps: str, align: str, start: str | None, end: str | None,
              reencode: bool, parallel: int | None, strict: bool, as_json: bool, quiet: bool) -> None:
    """One file per user: the user's runs, copied without re-encoding where the codec allows."""
    opts = MergeOptions(sid=sid, uids=list(uids), format=fmt, gaps=gaps, align=align, start=start, end=end,
                        strict=strict, reencode=reencode, parallel=parallel, create_outdir=True)
    run_stage(ctx, merge, source, outdir, opts, label="merging", sid=sid, uids=list(uids), quiet=quiet,
              as_json=as_json, summary=_summary)


def _summary(report: MergeReport) -> str:
    return "\n".join(f"wrote {u['file']} ({u['mode']}, {u['duration_ms'] / 1000:.3f} s)"
                     for u in report.users if u["file"])
