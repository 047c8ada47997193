"""outgoing.bulk.BulkOutbox writes what `enqueue_many` writes — the same mail row, the same
recipient rows (a blacklisted contact's fails with its reason) — and refuses what it
refuses, with the same field names."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict

from mailroom.business.crm.models import Lead
from mailroom.contacts.models import Partner
from mailroom.outgoing.bulk import BulkOutbox
from mailroom.outgoing.models import OutgoingMail, OutgoingRecipient, Purpose
from mailroom.outgoing.services import enqueue_many

VARIES = {"id", "message_id", "created_at", "next_attempt_at", "idempotency_key"}


def _row(mail: OutgoingMail) -> dict:
    data = {k: v for k, v in model_to_dict(mail).items() if k not in VARIES}
    recipients = [{k: v for k, v in model_to_dict(r).items() if k not in {"id", "mail"}}
                  for r in OutgoingRecipient.objects.filter(mail=mail).order_by("id")]
    return {**data, "recipients": recipients}


def test_a_bulk_mail_is_the_mail_enqueue_many_writes(acme, bob, customer):
    lead = Lead.objects.create(company=acme, name="Deal", partner=customer)
    banned = Partner.objects.create(company=acme, name="Banned", email="banned@client.example",
                                    is_blacklisted=True)
    Partner.objects.create(company=acme, name="Plain", email="plain@client.example")
    content_type = ContentType.objects.get_for_model(Lead).pk
    fields = {"email_from": "Acme <news@acme.example>", "subject": "Spring news",
              "html": "<p>Hi</p>", "text": "Hi", "cc": ["plain@client.example"],
              "to": [customer, banned]}
    [expected] = enqueue_many(company=acme, actor=bob, mails=[{
        **fields, "record": lead, "purpose": Purpose.BULK,
        "priority": OutgoingMail.Priority.LOW, "idempotency_key": "a"}])
    outbox = BulkOutbox(actor=bob)
    outbox.add(company=acme, content_type_id=content_type, object_id=lead.pk,
               idempotency_key="b", partners=outbox.partners_for(acme, ["plain@client.example"]),
               **fields)
    [written] = outbox.write()
    assert _row(OutgoingMail.objects.get(pk=written)) == _row(expected)
    failed = OutgoingRecipient.objects.get(mail_id=written, address="banned@client.example")
    assert failed.status == "failed" and "blacklisted" in failed.failure_reason


@pytest.mark.parametrize(("fields", "name"), [
    ({"email_from": "not an address"}, "email_from"),
    ({"to": ["nobody@"]}, "to.0.address"),
    ({"to": []}, "to"),
    ({"subject": "two\nlines"}, "subject"),
    ({"html": "", "text": ""}, "html"),
])
def test_it_refuses_what_enqueue_many_refuses_with_the_same_names(acme, bob, fields, name):
    mail = {"email_from": "news@acme.example", "to": ["ada@client.example"],
            "subject": "Hi", "html": "<p>Hi</p>", **fields}
    with pytest.raises(ValidationError) as bulk:
        BulkOutbox(actor=bob).add(company=acme, **mail)
    with pytest.raises(ValidationError) as many:
        enqueue_many(company=acme, actor=bob, mails=[mail])
    assert list(bulk.value.message_dict) == [name]
    assert list(many.value.message_dict) == [f"mails.0.{name}"]
    assert bulk.value.message_dict[name] == many.value.message_dict[f"mails.0.{name}"]


def test_another_companys_user_cannot_queue(acme, charlie):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        BulkOutbox(actor=charlie).add(company=acme, email_from="news@acme.example",
                                      to=["ada@client.example"], subject="Hi", html="<p>x</p>")
