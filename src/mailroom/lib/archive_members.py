"""What is inside archives other than zip — 7z, RAR, cab and tar (plain, gzip, bzip2 or xz) —
and inside a zip's members, read with libarchive (no Django), never unpacked to disk and
always bounded.

`archives.py` reads a zip's directory itself; these formats have no directory at a known
place (tar) or keep it compressed (7z), so the well-kept C library that bsdtar is built on
reads their headers. Bounds, because the bytes come from strangers:
- at most MAX_MEMBERS names (TooManyMembers past it, as for zip);
- going from one member to the next may decompress the one passed over (a solid 7z or RAR
  block, a compressed tar): the sizes passed over add up to at most WALK_BYTES, past which
  the archive is TooLarge to check;
- a member is read (`read`) only when it is at most MEMBER_BYTES, for an archive inside an
  archive.
An archive whose names are encrypted (7z -mhe, RAR -hp), or that libarchive cannot read,
raises Unreadable with the reason in plain words: a name that cannot be read cannot be
checked, which is what password-protected malware counts on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from mailroom.lib.archives import MAX_MEMBERS, TooManyMembers

__all__ = ["MEMBER_BYTES", "WALK_BYTES", "Member", "TooLarge", "Unreadable", "compressed_name",
           "kind", "members"]

WALK_BYTES = 64 * 1024 * 1024
MEMBER_BYTES = 8 * 1024 * 1024

_MAGIC = (
    (b"PK\x03\x04", "zip", "zip"),  # read here only for an archive inside it
    (b"7z\xbc\xaf\x27\x1c", "7z", "7zip"),
    (b"Rar!\x1a\x07", "RAR", "rar"),  # RAR 4 (…\x00) and RAR 5 (…\x01\x00)
    (b"MSCF\x00\x00\x00\x00", "cab", "cab"),
)
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
COMPRESSED_SUFFIXES = ("gz", "bz2", "xz")


class Unreadable(ValueError):
    """The archive's names cannot be read; str() says why, in plain words ("is encrypted: …"),
    to follow "the archive x.7z"."""


class TooLarge(ValueError):
    """Listing would decompress more than WALK_BYTES: the rest stays unknown."""


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    data: bytes | None  # read only when asked for and at most MEMBER_BYTES
    sealed: bool = False  # asked for, but its bytes cannot be read (a password)


def kind(data: bytes) -> str:
    """"zip", "7z", "RAR", "cab", "tar", "gzip", "bzip2" or "xz" by the first bytes; ""
    otherwise."""
    for magic, label, _format in _MAGIC:
        if data.startswith(magic):
            return label
    if data[257:262] == b"ustar":
        return "tar"
    for magic, label in _COMPRESSED:
        if data.startswith(magic):
            return label
    return ""


def members(data: bytes, *, read: Collection[str] = (),
            limit: int = MAX_MEMBERS) -> Iterator[Member]:
    """The members of a zip, 7z, RAR, cab or tar archive (a tar may be compressed) in order, with
    the bytes of those whose name ends in one of the `read` suffixes (lowercase, no dot) when
    they are at most MEMBER_BYTES. A gzip, bzip2 or xz file that is not a tar yields nothing
    (its one name: compressed_name). Raises Unreadable, TooManyMembers or TooLarge."""
    import libarchive  # 70 ms to import (ctypes): paid by the first archive, not every start

    label = kind(data)
    formats = {m[1]: m[2] for m in _MAGIC}
    if label in formats:
        format_name, filter_name = formats[label], "none"
        if label == "RAR" and data[6:8] == b"\x01\x00":
            format_name = "rar5"
    elif label in ("tar", "gzip", "bzip2", "xz"):
        format_name, filter_name = "tar", "all"
    else:
        return
    try:
        with libarchive.memory_reader(data, format_name=format_name,
                                      filter_name=filter_name) as archive:
            count, walked = 0, 0
            for entry in archive:
                count += 1
                if count > limit:
                    raise TooManyMembers(count)
                size = max(entry.size or 0, 0)
                if walked + size > WALK_BYTES:
                    raise TooLarge(walked + size)
                walked += size
                name = _name(entry.pathname)
                wanted = (not entry.isdir and size <= MEMBER_BYTES
                          and name.rpartition(".")[2].lower() in read)
                body, sealed = None, False
                if wanted:
                    try:
                        body = _read(entry)
                    except libarchive.ArchiveError:  # its bytes are encrypted
                        sealed = True
                yield Member(name, size, body, sealed)
    except (TooManyMembers, TooLarge):
        raise
    except libarchive.ArchiveError as exc:
        if label in ("gzip", "bzip2", "xz") and "nrecognized archive format" in str(exc):
            return  # one compressed file, not a tar
        raise Unreadable(_reason(str(exc), label)) from None
    except Exception as exc:  # whatever else a hostile header makes the binding raise
        raise Unreadable(_reason(f"{type(exc).__name__}: {exc}", label)) from None


def _name(path: str | bytes | None) -> str:
    """A member's name: libarchive-c gives the bytes when they are not UTF-8 (a tar written
    in Latin-1, an old RAR's code page); the extension is ASCII either way."""
    if isinstance(path, bytes):
        return path.decode("utf-8", "replace")
    return path or ""


def _read(entry: Any) -> bytes | None:  # a libarchive ArchiveEntry
    chunks, total = [], 0
    for block in entry.get_blocks():
        total += len(block)
        if total > MEMBER_BYTES:  # the header understated it
            return None
        chunks.append(bytes(block))
    return b"".join(chunks)


def _reason(error: str, label: str) -> str:
    """What follows "the archive x.7z …" in the words a user reads."""
    lowered = error.lower()
    if "encrypt" in lowered or "passphrase" in lowered or "password" in lowered:
        return "is encrypted: the names of its files cannot be read, so they cannot be checked"
    detail = error.split(" (errno")[0].strip().rstrip(".")
    return f"cannot be read as {label} ({detail}), so its files cannot be checked"


def compressed_name(filename: str, data: bytes) -> list[str]:
    """The name(s) a gzip, bzip2 or xz file unpacks to: its file name without the suffix
    ("invoice.exe.gz" → "invoice.exe"), and the name a gzip header carries, if any."""
    names = []
    stem, dot, suffix = filename.rpartition(".")
    if dot and suffix.lower() in COMPRESSED_SUFFIXES and stem:
        names.append(stem)
    if data[:2] == b"\x1f\x8b" and len(data) > 10 and data[3] & 0x08:  # gzip FNAME
        at = 10
        if data[3] & 0x04:  # FEXTRA comes first
            at += 2 + int.from_bytes(data[10:12], "little")
        end = data.find(b"\x00", at, at + 1024)
        if end > at:
            names.append(data[at:end].decode("latin-1"))
    return names
