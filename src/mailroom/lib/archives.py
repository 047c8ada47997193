"""The file names inside a zip archive, read from its central directory only (no Django).

A zip holding `invoice.js` is how scripts get past an attachment filter, so inbound mail looks
inside — but never unpacks: nothing is decompressed, only the directory at the end of the file
is read, and at most MAX_MEMBERS names. Why not `zipfile`? It builds a ZipInfo for every entry
before one can count them, so a crafted directory of millions of entries costs its memory; this
walk stops at the limit.
"""

from __future__ import annotations

import struct

__all__ = ["MAX_MEMBERS", "TooManyMembers", "looks_like_zip", "member_names"]

MAX_MEMBERS = 2000
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_ENTRY = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


class TooManyMembers(ValueError):
    """The archive lists more files than are checked; its contents stay unknown."""


def looks_like_zip(data: bytes) -> bool:
    return data[:4] == _LOCAL


def member_names(data: bytes, limit: int = MAX_MEMBERS) -> list[str]:
    """The names in the archive's directory ([] if it has none we can read).

    Raises TooManyMembers past `limit`; never anything else.
    """
    try:
        return _names(memoryview(data), limit)
    except TooManyMembers:
        raise
    except Exception:  # a broken or truncated directory: nothing readable
        return []


def _names(data: memoryview, limit: int) -> list[str]:
    raw = bytes(data[-(22 + 65_535):])
    at = raw.rfind(_EOCD)
    if at < 0:
        return []
    eocd = len(data) - len(raw) + at
    (_sig, _disk, _cd_disk, _here, total, size, offset,
     _comment) = struct.unpack("<4sHHHHIIH", bytes(data[eocd:eocd + 22]))
    if total == 0xFFFF or size == 0xFFFFFFFF or offset == 0xFFFFFFFF:
        total, size, offset = _zip64(data, eocd)
    if total > limit:
        raise TooManyMembers(total)
    start = offset if bytes(data[offset:offset + 4]) == _ENTRY else eocd - size
    names: list[str] = []
    pos = max(start, 0)
    while len(names) < total and bytes(data[pos:pos + 4]) == _ENTRY:
        flags, = struct.unpack("<H", bytes(data[pos + 8:pos + 10]))
        length, extra, comment = struct.unpack("<HHH", bytes(data[pos + 28:pos + 34]))
        name = bytes(data[pos + 46:pos + 46 + length])
        names.append(name.decode("utf-8" if flags & 0x800 else "cp437", "replace"))
        pos += 46 + length + extra + comment
        if len(names) > limit:
            raise TooManyMembers(len(names))
    return names


def _zip64(data: memoryview, eocd: int) -> tuple[int, int, int]:
    locator = eocd - 20
    if bytes(data[locator:locator + 4]) != _ZIP64_LOCATOR:
        raise ValueError("no zip64 locator")
    record, = struct.unpack("<Q", bytes(data[locator + 8:locator + 16]))
    if bytes(data[record:record + 4]) != _ZIP64_EOCD:
        raise ValueError("no zip64 directory")
    total, size, offset = struct.unpack("<QQQ", bytes(data[record + 32:record + 56]))
    return total, size, offset
