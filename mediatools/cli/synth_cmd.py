from __future__ import annotations

import click

from ..synth.generate import FAULT_KINDS, Fault, plan, synthesize
from . import cli
from .common import emit_json, json_option


def _fault(value: str) -> Fault:
    """KIND[:UID_INDEX[:RUN[:SLICE]]] — UID_INDEX counts users from 0."""
    parts = value.split(":")
    kind = parts[0]
    if kind not in FAULT_KINDS:
        raise click.BadParameter(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
    nums = [int(x) for x in parts[1:]]
    return Fault(kind, str(nums[0]) if nums else "0", *(nums[1:3]))


@cli.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--users", default=3, show_default=True, help="Number of users.")
@click.option("--duration", default=60.0, show_default=True, help="Session length in seconds.")
@click.option("--seed", default=0, show_default=True, help="Everything random derives from it.")
@click.option("--codec", type=click.Choice(["aac", "opus", "mixed"]), default="aac", show_default=True)
@click.option("--sample-rates", default="48000", show_default=True, help="Comma list, cycled over users.")
@click.option("--channels", default="1", show_default=True, help="Comma list, cycled over users.")
@click.option("--gaps", default=1, show_default=True, help="Mutes per user.")
@click.option("--no-late-join", is_flag=True, help="Everybody starts at the session start.")
@click.option("--string-uids", is_flag=True, help="Every other user has a string user account as uid.")
@click.option("--signal", type=click.Choice(["tone", "speech", "voice"]), default="tone", show_default=True,
              help="tone: a steady tone per user; speech: syllable-modulated tones; voice: formant speech in turns (truth.json lists them).")
@click.option("--fault", "faults", multiple=True,
              help=f"KIND[:USER[:RUN[:SLICE]]] (repeatable). Kinds: {', '.join(FAULT_KINDS)}.")
@json_option
def synth_cmd(out: str, users: int, duration: float, seed: int, codec: str, sample_rates: str, channels: str,
              gaps: int, no_late_join: bool, string_uids: bool, signal: str, faults: tuple[str, ...],
              as_json: bool) -> None:
    """Write a realistic synthetic Agora recording (real TS slices) and its truth.json to OUT."""
    parsed = [_fault(f) for f in faults]
    spec = plan(users, duration, seed=seed, codec=codec, sample_rates=[int(x) for x in sample_rates.split(",")],
                channels=[int(x) for x in channels.split(",")], gaps=gaps, late_join=not no_late_join,
                string_uids=string_uids, signal=signal)
    for f in parsed:
        f.uid = spec.users[int(f.uid) % len(spec.users)].uid
    spec.faults = parsed
    truth = synthesize(spec, out)
    if as_json:
        emit_json(truth)
    else:
        n = sum(len(u["runs"]) for u in truth["users"])
        click.echo(f"wrote {len(truth['users'])} users, {n} runs, span {truth['span_ms'] / 1000:.3f} s to {out}")
