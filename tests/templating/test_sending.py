"""Templated mail through the outbox: chatter and hub together, documents marked sent only
once their mail is delivered, mass sending one mail per record."""

from __future__ import annotations

import datetime
import email
import email.policy
from decimal import Decimal

import pytest

from mailroom.business.crm.models import Lead
from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.business.sales import services as sales
from mailroom.business.sales.models import Quotation, Tax
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from mailroom.outgoing.models import MailServer, OutgoingMail
from mailroom.outgoing.sending.engine import Sender
from mailroom.templating import services
from mailroom.templating.actions import default_template
from mailroom.templating.models import EmailTemplate
from tests.outgoing import smtp_peer

sink = smtp_peer.sink
D = Decimal


@pytest.fixture
def server(acme, sink):
    return MailServer.objects.create(company=acme, name="sink", host="127.0.0.1",
                                     port=sink.port, security="none", auth="none")


def deliver() -> None:
    sender = Sender("test", step_seconds=0, timeout=5)
    try:
        sender.run_once()
    finally:
        sender.close()


@pytest.fixture
def quotation(acme, bob, customer):
    tax = Tax.objects.create(company=acme, name="VAT 20%", percent=D("20"))
    draft = sales.save_quotation(Quotation(company=acme, partner=customer, user=bob), actor=bob)
    return sales.set_lines(draft, [{"description": "Widgets", "quantity": 3,
                                    "price_unit": D("100"), "tax_ids": [tax.pk]}], actor=bob)


@pytest.fixture
def invoice(acme, bob, customer):
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer, user=bob,
                                           invoice_date=datetime.date(2026, 11, 24)), actor=bob)
    draft = invoicing.set_lines(draft, [{"description": "Support", "quantity": 1,
                                         "price_unit": D("80")}], actor=bob)
    return invoicing.post_invoice(draft, actor=bob)


def test_send_quotation_queues_the_pdf_logs_the_chatter_and_marks_sent_on_delivery(
        acme, bob, quotation, server, sink):
    template = default_template(acme, "send_quotation")
    mail = services.send_template(quotation, template, actor=bob)
    assert mail.on_sent == "mark_document_sent" and mail.chatter_message_id
    message = Message.objects.get(pk=mail.chatter_message_id)
    assert message.message_type == Message.Type.EMAIL
    [pdf] = message.attachments.all()
    assert pdf.name.endswith(".pdf") and quotation.ref in pdf.name
    assert mail.attachments.count() == 1
    quotation.refresh_from_db()
    assert quotation.state == Quotation.State.DRAFT  # queued is not sent
    deliver()
    mail.refresh_from_db()
    quotation.refresh_from_db()
    assert mail.state == OutgoingMail.State.SENT
    assert quotation.state == Quotation.State.SENT
    [received] = sink.messages
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content().startswith(b"%PDF")


def test_a_refused_invoice_mail_leaves_the_invoice_unsent_and_says_why(
        acme, bob, invoice, server, sink):
    sink.faults.rcpt["*"] = "550 5.1.1 Mailbox unavailable"
    mail = services.send_template(invoice, default_template(acme, "send_invoice"), actor=bob)
    deliver()
    mail.refresh_from_db()
    invoice.refresh_from_db()
    assert mail.state == OutgoingMail.State.EXCEPTION
    assert invoice.sent_at is None
    notes = [m.body_html for m in thread_queryset(Message, invoice)]
    assert any("could not be delivered" in body and "Mailbox unavailable" in body
               for body in notes)


def test_mass_send_gives_one_mail_and_one_chatter_entry_per_record(acme, bob, customer, tess):
    template = services.save_template(EmailTemplate(
        company=acme, name="Lead news", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="News for {{ object.name }}",
        body_html="<p>Hello {{ object.partner.name }}</p>"), actor=tess)
    leads = Lead.objects.bulk_create(Lead(company=acme, name=f"Lead {n}", partner=customer)
                                     for n in range(200))
    results = services.send_mass(leads, template, actor=bob, batch="b1")
    assert not [r.error for r in results if r.error]
    assert OutgoingMail.objects.filter(subject__startswith="News for Lead").count() == 200
    assert Message.objects.filter(message_type=Message.Type.EMAIL,
                                  subject__startswith="News for Lead").count() == 200
    again = services.send_mass(leads[:20], template, actor=bob, batch="b1")  # a retried chunk
    assert {r.mail.pk for r in again} <= {r.mail.pk for r in results}
    assert OutgoingMail.objects.filter(subject__startswith="News for Lead").count() == 200


def test_composer_send_uses_the_edited_text_and_schedules(acme, bob, lead, customer):
    from django.utils import timezone

    when = timezone.now() + datetime.timedelta(days=1)
    mail = services.send_composed(lead, services.Composed(
        subject="Edited subject", body="<p>My own words</p>", to=[customer, "cc@x.example"],
        cc=[], scheduled_at=when), actor=bob, idempotency_key="k1")
    again = services.send_composed(lead, services.Composed(
        subject="Edited subject", body="<p>My own words</p>", to=[customer], cc=[]),
        actor=bob, idempotency_key="k1")
    assert again.pk == mail.pk
    assert mail.subject == "Edited subject" and "My own words" in mail.body_html
    assert mail.next_attempt_at == when and mail.email_from == "Bob <bob@example.test>"
    assert sorted(r.address for r in mail.recipients.all()) == ["ada@client.example",
                                                                "cc@x.example"]
