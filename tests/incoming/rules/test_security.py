"""Who may write, on identities Mailroom verified itself against a DNS zone on loopback:
a forged From of a follower is not that follower."""

from __future__ import annotations

import functools

import pytest

from mailroom.chatter.models import Follower, Message
from mailroom.incoming.models import InboundMail
from mailroom.lib import dkim
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import Alias, AllowedSender
from tests.incoming.conftest import message

pytestmark = pytest.mark.django_db
D = InboundMail.Decision


@functools.cache
def client_key() -> bytes:
    return dkim.generate_key(2048)[0]


@pytest.fixture
def client_dns(zone):
    """client.example: SPF allows only 192.0.2.1, DMARC p=reject, a DKIM key s1."""
    zone.add("client.example", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    zone.add("_dmarc.client.example", "TXT", "v=DMARC1; p=reject")
    zone.add("s1._domainkey.client.example", "TXT", dkim.dns_txt_value(client_key()))
    return zone


@pytest.fixture
def deal_alias(domain, lead, customer):
    """deal@acme.test appends to the lead; only its followers may write."""
    from mailroom.chatter.services import follow
    from mailroom.routing.services import clear_cache

    follow(lead, customer, actor=None)
    from django.contrib.contenttypes.models import ContentType

    alias = Alias.objects.create(
        company=lead.company, domain=domain, local_part="deal", record_type="crm.lead",
        thread_content_type=ContentType.objects.get_for_model(lead), thread_object_id=lead.pk,
        contact_policy=Alias.ContactPolicy.FOLLOWERS)
    clear_cache()
    return alias


def signed(raw: str) -> bytes:
    return dkim.DkimSigner("client.example", "s1", client_key()).sign(raw.encode())


def test_forged_follower_fails_dmarc_and_is_not_posted_nor_answered(
        deliver, deal_alias, client_dns, lead):
    forged = message(sender="Ada Lovelace <ada@client.example>", to="deal@acme.test",
                     subject="Please wire the money to my new account")
    mail = deliver(forged, to=["deal@acme.test"], ip="127.0.0.2", sender="ada@client.example")
    assert mail.decision == D.REFUSED, mail.reason
    assert "forged" in mail.reason and "dmarc=fail" in mail.auth_summary
    assert not Message.objects.filter(subject__startswith="Please wire").exists()
    assert not OutgoingMail.objects.exists()  # no backscatter to the real Ada


def test_the_real_follower_with_a_valid_dkim_signature_is_posted_as_herself(
        deliver, deal_alias, client_dns, lead, customer):
    raw = signed(message(sender="Ada Lovelace <ada@client.example>", to="deal@acme.test",
                         subject="Signed and sealed"))
    mail = deliver(raw, to=["deal@acme.test"], ip="127.0.0.2", sender="ada@client.example")
    assert (mail.decision, mail.record) == (D.POSTED, lead), mail.reason
    posted = Message.objects.get(pk=mail.chatter_message_id)
    assert posted.author_partner == customer
    assert "dkim=pass" in mail.auth_summary and "dmarc=pass" in mail.auth_summary


def test_spf_pass_from_the_allowed_ip_also_proves_the_sender(deliver, deal_alias, client_dns,
                                                             lead):
    mail = deliver(message(sender="ada@client.example", to="deal@acme.test"),
                   to=["deal@acme.test"], ip="192.0.2.1", sender="ada@client.example")
    assert mail.decision == D.POSTED, mail.reason


def test_a_verified_stranger_is_refused_with_one_reply(deliver, deal_alias, client_dns, lead):
    Follower.objects.all().delete()
    raw = signed(message(sender="ada@client.example", to="deal@acme.test"))
    mail = deliver(raw, to=["deal@acme.test"], ip="127.0.0.2", sender="ada@client.example")
    assert mail.decision == D.REFUSED and "followers" in mail.reason
    assert OutgoingMail.objects.count() == 1


def test_allowlist_only_alias_takes_only_verified_allowed_senders(deliver, domain, client_dns,
                                                                  acme):
    from mailroom.routing.services import clear_cache

    sales = Alias.objects.get(domain=domain, local_part="sales")
    sales.allowlist_only = True
    sales.save()
    AllowedSender.objects.create(company=acme, alias=sales, pattern="client.example")
    clear_cache()
    stranger = deliver(message(sender="x@elsewhere.example"), sender="x@elsewhere.example")
    assert stranger.decision == D.REFUSED and "allowed senders" in stranger.reason
    forged = deliver(message(sender="ada@client.example", subject="forged"), ip="127.0.0.2",
                     sender="ada@client.example")
    assert forged.decision == D.REFUSED and "did not prove" in forged.reason
    real = deliver(signed(message(sender="ada@client.example", subject="real")),
                   ip="127.0.0.2", sender="ada@client.example")
    assert real.decision == D.CREATED, real.reason
