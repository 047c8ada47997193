"""Letters fixtures: a customer with a full postal address, an invoice to post, and Mail
Managers with deliverable addresses (the shared ".test" ones are refused by the outbox)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from mailroom.business.invoicing import services as invoicing
from mailroom.business.invoicing.models import Invoice
from mailroom.routing.models import AliasDomain


@pytest.fixture
def customer(customer):
    customer.street = "12 Rue de la Paix"
    customer.zip = "75002"
    customer.city = "Paris"
    customer.country = "FR"
    customer.save()
    return customer


@pytest.fixture
def invoice(acme, bob, customer):
    draft = invoicing.save_invoice(Invoice(company=acme, partner=customer, user=bob,
                                           invoice_date=datetime.date(2026, 11, 24)), actor=bob)
    draft = invoicing.set_lines(draft, [{"description": "Support", "quantity": 1,
                                         "price_unit": Decimal("80")}], actor=bob)
    return invoicing.post_invoice(draft, actor=bob)


@pytest.fixture
def domain(acme):
    return AliasDomain.objects.create(company=acme, name="acme.example")


@pytest.fixture
def mia(mia):
    mia.email = "mia@acme.example"
    mia.save(update_fields=["email"])
    return mia
