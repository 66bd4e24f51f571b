"""``mix``: every selected user on one wall-clock timeline, in one file.

:func:`mix`, :class:`MixOptions` and :class:`MixReport` are the API; :mod:`.options` holds
the options and the report, :mod:`.render` places the runs and mixes them in bounded
memory, :mod:`.encode` feeds the encoder, :mod:`.split` encodes long AAC mixes in halves.
"""
from .api import mix
from .options import NORMALIZE, MixOptions, MixReport

__all__ = ["NORMALIZE", "MixOptions", "MixReport", "mix"]
