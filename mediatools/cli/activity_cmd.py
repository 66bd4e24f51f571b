"""``mediatools activity``: who spoke when, talk-time figures, exports for other tools."""
from __future__ import annotations

from typing import Any

import click

from ..activity import DETECTORS, EXPORTS, ActivityOptions, activity
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


@cli.command("activity")
@click.argument("source")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for activity.json, activity.rttm, activity.vtt, activity.csv and labels/<uid>.txt.")
@sid_option
@uid_option
@exclude_uid_option
@click.option("--detector", type=click.Choice(DETECTORS), default="webrtc", show_default=True,
              help="webrtc: webrtcvad; energy: a level threshold (the fallback).")
@click.option("--aggressiveness", type=click.IntRange(0, 3), default=2, show_default=True,
              help="webrtcvad mode: 3 calls the least noise speech, and misses soft onsets.")
@click.option("--hangover", "hangover_ms", type=finite(0), default=300.0, show_default=True,
              help="ms: pauses shorter than this stay inside a turn.")
@click.option("--min-turn", "min_turn_ms", type=finite(0), default=100.0, show_default=True,
              help="ms: shorter bursts are not turns.")
@click.option("--export", "exports", multiple=True, type=click.Choice(EXPORTS),
              help="Only these exports (repeatable)  [default: all].")
@strict_option
@json_option
@quiet_option
@source_options
@click.pass_context
def activity_cmd(ctx: click.Context, source: str, out: str, sid: str | None, uids: tuple[str, ...],
                 exclude: tuple[str, ...], detector: str, aggressiveness: int, hangover_ms: float,
                 min_turn_ms: float, exports: tuple[str, ...], strict: bool, as_json: bool, quiet: bool) -> None:
    """Speech activity per user: turns (session clock and UTC), talk time, overlaps, interruptions,
    silences; written as RTTM, WebVTT, Audacity labels, CSV and JSON into OUT.

    Only each user's runs are judged (where nothing was recorded nobody spoke).
    """
    opts = ActivityOptions(sid=sid, uids=list(uids), exclude_uids=list(exclude), detector=detector,
                           aggressiveness=aggressiveness, hangover_ms=hangover_ms, min_turn_ms=min_turn_ms,
                           exports=list(exports) or list(EXPORTS), strict=strict)
    opts.check()
    run_stage(ctx, activity, source, out, opts, label="speech activity", sid=sid, uids=list(uids), quiet=quiet,
              as_json=as_json, summary=lambda rep: _summary(rep, out))


def _summary(rep: Any, out: str) -> str:
    c = rep.figures["call"]
    lines = [f"{u['uid']:>12}  talk {u['talk_ms'] / 1000:8.1f} s  {100 * u['share']:5.1f} %  "
             f"{u['turns']:4d} turns  overlap {u['overlap_ms'] / 1000:6.1f} s  {u['interruptions']} interruptions"
             for u in rep.figures["users"]]
    lines.append(f"wrote {out} ({len(rep.users)} users, {c['turns']} turns, talk {c['talk_ms'] / 1000:.1f} s, "
                 f"overlap {c['overlap_ms'] / 1000:.1f} s, {len(c['silences'])} silences, "
                 f"{len(rep.problems)} problems)")
    return "\n".join(lines)
