"""The blob store: where attachments, raw received mail and template files are kept.

`get_store()` gives the configured backend: the local filesystem unless
`MAILROOM_BLOB_URL=s3://bucket/prefix` names an S3-compatible bucket, reached with
`MAILROOM_S3_ENDPOINT_URL` (MinIO, Ceph, …; unset: AWS), `MAILROOM_S3_REGION` (or
AWS_REGION / AWS_DEFAULT_REGION) and the standard AWS credentials (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, a profile or a role). `MAILROOM_S3_TIMEOUT` (seconds, default 30)
bounds each connect and read, `MAILROOM_S3_ATTEMPTS` (default 3) the tries per request, so a
stalled bucket turns into a BlobError the caller can answer ("451, try again later").
Each setting may also be given in Django settings (tests do).
"""

from __future__ import annotations

import os
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from mailroom.core.blobstore.base import (
    BlobError,
    BlobMissing,
    BlobRefused,
    BlobStore,
    BlobUnreachable,
)
from mailroom.core.blobstore.local import LocalBlobStore

__all__ = ["BlobError", "BlobMissing", "BlobRefused", "BlobStore", "BlobUnreachable",
           "LocalBlobStore", "get_store", "store_from_url"]

_lock = threading.Lock()
_stores: dict[tuple, BlobStore] = {}


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    return str(value or default)


def _config() -> tuple:
    region = (_setting("MAILROOM_S3_REGION") or os.environ.get("AWS_REGION")
              or os.environ.get("AWS_DEFAULT_REGION") or "")
    return (_setting("MAILROOM_BLOB_URL").strip(), _setting("MAILROOM_S3_ENDPOINT_URL"),
            region, float(_setting("MAILROOM_S3_TIMEOUT", "30")),
            int(_setting("MAILROOM_S3_ATTEMPTS", "3")))


def store_from_url(url: str, *, endpoint_url: str = "", region: str = "",
                   timeout: float = 30.0, attempts: int = 3) -> BlobStore:
    """The backend a URL names: "" → the local filesystem, s3://bucket/prefix → a bucket."""
    if not url:
        return LocalBlobStore()
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ImproperlyConfigured(
            f"MAILROOM_BLOB_URL={url!r} is not understood: give s3://bucket/prefix for an "
            "S3-compatible bucket, or leave it unset to keep blobs in the data directory.")
    from mailroom.core.blobstore.s3 import S3BlobStore

    return S3BlobStore(parts.netloc, parts.path, endpoint_url=endpoint_url or None,
                       region=region or None, timeout=timeout, attempts=attempts)


_current: BlobStore | None = None  # the store of the settings as they are


def _forget(*, setting: str, **kwargs) -> None:
    """A test (or a reload) changed a blob setting: the next call reads them again."""
    global _current
    if setting.startswith(("MAILROOM_BLOB", "MAILROOM_S3")):
        _current = None


setting_changed.connect(_forget, dispatch_uid="mailroom.blobstore.settings")


def get_store() -> BlobStore:
    """The configured store (one per configuration and process; boto3 clients are
    thread-safe, so the gateway's threads share one). Read from the settings once: reading
    them (and the environment) on every call was 5% of the gateway's work per message."""
    global _current
    store = _current
    if store is not None:
        return store
    config = _config()
    store = _stores.get(config)
    if store is None:
        url, endpoint_url, region, timeout, attempts = config
        with _lock:
            store = _stores.get(config)
            if store is None:
                store = _stores[config] = store_from_url(
                    url, endpoint_url=endpoint_url, region=region, timeout=timeout,
                    attempts=attempts)
    _current = store
    return store
