"""Agora's JSON documents (start requests, stop responses, callbacks): read one, find a key.

Users hand us whichever document they have, so keys are searched depth-first rather
than at a fixed path. Errors name the file and never echo its content (it may hold keys).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..errors import UsageError


def read_json(path: str | Path) -> object:
    """A JSON option file (transcodeOptions, storageConfig, a 1001 fileList): a file that cannot be
    read or parsed is a usage error naming it (exit 2), like a bad flag."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read ({exc.strerror})", file=str(p), code="unreadable") from None
    except ValueError as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise UsageError(f"not JSON ({getattr(exc, 'msg', 'undecodable text')}{where})", file=str(p),
                              code="bad_json") from None


def find_key(doc: object, key: str) -> object | None:
    """The first value under ``key``, depth-first: accepts a bare object or a whole request body."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        children = doc.values()
    elif isinstance(doc, list):
        children = doc
    else:
        return None
    for v in children:
        found = find_key(v, key)
        if found is not None:
            return found
    return None


def find_all(doc: object, key: str) -> Iterator[object]:
    """Every value under ``key``, anywhere (a callback may hold more than one ``fileList``)."""
    if isinstance(doc, dict):
        if key in doc:
            yield doc[key]
        children = [v for k, v in doc.items() if k != key]
    elif isinstance(doc, list):
        children = doc
    else:
        return
    for v in children:
        yield from find_all(v, key)
