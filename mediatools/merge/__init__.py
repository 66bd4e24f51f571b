"""``merge``: one playable file per user, the sender's audio copied where the codec allows.

:func:`merge`, :class:`MergeOptions` and :class:`MergeReport` are the API. :mod:`.options`
holds the options and the report, :mod:`.core` plans and writes, :mod:`.opus_copy` is the
packet-level Opus path (the AAC path is :mod:`mediatools.media.adts`).
"""
from .core import merge, safe_name
from .options import COPY_FORMATS, MERGE_FORMATS, MergeOptions, MergeReport

__all__ = ["COPY_FORMATS", "MERGE_FORMATS", "MergeOptions", "MergeReport", "merge", "safe_name"]
