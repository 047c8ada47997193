"""The local filesystem: the embedded default, one data dir on one machine.

Blobs live at `<ATTACHMENT_DIR>/<sha[:2]>/<sha[2:4]>/<sha>`, written through a temp file,
fsync and an atomic rename, so a crash never leaves a half-written blob under a real name;
the directory that gains the name is fsynced too (and the one above a directory just made),
so a blob confirmed to the caller — who then answers 250 — survives a power loss.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings

from mailroom.core.blobstore.base import (
    CHUNK,
    BlobMissing,
    BlobUnreachable,
    check_size,
    valid_sha256,
)


def blob_path(sha256: str, root: Path | str | None = None) -> Path:
    root = Path(settings.ATTACHMENT_DIR if root is None else root)
    return root / sha256[:2] / sha256[2:4] / sha256


def fsync_dir(path: Path | str) -> None:
    """Make the names in directory `path` durable (a rename or a new entry is not, until its
    directory is fsynced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# directories this process made or found: each put asked the filesystem again, a stat and
# pathlib's string building per level, a tenth of the gateway's CPU per accepted message.
# One removed underneath (a data dir cleared) is made again when a write finds it gone.
_made: set[str] = set()


def _make_dirs(path: Path | str) -> None:
    """`path` and any missing parents, each new one's entry made durable in its parent."""
    name = os.fspath(path)
    if name in _made:
        return
    if not os.path.isdir(name):
        parent = os.path.dirname(name)
        if parent and parent != name:
            _make_dirs(parent)
        try:
            os.mkdir(name)
        except FileExistsError:  # another process or thread made it first
            pass
        else:
            fsync_dir(parent or ".")
    _made.add(name)


class LocalBlobStore:
    name = "local"

    def __init__(self, root: Path | str | None = None) -> None:
        self._root = root  # None: settings.ATTACHMENT_DIR, read at each call

    @property
    def root(self) -> Path:
        return Path(settings.ATTACHMENT_DIR if self._root is None else self._root)

    def path(self, sha256: str) -> Path:
        return blob_path(valid_sha256(sha256), self.root)

    def describe(self) -> str:
        return f"the directory {self.root}"

    def put(self, stream: IO[bytes], max_bytes: int) -> tuple[str, int]:
        root = os.fspath(self._root if self._root is not None else settings.ATTACHMENT_DIR)
        _make_dirs(root)
        digest = hashlib.sha256()
        size = 0
        try:
            fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
        except FileNotFoundError:  # the directory went away underneath (a data dir cleared)
            _made.clear()
            _make_dirs(root)
            fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    check_size(size, max_bytes)
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            sha = digest.hexdigest()
            folder = os.path.join(root, sha[:2], sha[2:4])
            target = os.path.join(folder, sha)
            _make_dirs(folder)
            if os.path.exists(target):
                os.unlink(tmp_name)
            else:
                try:
                    os.replace(tmp_name, target)
                except FileNotFoundError:  # its folder went away underneath
                    _made.clear()
                    _make_dirs(folder)
                    os.replace(tmp_name, target)
                fsync_dir(folder)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return digest.hexdigest(), size

    def put_bytes(self, content: bytes, max_bytes: int) -> tuple[str, int]:
        check_size(len(content), max_bytes)
        sha256 = hashlib.sha256(content).hexdigest()
        root = self._root if self._root is not None else settings.ATTACHMENT_DIR
        if os.path.exists(os.path.join(root, sha256[:2], sha256[2:4], sha256)):
            return sha256, len(content)
        return self.put(io.BytesIO(content), max_bytes)

    def open(self, sha256: str) -> IO[bytes]:
        path = self.path(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise BlobMissing(f"The blob {sha256} is not in {self.describe()}.",
                              sha256=sha256) from None
        except OSError as exc:
            raise BlobUnreachable(f"The blob {sha256} could not be read from "
                                  f"{self.describe()}: {exc}", sha256=sha256) from exc

    def read_bytes(self, sha256: str) -> bytes:
        with self.open(sha256) as handle:
            return handle.read()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def iter_all(self):
        """Every blob name under the root (for `mailroom blobs migrate`)."""
        root = self.root
        if not root.is_dir():
            return
        for path in sorted(root.glob("??/??/*")):
            if len(path.name) == 64 and path.is_file():
                yield path.name
