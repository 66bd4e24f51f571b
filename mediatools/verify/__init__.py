"""``verify``: is a mix (Agora's postpone mix, or ours) complete and aligned with its recording?

:mod:`.checks` runs the checks; :mod:`.features` reduces audio to 10 ms band energies.
numpy is imported on first use.
"""
from __future__ import annotations

from typing import Any


def verify(*args: Any, **kwargs: Any) -> Any:
    """See :func:`mediatools.verify.checks.verify`."""
    from .checks import verify as _verify
    return _verify(*args, **kwargs)


__all__ = ["verify"]
