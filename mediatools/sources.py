"""SOURCE arguments: a local folder now; ``s3://`` URLs are fetched to a cache first."""
from __future__ import annotations

from pathlib import Path

from .errors import MediatoolsError


def local_source(ctx, source: str, *, sid: str | None = None, uids: list[str] | None = None) -> Path:  # noqa: ANN001
    if source.startswith("s3://"):
        raise MediatoolsError("s3:// sources are not supported yet", file=source, code="unsupported")
    p = Path(source)
    if not p.exists():
        raise MediatoolsError("no such file or folder", file=source, code="not_found")
    if not p.is_dir():
        raise MediatoolsError("not a folder (SOURCE is the folder holding the recording)", file=source,
                              code="not_a_folder")
    return p
