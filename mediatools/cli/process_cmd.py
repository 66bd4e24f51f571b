"""``mediatools process``: the unattended replacement for Agora's postpone mixing."""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable

import click

from ..errors import UsageError
from . import cli
from .common import _S3_OPTIONS, emit_json, json_option, quiet_option
from .option_types import finite
from .progress import show_progress


def _bucket_options(f: Callable) -> Callable:
    """The bucket options of fetch, without its per-request --jobs/--retries (here --retries counts recordings)."""
    skip = {"jobs", "retries"}
    for opt in reversed(_S3_OPTIONS):
        probe = opt(lambda: None)
        if probe.__click_params__[-1].name in skip:   # type: ignore[attr-defined]
            continue
        f = opt(f)
    return f


class _Live:
    """One status line on a terminal: recordings done / total and the stage of each running one."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.running: dict[str, str] = {}
        self.lock = threading.Lock()
        self.err = click.get_text_stream("stderr")

    def __call__(self, e: dict[str, Any]) -> None:
        with self.lock:
            if e["event"] == "start":
                self.total = e["total"]
            elif e["event"] == "stage":
                if e["stage"] not in ("processed", "skipped", "incomplete", "failed"):
                    self.running[e["sid"]] = e["stage"]
            elif e["event"] == "done":
                self.done = e["done"]
                self.running.pop(e["sid"], None)
                r = e["result"]
                self._line(f"{r.status:<10} {r.sid}", end="\n")
            self._line(f"process {self.done}/{self.total}  " +
                       "  ".join(f"{sid[:8]}…: {st}" for sid, st in sorted(self.running.items())))

    def _line(self, text: str, end: str = "") -> None:
        width = 200
        try:
            import shutil
            width = shutil.get_terminal_size().columns - 1
        except OSError:
            pass
        self.err.write("\r\x1b[K" + text[:width] + end)
        self.err.flush()

    def close(self) -> None:
        self.err.write("\r\x1b[K")
        self.err.flush()


def _summary(rep: Any) -> None:
    rows = [("sid", "status", "seconds", "worker", "outputs / reason")]
    for r in rep.recordings:
        what = (", ".join(o["key"].rsplit("/", 1)[-1] for o in r.outputs if o.get("kind") == "mix")
                if r.status in ("processed", "skipped") else
                (r.reasons[0] if r.reasons else (r.error or {}).get("message", "")))
        if r.status == "processed" and len(r.outputs) > 1:
            kinds = [o.get("kind") for o in r.outputs if o.get("kind") != "mix"]
            what += " (+" + ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds)) + ")"
        rows.append((r.sid, r.status, f"{r.seconds.get('total', 0):.1f}", r.worker or "", what))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows if len(rows) > 1 else []:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4], err=True)
    c = rep.counts
    click.echo(f"{len(rep.recordings)} recordings: {c['processed']} processed, {c['skipped']} skipped, "
               f"{c['incomplete']} incomplete, {c['failed']} failed in {rep.seconds:.1f} s ({rep.cluster})", err=True)


@cli.command("process")
@click.argument("source", required=False)
@click.option("--to", "dest", metavar="DEST", help="Folder, s3://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX for the results "
              "[default: beside each recording, as Agora's postpone mixing does].")
@click.option("--sid", "sids", multiple=True, help="This recording (repeatable).")
@click.option("--all", "all_", is_flag=True, default=None, help="Every recording found under SOURCE.")
@click.option("--since", help="Only recordings whose first slice is at or after this UTC time, or this long "
              "ago (24h, 90m, 7d).")
@click.option("--until", help="Only recordings whose first slice is before this (same forms as --since).")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
              help="TOML file with these options (names as the flags, '-' or '_'); flags override it.")
@click.option("--format", "fmt", type=click.Choice(["m4a", "mp3", "aac"]), help="Mix format.  [default: m4a]")
@click.option("--transcode-options", type=click.Path(exists=True, dir_okay=False),
              help="Agora transcodeOptions JSON (or the start request): format, rate, bitrate, channels.")
@click.option("--sample-rate", type=int, help="Output rate in Hz.  [default: 48000]")
@click.option("--channels", type=click.IntRange(1, 2), help="1 or 2.  [default: 2]")
@click.option("--bitrate", help="e.g. 128k (default per format).")
@click.option("--normalize", type=click.Choice(["none", "limit", "ebu"]), help="As mix.  [default: limit]")
@click.option("--stems/--no-stems", default=None, help="Also publish one file per user under <sid>_<cname>_stems/.")
@click.option("--activity/--no-activity", "activity", default=None,
              help="Also publish speech activity (JSON, RTTM, WebVTT, CSV, Audacity labels) under <sid>_<cname>_activity/.")
@click.option("--report/--no-report", "report", default=None,
              help="Also publish the HTML timeline report <sid>_<cname>.mediatools.report.html beside the mix.")
@click.option("--verify/--no-verify", "verify", default=None, help="Verify the mix before publishing.  "
              "[default: verify]")
@click.option("--name-template", help="Name of the published mix.  [default: {sid}_{cname}_0.{ext}]")
@click.option("--force", is_flag=True, default=None, help="Process even when the manifest is current, and "
              "replace objects under output names that mediatools did not write.")
@click.option("--wait", "wait_s", type=finite(0), help="Poll up to this many seconds for incomplete "
              "recordings to complete.  [default: 0]")
@click.option("--lost-after", metavar="AGE", help="Give up on listed slices still missing this long (6h, 90m, 2d) "
              "after the recording's last slice, and mix without them (as silence).  [default: wait for them]")
@click.option("--poll", "poll_s", type=finite(0.1), help="Seconds between polls.  [default: 30]")
@click.option("--workers", type=click.IntRange(0), help="Local Dask worker processes  [default: one per core]; "
              "0 runs in this process.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run on this existing Dask cluster.")
@click.option("--retries", type=click.IntRange(0, 20), help="Retries of a failed recording.  [default: 1]")
@_bucket_options
@json_option
@quiet_option
@click.pass_context
def process_cmd(ctx: click.Context, source: str | None, dest: str | None, sids: tuple[str, ...], all_: bool | None,
                since: str | None, until: str | None, config: str | None, fmt: str | None,
                transcode_options: str | None, sample_rate: int | None, channels: int | None, bitrate: str | None,
                normalize: str | None, stems: bool | None, activity: bool | None, report: bool | None,
                verify: bool | None, name_template: str | None,
                force: bool | None, wait_s: float | None, lost_after: str | None, poll_s: float | None,
                workers: int | None, scheduler: str | None, retries: int | None, as_json: bool, quiet: bool) -> None:
    """Mix recordings unattended and publish the result where Agora's postpone mix would be.

    For each recording (--sid, or --all under SOURCE): wait until it is complete
    (every playlist ended, every listed slice present), fetch, mix, verify, make
    stems (--stems), speech activity (--activity) and the HTML report (--report),
    then publish <sid>_<cname>_0.<ext> and, last, the manifest
    <sid>_<cname>.mediatools.json. A rerun skips recordings whose manifest matches
    the current inputs and options. Recordings run in parallel on Dask: a local
    cluster by default, or --scheduler tcp://HOST:PORT.

    Exit 0 when nothing failed (skipped and incomplete included), 1 when any
    recording failed, 2 on a usage error.
    """
    from ..pipeline import ProcessOptions, process
    if all_ and sids:
        raise UsageError("--all takes every recording under SOURCE and --sid picks some: give one of them")
    s3 = ctx.meta.get("s3", {})
    base = ProcessOptions.from_toml(config) if config else ProcessOptions()
    opts = base.merged(
        endpoint_url=s3.get("endpoint_url"), region=s3.get("region"), profile=s3.get("profile"),
        vendor=s3.get("vendor"), region_code=s3.get("region_code"),
        agora_storage_config=s3.get("agora_storage_config"), no_sign_request=s3.get("no_sign_request") or None,
        # which recordings: a flag replaces the config's choice whole (--all drops its sid list,
        # --sid its all = true)
        dest=dest, sids=list(sids) or ([] if all_ else None), all=True if all_ else (False if sids else None),
        since=since, until=until, format=fmt,
        transcode_options=transcode_options, sample_rate=sample_rate, channels=channels, bitrate=bitrate,
        normalize=normalize, stems=stems, activity=activity, report=report, verify=verify, name_template=name_template, force=force, wait_s=wait_s,
        lost_after=lost_after, poll_s=poll_s, workers=workers, scheduler=scheduler, retries=retries)
    live = _Live() if show_progress(quiet) and not as_json else None
    try:
        rep = process(source or "", opts, progress=live)
    finally:
        if live:
            live.close()
    if as_json:
        emit_json(rep.to_dict())
    elif not quiet:
        _summary(rep)
    for r in rep.recordings:
        if r.status == "failed" and r.error:
            click.echo(f"mediatools: error: {r.error['message']}", err=True)   # names its file or sid
    if not rep.ok:
        ctx.exit(1)
    sys.stderr.flush()
