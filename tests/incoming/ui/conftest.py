"""Fixtures of the incoming screens: a logged-in client, an alias domain, stored messages."""

from __future__ import annotations

import pytest

RAW = (b"From: Ada <ada@client.example>\r\nTo: support@acme.test\r\n"
       b"Subject: Printer on fire\r\nMessage-ID: <fire-1@client.example>\r\n"
       b"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nHelp \xc3\xa9\r\n")


@pytest.fixture
def domain(acme):
    from mailroom.routing import services
    from mailroom.routing.models import AliasDomain

    domain = services.save_alias_domain(AliasDomain(company=acme, name="acme.test"), actor=None)
    services.ensure_default_aliases(domain)
    return domain


@pytest.fixture
def globex_domain(globex):
    from mailroom.routing import services
    from mailroom.routing.models import AliasDomain

    return services.save_alias_domain(AliasDomain(company=globex, name="globex.test"),
                                      actor=None)


def stored_mail(company, raw: bytes = RAW, *, state: str = "received", **fields):
    from mailroom.incoming import services
    from mailroom.incoming.models import InboundMail

    mail = services.accept(raw, company=company, source="api",
                           envelope_from="ada@client.example",
                           envelope_to=["support@acme.test"])
    InboundMail.objects.filter(pk=mail.pk).update(state=state, **fields)
    mail.refresh_from_db()
    return mail


@pytest.fixture
def quarantined(acme):
    return stored_mail(acme, state="quarantined", subject="Printer on fire",
                       from_address="ada@client.example",
                       message_id="<fire-1@client.example>",
                       error="ValueError: the parser tripped on line 3",
                       reason="Quarantined: ValueError",
                       trace=[{"rule": "duplicate", "note": "Passed: nothing for this rule."},
                              {"rule": "alias", "note": "boom", "decision": "quarantined"}])
