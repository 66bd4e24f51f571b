"""``merge``: one playable file per user, the sender's audio copied where the codec allows.

:func:`merge` and :class:`MergeOptions` are the API; :mod:`.core` plans and writes,
:mod:`.opus_copy` is the packet-level Opus path (the AAC path is :mod:`mediatools.media.adts`).
"""
from .core import MERGE_FORMATS, MergeOptions, merge

__all__ = ["MERGE_FORMATS", "MergeOptions", "merge"]
