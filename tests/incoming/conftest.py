"""Router fixtures: acme receives on acme.test with sales@ (leads) and support@ (tickets);
DNS answers from a zone on loopback (tests/lib/dns_zone.py), never from the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lib.dns_zone import DnsZone

EMAIL_FIXTURES = Path(__file__).parents[1] / "fixtures" / "email"


def email_fixture(name: str) -> bytes:
    """A real message from tests/fixtures/email/, byte for byte (CRLF line ends)."""
    return (EMAIL_FIXTURES / name).read_bytes()


@pytest.fixture
def zone(settings):
    with DnsZone({}) as dns:
        host, port = dns.config.nameservers[0], dns.config.port
        settings.MAILROOM_DNS_SERVERS = f"{host}:{port}"
        settings.MAILROOM_DNS_TIMEOUT = 2.0
        yield dns


@pytest.fixture
def domain(acme, zone):
    from mailroom.routing.models import AliasDomain
    from mailroom.routing.services import clear_cache, ensure_default_aliases

    domain = AliasDomain.objects.create(company=acme, name="acme.test")
    ensure_default_aliases(domain)
    clear_cache()
    yield domain
    clear_cache()


@pytest.fixture
def deliver(acme, domain):
    """deliver(raw_or_text, to=..., sender=..., ip=...) -> the routed InboundMail."""
    from mailroom.incoming.models import InboundMail
    from mailroom.incoming.router import route
    from mailroom.incoming.services import accept

    def deliver(message, *, to=("sales@acme.test",), sender="", ip=None, company=None,
                server=None, source="smtp"):
        raw = message.encode() if isinstance(message, str) else message
        mail = accept(raw, company=company or acme, source=source, envelope_from=sender,
                      envelope_to=list(to), remote_ip=ip, server=server)
        route(mail)
        return InboundMail.objects.get(pk=mail.pk)

    return deliver


def message(*, sender="Grace Hopper <grace@navy.example>", to="sales@acme.test",
            subject="Need 40 licences", body="Hello, we would like a quote.",
            message_id=None, headers=(), content_type="text/plain; charset=utf-8") -> str:
    from email.utils import formatdate, make_msgid

    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {formatdate()}",
             f"Message-ID: {message_id or make_msgid(domain='navy.example')}", *headers,
             "MIME-Version: 1.0", f"Content-Type: {content_type}", "", body, ""]
    return "\r\n".join(lines)


def _sent_from(lead, customer, subject="Your quote"):
    from mailroom.outgoing.services import enqueue

    return enqueue(company=lead.company, email_from="sales@acme.test", to=[customer],
                   subject=subject, text="Here it is.", record=lead)


@pytest.fixture
def domains(acme, globex):
    """acme.test (sales, support) and globex.test (sales; any address) for the gateway."""
    from mailroom.routing.models import Alias, AliasDomain
    from mailroom.routing.services import clear_cache

    acme_domain = AliasDomain.objects.create(company=acme, name="acme.test")
    Alias.objects.create(company=acme, domain=acme_domain, local_part="sales",
                         record_type="crm.lead")
    Alias.objects.create(company=acme, domain=acme_domain, local_part="support",
                         record_type="helpdesk.ticket")
    globex_domain = AliasDomain.objects.create(company=globex, name="globex.test",
                                               accept_unknown=True)
    Alias.objects.create(company=globex, domain=globex_domain, local_part="sales",
                         record_type="crm.lead")
    clear_cache()
    yield {"acme": acme_domain, "globex": globex_domain}
    clear_cache()
