from __future__ import annotations

import click

from . import cli
from .common import source_options, emit_json, json_option, quiet_option, report_problems, show_progress, sid_option, strict_option
from ..errors import Problem
from ..merge.core import MERGE_FORMATS, MergeOptions, merge
from ..storage.sources import local_source


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
                        strict=strict, reencode=reencode, parallel=parallel)
    folder = local_source(ctx, source, sid=sid, uids=list(uids))
    if show_progress(quiet):
        with click.progressbar(length=1000, label="merging", file=click.get_text_stream("stderr")) as bar:
            state = {"shown": 0}

            def progress(done: int, total: int) -> None:
                pos = int(1000 * done / max(total, 1))
                bar.update(pos - state["shown"])
                state["shown"] = pos

            report = merge(folder, outdir, opts, progress=progress, create_outdir=True)
    else:
        report = merge(folder, outdir, opts, create_outdir=True)
    report_problems([Problem(**p) for p in report["problems"]], quiet=quiet or as_json)
    if as_json:
        emit_json(report)
    elif not quiet:
        for u in report["users"]:
            if u["file"]:
                click.echo(f"wrote {u['file']} ({u['mode']}, {u['duration_ms'] / 1000:.3f} s)", err=True)
