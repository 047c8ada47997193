"""A RAR 5.0 archive of stored (uncompressed) files, written by the format's published
description (rarlab.com/technote.htm): the tests need real RAR bytes, and no free program
writes RAR. Headers: CRC32, size and type as vints, then the type's fields."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"Rar!\x1a\x07\x01\x00"
UNIX_FILE = 0o100644


def vint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _block(fields: bytes, data: bytes = b"") -> bytes:
    size = vint(len(fields))
    return struct.pack("<I", zlib.crc32(size + fields)) + size + fields + data


def rar5(files: list[tuple[str, bytes]]) -> bytes:
    out = SIGNATURE + _block(vint(1) + vint(0) + vint(0))  # main header, no flags
    for name, data in files:
        encoded = name.encode()
        fields = (vint(2) + vint(0x0002) + vint(len(data))  # file header with a data area
                  + vint(0x0004) + vint(len(data)) + vint(UNIX_FILE)  # CRC32 present
                  + struct.pack("<I", zlib.crc32(data))
                  + vint(0) + vint(1)  # method 0 (stored), host OS Unix
                  + vint(len(encoded)) + encoded)
        out += _block(fields, data)
    return out + _block(vint(5) + vint(0) + vint(0))  # end of archive
