"""Send time: an unsubscribe between queueing and sending stops that mail, through the real
sender against an aiosmtpd sink; a paused campaign's mail waits (not an attempt); a broken
send check never blocks sending; and the sent mail's DKIM signature covers both RFC 8058
headers (verified by dkimpy, its key answered by a loopback DNS zone)."""

from __future__ import annotations

import email
from datetime import timedelta

import dns.resolver
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailroom.campaigns import links, send_checks, services, suppression
from mailroom.campaigns.engine.render import CampaignRenderer
from mailroom.campaigns.models import Campaign, CampaignRecipient
from mailroom.contacts.models import Partner
from mailroom.outgoing import hooks
from mailroom.outgoing import services as outgoing
from mailroom.outgoing.models import DkimKey, OutgoingMail
from tests.campaigns.test_unsubscribe import (  # noqa: F401 - fixtures
    make_campaign,
    make_trace,
    one_click_path,
    subscribed,
    token_for,
)
from tests.lib.dns_zone import DnsZone
from tests.outgoing import smtp_peer
from tests.outgoing.test_sender import Clock, make_sender, make_server
from tests.outgoing.test_sender import _close_senders as _close_senders  # noqa: F401

sink = smtp_peer.sink

UNSUBSCRIBED = "The recipient unsubscribed after this mail was queued."


class DueClock(Clock):
    """The sender's clock, a few seconds after the mails were queued (set just before a pass:
    fixtures may take longer than that on a busy machine)."""

    def due(self) -> DueClock:
        self.now = timezone.now() + timedelta(seconds=5)
        return self


@pytest.fixture
def clock():
    return DueClock()


def queue_campaign_mail(campaign, partner, *, rendered: bool = False
                        ) -> tuple[OutgoingMail, CampaignRecipient]:
    """What the campaign engine queues for one recipient: a bulk mail with the RFC 8058
    headers (`rendered`: the campaign renderer's own), and the trace pointing at it."""
    trace = make_trace(campaign, partner)
    token = token_for(trace)
    headers = {"List-Unsubscribe": f"<{links.one_click_url(token)}>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    if rendered:
        renderer = CampaignRenderer(campaign)
        headers = renderer.headers(renderer.context(trace))
    mail = outgoing.enqueue(
        company=campaign.company, to=[partner], email_from=campaign.email_from,
        subject=campaign.subject, html="<p>Spring sale!</p>", text="Spring sale!",
        purpose="bulk", headers=headers)
    CampaignRecipient.objects.filter(pk=trace.pk).update(mail=mail)
    trace.mail = mail
    return mail, trace


@pytest.fixture
def campaign(acme, newsletter, subscribed):  # noqa: F811
    return make_campaign(acme, [newsletter])


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def test_unsubscribed_after_queueing_the_mail_is_not_sent_and_says_why(
        acme, campaign, customer, sink, clock, client_for, mia):
    make_server(acme, sink)
    mail, trace = queue_campaign_mail(campaign, customer)
    other_mail, _ = queue_campaign_mail(campaign, _partner(campaign, "bea@client.example"))
    Client().post(one_click_path(token_for(trace)), {"List-Unsubscribe": "One-Click"})

    make_sender(clock.due()).run_once()

    mail = fresh(mail)
    assert mail.state == OutgoingMail.State.CANCELLED and mail.failure_reason == UNSUBSCRIBED
    assert not mail.lease_owner and mail.attempt_count == 0
    trace = fresh(trace)
    assert trace.status == CampaignRecipient.Status.CANCELLED and trace.reason == UNSUBSCRIBED
    # the other recipient's mail went out; nothing reached the unsubscribed address
    assert fresh(other_mail).state == OutgoingMail.State.SENT
    assert [m.rcpt_tos for m in sink.messages] == [["bea@client.example"]]
    # the email hub says why, in those words
    page = client_for(mia).get(reverse("admin:outgoing_outgoingmail_change", args=[mail.pk]))
    assert UNSUBSCRIBED in page.content.decode()


def _partner(campaign, address):
    """Another person on the campaign's list."""
    partner = Partner.objects.create(company=campaign.company, name=address.split("@")[0],
                                     email=address)
    services.subscribe(campaign.lists.first(), partner, actor=None, consent_how="test")
    return partner


@pytest.mark.parametrize("how", ["suppressed", "blacklisted", "campaign_cancelled"])
def test_suppressed_blacklisted_or_cancelled_after_queueing_is_not_sent(
        acme, campaign, customer, sink, clock, how):
    make_server(acme, sink)
    mail, trace = queue_campaign_mail(campaign, customer)
    if how == "suppressed":
        suppression.suppress(acme, customer.email, "manual", actor=None)
    elif how == "blacklisted":
        customer.is_blacklisted = True
        customer.save(update_fields=["is_blacklisted"])
    else:
        Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.CANCELLED)

    make_sender(clock.due()).run_once()

    mail = fresh(mail)
    expected = {"suppressed": send_checks.SUPPRESSED, "blacklisted": send_checks.BLACKLISTED,
                "campaign_cancelled": send_checks.CANCELLED}[how]
    assert mail.state == OutgoingMail.State.CANCELLED and mail.failure_reason == expected
    assert fresh(trace).status == CampaignRecipient.Status.CANCELLED
    assert not sink.messages


