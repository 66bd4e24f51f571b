"""Options and helpers shared by every command."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from ..errors import Problem


def sid_option(f: Callable) -> Callable:
    return click.option("--sid", help="Recording id, when the source holds several recordings.")(f)


def uid_option(f: Callable) -> Callable:
    return click.option("--uid", "uids", multiple=True, help="Only this uid (repeatable).")(f)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")(f)


def strict_option(f: Callable) -> Callable:
    return click.option("--strict/--tolerant", default=False, show_default=True,
                        help="--strict: any problem fails the command and nothing is written. "
                             "--tolerant: skip what is broken and report it.")(f)


def quiet_option(f: Callable) -> Callable:
    return click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")(f)


def emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def report_problems(problems: list[Problem], *, quiet: bool = False) -> None:
    """Tolerant runs name every skipped or repaired file on stderr."""
    if quiet:
        return
    for p in problems:
        click.echo(f"mediatools: warning: {p.file}: {p.message} ({p.action})", err=True)


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()
