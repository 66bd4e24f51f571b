"""``mediatools report``: the call as one self-contained HTML page."""
from __future__ import annotations

import click

from ..activity import ActivityOptions
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
from .option_types import finite


@cli.command("report")
@click.argument("source")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (e.g. report.html).")
@click.option("--mix", "mix", type=click.Path(exists=True, dir_okay=False),
              help="The mix to play in the page  [default: the <sid>_<cname>_0.<ext> published beside the recording].")
@click.option("--no-mix", is_flag=True, help="No player, even when a published mix is there.")
@sid_option
@uid_option
@exclude_uid_option
@click.option("--aggressiveness", type=click.IntRange(0, 3), default=2, show_default=True, help="As activity.")
@click.option("--hangover", "hangover_ms", type=finite(0), default=300.0, show_default=True,
              help="As activity (ms).")
@click.option("--min-turn", "min_turn_ms", type=finite(0), default=100.0, show_default=True,
              help="As activity (ms).")
@strict_option
@json_option
@quiet_option
@source_options
@click.pass_context
def report_cmd(ctx: click.Context, source: str, out: str, mix: str | None, no_mix: bool, sid: str | None,
               uids: tuple[str, ...], exclude: tuple[str, ...], aggressiveness: int, hangover_ms: float,
               min_turn_ms: float, strict: bool, as_json: bool, quiet: bool) -> None:
    """Write one HTML page showing who spoke when: a lane per user (presence, turns, gaps,
    problems), an overlap lane, zoom and an overview, the talk-time table, and with a mix
    a player whose position moves a cursor over the lanes (click a turn to play it).

    Nothing is fetched when it is viewed: it opens from file:// as it is. The mix is linked
    by a relative path, so keep the two side by side.
    """
    from ..report import ReportOptions, report
    opts = ReportOptions(sid=sid, uids=list(uids), exclude_uids=list(exclude), mix=mix, find_mix=not no_mix,
                         strict=strict, activity=ActivityOptions(aggressiveness=aggressiveness,
                                                                 hangover_ms=hangover_ms, min_turn_ms=min_turn_ms))
    run_stage(ctx, report, source, out, opts, label="speech activity", sid=sid, uids=list(uids), quiet=quiet,
              as_json=as_json, summary=lambda rep: f"wrote {rep.output} ({rep.users} users, {rep.turns} turns, "
                                                   f"{rep.size_bytes / 1024:.0f} KiB"
                                                   f"{', player: ' + rep.mix if rep.mix else ''})")
