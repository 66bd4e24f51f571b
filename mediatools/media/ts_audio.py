"""How much audio a TS slice holds, by counting its frames: what a decoder will produce.

A playlist's EXTINF is what the recorder claimed when it wrote the slice; a slice cut short
at a packet boundary, or with packets destroyed inside, still looks whole (sync bytes, size)
and claims the same. Counting its frames takes ~1 ms per 15 s slice in plain Python, against
an ffmpeg start and a decode. AAC (ADTS, any rate, SBR included: 1024 core samples per frame)
and Opus (RFC 7845 in MPEG-TS: a control header per packet, durations from each packet's TOC)
are counted; other audio is None (the caller decodes it), and a slice with no audio stream at
all holds nothing.

The count is exact only for an intact slice. Inside a damaged one (a packet without its sync
byte, a continuity-counter gap, a frame walk that had to look for the next header) a decoder
loses more than the frames that are gone: it drops the rest of a packet it cannot parse. So a
count says whether it is ``intact``; the caller decodes a damaged slice to know its length.
"""
from __future__ import annotations

from dataclasses import dataclass

from .adts import ADTS_RATES, FRAME, _audio_pes_payload

_OPUS_FRAME_MS = ([10.0, 20.0, 40.0, 60.0] * 3 + [10.0, 20.0] * 2 + [2.5, 5.0, 10.0, 20.0] * 4)  # by TOC config


@dataclass(frozen=True)
class Held:
    """What a slice holds: ``ms`` of audio in frames that parse; ``intact`` when nothing in the
    slice was damaged (then ``ms`` is what a decoder plays, to the sample); ``frame_ms``, the
    longest frame seen (an encoder's EXTINF may be a frame off what it wrote)."""
    ms: float
    intact: bool
    frame_ms: float
    #: the first AAC frame's (profile, sampling-frequency index, channel configuration): a sender
    #: that changes its audio profile mid-run changes it (None for Opus and what is not counted)
    aac_format: tuple[int, int, int] | None = None


NO_AUDIO = Held(0.0, False, 0.0)


def held(data: bytes) -> Held | None:
    """The audio a TS slice holds: :data:`NO_AUDIO` when no packet starts an audio PES (null
    packets, noise with sync bytes: a decoder plays nothing); None when its audio is neither
    AAC nor Opus (not counted here: the caller decodes it)."""
    stream_id, payload, intact = _audio_payload(data)
    if stream_id is None:
        return NO_AUDIO
    if len(payload) >= 2 and payload[0] == 0x7F and (payload[1] & 0xE0) == 0xE0:
        ms, clean, frame = _opus_ms(payload)
    elif 0xC0 <= stream_id <= 0xDF:
        counted = _aac_ms(payload)
        if counted is None:
            return None
        ms, clean, frame = counted
        fmt = (payload[2] >> 6, (payload[2] >> 2) & 0xF, ((payload[2] & 1) << 2) | (payload[3] >> 6))
        return Held(ms, intact and clean, frame, fmt)
    else:
        return None
    return Held(ms, intact and clean, frame)


def _audio_payload(data: bytes) -> tuple[int | None, bytes, bool]:
    """(PES stream id, the PES payloads of the first audio stream joined, intact). Packets
    without their sync byte are left out; they, and a gap in the audio stream's continuity
    counter, make the slice not intact."""
    n = len(data) - len(data) % 188
    audio = stream_id = None
    parts = []
    intact, cc = n == len(data), None
    mv = memoryview(data)
    for i in range(0, n, 188):
        if data[i] != 0x47:
            intact = False
            continue
        b1, b3 = data[i + 1], data[i + 3]
        if not b3 & 0x10:
            continue
        pid = ((b1 & 0x1F) << 8) | data[i + 2]
        o = 4 + (1 + data[i + 4] if b3 & 0x20 else 0)
        if audio is None:   # the first PES start of an audio or private (Opus) stream
            first = _audio_pes_payload(data, i, private=True)
            if first is None:
                continue
            audio, stream_id = pid, data[i + first + 3]
        if pid != audio:
            continue
        discontinuity = b3 & 0x20 and data[i + 4] and data[i + 5] & 0x80
        if cc is not None and (b3 & 0x0F) != (cc + 1) & 0x0F and not discontinuity:
            intact = False            # a packet of the stream is gone
        cc = b3 & 0x0F
        if b1 & 0x40 and o <= 179:     # a PES header: 9 bytes and its own header-data length
            o += 9 + data[i + o + 8]
        if o < 188:
            parts.append(mv[i + o:i + 188])
    return stream_id, b"".join(parts), intact


