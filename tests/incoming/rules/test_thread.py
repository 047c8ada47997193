"""The thread rule: replies find their record by References, the reply token or the subject."""

from __future__ import annotations

import pytest

from mailroom.business.crm.models import Lead
from mailroom.incoming.models import InboundMail
from tests.incoming.conftest import _sent_from, email_fixture, message

pytestmark = pytest.mark.django_db

D = InboundMail.Decision


def test_reply_with_references_lands_on_the_record(deliver, lead, customer, domain):
    sent = _sent_from(lead, customer)
    reply = message(sender="Ada <ada@client.example>", subject="Re: Your quote",
                    headers=[f"In-Reply-To: {sent.message_id}",
                             f"References: {sent.message_id}"])
    mail = deliver(reply)
    assert (mail.decision, mail.record) == (D.POSTED, lead)
    assert Lead.objects.count() == 1


def test_reply_with_only_the_reply_token_lands_on_the_record(deliver, lead, customer, domain):
    sent = _sent_from(lead, customer)
    assert sent.reply_to.startswith("catchall+") and sent.reply_to.endswith("@acme.test")
    mail = deliver(message(sender="ada@client.example", to=sent.reply_to,
                           subject="something else entirely"), to=[sent.reply_to])
    assert (mail.decision, mail.record) == (D.POSTED, lead)


def test_reply_stripped_of_references_like_outlook_finds_the_record_by_subject(
        deliver, lead, customer, domain):
    _sent_from(lead, customer, subject="Quote 42 for Acme")
    mail = deliver(email_fixture("outlook_reply_without_references.eml"))
    assert (mail.decision, mail.record) == (D.POSTED, lead)
    thread = next(step for step in mail.trace if step["rule"] == "thread")
    assert "subject fallback" in thread["note"]


def test_subject_fallback_needs_the_same_sender(deliver, lead, customer, domain):
    _sent_from(lead, customer, subject="Quote 42 for Acme")
    mail = deliver(email_fixture("reply_subject_from_a_stranger.eml"))
    assert mail.decision == D.CREATED and mail.record != lead


def test_subject_fallback_finds_mail_sent_to_the_address_in_another_case(
        deliver, lead, customer, domain):
    customer.email = "Ada.Lovelace@Client.Example"  # the local part keeps its case when sent
    customer.save()
    _sent_from(lead, customer, subject="Contract draft")
    mail = deliver(message(sender="ada.lovelace@client.example", subject="RE: Contract draft"))
    assert (mail.decision, mail.record) == (D.POSTED, lead)
    thread = next(step for step in mail.trace if step["rule"] == "thread")
    assert "same subject as mail sent to ada.lovelace@client.example" in thread["note"]


def test_subject_fallback_finds_an_earlier_message_from_the_same_address_only(
        deliver, domain):
    jim = deliver(message(sender="Jim <jimbob@partner.example>", subject="Delivery slots"))
    assert jim.decision == D.CREATED
    # Bob's address is inside Jim's: that does not make Jim's thread his
    bob = deliver(message(sender="bob@partner.example", subject="Re: Delivery slots"))
    assert bob.decision == D.CREATED and bob.record != jim.record
    again = deliver(message(sender="Bob@Partner.example", subject="RE: Delivery slots"))
    assert (again.decision, again.record) == (D.POSTED, bob.record)
    thread = next(step for step in again.trace if step["rule"] == "thread")
    assert "same subject as an earlier message from bob@partner.example" in thread["note"]
    assert again.chatter_message.parent_id == bob.chatter_message_id
