"""``mix``: every selected user on one wall-clock timeline, in one file.

:func:`mix` and :class:`MixOptions` are the API (:mod:`.api`); :mod:`.render` places the
runs and mixes them in bounded memory.
"""
from .api import NORMALIZE, MixOptions, mix

__all__ = ["NORMALIZE", "MixOptions", "mix"]
