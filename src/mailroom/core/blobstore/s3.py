"""An S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, …): one store for many machines.

Keys are content-addressed, `<prefix>/<sha[:2]>/<sha>`. A put spools the stream to a
temporary file while hashing it (so memory stays flat whatever the size), skips the upload
when the key is already there, sends one PutObject carrying the SHA-256 (the server refuses
bytes that do not match), then confirms with a HEAD. Reads stream the response body.
Every failure becomes a BlobError whose message names the bucket and what to check.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from typing import IO

from mailroom.core.blobstore.base import (
    CHUNK,
    BlobError,
    BlobMissing,
    BlobRefused,
    BlobUnreachable,
    check_size,
    spool,
    valid_sha256,
)

_client_lock = threading.Lock()  # boto3 sessions are not thread-safe; clients are


class S3BlobStore:
    name = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, timeout: float = 30.0, attempts: int = 3,
                 spool_dir: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.spool_dir = spool_dir
        config = Config(connect_timeout=timeout, read_timeout=timeout,
                        retries={"max_attempts": max(1, attempts), "mode": "standard"},
                        s3={"addressing_style": "path"} if endpoint_url else None)
        with _client_lock:
            self.client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=region or None,
                config=config)

    # --- naming --------------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        sha256 = valid_sha256(sha256)
        name = f"{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"the bucket s3://{self.bucket}/{self.prefix}{where}"

    def Describe(self) -> str:  # noqa: N802 - the same words, starting a sentence
        return "T" + self.describe()[1:]

    # --- writing -------------------------------------------------------------------------------

    def put(self, stream: IO[bytes], max_bytes: int) -> tuple[str, int]:
        spooled, sha256, size = spool(stream, max_bytes, dir=self.spool_dir)
        with spooled:
            if not self._holds(sha256, size):
                self._upload(spooled, sha256, size)
        return sha256, size

    def put_bytes(self, content: bytes, max_bytes: int) -> tuple[str, int]:
        check_size(len(content), max_bytes)
        sha256 = hashlib.sha256(content).hexdigest()
        if not self._holds(sha256, len(content)):
            self._upload(io.BytesIO(content), sha256, len(content))
        return sha256, len(content)

    def _holds(self, sha256: str, size: int) -> bool:
        """True when the key is there with the right size (content addressing does the rest);
        a key of another size (a broken earlier upload elsewhere) is written again."""
        head = self._head(sha256)
        return head is not None and head.get("ContentLength") == size

    def _upload(self, body: IO[bytes], sha256: str, size: int) -> None:
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=body,
                                   ContentLength=size, ChecksumSHA256=checksum,
                                   ContentType="application/octet-stream")
        except Exception as exc:
            raise self._error(exc, sha256, "store") from exc
        head = self._head(sha256)
        if head is None or head.get("ContentLength") != size:
            raise BlobUnreachable(
                f"{self.Describe()} accepted the blob {sha256} but does not hold it "
                f"({size:,} bytes) afterwards.", sha256=sha256)
        stored = head.get("ChecksumSHA256")
        if stored and stored.split("-")[0] != checksum:
            raise BlobRefused(f"{self.Describe()} holds the blob {sha256} with another "
                              "SHA-256 than the bytes sent.", sha256=sha256)

    # --- reading -------------------------------------------------------------------------------

    def _head(self, sha256: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha256),
                                           ChecksumMode="ENABLED")
        except Exception as exc:
            error = self._error(exc, sha256, "look up")
            if isinstance(error, BlobMissing):
                return None
            raise error from exc

    def exists(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def open(self, sha256: str) -> IO[bytes]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            raise self._error(exc, sha256, "read") from exc
        return io.BufferedReader(_Body(answer["Body"], self, sha256), CHUNK)

    def read_bytes(self, sha256: str) -> bytes:
        with self.open(sha256) as stream:
            return stream.read()

    def iter_all(self):
        """Every blob name in the bucket under the prefix."""
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    name = item["Key"].rsplit("/", 1)[-1]
                    if len(name) == 64:
                        yield name
        except Exception as exc:
            raise self._error(exc, "", "list") from exc

    def verify(self) -> None:
        """Raise a BlobError naming what to fix when the bucket cannot be used."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            error = self._error(exc, "", "reach")
            if isinstance(error, BlobMissing):  # HEAD has no body: a 404 is the bucket
                error = BlobRefused(f"The bucket {self.bucket!r} does not exist"
                                    f"{self._at()}; create it or fix MAILROOM_BLOB_URL.")
            raise error from exc

    # --- errors --------------------------------------------------------------------------------

    def _at(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""

    def _error(self, exc: Exception, sha256: str, doing: str) -> BlobError:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        blob = f"the blob {sha256}" if sha256 else "blobs"
        if isinstance(exc, BlobError):
            return exc
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code == "NoSuchBucket":
                return BlobRefused(f"The bucket {self.bucket!r} does not exist{self._at()}; "
                                   "create it or fix MAILROOM_BLOB_URL.", sha256=sha256)
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                return BlobMissing(f"{self.Describe()} does not hold {blob}.", sha256=sha256)
            if status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId",
                                                "SignatureDoesNotMatch", "AllAccessDisabled"):
                return BlobRefused(
                    f"{self.Describe()} refused to {doing} {blob} ({code or status}): check "
                    "the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the "
                    "bucket's permissions.", sha256=sha256)
            if 400 <= status < 500 and status not in (408, 429):
                return BlobRefused(f"{self.Describe()} refused to {doing} {blob}: "
                                   f"{code} {error.get('Message', '')}".rstrip(),
                                   sha256=sha256)
            return BlobUnreachable(f"{self.Describe()} failed to {doing} {blob} "
                                   f"({code or status}); try again later.", sha256=sha256)
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return BlobRefused(f"No credentials for {self.describe()}: set AWS_ACCESS_KEY_ID "
                               "and AWS_SECRET_ACCESS_KEY (or an AWS profile or role).",
                               sha256=sha256)
        if isinstance(exc, (BotoCoreError, OSError)):
            return BlobUnreachable(f"Could not {doing} {blob} in {self.describe()}: {exc}",
                                   sha256=sha256)
        return BlobUnreachable(f"Could not {doing} {blob} in {self.describe()}: "
                               f"{type(exc).__name__}: {exc}", sha256=sha256)


class _Body(io.RawIOBase):
    """The streaming response body as a raw stream: read as the caller reads, never whole."""

    def __init__(self, body, store: S3BlobStore, sha256: str) -> None:
        self._body = body
        self._store = store
        self._sha256 = sha256

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._body.read(len(buffer))
        except Exception as exc:
            raise self._store._error(exc, self._sha256, "read") from exc
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
