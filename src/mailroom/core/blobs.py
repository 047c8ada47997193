"""The content-addressed blob store: attachments, raw received mail, template files.

A blob is named by the SHA-256 of its bytes and written once (temp file, fsync, atomic
rename), so the same file stored twice takes the space of one and a crash never leaves a
half-written blob under a real name. Everything that keeps bytes goes through these two
functions, so another backend (S3-compatible object storage) can take their place later.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError


def attachment_path(sha256: str) -> Path:
    return Path(settings.ATTACHMENT_DIR) / sha256[:2] / sha256[2:4] / sha256


def store_bytes(content: bytes, max_bytes: int | None = None) -> tuple[str, int]:
    """Store bytes already in memory: hashed first, so a blob the store already holds (the
    same chart in 1,000 digest mails) costs a hash and a stat, not a write and an fsync."""
    max_bytes = settings.MAX_ATTACHMENT_BYTES if max_bytes is None else max_bytes
    if len(content) > max_bytes:
        raise ValidationError(
            {"file": f"The file is larger than {max_bytes // (1024 * 1024)} MB."})
    sha256 = hashlib.sha256(content).hexdigest()
    if attachment_path(sha256).exists():
        return sha256, len(content)
    return store_blob(io.BytesIO(content), max_bytes)


def store_blob(stream: IO[bytes], max_bytes: int | None = None) -> tuple[str, int]:
    """Write bytes to the content-addressed store: temp file, fsync, atomic rename.

    `max_bytes` defaults to the attachment limit (received raw messages have their own)."""
    max_bytes = settings.MAX_ATTACHMENT_BYTES if max_bytes is None else max_bytes
    root = Path(settings.ATTACHMENT_DIR)
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            while chunk := stream.read(1024 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise ValidationError(
                        {"file": f"The file is larger than {max_bytes // (1024 * 1024)} MB."}
                    )
                digest.update(chunk)
                tmp.write(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())
        target = attachment_path(digest.hexdigest())
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(tmp_name)
        else:
            os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return digest.hexdigest(), size
