"""What every blob store does, and the one error callers map to their own words.

A blob is named by the SHA-256 of its bytes. `put` returns only after the bytes are written
and confirmed (fsync and rename on disk; PutObject with its SHA-256 checked by the server,
then a HEAD, in a bucket), so a row naming the blob may commit and the sender be told "250".
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import IO, Protocol

from django.core.exceptions import ValidationError

CHUNK = 1024 * 1024


class BlobError(Exception):
    """The store could not give or keep a blob. `kind` says which answer the caller maps:
    "missing" (no such blob), "unreachable" (network, timeout, server error: try again later),
    "refused" (the store said no: wrong bucket, credentials or permissions)."""

    kind = "unreachable"

    def __init__(self, message: str, *, sha256: str = "") -> None:
        super().__init__(message)
        self.sha256 = sha256


class BlobMissing(BlobError):
    kind = "missing"


class BlobUnreachable(BlobError):
    kind = "unreachable"


class BlobRefused(BlobError):
    kind = "refused"


class BlobStore(Protocol):
    """One backend: the local filesystem (the default) or an S3-compatible bucket."""

    name: str

    def put(self, stream: IO[bytes], max_bytes: int) -> tuple[str, int]:
        """Store a stream; (sha256, size) once written and confirmed. ValidationError when
        the stream is over `max_bytes`; BlobError when the store fails."""

    def put_bytes(self, content: bytes, max_bytes: int) -> tuple[str, int]:
        """`put` for bytes already in memory: hashed first, so a blob the store holds costs a
        lookup, never a second write."""

    def open(self, sha256: str) -> IO[bytes]:
        """A readable binary stream of the blob (the caller closes it); BlobMissing when the
        store does not hold it."""

    def read_bytes(self, sha256: str) -> bytes:
        """The whole blob in memory: for small ones (a PDF, an attachment to send)."""

    def exists(self, sha256: str) -> bool:
        """Whether the store holds the blob (BlobError when it cannot tell)."""

    def describe(self) -> str:
        """Where the blobs are, for messages and commands."""


def too_large(max_bytes: int) -> ValidationError:
    return ValidationError({"file": f"The file is larger than {max_bytes // (1024 * 1024)} MB."})


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise too_large(max_bytes)


def spool(stream: IO[bytes], max_bytes: int, *, dir: str | None = None
          ) -> tuple[IO[bytes], str, int]:
    """Copy a stream to an anonymous temporary file, hashing as it goes, 1 MB at a time:
    (the file at offset 0, sha256, size). The caller closes the file."""
    digest = hashlib.sha256()
    size = 0
    spooled = tempfile.TemporaryFile(dir=dir, prefix=".upload-")
    try:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            check_size(size, max_bytes)
            digest.update(chunk)
            spooled.write(chunk)
        spooled.flush()
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return spooled, digest.hexdigest(), size


def valid_sha256(sha256: str) -> str:
    """A blob name is 64 lowercase hex digits; anything else never reaches a path or a key."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise BlobMissing(f"{sha256[:80]!r} is not a blob name (a SHA-256 in hex).",
                          sha256=sha256)
    return sha256
