"""Which rows name which blobs, and the two console jobs built on that: copying the local
store into a bucket (`mailroom blobs migrate`) and finding rows whose blob is gone
(`mailroom blobs check`).

Every model field whose name ends in `sha256` names a blob (InboundMail.raw_sha256,
chatter Attachment.sha256, letters' pdf_sha256, …). They are found through Django's model
registry, so this floor needs to import none of the apps above it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models

from mailroom.core.blobstore.base import CHUNK, BlobError, BlobStore
from mailroom.core.blobstore.local import LocalBlobStore


def blob_fields() -> list[tuple[type[models.Model], str]]:
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for f in model._meta.concrete_fields:
            if f.name.endswith("sha256") and isinstance(f, models.CharField):
                found.append((model, f.name))
    return sorted(found, key=lambda item: (item[0]._meta.db_table, item[1]))


def references() -> Iterator[tuple[str, int, str]]:
    """(table, row id, sha256) for every row naming a blob, table by table."""
    for model, name in blob_fields():
        rows = (model._base_manager.exclude(**{name: ""}).order_by("pk")
                .values_list("pk", name))
        for pk, sha256 in rows.iterator(chunk_size=2000):
            yield model._meta.db_table, pk, sha256


def referenced_blobs() -> list[str]:
    return sorted({sha256 for _table, _pk, sha256 in references()})


def stream_sha256(store: BlobStore, sha256: str) -> str:
    """The SHA-256 of what the store gives back, read 1 MB at a time."""
    digest = hashlib.sha256()
    with store.open(sha256) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class MigrateResult:
    referenced: int = 0
    copied: int = 0
    present: int = 0  # already in the bucket (a second run copies nothing)
    missing: list[str] = field(default_factory=list)  # named by a row, not on local disk
    corrupt: list[str] = field(default_factory=list)  # local file's bytes differ from its name
    failed: list[str] = field(default_factory=list)  # upload or verification failed

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.failed)


def migrate(source: LocalBlobStore, target: BlobStore, *,
            progress: Callable[[str], None] = lambda line: None) -> MigrateResult:
    """Copy every referenced blob from the local directory to `target`, reading each back
    to check its SHA-256. Idempotent: a blob already in the target is not sent again."""
    result = MigrateResult()
    names = referenced_blobs()
    result.referenced = len(names)
    for sha256 in names:
        if target.exists(sha256):
            result.present += 1
            continue
        path = source.path(sha256)
        if not path.is_file():
            result.missing.append(sha256)
            progress(f"missing locally: {sha256}")
            continue
        try:
            with path.open("rb") as handle:
                stored, _size = target.put(handle, max_bytes=1 << 40)
            if stored != sha256:
                result.corrupt.append(sha256)
                progress(f"corrupt locally (its bytes hash to {stored}): {sha256}")
                continue
            if stream_sha256(target, sha256) != sha256:
                result.failed.append(sha256)
                progress(f"read back with another SHA-256: {sha256}")
                continue
        except BlobError as exc:
            result.failed.append(sha256)
            progress(f"failed: {sha256}: {exc}")
            continue
        result.copied += 1
    return result


def check(store: BlobStore) -> tuple[int, int, list[tuple[str, int, str]]]:
    """(rows checked, distinct blobs, [(table, id, sha256) whose blob the store lacks])."""
    known: dict[str, bool] = {}
    missing = []
    rows = 0
    for table, pk, sha256 in references():
        rows += 1
        if sha256 not in known:
            try:
                known[sha256] = store.exists(sha256)
            except BlobError as exc:
                if exc.kind != "missing":  # an invalid name is a missing blob; the rest stop
                    raise
                known[sha256] = False
        if not known[sha256]:
            missing.append((table, pk, sha256))
    return rows, len(known), missing