def test_a_paused_campaigns_mail_waits_without_an_attempt_then_goes(
        acme, campaign, customer, sink, clock):
    make_server(acme, sink)
    mail, trace = queue_campaign_mail(campaign, customer)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.PAUSED)
    sender = make_sender(clock.due())

    sender.run_once()

    mail = fresh(mail)
    assert mail.state == OutgoingMail.State.DEFERRED and mail.attempt_count == 0
    assert mail.failure_reason == send_checks.PAUSED
    assert mail.next_attempt_at == clock.now + timedelta(minutes=5)
    assert not sink.messages and fresh(trace).status == CampaignRecipient.Status.QUEUED

    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SENDING)
    clock.advance(minutes=6)
    sender.run_once()
    assert fresh(mail).state == OutgoingMail.State.SENT and len(sink.messages) == 1


def test_a_send_check_that_raises_never_blocks_sending(acme, campaign, customer, sink, clock,
                                                       monkeypatch):
    def broken(mails):
        raise RuntimeError("bug in a check")

    monkeypatch.setattr(hooks, "_SEND_CHECKS", [broken, *hooks._SEND_CHECKS])
    make_server(acme, sink)
    mail, _ = queue_campaign_mail(campaign, customer)
    make_sender(clock.due()).run_once()
    assert fresh(mail).state == OutgoingMail.State.SENT and len(sink.messages) == 1


def test_the_check_costs_one_query_for_a_whole_batch(acme, campaign, customer,
                                                     django_assert_max_num_queries):
    mails = []
    for n in range(20):
        mail, _ = queue_campaign_mail(campaign, _partner(campaign, f"p{n}@client.example"))
        mails.append(mail)
    suppression.suppress(acme, "p3@client.example", "manual", actor=None)
    with django_assert_max_num_queries(2):  # one SELECT; one UPDATE of the cancelled traces
        verdicts = send_checks.check(mails)
    assert verdicts == {mails[3].pk: ("cancel", send_checks.SUPPRESSED)}
    plain = outgoing.enqueue(company=acme, to=["x@client.example"], email_from="a@acme.example",
                             subject="Not a campaign mail", text="hello")
    assert send_checks.check([plain]) == {}


def test_dkim_signature_covers_both_list_unsubscribe_headers(acme, campaign, customer, sink,
                                                             clock):
    import dkim

    from mailroom.lib.dkim import generate_key
    from mailroom.routing.models import AliasDomain
    from mailroom.routing.services import clear_cache

    private_pem, txt = generate_key(1024)
    DkimKey.objects.create(company=acme, domain="acme.example", selector="news",
                           private_key=private_pem.decode(), dns_txt=txt)
    AliasDomain.objects.create(company=acme, name="acme.example")  # receives the mailto
    clear_cache()
    make_server(acme, sink)
    mail, trace = queue_campaign_mail(campaign, customer, rendered=True)
    clear_cache()
    make_sender(clock.due()).run_once()
    assert fresh(mail).state == OutgoingMail.State.SENT
    [received] = sink.messages

    parsed = email.message_from_bytes(received.data)
    token = token_for(trace)
    assert " ".join(parsed["List-Unsubscribe"].split()) == (
        f"<{links.one_click_url(token)}>, "
        f"<mailto:unsubscribe+{token}@acme.example?subject=unsubscribe>")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    tags = dict(part.strip().split("=", 1) for part in
                "".join(parsed["DKIM-Signature"].split()).split(";") if "=" in part)
    signed = tags["h"].lower().split(":")
    assert "list-unsubscribe" in signed and "list-unsubscribe-post" in signed

    with DnsZone({"news._domainkey.acme.example": [("TXT", txt)]}) as zone:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], zone.port

        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            answer = resolver.resolve(name.rstrip("."), "TXT", lifetime=timeout)
            return b"".join(b"".join(r.strings) for r in answer)

        assert dkim.verify(received.data, dnsfunc=dnsfunc)
        # the one-click target cannot be swapped without breaking the signature
        tampered = received.data.replace(b"/one-click", b"/evil-click", 1)
        assert not dkim.verify(tampered, dnsfunc=dnsfunc)
        # nor the mailto address
        tampered = received.data.replace(b"mailto:unsubscribe+", b"mailto:evil+", 1)
        assert tampered != received.data and not dkim.verify(tampered, dnsfunc=dnsfunc)
        assert ("news._domainkey.acme.example", "TXT") in zone.queries
