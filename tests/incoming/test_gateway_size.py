"""One size limit holds: a 30 MB message whose attachment (a 29 MB CSV export, sent as plain
7bit text) is over the 25 MB upload limit is accepted by the real gateway and routed, its
attachment stored; a message quarantined for that reason before the fix routes when
reprocessed."""

from __future__ import annotations

import hashlib
import random
import smtplib

import pytest
from django.conf import settings

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Attachment
from mailroom.incoming.gateway import start_gateway
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route
from mailroom.incoming.services import max_message_bytes, reprocess
from tests.incoming.test_gateway import as_sent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("domains")]

EXPORT_BYTES = 29 * 1024 * 1024


@pytest.fixture(scope="module")
def export() -> bytes:
    """A CSV export of about 29 MB, CRLF line ends (as it travels in 7bit mail)."""
    rng = random.Random(7)
    rows, size, n = [b"id,email,amount\r\n"], 17, 0
    while size < EXPORT_BYTES:
        n += 1
        row = f"{n},customer-{n}@example.com,{rng.randint(1, 10**6) / 100:.2f}\r\n".encode()
        rows.append(row)
        size += len(row)
    return b"".join(rows)


@pytest.fixture
def big_eml(tmp_path, export):
    """A real 30 MB .eml, written to disk here (not checked in) and read back as sent."""
    head = (b"From: Ada <ada@client.example>\r\n"
            b"To: sales@acme.test\r\n"
            b"Subject: The customer export\r\n"
            b"Message-ID: <export-1@client.example>\r\n"
            b"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="=-export-="\r\n'
            b"\r\n"
            b"--=-export-=\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"\r\n"
            b"Hello, the export is attached.\r\n"
            b"--=-export-=\r\n"
            b"Content-Type: text/csv; charset=us-ascii\r\n"
            b"Content-Transfer-Encoding: 7bit\r\n"
            b'Content-Disposition: attachment; filename="export.csv"\r\n'
            b"\r\n")
    path = tmp_path / "export.eml"
    path.write_bytes(head + export + b"\r\n--=-export-=--\r\n")
    raw = path.read_bytes()
    assert 29 * 1024 * 1024 < len(raw) < max_message_bytes()
    return raw


def send(raw: bytes) -> tuple[int, bytes]:
    with start_gateway(lmtp=None) as running:
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=120) as client:
            client.ehlo("client.example")
            assert int(client.esmtp_features["size"]) >= len(raw)
            client.mail("ada@client.example", [f"SIZE={len(raw)}"])
            client.rcpt("sales@acme.test")
            return client.data(raw)


def test_a_30_mb_message_is_accepted_and_its_attachment_stored(big_eml, export):
    # the attachment alone is over the upload limit that used to refuse it in the router
    assert len(export) > settings.MAX_ATTACHMENT_BYTES
    code, reply = send(big_eml)
    assert code == 250, reply
    mail = InboundMail.objects.get()
    assert as_sent(mail) == big_eml
    route(mail)
    mail.refresh_from_db()
    assert (mail.state, mail.decision) == (InboundMail.State.DONE, InboundMail.Decision.CREATED), \
        mail.error
    lead = Lead.objects.get()
    attachment = Attachment.objects.get(name="export.csv")
    assert attachment.record == lead
    assert attachment.size == len(export)
    assert attachment.sha256 == hashlib.sha256(export).hexdigest()


def test_a_message_quarantined_for_its_attachment_size_routes_when_reprocessed(big_eml, export,
                                                                                mia):
    code, _reply = send(big_eml)
    assert code == 250
    mail = InboundMail.objects.get()
    # how the router left such a message before one limit held (the attachment store said no)
    error = "ValidationError: {'file': ['The file is larger than 25 MB.']}"
    InboundMail.objects.filter(pk=mail.pk).update(
        state=InboundMail.State.QUARANTINED, error=error, reason="Quarantined: " + error,
        attempts=1)
    assert reprocess(InboundMail.objects.filter(pk=mail.pk), actor=mia) == 1
    mail.refresh_from_db()
    route(mail)
    mail.refresh_from_db()
    assert mail.decision == InboundMail.Decision.CREATED and mail.error == ""
    assert Attachment.objects.get(name="export.csv").size == len(export)