def _aac_ms(adts: bytes) -> tuple[float, bool, float] | None:
    """(ms of whole ADTS frames, each ending where the stream or a next valid header begins;
    whether the walk never had to look for a lost header)."""
    if len(adts) < 7 or adts[0] != 0xFF or (adts[1] & 0xF6) != 0xF0:
        return None
    sri = (adts[2] >> 2) & 0xF
    if sri >= len(ADTS_RATES):
        return None
    end = len(adts)

    def header_at(j: int) -> int:       # the frame length of a plausible header at j, else 0
        if j + 7 > end or adts[j] != 0xFF or (adts[j + 1] & 0xF6) != 0xF0 or (adts[j + 2] >> 2) & 0xF != sri:
            return 0
        length = ((adts[j + 3] & 0x03) << 11) | (adts[j + 4] << 3) | (adts[j + 5] >> 5)
        return length if length >= 7 else 0

    frames = i = 0
    clean = True
    length = header_at(0)
    while i + 7 <= end:
        if length:   # a frame counts when the stream ends or a next header begins where it ends
            nxt = i + length
            after = 0 if nxt == end else header_at(nxt)   # (that header is the next frame's)
            if nxt == end or after:
                frames += 1
                i, length = nxt, after
                continue
        clean = False
        i = adts.find(b"\xff", i + 1)   # lost: look for the next frame
        if i < 0:
            break
        length = header_at(i)
    frame_ms = FRAME * 1000.0 / ADTS_RATES[sri]
    return frames * frame_ms, clean, frame_ms


def _opus_ms(payload: bytes) -> tuple[float, bool, float]:
    """(ms of the Opus packets behind their TS control headers (0x7FE0 | trim flags, size,
    trims), each as long as its TOC says; whether every packet was where the previous one
    said). A packet counts only when a control header, or the end, follows it and its TOC
    gives 2.5-120 ms (RFC 6716); anything else is damage, and the walk looks for the next."""
    total, i, end, clean, longest = 0.0, 0, len(payload), True, 20.0
    while i + 2 <= end:
        packet = _opus_packet(payload, i)
        if packet is not None:
            nxt, ms = packet
            if nxt == end or _opus_packet(payload, nxt) is not None or nxt + 2 > end:
                total += ms
                longest = max(longest, ms)
                i = nxt
                continue
        clean = False
        i = payload.find(b"\x7f", i + 1)   # lost: look for the next control header
        if i < 0:
            break
    return total, clean, longest


def _opus_packet(payload: bytes, i: int) -> tuple[int, float] | None:
    """(where the next control header would start, the packet's ms) for a plausible packet
    at ``i``, else None."""
    end = len(payload)
    if i + 2 > end or payload[i] != 0x7F or (payload[i + 1] & 0xE0) != 0xE0:
        return None
    flags, j, size = payload[i + 1], i + 2, 0
    while j < end and payload[j] == 0xFF:
        size += 255
        j += 1
    if j >= end:
        return None
    size += payload[j]
    j += 1 + (2 if flags & 0x10 else 0) + (2 if flags & 0x08 else 0)
    if flags & 0x04:
        if j >= end:
            return None
        j += 1 + payload[j]
    if size < 1 or j + size > end:
        return None
    toc, code = payload[j], payload[j] & 3
    count = 1 if code == 0 else 2 if code in (1, 2) else (payload[j + 1] & 0x3F if size > 1 else 0)
    ms = count * _OPUS_FRAME_MS[toc >> 3]
    if not 2.5 <= ms <= 120.0:
        return None
    return j + size, ms
