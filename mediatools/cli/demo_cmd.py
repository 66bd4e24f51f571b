from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..errors import MediatoolsError, UsageError
from ..merge import MergeOptions, merge
from ..mix import MixOptions, mix
from ..recording.discovery import discover
from ..recording.inspect_report import SCHEMA, recording_dict, render_text
from ..recording.probe import probe_runs
from ..synth.generate import Fault, plan, synthesize
from ..verify import verify
from . import cli

# demo replaces its own folder on every run; this file says a folder is one demo made
MARK = ".mediatools-demo"


def _claim(root: Path) -> None:
    """Empty ``root`` for a new demo, refusing any folder that holds something demo did not make."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARK).is_file():
            raise UsageError(f"{root}: folder is not empty and was not made by mediatools demo; "
                             "give -o a new or empty folder")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARK).write_text("made by mediatools demo: replaced by the next demo run into this folder\n")


@cli.command("demo")
@click.option("-o", "--output", "out", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the synthetic recording and everything made from it: new, empty, or an "
                   "earlier demo's (replaced).")
@click.option("--seed", default=2026, show_default=True)
def demo_cmd(out: str, seed: int) -> None:
    """The main job on a built-in example, no cloud account needed.

    Synthesizes a 4-user call the way Agora records it (speech-like audio, AAC and Opus
    senders at different rates, mutes, a late joiner, a lost slice and a server failover),
    then inspects it, merges each user, mixes everyone into one file and verifies the mix.
    """
    root = Path(out)
    _claim(root)
    rec_dir = root / "recording"
    spec = plan(4, 90.0, seed=seed, codec="aac", sample_rates=[48000, 16000, 48000, 32000],
                channels=[1, 1, 2, 1], gaps=1, signal="speech")
    spec.users[1].codec = "opus"
    spec.faults = [Fault("missing_slice", spec.users[0].uid, 0, 1), Fault("bak_gap", spec.users[2].uid, 0, 1)]
    click.echo(f"1/5 synthesizing a 4-user, 90 s recording into {rec_dir}/ ...", err=True)
    try:
        synthesize(spec, rec_dir)
    except Exception:
        # a planned fault may not fit this seed's layout: fall back to a clean call
        shutil.rmtree(rec_dir, ignore_errors=True)
        spec.faults = []
        synthesize(spec, rec_dir)
    click.echo("2/5 inspect:", err=True)
    rec = discover(rec_dir)[0]
    probe_runs(rec)
    click.echo(render_text({"schema": SCHEMA, "root": str(rec_dir), "recordings": [recording_dict(rec)]}))
    click.echo("3/5 merge: one file per user ...", err=True)
    (root / "merged").mkdir(parents=True, exist_ok=True)
    m = merge(rec_dir, root / "merged", MergeOptions())
    for u in m.users:
        click.echo(f"    {root / 'merged' / (u.get('file') or '-')}  ({u.get('mode')})")
    click.echo("4/5 mix: everyone on one timeline ...", err=True)
    r = mix(rec_dir, root / "call.m4a", MixOptions())
    click.echo(f"    {r.output}  ({r.duration_ms / 1000:.1f} s, {len(r.users)} users)")
    click.echo("5/5 verify: is every user in the mix, where the recording says? ...", err=True)
    v = verify(root / "call.m4a", rec_dir)
    for c in v.checks:
        click.echo(f"    {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.message}")
    if not v.passed:
        raise MediatoolsError(f"{root / 'call.m4a'}: verify failed")
    click.echo(f"\nOutputs:\n  recording  {rec_dir}/\n  per user   {root / 'merged'}/  (merge.json describes them)\n"
               f"  mix        {root / 'call.m4a'}\nTry: mediatools inspect {rec_dir} --json")
