"""``mediatools``: a thin click layer over the library API.

Exit codes: 0 success (problems, if any, reported), 1 failure, 2 usage error,
130 interrupted.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback

import click

from .. import __version__, interrupts
from ..errors import MediatoolsError, UsageError

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ISSUES_URL = "https://github.com/mediatools/mediatools/issues"


def _version_message() -> str:
    from ..media.ffmpeg import ffmpeg_path, ffmpeg_version
    try:
        return f"mediatools {__version__}\nffmpeg {ffmpeg_version()} ({ffmpeg_path()})"
    except MediatoolsError as exc:
        return f"mediatools {__version__}\nffmpeg: {exc}"


class _LazyGroup(click.Group):
    """Subcommands imported on first use (click's documented lazy-loading pattern): a
    command pays only for its own imports (fetch never loads numpy; merge never boto3)."""

    LAZY = {"activity": "activity_cmd", "demo": "demo_cmd", "fetch": "fetch_cmd", "inspect": "inspect_cmd",
            "merge": "merge_cmd", "mix": "mix_cmd", "process": "process_cmd", "report": "report_cmd",
            "serve": "serve_cmd", "synth": "synth_cmd", "verify": "verify_cmd"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.LAZY:
            import importlib
            importlib.import_module(f"{__name__}.{self.LAZY[cmd_name]}")  # registers itself on `cli`
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="Exit codes: 0 success (problems reported), 1 failure, 2 usage error, 130 interrupted.")
@click.option("--debug", is_flag=True, help="Show the log (every ffmpeg command, each step) and tracebacks for errors.")
@click.version_option(__version__, message="%(version)s", prog_name="mediatools", callback=None)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Agora Cloud Recording (individual audio) → audio people can use.

    fetch, inspect, merge, mix and verify recordings made of per-uid M3U8
    playlists and ~15 s MPEG-TS slices; process does it all unattended and
    publishes the mix under Agora's name, serve does it on Agora's
    notifications; activity and report say who spoke when. Every command has
    --help; `mediatools demo` runs the main job on a built-in example.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# --version prints which ffmpeg is used, too
for p in cli.params:
    if p.name == "version":
        def _cb(ctx, param, value):  # noqa: ANN001
            if value and not ctx.resilient_parsing:
                click.echo(_version_message())
                ctx.exit()
        p.callback = _cb


#: after an interrupt, how long cleanup may take before the process exits regardless
INTERRUPT_GRACE_S = 30.0


def _handle_term(signum, frame):  # noqa: ANN001
    _watchdog.arm()
    if interrupts.note(frame):   # False inside interrupts.deferred() or lock code: raised later
        raise KeyboardInterrupt


def _handle_int(signum, frame):  # noqa: ANN001
    _watchdog.arm()
    if interrupts.note(frame):   # Python's own Ctrl-C, plus the note a C callback cannot swallow
        raise KeyboardInterrupt


class _Watchdog:
    """Ctrl-C / SIGTERM unwind the stack (each stage removes its temporaries on the way); should
    anything then block (a child that will not die, a pipe that will not drain), exit anyway,
    saying so (with ``--debug``, where every thread stood).

    The thread is started up front and the signal handler only stamps the time: a handler runs
    at any line of the main thread, and starting a thread there, or setting an Event, takes
    threading's locks, which the line it interrupted may hold."""

    def __init__(self) -> None:
        self.armed: float | None = None
        self.debug = False
        self._started = False

    def start(self, debug: bool) -> None:
        import threading
        self.debug = debug
        if not self._started:
            self._started = True
            threading.Thread(target=self._watch, name="mediatools-watchdog", daemon=True).start()

    def arm(self) -> None:
        if self.armed is None:
            self.armed = time.monotonic()

    def _watch(self) -> None:
        while self.armed is None or time.monotonic() - self.armed < INTERRUPT_GRACE_S:
            time.sleep(0.2)
        # what is said must not keep the exit waiting: stderr may be a pipe nobody drains (one
        # of the things this is here for), so a second timer exits regardless should the write
        # block. (Not O_NONBLOCK: that flag is the open file's, shared with the shell's terminal
        # or a supervisor's pipe, and would outlive this process.)
        import threading
        threading.Timer(2.0, os._exit, (EXIT_INTERRUPTED,)).start()
        try:
            fd = 2
            msg = (f"mediatools: interrupted; cleanup did not finish in {INTERRUPT_GRACE_S:.0f} s, exiting anyway"
                   + ("" if self.debug else " (--debug shows where it stopped)") + "\n")
            os.write(fd, msg.encode())
            if self.debug:
                import faulthandler
                faulthandler.dump_traceback(fd, all_threads=True)
        except BaseException:   # noqa: BLE001, S110 - a full pipe, a closed fd: exit all the same
            pass
        finally:
            os._exit(EXIT_INTERRUPTED)


_watchdog = _Watchdog()


def _setup_logging(debug: bool) -> None:
    """The library logs and never prints; the CLI decides: warnings always, everything with --debug."""
    import logging
    root = logging.getLogger("mediatools")
    if any(getattr(h, "_mediatools_cli", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._mediatools_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("mediatools: %(name)s: %(message)s" if debug else "mediatools: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def log_like_a_service(level: str) -> None:
    """For long-running commands (serve): timestamped log lines at ``level`` through the root
    logger, instead of the one-shot commands' warnings-only stderr handler."""
    import logging
    root = logging.getLogger("mediatools")
    for h in [h for h in root.handlers if getattr(h, "_mediatools_cli", False)]:
        root.removeHandler(h)
    root.setLevel(logging.NOTSET)
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


#: the commands that run ffmpeg (fetch does not)
NEEDS_FFMPEG = frozenset({"activity", "demo", "inspect", "merge", "mix", "process", "report", "serve", "synth",
                          "verify"})


def _check_ffmpeg(args: list[str]) -> None:
    """Find ffmpeg (and check its version) before a command that needs it starts: a missing or
    too old one is one line saying what to install, not every slice reported unreadable."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command in NEEDS_FFMPEG and not {"-h", "--help"} & set(args):
        from ..media.ffmpeg import ffmpeg_path
        ffmpeg_path()


def _json_failure(code: int, failure: BaseException | None) -> None:
    """``--json`` and the command failed before printing its document: print an error document,
    so stdout is always one JSON document (a verify that fails has printed its report: nothing
    more is added)."""
    from . import common
    if common.emitted or isinstance(failure, BrokenPipeError):
        return
    if isinstance(failure, MediatoolsError):
        doc = common.error_document(code, error=failure.code, message=failure.message, file=failure.file)
    elif isinstance(failure, click.ClickException):
        doc = common.error_document(code, error="usage", message=failure.format_message())
    elif code == EXIT_INTERRUPTED:
        doc = common.error_document(code, error="interrupted", message="interrupted")
    else:
        doc = common.error_document(code, error="internal", message=f"{type(failure).__name__}: {failure}"
                                    if failure is not None else "failed")
    try:
        common.emit_json(doc)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _handle_term)
    # a closed terminal (an SSH session that drops) is an interrupt too, cleaned up as one;
    # not under nohup, which set it ignored
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, _handle_term)
    interrupts.install()
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handle_int)
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    failure: BaseException | None = None
    _watchdog.start(debug)
    _setup_logging(debug)
    try:
        _check_ffmpeg(args)
        # with standalone_mode=False click returns ctx.exit()'s code instead of raising
        rv = cli.main(args=args, prog_name="mediatools", standalone_mode=False)
        code = rv if isinstance(rv, int) else EXIT_OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("mediatools: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except click.UsageError as exc:
        exc.show()
        code, failure = EXIT_USAGE, exc
    except click.ClickException as exc:
        exc.show()
        code, failure = exc.exit_code, exc
    except KeyboardInterrupt:
        click.echo("mediatools: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"mediatools: error: {exc}", err=True)
        code, failure = EXIT_USAGE, exc
    except MediatoolsError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"mediatools: error: {exc}", err=True)
        code, failure = EXIT_FAIL, exc
    except BrokenPipeError as exc:
        code, failure = EXIT_FAIL, exc
    except Exception as exc:  # unexpected: say how to report it
        if debug:
            traceback.print_exc()
        click.echo(f"mediatools: internal error: {type(exc).__name__}: {exc} "
                   f"(rerun with --debug and report it at {ISSUES_URL})", err=True)
        code, failure = EXIT_FAIL, exc
    interrupts.uninstall()
    if code != EXIT_OK and "--json" in args:
        _json_failure(code, failure)
    if argv is None:
        if code == EXIT_INTERRUPTED:
            # cleanup has run (finally blocks on the way up); skip interpreter teardown, where a
            # half-dead child's pipe or a worker thread could still keep an interrupted run alive
            _watchdog.arm()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)
        sys.exit(code)
    return code

