#!/usr/bin/env python3
"""Regenerates Record_20261122_101500.wav: 3 s of a 440 Hz tone, G.711 A-law,
20 ms frames (rtpLen 160, increment 160), laid out as phone firmware writes
the local recording container. Kept so the bundled sample is reproducible;
tests/sample.rs checks its contents."""
import math
import struct

RATE, SECONDS, FREQ, AMP = 8000, 3, 440, 8000


def alaw(sample):
    """ITU-T G.711 A-law encoding of one 16-bit sample."""
    sign = 0x80 if sample >= 0 else 0
    mag = (sample if sample >= 0 else -sample - 1) >> 3  # 13-bit magnitude
    if mag < 32:
        code = mag >> 1
    else:
        seg = 1
        while mag >= (64 << (seg - 1)) and seg < 7:
            seg += 1
        code = (seg << 4) | ((mag >> seg) & 0x0F)
    return (code | sign) ^ 0x55


body = bytes(
    alaw(int(AMP * math.sin(2 * math.pi * FREQ * i / RATE))) for i in range(RATE * SECONDS)
)
header = b"PCMA".ljust(64, b"\0") + struct.pack("<iiI", 160, 160, len(body))
with open("Record_20261122_101500.wav", "wb") as f:
    f.write(header + body)
