"""48 kHz → 16 kHz by averaging each three samples: the one way verify's 16 kHz is made.

verify compares band energies (100–7800 Hz) of a mix with the sum of its runs', so the two
sides must be brought to 16 kHz the same way, not well: the mix file is decoded by ffmpeg,
the runs either by ffmpeg too or by the mix's own decoder (verify's Reference). Averaging in
threes costs ~0.1 s of CPU per stream-hour, where libswresample through PyAV took ~1 s per
stream-hour in the mix's process (most of what the Reference cost the mix). Its droop (−3 dB
at 7.8 kHz) and the aliasing of 8–24 kHz into the bands fall alike on both sides, since
the mix is the sum of its runs and averaging is linear.
"""
from __future__ import annotations

import numpy as np

#: the rate a stream is decoded at before :class:`Thirds` (ffmpeg ``-ar``, or libswresample)
RATE_IN = 48000

_THIRD = np.float32(1.0 / 3.0)


class Thirds:
    """Streaming 3:1 average of a mono float32 stream fed in blocks of any size: samples
    (3k, 3k+1, 3k+2) of the stream become sample k, whatever the blocks' sizes."""

    def __init__(self) -> None:
        self.carry = np.zeros(0, np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(self.carry):
            x = np.concatenate([self.carry, x])
        n = len(x) // 3 * 3
        y = x[0:n:3] + x[1:n:3]
        y += x[2:n:3]
        y *= _THIRD
        self.carry = x[n:].astype(np.float32, copy=True)
        return y

    def flush(self) -> np.ndarray:
        """The last one or two samples, averaged as if the stream went on in silence."""
        if not len(self.carry):
            return np.zeros(0, np.float32)
        y = np.array([self.carry.sum(dtype=np.float32) * _THIRD], np.float32)
        self.carry = np.zeros(0, np.float32)
        return y
