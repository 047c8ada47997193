"""The blob store against a real S3-compatible server on loopback (moto's server mode, in its
own process): content-addressed keys, no second upload, streaming without holding a large
blob in memory, clear errors for a missing bucket, a failing or stalled PUT, and the
`mailroom blobs migrate|check` commands."""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import CommandError, call_command

from mailroom.core import blobs
from mailroom.core.blobstore import (
    BlobMissing,
    BlobRefused,
    BlobUnreachable,
    get_store,
    store_from_url,
)
from mailroom.core.blobstore.local import LocalBlobStore
from mailroom.core.blobstore.s3 import S3BlobStore
from tests.s3_server import CREDENTIALS, REGION, FaultyProxy, S3Server

MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3) -> str:
    name = f"mailroom-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def use_bucket(settings, endpoint: str, bucket: str, *, timeout: float = 5.0) -> S3BlobStore:
    settings.MAILROOM_BLOB_URL = f"s3://{bucket}/blobs"
    settings.MAILROOM_S3_ENDPOINT_URL = endpoint
    settings.MAILROOM_S3_REGION = REGION
    settings.MAILROOM_S3_TIMEOUT = timeout
    settings.MAILROOM_S3_ATTEMPTS = 1
    store = get_store()
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture
def s3_store(settings, s3, bucket, aws_env) -> S3BlobStore:
    return use_bucket(settings, s3.endpoint, bucket)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the interface ----------------------------------------------------------------------------

def test_unset_url_keeps_blobs_in_the_data_dir(settings):
    settings.MAILROOM_BLOB_URL = ""
    sha256, size = blobs.store_bytes(b"local bytes")
    assert isinstance(get_store(), LocalBlobStore)
    assert blobs.attachment_path(sha256).read_bytes() == b"local bytes"
    assert (sha256, size) == (sha(b"local bytes"), 11)
    assert blobs.read_blob(sha256) == b"local bytes"
    with pytest.raises(BlobMissing):
        blobs.read_blob(sha(b"never stored"))


def test_a_url_that_is_not_s3_is_refused_with_what_to_write():
    with pytest.raises(ImproperlyConfigured, match="s3://bucket/prefix"):
        store_from_url("ftp://somewhere/blobs")


def test_put_open_exists_round_trip_with_content_addressed_keys(s3_store, s3, bucket):
    data = b"%PDF-1.7 a small invoice\n"
    sha256, size = blobs.store_blob(io.BytesIO(data))
    assert (sha256, size) == (sha(data), len(data))
    assert s3.keys(bucket) == [f"blobs/{sha256[:2]}/{sha256}"]
    assert blobs.blob_exists(sha256)
    assert not blobs.blob_exists(sha(b"other"))
    with blobs.open_blob(sha256) as stream:
        assert stream.read() == data
    assert blobs.read_blob(sha256) == data
    # nothing is written under the local data dir
    assert not blobs.attachment_path(sha256).exists()


def test_a_blob_the_bucket_holds_is_not_uploaded_again(settings, s3, bucket, aws_env):
    with FaultyProxy(s3.port) as proxy:
        use_bucket(settings, proxy.endpoint, bucket)
        first = blobs.store_bytes(b"the same chart in 1,000 digest mails")
        second = blobs.store_blob(io.BytesIO(b"the same chart in 1,000 digest mails"))
        assert first == second
        assert proxy.puts == 1


def test_the_size_limit_holds_for_the_bucket_too(s3_store, s3, bucket):
    with pytest.raises(ValidationError):
        blobs.store_blob(io.BytesIO(b"x" * 2048), max_bytes=1024)
    with pytest.raises(ValidationError):
        blobs.store_bytes(b"x" * 2048, max_bytes=1024)
    assert s3.keys(bucket) == []


def test_a_30_mb_blob_streams_in_and_out_without_being_held_in_memory(s3_store, tmp_path):
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        for _ in range(30):
            chunk = os.urandom(MB)
            digest.update(chunk)
            handle.write(chunk)
    tracemalloc.start()
    try:
        with source.open("rb") as handle:
            sha256, size = blobs.store_blob(handle, max_bytes=64 * MB)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read_back = hashlib.sha256()
        with blobs.open_blob(sha256) as stream:
            while chunk := stream.read(MB):
                read_back.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (sha256, size) == (digest.hexdigest(), 30 * MB)
    assert read_back.hexdigest() == sha256
    # a 30 MB blob held whole even once would show as a 30 MB peak
    assert put_peak < 8 * MB, put_peak
    assert read_peak < 8 * MB, read_peak


# --- errors -----------------------------------------------------------------------------------

