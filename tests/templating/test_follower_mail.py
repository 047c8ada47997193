"""A message on a record emails its followers through the outbox and a real SMTP peer; a reply
comes home to the record and tells the team; a bounce marks that follower; users choose email
or inbox; @-mentions notify and subscribe; automatic mail tells nobody."""

from __future__ import annotations

import email
import email.policy
import smtplib

import pytest

from mailroom.chatter.models import Follower, Message, Notification
from mailroom.chatter.services import follow, log_note, post_message, thread_queryset
from mailroom.contacts.models import Partner
from mailroom.contacts.services import partner_for_user
from mailroom.incoming.gateway import start_gateway
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending
from mailroom.outgoing.models import MailServer, OutgoingMail, OutgoingRecipient
from mailroom.outgoing.sending.engine import Sender
from tests.incoming.conftest import deliver, domain, message, zone  # noqa: F401 - fixtures
from tests.incoming.rules.test_bounce import CASES, _sample
from tests.outgoing import smtp_peer

sink = smtp_peer.sink
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _deliverable_user_addresses(bob, alice, mia):
    """The shared users' addresses end in .test, a reserved name no contact may carry: give
    the team mailboxes a follower can have."""
    for user in (bob, alice, mia):
        user.email = f"{user.username}@acme.example"
        user.save()


@pytest.fixture
def server(acme, sink):
    return MailServer.objects.create(company=acme, name="sink", host="127.0.0.1",
                                     port=sink.port, security="none", auth="none")


def send_all() -> None:
    sender = Sender("test", step_seconds=0, timeout=5)
    try:
        sender.run_once()
    finally:
        sender.close()


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.fixture
def followed(lead, bob, customer, acme):
    """The lead followed by its author bob, the customer and a blacklisted contact."""
    follow(lead, partner_for_user(bob, acme), actor=bob)
    follow(lead, customer, actor=bob)
    banned = Partner.objects.create(company=acme, name="Mallory", email="mallory@spam.example",
                                    is_blacklisted=True)
    follow(lead, banned, actor=bob)
    return lead


def test_a_message_emails_each_follower_but_the_author_and_the_blacklisted(
        followed, bob, customer, domain, server, sink):  # noqa: F811
    message = post_message(followed, actor=bob, body_text="Your licences are ready.")
    [mail] = OutgoingMail.objects.filter(chatter_message=message)
    assert [r.address for r in mail.recipients.all()] == ["ada@client.example"]
    statuses = {n.partner.name: (n.status, n.failure_reason)
                for n in Notification.objects.filter(message=message).select_related("partner")}
    assert statuses == {
        "Ada Lovelace": ("ready", ""),
        "Mallory": ("cancelled", "Not emailed: mallory@spam.example is blacklisted."),
    }
    send_all()
    [received] = sink.messages
    head = parsed(received.data)
    [sender] = head["From"].addresses  # the author's name, the company's own address
    assert (sender.display_name, sender.addr_spec) == ("Bob (via Acme Corp)",
                                                       "notifications@acme.test")
    assert head["Reply-To"].startswith("catchall+") and head["Reply-To"].endswith("@acme.test")
    first = (thread_queryset(Message, followed).order_by("date", "id").first()).message_id
    assert first in head["References"] and head["In-Reply-To"] == first
    body = head.get_body(("html",)).get_content()
    assert "Your licences are ready." in body and "Bob wrote:" in body
    assert "because you follow Lead: Big deal" in body
    assert "View lead" not in body  # the back-office link is for the team only
    assert Notification.objects.get(message=message, partner=customer).status == "sent"


@pytest.mark.django_db(transaction=True)
def test_the_team_gets_the_view_button_and_a_reply_through_the_gateway_comes_home(
        followed, bob, alice, acme, customer, domain, server, sink):  # noqa: F811
    follow(followed, partner_for_user(alice, acme), actor=bob)
    post_message(followed, actor=bob, body_text="Quote attached soon.")
    send_all()
    by_to = {parsed(m.data)["To"]: parsed(m.data) for m in sink.messages}
    team_copy = by_to["Alice <alice@acme.example>"]
    assert "View lead" in team_copy.get_body(("html",)).get_content()
    customer_copy = by_to["Ada Lovelace <ada@client.example>"]
    sink.messages.clear()

    reply_to = customer_copy["Reply-To"]
    reply = message(sender="Ada Lovelace <ada@client.example>", to=reply_to,
                    subject=f"Re: {customer_copy['Subject']}", body="Thanks, 40 please.",
                    headers=[f"In-Reply-To: {customer_copy['Message-ID']}",
                             f"References: {customer_copy['Message-ID']}"])
    with start_gateway() as gateway:  # the customer's mail server hands the reply over SMTP
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as client:
            assert client.sendmail("ada@client.example", [reply_to], reply.encode()) == {}
    assert route_pending("test") == 1
    routed = InboundMail.objects.get()
    assert routed.record == followed, routed.reason
    incoming = Message.objects.get(pk=routed.chatter_message_id)
    told = {n.partner.name for n in Notification.objects.filter(message=incoming)
            .select_related("partner")}
    assert told == {"Bob", "Alice"}  # the team, never the customer who wrote it
    send_all()
    assert sorted(parsed(m.data)["To"] for m in sink.messages) == [
        "Alice <alice@acme.example>", "Bob <bob@acme.example>"]
    assert {parsed(m.data)["From"].addresses[0].display_name for m in sink.messages} == {
        "Ada Lovelace (via Acme Corp)"}


