"""The content-addressed blob store: attachments, raw received mail, template files.

A blob is named by the SHA-256 of its bytes and written once, so the same file stored twice
takes the space of one. Everything that keeps or reads bytes goes through these functions;
the backend behind them (`core.blobstore`: the local data dir, or an S3-compatible bucket
shared by many machines) is chosen by MAILROOM_BLOB_URL. A store that fails raises
`BlobError` (`.kind`: "missing", "unreachable" or "refused"), which each caller turns into
its own answer (404, 451, a failed job with a message).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.conf import settings

from mailroom.core.blobstore import (
    BlobError,
    BlobMissing,
    BlobRefused,
    BlobUnreachable,
    LocalBlobStore,
    get_store,
)
from mailroom.core.blobstore.local import blob_path

__all__ = ["BlobError", "BlobMissing", "BlobRefused", "BlobUnreachable", "attachment_path",
           "blob_exists", "local_copy", "open_blob", "read_blob", "store_blob", "store_bytes"]


def attachment_path(sha256: str) -> Path:
    """Where the local filesystem backend keeps a blob (only meaningful for that backend;
    everything else reads through `open_blob` / `read_blob`)."""
    return blob_path(sha256)


def _limit(max_bytes: int | None) -> int:
    return settings.MAX_ATTACHMENT_BYTES if max_bytes is None else max_bytes


def store_bytes(content: bytes, max_bytes: int | None = None) -> tuple[str, int]:
    """Store bytes already in memory: hashed first, so a blob the store already holds (the
    same chart in 1,000 digest mails) costs a hash and a lookup, not a write."""
    return get_store().put_bytes(content, _limit(max_bytes))


def store_blob(stream: IO[bytes], max_bytes: int | None = None) -> tuple[str, int]:
    """Write a stream to the store; returns (sha256, size) once written and confirmed.

    `max_bytes` defaults to the attachment limit (received raw messages have their own);
    over it: ValidationError. The store failing: BlobError."""
    return get_store().put(stream, _limit(max_bytes))


def open_blob(sha256: str) -> IO[bytes]:
    """A readable binary stream of a blob; the caller closes it. BlobMissing if absent."""
    return get_store().open(sha256)


def read_blob(sha256: str) -> bytes:
    """A (small) blob whole: a PDF, an attachment to put in a message."""
    return get_store().read_bytes(sha256)


def blob_exists(sha256: str) -> bool:
    return get_store().exists(sha256)


@contextlib.contextmanager
def local_copy(sha256: str, suffix: str = "") -> Iterator[Path]:
    """A file path holding the blob, for a program that wants a path (`lp`): the blob's own
    file on the local backend, a temporary copy (removed afterwards) otherwise."""
    store = get_store()
    if isinstance(store, LocalBlobStore):
        path = store.path(sha256)
        if not path.exists():
            raise BlobMissing(f"The blob {sha256} is not in {store.describe()}.",
                              sha256=sha256)
        yield path
        return
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="mailroom-blob-") as copy:
        with store.open(sha256) as source:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        copy.flush()
        yield Path(copy.name)
