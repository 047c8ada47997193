"""An outgoing mail whose attachment's file is lost, or whose file store does not answer: a
state and a reason a user understands, and a retry path — never 'Unknown error'.

The sender runs in process against a real aiosmtpd sink; the bucket is a real S3-compatible
server on loopback (tests/s3_server.py), and "does not answer" is its endpoint moved to a
port nothing listens on."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from mailroom.core import blobs
from mailroom.outgoing import services
from mailroom.outgoing.models import FailureType, OutgoingAttachment
from tests.core.test_blobstore import use_bucket
from tests.outgoing.smtp_peer import refused_port
from tests.outgoing.test_sender import clock, enqueue, fresh, make_sender, make_server, sink  # noqa: F401
from tests.s3_server import CREDENTIALS, S3Server

PDF = b"%PDF-1.7 the signed contract\n" * 40


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3, monkeypatch) -> str:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = f"mailroom-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def with_contract(acme):
    return enqueue(acme, attachments=[services.FileToSend("contract.pdf", PDF,
                                                          "application/pdf")])


def test_a_lost_attachment_file_fails_the_mail_with_what_to_do_and_retry_sends_it(
        acme, alice, sink, clock, settings):  # noqa: F811 - fixtures
    settings.MAILROOM_BLOB_URL = ""
    make_server(acme, sink)
    mail = with_contract(acme)
    sha256 = OutgoingAttachment.objects.get(mail=mail).sha256
    blobs.attachment_path(sha256).unlink()

    make_sender(clock).run_once()
    mail = fresh(mail)
    assert (mail.state, mail.failure_type) == ("exception", FailureType.STORAGE)
    assert "stored file is missing" in mail.failure_reason
    assert "mailroom blobs check" in mail.failure_reason and "Retry" in mail.failure_reason
    assert mail.get_failure_type_display() == "Attachment file store problem"
    assert not sink.messages

    # the file is restored (the same bytes, the same address), and Retry sends the mail
    assert blobs.store_bytes(PDF)[0] == sha256
    assert services.retry([mail], actor=alice) == 1
    clock.advance(seconds=1)
    make_sender(clock).run_once()
    assert fresh(mail).state == "sent"
    assert len(sink.messages) == 1 and b"contract.pdf" in sink.messages[0].data


def test_a_file_store_that_does_not_answer_defers_the_mail_until_it_answers_again(
        acme, sink, clock, settings, s3, bucket):  # noqa: F811 - fixtures
    make_server(acme, sink)
    use_bucket(settings, s3.endpoint, bucket)
    mail = with_contract(acme)

    use_bucket(settings, f"http://127.0.0.1:{refused_port()}", bucket, timeout=1)
    make_sender(clock).run_once()
    mail = fresh(mail)
    assert (mail.state, mail.failure_type) == ("deferred", FailureType.STORAGE)
    assert "file store did not answer" in mail.failure_reason
    assert "tried again" in mail.failure_reason
    assert mail.next_attempt_at > clock.now and not sink.messages

    use_bucket(settings, s3.endpoint, bucket)  # the bucket is back
    clock.now = mail.next_attempt_at + timedelta(seconds=1)
    make_sender(clock).run_once()
    mail = fresh(mail)
    assert (mail.state, mail.failure_type, mail.failure_reason) == ("sent", "", "")
    assert len(sink.messages) == 1 and b"contract.pdf" in sink.messages[0].data
