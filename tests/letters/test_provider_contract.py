"""The contract every postal provider keeps, run against each one (the local print room now;
Pingen and Lob join with their loopback fakes): submit, the same idempotency key twice gives
one letter, cancel before printing, refuse to cancel after, a price, a connection test."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mailroom.letters import services
from mailroom.letters.models import Letter, PostalProvider
from mailroom.letters.providers import ProviderError, provider_for

KINDS = ["local"]


@pytest.fixture(params=KINDS)
def provider_row(request, acme):
    return PostalProvider.objects.create(company=acme, name=f"Contract {request.param}",
                                         kind=request.param,
                                         settings={"price_per_letter": "0.85",
                                                   "price_per_sheet": "0.10"})


@pytest.fixture
def queued(bob, invoice, provider_row):
    return services.send_by_post(invoice, actor=bob,
                                 options=services.LetterOptions(provider=provider_row))


def _pdf(letter: Letter) -> bytes:
    from mailroom.core.blobs import attachment_path

    return attachment_path(letter.pdf_sha256).read_bytes()


def test_submit_twice_with_one_key_is_one_letter(queued, provider_row):
    provider = provider_for(provider_row)
    first = provider.submit(queued, _pdf(queued))
    again = provider.submit(queued, _pdf(queued))
    assert first.provider_id and again.provider_id == first.provider_id
    assert first.state == "submitted"
    if provider_row.kind == "local":
        queued.refresh_from_db()
        assert queued.batch.letters.count() == 1 and queued.batch.letter_count == 1


def test_cancel_before_printing_and_refuse_after(bob, mia, invoice, queued, provider_row):
    provider = provider_for(provider_row)
    provider.submit(queued, _pdf(queued))
    queued.refresh_from_db()
    provider.cancel(queued)  # still allowed
    queued.refresh_from_db()
    assert queued.batch_id is None

    other = services.send_by_post(invoice, actor=bob,
                                  options=services.LetterOptions(provider=provider_row))
    provider.submit(other, _pdf(other))
    other.refresh_from_db()
    Letter.objects.filter(pk=other.pk).update(state="submitted")
    services.mark_batch_printed(other.batch, actor=mia)
    other.refresh_from_db()
    with pytest.raises(ProviderError) as refused:
        provider.cancel(other)
    assert refused.value.message


def test_price_and_connection_test_answer_in_plain_words(queued, provider_row, mia):
    price, currency = provider_for(provider_row).price(queued)
    assert isinstance(price, Decimal) and price > 0 and currency == "EUR"
    ok, message = services.test_provider(provider_row, actor=mia)
    assert ok and message
