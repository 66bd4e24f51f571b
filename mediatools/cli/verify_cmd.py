from __future__ import annotations

import click

from ..agora.transcode import load_transcode_options
from ..verify import VerifyOptions, verify
from . import cli
from .common import emit_json, json_option, local_source, quiet_option, sid_option, source_options
from .option_types import finite
from .progress import progress_bar


@cli.command("verify")
@click.argument("mixfile", type=click.Path(dir_okay=False))
@click.argument("source")
@sid_option
@click.option("--tolerance-ms", type=finite(0, min_open=True), default=40.0, show_default=True,
              help="Allowed misplacement of the mix and of each run.")
@click.option("--transcode-options", type=click.Path(exists=True, dir_okay=False),
              help="Agora transcodeOptions JSON (or the start request): format, rate, channels to expect.")
@json_option
@quiet_option
@source_options
@click.pass_context
def verify_cmd(ctx: click.Context, mixfile: str, source: str, sid: str | None, tolerance_ms: float,
               transcode_options: str | None, as_json: bool, quiet: bool) -> None:
    """Check a mix (Agora's postpone mix, or ours) against the recording it came from.

    Checks format, duration, the mix's global offset, that every run of every user
    is present at its place, no dropout at slice boundaries, and silence where
    nobody spoke. Exit 0 when every check passes, 1 when any fails (one line per
    failed check on stderr, naming the mix file, also with --quiet, which drops
    the bar and the table).
    """
    expected = load_transcode_options(transcode_options) if transcode_options else None
    folder = local_source(ctx, source, sid=sid)
    with progress_bar("verifying", quiet=quiet or as_json) as bar:
        rep = verify(mixfile, folder, VerifyOptions(sid=sid, tolerance_ms=tolerance_ms, expected=expected),
                     progress=bar)
    if as_json:
        emit_json(rep.to_dict())
    elif not quiet:
        for c in rep.checks:
            click.echo(f"{'PASS' if c.passed else 'FAIL'}  {c.name:<14} {c.message}")
        click.echo(f"verdict: {'the mix is complete and aligned' if rep.passed else 'the mix FAILS'} "
                   f"({sum(c.passed for c in rep.checks)}/{len(rep.checks)} checks)")
    for c in rep.checks:
        if not c.passed:
            click.echo(f"mediatools: verify: {mixfile}: {c.name}: {c.message}", err=True)
    if not rep.passed:
        ctx.exit(1)
