"""Agora's rule for a re-uploaded playlist, in one place (``inspect``/``mix`` on a folder and
``process`` on a store listing both ask it).

A playlist uploaded again is named ``…_<tick>_<index>.m3u8``; Agora's documentation says to
compare the highest-index re-upload with the unsuffixed playlist and use the larger.
"""
from __future__ import annotations

from typing import Sequence

from .names import AgoraName


def newest_reupload(names: Sequence[AgoraName]) -> int | None:
    """Index of the highest-index re-upload among ``names`` (one playlist's versions), None if none."""
    reup = [i for i, n in enumerate(names) if n.index is not None]
    return max(reup, key=lambda i: (names[i].index, names[i].tick or 0), default=None)


def chosen_version(versions: Sequence[tuple[AgoraName, int]]) -> int:
    """Which of ``versions`` (name, size in bytes) of one playlist the rule picks, as an index:
    the newest re-upload if there is no unsuffixed one or it is larger, else the unsuffixed."""
    plain = [i for i, (n, _) in enumerate(versions) if n.index is None]
    newest = newest_reupload([n for n, _ in versions])
    if newest is None:
        return plain[0]
    if not plain or versions[newest][1] > versions[plain[0]][1]:
        return newest
    return plain[0]
