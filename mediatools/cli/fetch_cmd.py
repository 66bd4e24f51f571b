from __future__ import annotations

import click

from ..storage import FetchOptions, Selection, fetch, playlist_names_from_file_list
from ..storage.sources import store_target
from . import cli
from .common import emit_json, json_option, quiet_option, s3_options, strict_option, uid_option
from .progress import progress_bar


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@cli.command("fetch")
@click.argument("source", required=False)
@click.option("-o", "--output", "dest", type=click.Path(file_okay=False), required=True,
              help="Folder to fetch into (names and sub-paths below the prefix are kept).")
@click.option("--sid", help="Only this recording (sid).")
@click.option("--cname", help="Only this channel.")
@uid_option
@click.option("--type", "track_type", type=click.Choice(["audio", "video", "all"]), default="audio",
              show_default=True, help="Which tracks.")
@click.option("--file-list", type=click.Path(exists=True, dir_okay=False),
              help="Agora stop response or 'uploaded' callback JSON: fetch the users its fileList names.")
@click.option("--include-orphans", is_flag=True, help="Also fetch slices no playlist lists (always reported).")
@click.option("--dry-run", is_flag=True, help="List what would be fetched; write nothing.")
@click.option("--no-checksum", is_flag=True, help="Trust lengths only; skip MD5 against single-part ETags.")
@s3_options
@strict_option
@json_option
@quiet_option
@click.pass_context
def fetch_cmd(ctx: click.Context, source: str | None, dest: str, sid: str | None, cname: str | None,
              uids: tuple[str, ...], track_type: str, file_list: str | None, include_orphans: bool, dry_run: bool,
              no_checksum: bool, strict: bool, as_json: bool, quiet: bool) -> None:
    """Download exactly the recording you want from S3, any S3-compatible store or Azure Blob.

    SOURCE is s3://BUCKET/PREFIX or azure://ACCOUNT/CONTAINER/PREFIX (optional with
    --agora-storage-config, which holds bucket and prefix). Playlists are read first and decide which slices are
    needed; every file is written under a temporary name, checked (length, and MD5
    where the ETag is one) and renamed. A rerun skips complete files, so an
    interrupted fetch resumes. Exit 0 when every selected file is here (missing
    slices and refused keys are reported), 1 when any could not be fetched.

    Credentials come from --agora-storage-config or boto3's usual chain
    (environment, --profile, instance role); for Azure from --agora-storage-config,
    AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN.
    They are never printed.
    """
    opts = ctx.meta.get("s3", {})
    loc, settings = store_target(source, opts)
    types = frozenset({"audio", "video"}) if track_type == "all" else frozenset({track_type})
    sel = Selection(sid=sid, cname=cname, uids=frozenset(uids), track_types=types,
                    playlist_names=playlist_names_from_file_list(file_list) if file_list else None)
    options = FetchOptions(selection=sel, settings=settings, jobs=opts.get("jobs", 32),
                           retries=opts.get("retries", 5), include_orphans=include_orphans, dry_run=dry_run,
                           checksum=not no_checksum, strict=strict)
    with progress_bar("fetch", quiet=quiet or as_json) as progress:
        rep = fetch(loc, dest, options, progress=progress)
    if as_json:
        emit_json(rep.to_dict())
    elif dry_run:
        for rel in rep.would_fetch:
            click.echo(rel)
    if not quiet:
        for m in rep.missing:
            click.echo(f"mediatools: warning: {m}: listed by its playlist but not in the bucket (missing)", err=True)
        for r in rep.refused:
            click.echo(f"mediatools: warning: {r['key']}: refused key, {r['reason']} (skipped)", err=True)
        for u in rep.unplayable:
            click.echo(f"mediatools: warning: {u['file']}: unusable playlist, {u['reason']} (reported)", err=True)
        for u in rep.absent_uids:
            click.echo(f"mediatools: warning: uid {u}: no file for this uid in the listing (nothing fetched for it)",
                       err=True)
        for n in rep.no_playlist:
            click.echo(f"mediatools: warning: {n}: no playlist in the bucket; every slice fetched by name", err=True)
        if rep.orphans:
            what = "fetched" if rep.orphans_fetched else "not fetched; --include-orphans fetches them"
            click.echo(f"mediatools: warning: {len(rep.orphans)} slice(s) listed by no playlist ({what}), "
                       f"e.g. {rep.orphans[0]}", err=True)
        for f in rep.failed:
            click.echo(f"mediatools: error: {f['file']}: {f['error']}", err=True)
        if dry_run:
            click.echo(f"dry run: would fetch {len(rep.would_fetch)} files ({_mb(rep.bytes)}), "
                       f"{len(rep.skipped)} already complete, {len(rep.missing)} missing → {dest}", err=True)
        else:
            click.echo(f"fetched {len(rep.fetched)} files ({_mb(rep.bytes)}) in {rep.seconds:.1f} s, "
                       f"{len(rep.skipped)} already complete, {len(rep.missing)} missing, "
                       f"{len(rep.refused)} refused, {len(rep.failed)} failed → {dest}", err=True)
    if not rep.ok:
        ctx.exit(1)
