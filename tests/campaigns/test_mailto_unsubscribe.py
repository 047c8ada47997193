"""Unsubscribe by email (RFC 2369's mailto List-Unsubscribe) end to end: a queued campaign
mail offers `<https one-click>, <mailto:unsubscribe+<token>@<sender domain>?subject=…>`
when the gateway receives that domain; a mail to that address, sent over SMTP to the running
gateway and routed by the router, unsubscribes its recipient as the one-click POST does —
once, logged on the inbound mail, no record, no reply — and a bad token changes nothing."""

from __future__ import annotations

import email
import re
import smtplib
from email.utils import formatdate

import pytest

from mailroom.campaigns import links, mail_unsubscribe, tokens
from mailroom.campaigns.engine import step
from mailroom.campaigns.engine.render import CampaignRenderer
from mailroom.campaigns.models import (
    CampaignEvent,
    CampaignRecipient,
    Subscription,
    Suppression,
)
from mailroom.incoming.gateway import start_gateway
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending
from mailroom.lib import verp
from mailroom.outgoing.compose import Composer
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing import services as routing
from tests.campaigns import test_unsubscribe as unsubscribe_tests
from tests.campaigns.test_engine import campaign, make_list, person, subscribe, traces
from tests.campaigns.test_unsubscribe import make_campaign, make_trace, token_for
from tests.incoming import conftest as incoming

subscribed = unsubscribe_tests.subscribed  # a fixture: the customer on the newsletter
zone = incoming.zone  # DNS from a loopback zone, never the network

D = InboundMail.Decision
MAILTO = re.compile(r"<mailto:(unsubscribe\+([a-z2-7]+))@([a-z0-9.-]+)\?subject=unsubscribe>")


@pytest.fixture
def receiving(acme, zone):
    """The gateway receives acme.example, the campaigns' sender domain."""
    from mailroom.routing.models import AliasDomain

    domain = AliasDomain.objects.create(company=acme, name="acme.example")
    routing.ensure_default_aliases(domain)
    routing.clear_cache()
    yield domain
    routing.clear_cache()


def list_unsubscribe(value: str) -> tuple[str, str]:
    https, mailto = [part.strip() for part in " ".join(value.split()).split(",")]
    return https, mailto


# --- the header ------------------------------------------------------------------------------

def queued_mail(acme) -> tuple[OutgoingMail, CampaignRecipient]:
    news = make_list(acme, "News")
    subscribe(news, person(acme, "ada@client.example", "Ada Lovelace"))
    sent = campaign(acme, lists=[news])
    assert step.campaigns_step("w1") is True
    trace = traces(sent)["ada@client.example"]
    return OutgoingMail.objects.get(pk=trace.mail_id), trace


def composed(mail: OutgoingMail) -> email.message.Message:
    composer = Composer()
    composer.load([mail], [mail.company_id])
    rows = list(mail.recipients.all())
    return email.message_from_bytes(composer.build(mail, rows, rows).raw)


def test_a_queued_campaign_mail_offers_https_first_then_mailto(acme, receiving, settings):
    settings.BASE_URL = "https://mail.acme.example"
    mail, trace = queued_mail(acme)

    parsed = composed(mail)
    https, mailto = list_unsubscribe(parsed["List-Unsubscribe"])

    token = token_for(trace)
    assert https == f"<{links.one_click_url(token)}>"
    assert https.startswith("<https://mail.acme.example/l/u/")
    found = MAILTO.fullmatch(mailto)
    assert found, mailto
    local_part, mail_token, domain = found.groups()
    assert domain == "acme.example"  # the sender's domain, where the VERP envelope points
    assert mail_token == token and tokens.read(tokens.UNSUBSCRIBE, mail_token) == (acme.pk,
                                                                                   trace.pk)
    assert len(local_part) <= verp.MAX_LOCAL_PART
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # the envelope's bounce address and the mailto share the domain
    envelope = Composer()
    envelope.load([mail], [acme.pk])
    rows = list(mail.recipients.all())
    [bounce] = envelope.build(mail, rows, rows).envelopes.values()
    assert bounce.startswith("bounce+") and bounce.endswith("@acme.example")


