"""mediatools: Agora Cloud Recording individual audio → audio people can use."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import MediatoolsError, Problem  # noqa: E402
from .model import MediaInfo, Recording, Run, Slice, UserTrack  # noqa: E402
from .recording import discover, load_recording  # noqa: E402
from .timeline import Timeline, build_timeline  # noqa: E402

__all__ = ["MediatoolsError", "Problem", "MediaInfo", "Recording", "Run", "Slice", "UserTrack",
           "discover", "load_recording", "Timeline", "build_timeline", "__version__"]