def test_a_bounce_of_the_notification_marks_that_follower_bounced(
        followed, bob, customer, deliver, server, sink):  # noqa: F811
    message_ = post_message(followed, actor=bob, body_text="Hello")
    send_all()
    mail = OutgoingMail.objects.get(chatter_message=message_)
    name, original_id, mrid = CASES[0][:3]
    report = _sample(name, original_id, mrid, mail).replace(
        b"jane.doe@customer.example", customer.email.encode())
    routed = deliver(report, to=["bounce@acme.test"])
    assert routed.decision == InboundMail.Decision.BOUNCE, routed.reason
    assert OutgoingRecipient.objects.get(mail=mail).status == "bounced"
    notification = Notification.objects.get(message=message_, partner=customer)
    assert notification.status == Notification.Status.BOUNCED and notification.failure_reason


def test_inbox_only_users_get_no_mail_but_an_inbox_notification(
        lead, bob, alice, acme, domain, server):  # noqa: F811
    alice.notify_by = "inbox"
    alice.save()
    follow(lead, partner_for_user(alice, acme), actor=bob)
    message_ = post_message(lead, actor=bob, body_text="FYI")
    [notification] = Notification.objects.filter(message=message_)
    assert notification.channel == "inbox" and notification.partner.user == alice
    assert not OutgoingMail.objects.filter(chatter_message=message_).exists()


def test_a_mention_in_a_note_notifies_and_subscribes_only_that_user(
        lead, bob, alice, mia, acme, customer, domain, server):  # noqa: F811
    follow(lead, customer, actor=bob)
    note = log_note(lead, actor=bob, body_text="@alice can you check the discount? @nobody")
    [notification] = Notification.objects.filter(message=note)
    assert notification.partner.user == alice and notification.mentioned
    assert Follower.objects.filter(partner__user=alice, object_id=lead.pk).exists()
    [mail] = OutgoingMail.objects.filter(chatter_message=note)
    assert [r.address for r in mail.recipients.all()] == ["alice@acme.example"]
    assert "because you were mentioned" in mail.body_html


def test_a_mention_never_reaches_another_companys_user(lead, bob, charlie, domain):  # noqa: F811
    note = log_note(lead, actor=bob, body_text="@charlie look")
    assert not Notification.objects.filter(message=note).exists()


def test_automatic_mail_on_a_record_tells_nobody(
        followed, bob, acme, deliver, server):  # noqa: F811
    follow(followed, partner_for_user(bob, acme), actor=bob)
    reply = message(sender="Ada Lovelace <ada@client.example>", subject="Out of office",
                    headers=["Auto-Submitted: auto-replied"], body="I am away.")
    before = Notification.objects.count()
    deliver(reply, to=["sales@acme.test"])
    assert Notification.objects.count() == before


def test_no_sender_address_is_said_on_the_notification(lead, bob, customer, acme):
    acme.email = ""
    acme.save()
    follow(lead, customer, actor=bob)
    message_ = post_message(lead, actor=bob, body_text="Hi")
    notification = Notification.objects.get(message=message_)
    assert notification.status == "cancelled"
    assert "no alias domain and no email address" in notification.failure_reason
    assert not OutgoingMail.objects.filter(chatter_message=message_).exists()


def test_an_email_from_outside_cannot_mention_anyone(lead, alice, acme, deliver):  # noqa: F811
    reply = message(sender="Mallory <mallory@evil.example>", subject="Hi @alice",
                    body="@alice please look at https://evil.example")
    routed = deliver(reply, to=["sales@acme.test"])
    assert routed.chatter_message_id
    assert not Notification.objects.filter(message_id=routed.chatter_message_id).exists()
    assert not Follower.objects.filter(partner__user=alice).exists()
