"""``verify``: is a mix (Agora's postpone mix, or ours) complete and aligned with its recording?

:func:`verify`, :class:`VerifyOptions`, :class:`VerifyReport` and :class:`Reference` (what a
mix collects for the verify after it) are the API;
:mod:`.checks` runs the checks, :mod:`.features` reduces audio to 10 ms band energies.
numpy is imported when :func:`verify` first runs, not when this package is imported.
"""
from __future__ import annotations

from typing import Any

from .options import Check, VerifyOptions, VerifyReport


def verify(mixfile: Any, source: Any, options: VerifyOptions | None = None, *, progress: Any = None,
           reference: Any = None) -> VerifyReport:
    """Check a mix against its recording; see :func:`mediatools.verify.checks.verify`."""
    from .checks import verify as _verify
    return _verify(mixfile, source, options, progress=progress, reference=reference)


def __getattr__(name: str) -> Any:
    if name == "Reference":   # numpy and PyAV only when asked for
        from .reference import Reference
        return Reference
    raise AttributeError(name)


__all__ = ["Check", "Reference", "VerifyOptions", "VerifyReport", "verify"]
