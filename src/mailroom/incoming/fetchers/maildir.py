"""A local maildir (`server.folder` is its path): new/ and unread cur/ messages.

Acknowledging follows the maildir convention: the file moves to cur/ with the S (seen) flag
in its info (`<unique>:2,S`), so a mail client sharing the maildir sees it read.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailroom.incoming.fetchers.base import MAX_PER_RUN, FetchError, FetchResult, Store, plain_error
from mailroom.incoming.models import IncomingServer


def _root(server: IncomingServer) -> Path:
    root = Path(server.folder)
    if not (root / "new").is_dir() or not (root / "cur").is_dir():
        raise FetchError(f"The maildir {server.folder} does not exist (or is not a maildir: "
                         "it needs new/ and cur/ folders).")
    return root


def _waiting(root: Path) -> list[Path]:
    found = []
    for sub in ("new", "cur"):
        for entry in os.scandir(root / sub):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            _unique, _, info = entry.name.partition(":2,")
            if sub == "cur" and "S" in info:
                continue
            found.append(Path(entry.path))
    return sorted(found, key=lambda p: p.name)


def fetch(server: IncomingServer, result: FetchResult) -> None:
    root = _root(server)
    paths = _waiting(root)
    if len(paths) > MAX_PER_RUN:
        paths, result.more = paths[:MAX_PER_RUN], True
    store = Store(server, IncomingServer.Kind.MAILDIR, result)
    for path in paths:
        unique, _, info = path.name.partition(":2,")
        key = f"maildir:{server.pk}:{unique}"
        try:
            if store.refuse_if_too_large(key, path.stat().st_size):
                continue
            if not store.store(key, path.read_bytes()):
                continue
            flags = "".join(sorted(set(info) | {"S"}))
            os.rename(path, root / "cur" / f"{unique}:2,{flags}")
        except FileNotFoundError:
            continue  # another reader took it meanwhile
        result.acknowledged += 1


def test_connection(server: IncomingServer) -> str:
    root = _root(server)
    waiting = len(_waiting(root))
    total = waiting + sum(1 for e in os.scandir(root / "cur") if ":2," in e.name and
                          "S" in e.name.partition(":2,")[2])
    return f"Found the maildir; it has {total} messages ({waiting} unread)."


def describe(exc: BaseException, server: IncomingServer) -> str:
    if isinstance(exc, PermissionError):
        return f"Mailroom may not read or move files in the maildir {server.folder}."
    return plain_error(exc, server)
