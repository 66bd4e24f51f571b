from __future__ import annotations

import click

from ..merge import MERGE_FORMATS, MergeOptions, merge
from . import cli
from .common import (
    emit_json,
    json_option,
    local_source,
    quiet_option,
    report_problems,
    sid_option,
    source_options,
    strict_option,
)
from .progress import progress_bar


@cli.command("merge")
@click.argument("source")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for <uid>.<ext> files and merge.json (created if missing).")
@click.option("--format", "fmt", type=click.Choice(MERGE_FORMATS),
              help="Output format.  [default: m4a for AAC input, ogg for Opus input]")
@sid_option
@click.option("--uid", "uids", multiple=True, help="Only this uid (repeatable).")
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
    folder = local_source(ctx, source, sid=sid, uids=list(uids))
    with progress_bar("merging", quiet=quiet) as progress:
        report = merge(folder, outdir, opts, progress=progress)
    report_problems(report.problems, quiet=quiet or as_json)
    if as_json:
        emit_json(report.to_dict())
    elif not quiet:
        for u in report.users:
            if u["file"]:
                click.echo(f"wrote {u['file']} ({u['mode']}, {u['duration_ms'] / 1000:.3f} s)", err=True)
