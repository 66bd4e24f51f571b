"""mediatools: Agora Cloud Recording individual audio → audio people can use."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import MediatoolsError, Problem  # noqa: E402
from .recording.model import MediaInfo, Recording, Run, Slice, UserTrack  # noqa: E402
from .recording.discovery import discover, load_recording  # noqa: E402
from .timeline.contract import Timeline, build_timeline  # noqa: E402

__all__ = ["MediatoolsError", "Problem", "MediaInfo", "Recording", "Run", "Slice", "UserTrack",
           "discover", "load_recording", "Timeline", "build_timeline", "fetch", "__version__"]

# The stage functions live in their modules (mediatools.mix.api.mix, mediatools.merge.core.merge,
# mediatools.verify.checks.verify); only fetch, whose module has another name, is re-exported here.
def __getattr__(name: str):  # noqa: ANN202
    """boto3 is imported only when fetch is first used."""
    if name == "fetch":
        from .storage import fetch
        return fetch
    raise AttributeError(f"module 'mediatools' has no attribute {name!r}")
