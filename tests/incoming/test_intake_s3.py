"""Intake with the blob store in an S3-compatible bucket (moto's server on loopback, behind a
proxy that can fail or stall PUTs): the raw message is in the bucket before the 250 or the
\\Seen / DELE, and when the bucket fails or is too slow the gateway answers 451 and the
fetchers acknowledge nothing, with no InboundMail row left behind."""

from __future__ import annotations

import uuid

import pytest

from mailroom.core import blobs
from mailroom.incoming import fetchers
from mailroom.incoming.models import InboundMail, IncomingServer
from mailroom.incoming.services import raw_bytes
from tests.incoming import test_fetchers as fetch_tests
from tests.incoming import test_gateway as gateway_tests
from tests.incoming.dovecot import available
from tests.s3_server import CREDENTIALS, REGION, FaultyProxy, S3Server

# the gateway and Dovecot fixtures of the neighbouring modules, as they are
gateway = gateway_tests.gateway
_dovecot_server = fetch_tests._dovecot_server
dovecot = fetch_tests.dovecot
make_server = fetch_tests.make_server

MESSAGE = gateway_tests.MESSAGE
needs_dovecot = pytest.mark.skipif(not available(), reason="Dovecot is not installed")


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3, settings, monkeypatch):
    """A fresh bucket as the blob store, reached through a proxy whose `mode` a test sets."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = f"intake-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    with FaultyProxy(s3.port, stall_seconds=4) as proxy:
        settings.MAILROOM_BLOB_URL = f"s3://{name}/mail"
        settings.MAILROOM_S3_ENDPOINT_URL = proxy.endpoint
        settings.MAILROOM_S3_REGION = REGION
        settings.MAILROOM_S3_TIMEOUT = 1
        settings.MAILROOM_S3_ATTEMPTS = 1
        proxy.bucket = name
        yield proxy


# --- the SMTP/LMTP gateway ---------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_gateway_stores_the_raw_mail_in_the_bucket_before_250(bucket, gateway, s3):
    with gateway_tests.smtp(gateway) as client:
        client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE)
    mail = InboundMail.objects.get()
    assert s3.keys(bucket.bucket) == [f"mail/{mail.raw_sha256[:2]}/{mail.raw_sha256}"]
    assert raw_bytes(mail).endswith(MESSAGE)  # after the gateway's Received: line
    assert not blobs.attachment_path(mail.raw_sha256).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["fail", "stall"])
def test_a_failing_or_stalled_bucket_answers_451_and_keeps_nothing(bucket, gateway, s3, mode):
    bucket.mode = mode
    with gateway_tests.smtp(gateway) as client:
        client.mail("ada@client.example")
        client.rcpt("sales@acme.test")
        code, text = client.data(MESSAGE)
    assert (code, text) == (451, b"4.3.0 could not store the message, try again later")
    assert bucket.puts >= 1
    assert InboundMail.objects.count() == 0
    assert s3.keys(bucket.bucket) == []

    bucket.mode = "pass"  # the sending MTA retries once the bucket is back
    with gateway_tests.smtp(gateway) as client:
        client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE)
    assert raw_bytes(InboundMail.objects.get()).endswith(MESSAGE)


@pytest.mark.django_db(transaction=True)
def test_lmtp_answers_451_per_recipient_when_the_bucket_fails(bucket, gateway):
    bucket.mode = "fail"
    rcpt, replies = gateway_tests.lmtp_send(gateway, "ada@client.example",
                                            ["sales@acme.test", "sales@globex.test"], MESSAGE)
    assert [code for code, _ in rcpt] == [250, 250]
    assert [code for code, _ in replies] == [451, 451]
    assert InboundMail.objects.count() == 0


# --- the IMAP and POP3 fetchers ----------------------------------------------------------------

@needs_dovecot
@pytest.mark.django_db
def test_imap_marks_nothing_seen_while_the_bucket_fails(bucket, dovecot, make_server, s3):
    fetch_tests.deliver(dovecot, 2)
    server = make_server()
    bucket.mode = "fail"
    result = fetchers.fetch(server)
    assert "InternalError" in result.error
    assert (result.stored, result.acknowledged) == (0, 0)
    assert dovecot.count_unseen() == 2
    assert InboundMail.objects.count() == 0

    bucket.mode = "pass"
    result = fetchers.fetch(server)
    assert (result.stored, result.acknowledged, result.error) == (2, 2, "")
    assert dovecot.count_unseen() == 0
    assert fetch_tests.stored_subjects(server) == [b"Test 1", b"Test 2"]
    assert len(s3.keys(bucket.bucket)) == 2


@needs_dovecot
@pytest.mark.django_db
def test_pop3_deletes_nothing_while_the_bucket_stalls(bucket, dovecot, make_server):
    fetch_tests.deliver(dovecot, 2)
    server = make_server(kind=IncomingServer.Kind.POP3)
    bucket.mode = "stall"
    result = fetchers.fetch(server)
    assert result.error and result.acknowledged == 0
    assert dovecot.count() == 2
    assert InboundMail.objects.count() == 0

    bucket.mode = "pass"
    result = fetchers.fetch(server)
    assert (result.stored, result.error) == (2, "")
    assert dovecot.count() == 0