def test_no_mailto_when_the_gateway_does_not_receive_the_senders_domain(acme, globex):
    from mailroom.routing.models import AliasDomain

    # another company's domain does not count either
    AliasDomain.objects.create(company=globex, name="acme.example")
    routing.clear_cache()
    try:
        mail, trace = queued_mail(acme)
        assert composed(mail)["List-Unsubscribe"] == f"<{links.one_click_url(token_for(trace))}>"
    finally:
        routing.clear_cache()


def test_the_header_is_checked_once_and_built_from_a_prefix(acme, receiving):
    news = make_list(acme, "News")
    for n in range(3):
        subscribe(news, person(acme, f"p{n}@client.example"))
    sent = campaign(acme, lists=[news])
    from mailroom.campaigns.engine import audience

    audience.resolve(sent)
    renderer = CampaignRenderer(sent)
    rows = traces(sent)
    first = renderer.render(rows["p0@client.example"])
    assert renderer._headers_checked
    mailtos = {MAILTO.search(renderer.render(r).headers["List-Unsubscribe"])[2]
               for r in rows.values()}
    assert len(mailtos) == 3  # each recipient has their own token
    assert first.headers["List-Unsubscribe"].startswith("<http")  # one-click first


# --- the token and the address ---------------------------------------------------------------

def test_the_token_round_trips_through_an_address_of_any_case(acme, receiving):
    token = links.unsubscribe_token(acme.pk, 4321)
    address = mail_unsubscribe.mailto_url(token, "acme.example")[len("mailto:"):].split("?")[0]

    for spelling in (address, address.upper(), address.title()):
        target = routing.resolve(spelling)
        assert target.kind == "command" and target.company_id == acme.pk
        prefix, read = target.command
        assert prefix == "unsubscribe"
        assert tokens.read(tokens.UNSUBSCRIBE, read) == (acme.pk, 4321)
    # a token for another purpose does not pass as an unsubscribe token
    assert tokens.read(tokens.UNSUBSCRIBE, tokens.make(tokens.TRACK, acme.pk, 4321)) is None
    # the longest possible token still fits RFC 5321's 64-character local part
    longest = links.unsubscribe_token(2**63 - 1, 2**63 - 1)
    assert len(f"{mail_unsubscribe.PREFIX}+{longest}") <= verp.MAX_LOCAL_PART
    # plain unsubscribe@ (no token) is no command address
    assert getattr(routing.resolve("unsubscribe@acme.example"), "kind", None) != "command"


# --- mail to the address, through the gateway and the router --------------------------------

def request(to: str, n: int = 1, sender: str = "ada@client.example") -> bytes:
    return (f"From: Ada <{sender}>\r\nTo: <{to}>\r\nSubject: unsubscribe\r\n"
            f"Date: {formatdate()}\r\nMessage-ID: <unsub-{n}@client.example>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"This message was automatically generated by Gmail.\r\n").encode()


def send_over_smtp(*messages: tuple[str, bytes]) -> None:
    with start_gateway() as gateway:
        client = smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10)
        try:
            client.ehlo("mail-sor-f41.google.com")
            for to, raw in messages:
                assert client.sendmail("ada@client.example", [to], raw) == {}
        finally:
            client.quit()
    for _ in range(10):
        if route_pending("test") == 0:
            break


def address_for(trace) -> str:
    return f"unsubscribe+{token_for(trace)}@acme.example"


