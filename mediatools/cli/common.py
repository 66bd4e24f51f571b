"""Options and helpers shared by every command."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

from ..errors import Problem


def sid_option(f: Callable) -> Callable:
    return click.option("--sid", help="Recording id, when the source holds several recordings.")(f)


def uid_option(f: Callable) -> Callable:
    return click.option("--uid", "uids", multiple=True, help="Only this uid (repeatable).")(f)


def exclude_uid_option(f: Callable) -> Callable:
    return click.option("--exclude-uid", "exclude", multiple=True, help="Leave this uid out (repeatable).")(f)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")(f)


def strict_option(f: Callable) -> Callable:
    return click.option("--strict/--tolerant", default=False, show_default=True,
                        help="--strict: any problem fails the command and nothing is written. "
                             "--tolerant: skip what is broken and report it.")(f)


def quiet_option(f: Callable) -> Callable:
    return click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")(f)


#: whether this run printed its --json document (the CLI prints an error document only if not)
emitted = False

#: the schema of the document ``--json`` prints when a command fails before its report
ERROR_SCHEMA = "mediatools.error/1"


def emit_json(doc: Any) -> None:
    global emitted
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    emitted = True


def error_document(code: int, *, error: str, message: str, file: str | None = None) -> dict:
    """What ``--json`` prints on stdout when a command fails before it has a report, so a
    pipeline reading stdout always gets one document (the one line on stderr stays)."""
    return {"schema": ERROR_SCHEMA, "exit_code": code, "error": {"code": error, "file": file, "message": message}}


def report_problems(problems: list[Problem], *, quiet: bool = False) -> None:
    """Tolerant runs name every skipped or repaired file on stderr."""
    if quiet:
        return
    for p in problems:
        click.echo(f"mediatools: warning: {p.file}: {p.message} ({p.action})", err=True)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault("s3", {})[param.name] = value
    return value


_S3_OPTIONS = [
    click.option("--endpoint-url", metavar="URL", expose_value=False, callback=_remember,
                 help="S3-compatible endpoint (MinIO, OSS, COS, OBS, BOS, GCS interop, …), or the Azure Blob "
                      "endpoint for azure:// (Azurite, sovereign clouds)."),
    click.option("--region", expose_value=False, callback=_remember, help="Region name, e.g. eu-west-1."),
    click.option("--profile", expose_value=False, callback=_remember, help="Named profile from ~/.aws."),
    click.option("--vendor", type=int, expose_value=False, callback=_remember,
                 help="Agora storageConfig.vendor (1 AWS, 2 OSS, 3 COS, 5 Azure Blob with azure://, 6 GCS, "
                      "7 OBS, 8 BOS, 11 any S3)."),
    click.option("--region-code", type=int, expose_value=False, callback=_remember,
                 help="Agora storageConfig.region code for --vendor."),
    click.option("--agora-storage-config", type=click.Path(exists=True, dir_okay=False), expose_value=False,
                 callback=_remember,
                 help="JSON storageConfig (or a whole start request): bucket, prefix, vendor, region, keys "
                      "(vendor 5: bucket = container, accessKey = account, secretKey = account key)."),
    click.option("--no-sign-request", is_flag=True, expose_value=False, callback=_remember,
                 help="Anonymous requests (public buckets)."),
    click.option("--jobs", "-j", type=click.IntRange(1, 256), default=32, show_default=True,
                 expose_value=False, callback=_remember, help="Requests in flight."),
    click.option("--retries", type=click.IntRange(1, 20), default=5, show_default=True, expose_value=False,
                 callback=_remember, help="Attempts per request (throttling, 5xx, broken bodies)."),
]


def s3_options(f: Callable) -> Callable:
    """Where a bucket is and how to reach it; values land in ``ctx.meta['s3']``."""
    for opt in reversed(_S3_OPTIONS):
        f = opt(f)
    return f


def source_options(f: Callable) -> Callable:
    """For commands that read a SOURCE, which may be s3:// or azure://: the bucket options plus the cache."""
    f = click.option("--cache-dir", type=click.Path(file_okay=False), expose_value=False, callback=_remember,
                     help="Where s3:// and azure:// sources are fetched to and reused "
                          "[default: the user cache folder, mediatools/s3].")(f)
    return s3_options(f)


def local_source(ctx: click.Context | None, source: str, *, sid: str | None = None,
                 uids: list[str] | None = None) -> Path:
    """A folder holding the recording; ``s3://`` and ``azure://`` sources are fetched (or refreshed) into the
    cache first."""
    from ..storage.sources import resolve_source
    opts = dict(ctx.meta.get("s3", {})) if ctx is not None else {}
    folder, rep = resolve_source(source, opts, sid=sid, uids=uids)
    if rep is not None:
        click.echo(f"mediatools: {rep.source}: {len(rep.fetched)} fetched, {len(rep.skipped)} reused from cache "
                   f"{folder}", err=True)
    return folder


def run_stage(ctx: click.Context, stage: Callable[..., Any], source: str, out: str, options: Any, *,
              label: str, sid: str | None, uids: list[str] | None, quiet: bool, as_json: bool,
              summary: Callable[[Any], str] | None = None) -> Any:
    """What every stage command does once its options are built: resolve SOURCE (fetching
    ``s3://`` into the cache), run the stage with a progress bar, name each problem on stderr,
    then print the report as JSON or a one-line summary."""
    from .progress import progress_bar
    folder = local_source(ctx, source, sid=sid, uids=uids)
    with progress_bar(label, quiet=quiet) as progress:
        report = stage(folder, out, options, progress=progress)
    report_problems(report.problems, quiet=quiet)
    if as_json:
        emit_json(report.to_dict())
    elif not quiet and summary is not None and (text := summary(report)):
        click.echo(text, err=True)
    return report
