"""Activities fixtures: an alias domain gives acme its notification sender."""

from __future__ import annotations

import datetime

import pytest

from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import AliasDomain


@pytest.fixture
def domain(acme):
    return AliasDomain.objects.create(company=acme, name="acme.example")


def _sendable(user):
    """The shared users' ".test" addresses are refused by the outbox: give them real ones."""
    user.email = f"{user.username}@acme.example"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def alice(alice):
    return _sendable(alice)


@pytest.fixture
def bob(bob):
    return _sendable(bob)


@pytest.fixture
def dana(dana):
    return _sendable(dana)


def mails_to(address: str) -> list[OutgoingMail]:
    return [m for m in OutgoingMail.objects.order_by("pk")
            if address in m.recipients.values_list("address", flat=True)]


TODAY = datetime.date(2026, 12, 7)
# 09:00 in Paris: past the reminder hour for users in Europe/Paris and UTC
MORNING = datetime.datetime(2026, 12, 7, 8, 0, tzinfo=datetime.UTC)
