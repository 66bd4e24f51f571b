"""``mediatools serve``: receive Agora's notifications and run ``process`` per finished recording."""
from __future__ import annotations

import socket
import sys

import click

from . import cli, log_like_a_service
from .option_types import finite


@cli.command("serve")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML file with the same settings (a [serve] table, or top-level keys); flags override it.")
@click.option("--host", help="Address to bind  [default: 127.0.0.1; TLS belongs to a reverse proxy].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port  [default: 8080].")
@click.option("--source", "sources", multiple=True, metavar="s3://BUCKET/PREFIX",
              help="Where recordings land (repeatable).")
@click.option("--db", help="Ledger: an SQLite file (WAL) or postgresql://…  [default: mediatools-serve.db].")
@click.option("--workers", type=click.IntRange(1, 256), help="Local Dask worker processes [default: cores].")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="An existing Dask scheduler instead.")
@click.option("--worker-nice", type=click.IntRange(0, 19), metavar="N",
              help="Niceness of the local Dask workers and their ffmpeg, so mixing never delays an answer "
                   "to NCS  [default: 10; 0 keeps the service's priority].")
@click.option("--notify-url", metavar="URL", help="POST a signed 1001-shaped notification here per finished job.")
@click.option("--accept-sha1", is_flag=True, default=None, help="Accept Agora-Signature (HMAC-SHA1) when V2 is absent.")
@click.option("--sweep-interval", "sweep_interval_s", type=finite(1), metavar="SECONDS",
              help="List the sources for un-notified recordings this often  [default: 300].")
@click.option("--ncs-secret-file", type=click.Path(exists=True, dir_okay=False),
              help="File holding the NCS secret [default: $MEDIATOOLS_NCS_SECRET].")
@click.option("--api-token-file", type=click.Path(exists=True, dir_okay=False),
              help="File holding the API bearer token [default: $MEDIATOOLS_API_TOKEN].")
@click.option("--notify-secret-file", type=click.Path(exists=True, dir_okay=False),
              help="Key for outgoing signatures [default: $MEDIATOOLS_NOTIFY_SECRET, else the NCS secret].")
@click.option("--endpoint-url", metavar="URL", help="S3-compatible endpoint.")
@click.option("--region", help="Region name.")
@click.option("--profile", help="Named profile from ~/.aws.")
@click.option("--vendor", type=int, help="Agora storageConfig.vendor.")
@click.option("--region-code", type=int, help="Agora storageConfig.region code for --vendor.")
@click.option("--no-sign-request", is_flag=True, default=None, help="Anonymous requests.")
@click.option("--format", "fmt", type=click.Choice(["m4a", "mp3", "aac"]), help="Mix format (process).")
@click.option("--transcode-options", type=click.Path(exists=True, dir_okay=False),
              help="Agora transcodeOptions JSON (process).")
@click.option("--stems", is_flag=True, default=None, help="Also publish per-user stems (process).")
@click.option("--no-verify", is_flag=True, default=None, help="Skip verification of the mix (process).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--access-log", is_flag=True, help="Log every request (uvicorn's access log).")
def serve(config_file: str | None, fmt: str | None, transcode_options: str | None, stems: bool | None,
          no_verify: bool | None, log_level: str, access_log: bool, **flags: object) -> None:
    """Receive Agora's NCS notifications at POST /agora/ncs and mix each finished recording.

    Needs MEDIATOOLS_NCS_SECRET and MEDIATOOLS_API_TOKEN (or the *-file options). Every
    endpoint except /livez and /readyz wants "Authorization: Bearer <token>". SIGTERM or
    Ctrl-C stops gracefully (running jobs finish or go back to the queue) and exits 130.
    """
    import uvicorn

    from ..service import config as config_mod
    from ..service.app import create_app
    from ..service.runtime import Service

    log_like_a_service(log_level)
    process: dict[str, object] = {}
    if fmt:
        process["format"] = fmt
    if transcode_options:
        process["transcode_options"] = transcode_options
    if stems:
        process["stems"] = True
    if no_verify:
        process["verify"] = False
    flags["process"] = process
    toml = config_mod.from_toml(config_file) if config_file else {}
    cfg = config_mod.build(toml, flags)
    config_mod.load_secrets(cfg)
    if cfg.task == config_mod.DEFAULT_TASK:   # bad process options: exit 2 before binding
        from ..service.tasks import process_options
        process_options(cfg.process, config_mod.storage_flags(cfg))
    sock = _listen(cfg.host, cfg.port)   # before the cluster starts: a busy port runs no job
    svc = Service(cfg)
    try:
        svc.check_sources()   # a missing bucket or refused keys: one line now, not failed jobs later
        # httptools and uvloop (declared dependencies): the parser and loop that make the receiver fast
        loop = "asyncio" if sys.platform == "win32" else "uvloop"
        server = uvicorn.Server(uvicorn.Config(create_app(svc), host=cfg.host, port=cfg.port, lifespan="on",
                                               http="httptools", loop=loop,
                                               log_level=log_level, access_log=access_log,
                                               timeout_graceful_shutdown=5, server_header=False,
                                               timeout_keep_alive=75))   # outlive a proxy's idle keep-alive
        server.run(sockets=[sock])   # returns after a graceful stop; uvicorn then re-raises SIGTERM/SIGINT (→ 130)
    finally:
        svc.close()


def _listen(host: str, port: int) -> socket.socket:
    """The bound listening socket, or one line naming the address (uvicorn bound only after the
    lifespan had started Dask and the dispatcher: a busy port processed jobs, then exited 3)."""
    import socket

    from ..errors import MediatoolsError
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(info[0], info[1], info[2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as exc:
        raise MediatoolsError(f"cannot listen ({exc.strerror or exc})", file=f"{host}:{port}",
                              code="listen") from None
    sock.set_inheritable(True)
    return sock
