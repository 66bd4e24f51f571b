"""A recording as data: the shared model, discovery in a folder, probing, the inspect report.

* :mod:`.model` — the plain dataclasses every stage shares (recording → users → runs → slices);
* :mod:`.discovery` — a folder of Agora files → :class:`Recording` objects, with every
  repair of an abnormal upload reported as a :class:`~mediatools.errors.Problem`;
* :mod:`.probe` — codec, rate and channels of each run (found once per recording);
* :mod:`.prepare` — the opening every stage shares: load, probe once, apply strictness;
* :mod:`.inspect_report` — the ``inspect --json`` schema and its text rendering.

The model sits beneath the timing contract (:mod:`mediatools.timeline`), which discovery
uses in turn, so discovery is imported from here on first use.
"""
from __future__ import annotations

from typing import Any

from .model import MediaInfo, Recording, Run, Slice, UserTrack


def __getattr__(name: str) -> Any:
    if name in ("discover", "load_recording"):
        from . import discovery
        return getattr(discovery, name)
    raise AttributeError(f"module 'mediatools.recording' has no attribute {name!r}")


__all__ = ["MediaInfo", "Recording", "Run", "Slice", "UserTrack", "discover", "load_recording"]
