"""A recording as data: the shared model, discovery in a folder, probing, the inspect report.

* :mod:`.model` — the plain dataclasses every stage shares (recording → users → runs → slices);
* :mod:`.discovery` — a folder of Agora files → :class:`Recording` objects, with every
  repair of an abnormal upload reported as a :class:`~mediatools.errors.Problem`;
* :mod:`.probe` — codec, rate and channels of each run (found once per recording);
* :mod:`.inspect_report` — the ``inspect --json`` schema and its text rendering.
"""
from .model import MediaInfo, Recording, Run, Slice, UserTrack
from .discovery import discover, load_recording

__all__ = ["MediaInfo", "Recording", "Run", "Slice", "UserTrack", "discover", "load_recording"]