def test_a_missing_bucket_is_a_clear_error(settings, s3, aws_env):
    store = use_bucket(settings, s3.endpoint, "no-such-bucket-here")
    with pytest.raises(BlobRefused, match="The bucket 'no-such-bucket-here' does not exist"):
        blobs.store_bytes(b"hello")
    with pytest.raises(BlobRefused, match="does not exist"):
        store.verify()
    with pytest.raises(CommandError, match="'no-such-bucket-here' does not exist"):
        call_command("blobs", "check")


def test_a_blob_not_in_the_bucket_is_missing(s3_store):
    with pytest.raises(BlobMissing, match="does not hold the blob"):
        blobs.open_blob(sha(b"never stored"))
    with pytest.raises(BlobMissing):
        blobs.open_blob("../../etc/passwd")


def test_a_server_error_on_put_is_unreachable_and_stores_nothing(settings, s3, bucket, aws_env):
    with FaultyProxy(s3.port) as proxy:
        use_bucket(settings, proxy.endpoint, bucket)
        proxy.mode = "fail"
        with pytest.raises(BlobUnreachable, match="InternalError"):
            blobs.store_bytes(b"a message")
    assert s3.keys(bucket) == []


def test_a_stalled_put_times_out(settings, s3, bucket, aws_env):
    with FaultyProxy(s3.port, stall_seconds=4) as proxy:
        use_bucket(settings, proxy.endpoint, bucket, timeout=1)
        proxy.mode = "stall"
        started = time.monotonic()
        with pytest.raises(BlobUnreachable, match="Could not store"):
            blobs.store_blob(io.BytesIO(b"a message"))
        assert time.monotonic() - started < 4
    assert s3.keys(bucket) == []


def test_no_credentials_is_a_clear_error(settings, s3, bucket, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings.MAILROOM_S3_TIMEOUT = 2.5  # another client than the other tests' (cached)
    use_bucket(settings, s3.endpoint, bucket, timeout=2.5)
    with pytest.raises(BlobRefused, match="AWS_ACCESS_KEY_ID"):
        blobs.store_bytes(b"hello")


# --- mailroom blobs migrate | check -----------------------------------------------------------

def receive(acme, n: int) -> list:
    from mailroom.incoming.services import accept

    return [accept(f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(), company=acme, source="api")
            for i in range(n)]


@pytest.mark.django_db
def test_migrate_copies_verifies_and_is_idempotent_then_check_finds_gaps(
        settings, s3, bucket, aws_env, acme, capsys):
    settings.MAILROOM_BLOB_URL = ""
    mails = receive(acme, 3)
    lost = mails[2]
    blobs.attachment_path(lost.raw_sha256).unlink()  # a row whose local file is gone

    store = use_bucket(settings, s3.endpoint, bucket)
    with pytest.raises(CommandError, match="3 rows name a blob"):
        call_command("blobs", "check")
    assert f"incoming_inboundmail {mails[0].pk} {mails[0].raw_sha256}" in capsys.readouterr().out

    with pytest.raises(CommandError, match="Some blobs were not copied"):
        call_command("blobs", "migrate")
    out = capsys.readouterr()
    assert "3 blobs referenced: 2 copied and verified, 0 already in the bucket, " \
           "1 missing locally" in out.out
    assert f"missing locally: {lost.raw_sha256}" in out.err
    assert sorted(s3.keys(bucket)) == sorted(
        f"blobs/{m.raw_sha256[:2]}/{m.raw_sha256}" for m in mails[:2])
    assert store.read_bytes(mails[0].raw_sha256) == b"Subject: 0\r\n\r\nbody 0\r\n"

    lost.delete()
    call_command("blobs", "migrate")  # a second run copies nothing
    assert "2 blobs referenced: 0 copied and verified, 2 already in the bucket" in \
        capsys.readouterr().out
    call_command("blobs", "check")
    assert "Checked 2 rows naming 2 blobs" in capsys.readouterr().out

    s3.client().delete_object(Bucket=bucket, Key=store.key(mails[1].raw_sha256))
    with pytest.raises(CommandError, match="1 rows name a blob"):
        call_command("blobs", "check")
    out = capsys.readouterr().out
    assert f"incoming_inboundmail {mails[1].pk} {mails[1].raw_sha256}" in out
    assert f"incoming_inboundmail {mails[0].pk} " not in out


def test_migrate_needs_a_bucket(settings):
    settings.MAILROOM_BLOB_URL = ""
    with pytest.raises(CommandError, match="MAILROOM_BLOB_URL is not set"):
        call_command("blobs", "migrate")
