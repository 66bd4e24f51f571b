from __future__ import annotations

import click

from ..errors import MediatoolsError, Strictness, UsageError
from ..recording.discovery import discover
from ..recording.inspect_report import SCHEMA, recording_dict, render_text
from ..recording.probe import probe_runs
from ..timeline.contract import DEFAULT_TOLERANCE_MS, build_timeline
from . import cli
from .common import emit_json, json_option, local_source, sid_option, source_options, strict_option, uid_option
from .option_types import finite


@cli.command("inspect")
@click.argument("source")
@sid_option
@uid_option
@json_option
@strict_option
@click.option("--tolerance-ms", type=finite(0), default=DEFAULT_TOLERANCE_MS, show_default=True,
              help="Slices whose file-name time is further than this from the previous slice's end start a new run.")
@click.option("--no-probe", is_flag=True, help="Do not run ffmpeg to read codec, rate and channels.")
@source_options
@click.pass_context
def inspect_cmd(ctx: click.Context, source: str, sid: str | None, uids: tuple[str, ...], as_json: bool,
                strict: bool, tolerance_ms: float, no_probe: bool) -> None:
    """Show a recording as a timeline: users, runs, gaps, codecs, problems.

    SOURCE is a folder holding Agora files (searched recursively) or an s3:// or azure:// URL.
    Every recording found is shown unless --sid picks one.
    """
    folder = local_source(ctx, source, sid=sid, uids=list(uids))
    recs = discover(folder, tolerance_ms=tolerance_ms)
    if sid:
        recs = [r for r in recs if r.sid == sid]
        if not recs:
            raise UsageError(f"no recording with sid {sid}", file=str(folder))
    if not recs:
        raise MediatoolsError("no Agora audio recording found (no *__uid_s_*__uid_e_audio* files)",
                              file=str(folder), code="not_a_recording")
    picked: dict[str, list[str] | None] = {r.sid: list(uids) or None for r in recs}
    if uids and len(recs) > 1:   # several recordings: each shows the uids it has (an error if none has one)
        picked = {r.sid: [u for u in uids if u in {x.uid for x in r.users}] for r in recs}
        recs = [r for r in recs if picked[r.sid]] or recs[:1]
        picked[recs[0].sid] = picked[recs[0].sid] or list(uids)
    docs = []
    failed: MediatoolsError | None = None
    for rec in recs:
        if not no_probe:
            probe_runs(rec)
        if strict and failed is None:
            try:
                Strictness(True).extend(rec.problems)
            except MediatoolsError as exc:
                if not as_json:
                    raise
                failed = exc   # --json still prints the timeline, with its problems, then fails
        tl = build_timeline(rec, picked[rec.sid])
        docs.append(recording_dict(rec, tl))
    doc = {"schema": SCHEMA, "root": str(folder), "recordings": docs}
    if as_json:
        emit_json(doc)
    else:
        click.echo(render_text(doc))
    if failed is not None:
        raise failed