@pytest.mark.django_db(transaction=True)
def test_mail_to_the_mailto_address_unsubscribes_like_one_click(acme, newsletter, customer,
                                                                 subscribed, receiving):
    trace = make_trace(make_campaign(acme, [newsletter]), customer)
    outgoing_before = OutgoingMail.objects.count()
    # an MTA that uppercases the local part changes nothing
    to = address_for(trace)
    shouted = to.split("@")[0].upper() + "@acme.example"

    send_over_smtp((shouted, request(shouted, 1)))

    mail = InboundMail.objects.get()
    assert mail.state == InboundMail.State.DONE
    assert (mail.decision, mail.rule) == (D.BOUNCE, "command"), mail.reason
    assert mail.reason == ("An unsubscribe request by email from ada@client.example for "
                           "ada@client.example, campaign “Spring sale 2026”: unsubscribed "
                           "from “Newsletter”.")
    assert mail.content_type is None and mail.object_id is None  # no record
    assert mail.bounce_reply is None and mail.is_automatic  # never answered
    assert OutgoingMail.objects.count() == outgoing_before
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.UNSUBSCRIBED and subscribed.unsubscribed_at
    assert ("unsubscribe by email (ada@client.example) from campaign “Spring sale 2026”"
            in subscribed.consent_how)
    trace.refresh_from_db()
    first = trace.unsubscribed_at
    assert first is not None
    [event] = CampaignEvent.objects.filter(recipient=trace)
    assert event.kind == CampaignEvent.Kind.UNSUBSCRIBED and "by email" in event.detail

    # the same request again (a new message, and the very same one) changes nothing
    send_over_smtp((to, request(to, 2)), (to, request(to, 1)))

    again, repeated = InboundMail.objects.exclude(pk=mail.pk).order_by("pk")
    assert (again.decision, again.rule) == (D.BOUNCE, "command")
    assert again.reason.endswith("already unsubscribed; nothing changed.")
    assert repeated.decision == D.DUPLICATE
    trace.refresh_from_db()
    assert trace.unsubscribed_at == first
    assert CampaignEvent.objects.filter(recipient=trace).count() == 1
    assert OutgoingMail.objects.count() == outgoing_before


@pytest.mark.django_db(transaction=True)
def test_a_tampered_or_foreign_token_is_dropped_and_changes_nothing(acme, globex, newsletter,
                                                                    customer, subscribed,
                                                                    receiving):
    trace = make_trace(make_campaign(acme, [newsletter]), customer)
    token = token_for(trace)
    tampered = token[:-1] + ("a" if token[-1] != "a" else "b")
    globex_token = links.unsubscribe_token(globex.pk, trace.pk)  # another tenant's signature
    bad = [f"unsubscribe+{t}@acme.example" for t in (tampered, globex_token, "hello")]

    send_over_smtp(*((to, request(to, n)) for n, to in enumerate(bad)))

    mails = list(InboundMail.objects.order_by("pk"))
    assert len(mails) == 3  # accepted at RCPT: the router says why they change nothing
    for mail in mails:
        assert (mail.decision, mail.rule) == (D.DROPPED, "command")
        assert mail.reason == mail_unsubscribe.INVALID
        assert "an unsubscribe request with an invalid token" in mail.reason.lower()
        assert mail.content_type is None and mail.bounce_reply is None
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.SUBSCRIBED
    trace.refresh_from_db()
    assert trace.unsubscribed_at is None
    assert not CampaignEvent.objects.exists() and not Suppression.objects.exists()


def test_a_segment_campaign_puts_the_address_on_the_suppression_list(acme, customer,
                                                                     receiving):
    from mailroom.incoming.router import route
    from mailroom.incoming.services import accept

    trace = make_trace(make_campaign(acme, []), customer)  # sent to a segment: no list
    to = address_for(trace)
    mail = accept(request(to), company=acme, source="smtp", envelope_from="ada@client.example",
                  envelope_to=[to])
    route(mail)

    mail.refresh_from_db()
    assert mail.decision == D.BOUNCE and "suppression list" in mail.reason
    row = Suppression.objects.get(company=acme, email="ada@client.example")
    assert row.reason == Suppression.Reason.UNSUBSCRIBED and "by email" in row.note


def test_mail_to_the_address_and_an_alias_runs_the_command_and_still_files_the_mail(
        acme, newsletter, customer, subscribed, receiving):
    from mailroom.incoming.router import route
    from mailroom.incoming.services import accept

    trace = make_trace(make_campaign(acme, [newsletter]), customer)
    to = [address_for(trace), "sales@acme.example"]
    mail = accept(request(to[1]), company=acme, source="smtp",
                  envelope_from="ada@client.example", envelope_to=to)
    route(mail)

    mail.refresh_from_db()
    assert mail.decision == D.CREATED  # a lead for sales@
    command = next(step for step in mail.trace if step["rule"] == "command")
    assert "unsubscribed from “Newsletter”" in command["note"]
    subscribed.refresh_from_db()
    assert subscribed.status == Subscription.Status.UNSUBSCRIBED
