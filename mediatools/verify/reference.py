"""What a verify expects to hear, collected while the mix decodes (each run decoded once).

verify compares a mix with the sum of every run's band energies at its place. On its
own it decodes every run of every user for that sum, which is most of its time; a mix
has just decoded the very same runs. :class:`Reference` is handed to ``mix`` and then to
``verify``: the mix feeds each run's samples, as it reads them, through a :class:`RunBands`
(downmixed to mono, averaged in threes to 16 kHz, lead-delayed onto the 10 ms
grid, reduced to band energies as they stream, on a thread of its own, spooled to disk as
verify's own decoding would spool them: :mod:`.runs`) and verify takes them from here instead of decoding
the recording again.

What stays independent: the runs' places come from the timing contract, not from where
the mix put them, and the mix file is decoded on its own (:mod:`.runs`); so a run placed
wrongly, missing or damaged in the written file is found as before. What is shared is
the decoder, so this is what ``process`` uses right after its own mix; ``mediatools
verify`` on any file (Agora's included) decodes the recording itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media.tap import Tap16k
from .align import Placed, dominant_bands
from .features import HOP_MS, RATE, BandStream, run_frames
from .store import FeatureStore, Stream, StreamWriter

__all__ = ["Reference", "RunBands", "grid_place", "placed_at"]


def grid_place(offset_ms: float) -> tuple[int, int]:
    """(frame, lead): the 10 ms frame a run starts in, and its start past that frame's line
    in 16 kHz samples (the run's features are computed that much delayed, on the mix's grid)."""
    at = int(offset_ms // HOP_MS)
    return at, int(round((offset_ms - at * HOP_MS) * RATE / 1000.0))


def placed_at(s: Stream, offset_ms: float) -> Placed:
    """A run's spooled features as verify places them: at the 10 ms frame the run starts in."""
    return Placed(s, grid_place(offset_ms)[0], dominant_bands(s))


class Reference(Tap16k):
    """Each run's band energies (spooled, :mod:`.store`) at its place, filled by the mix's decoders.

    Keyed by (uid, run index, session offset): verify uses an entry only for the run it
    has at that very place, and decodes any run not found here itself.

    The work (resampling, FFTs) runs on a thread of its own (:class:`~mediatools.media.tap.Tap16k`,
    shared with a speech tap of the same mix): the mix's decoding thread sets the encoders'
    pace. A failure there never fails the mix: it is logged, the reference is left empty, and
    verify decodes the recording itself.
    ``parent``: where the spool folder goes (the system's temporary folder by default);
    :meth:`close` removes it.
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        super().__init__("verify-reference")
        self.parent = parent
        self.store: FeatureStore | None = None
        self.runs: dict[tuple[str, int], tuple[float, Placed]] = {}

    def begin(self, span_ms: float) -> None:
        """A mix starts (of ``span_ms``, the whole recording)."""
        self.close()
        self.store = FeatureStore(self.parent)
        super().begin(span_ms)

    def finish(self) -> None:
        """Wait until everything submitted is done (the mix calls this when it ends)."""
        super().finish()
        if self.error is not None:
            self.runs.clear()

    def close(self) -> None:
        """Remove the spooled features (verify has what it needs once it returned)."""
        self.finish()
        if self.store is not None:
            self.store.close()
            self.store = None
        self.runs.clear()

    def run16k(self, uid: str, index: int, offset_ms: float, duration_ms: float) -> RunBands:
        if self.store is None:
            raise RuntimeError("Reference.begin() first")
        return RunBands(self, (uid, index), offset_ms, duration_ms)

    def get(self, uid: str, index: int, offset_ms: float) -> Placed | None:
        """The run at that place, as the mix decoded it (call :meth:`finish` first)."""
        hit = self.runs.get((uid, index))
        if hit is None or abs(hit[0] - offset_ms) > 1e-6:
            return None
        return hit[1]

    def _add(self, key: tuple[str, int], offset_ms: float, w: StreamWriter) -> None:
        self.runs[key] = (offset_ms, placed_at(w.close(), offset_ms))


class RunBands:
    """One run's 16 kHz samples, as the mix reads them, on their way to band energies."""

    def __init__(self, ref: Reference, key: tuple[str, int], offset_ms: float, duration_ms: float):
        self.ref, self.key, self.offset_ms = ref, key, offset_ms
        self.writer = ref.store.writer(f"{key[0]}-{key[1]}", limit=run_frames(duration_ms))
        self.bands = BandStream(self.writer)
        _, lead = grid_place(offset_ms)
        if lead:
            self.bands.feed(np.zeros(lead, np.float32))

    def put(self, x: np.ndarray) -> None:
        self.bands.feed(x)

    def end(self) -> None:
        """The run is complete: its features join the reference."""
        self.bands.finish()
        self.ref._add(self.key, self.offset_ms, self.writer)
