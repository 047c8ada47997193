"""Digests fixtures: acme's sender domain and deliverable addresses (shared with the
activities tests), and `make_digest`, which saves a digest through the service."""

from __future__ import annotations

import pytest

from tests.activities.conftest import _sendable, alice, bob, dana, domain  # noqa: F401


@pytest.fixture
def mia(mia):
    return _sendable(mia)


def make_digest(company, *, actor=None, recipients=(), kpis=("crm.new_leads",), **fields):
    from mailroom.digests.models import Digest
    from mailroom.digests.services import save_digest

    digest = Digest(company=company, name=fields.pop("name", "Weekly pulse"), kpis=list(kpis),
                    **fields)
    return save_digest(digest, actor=actor, recipients=list(recipients))
