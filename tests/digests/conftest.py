"""Digests fixtures: acme gets a sender domain, users get deliverable addresses, and a test
KPI registry entry counts leads (the business apps register the real ones)."""

from __future__ import annotations

import datetime

import pytest

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


@pytest.fixture
def mia(mia):
    return _sendable(mia)


def make_digest(company, *, actor=None, recipients=(), kpis=("crm.new_leads",), **fields):
    from mailroom.digests.models import Digest
    from mailroom.digests.services import save_digest

    digest = Digest(company=company, name=fields.pop("name", "Weekly pulse"), kpis=list(kpis),
                    **fields)
    return save_digest(digest, actor=actor, recipients=list(recipients))


@pytest.fixture
def utc():
    return datetime.UTC
