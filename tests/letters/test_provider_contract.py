"""The contract every postal provider keeps, run against each one (the local print room now;
Pingen and Lob join with their loopback fakes): submit, the same idempotency key twice gives
one letter, cancel before printing, refuse to cancel after, a price, a connection test."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from mailroom.letters import lifecycle, provider_services, services, tasks
from mailroom.letters.models import Letter, PostalProvider
from mailroom.letters.providers import (
    ProviderError,
    SubmitResult,
    provider_for,
    register_provider,
)
from mailroom.letters.providers.base import StatusEvent
from mailroom.letters.providers.local import LocalPrintRoom
from tests.letters.fakes.lob import (  # noqa: F401 - fixtures
    lob_driver,
    lob_fake,
    lob_provider_fields,
    lob_us,
)
from tests.letters.fakes.pingen import (  # noqa: F401 - fixtures
    pingen_driver,
    pingen_fake,
    pingen_provider_fields,
)

KINDS = ["local", "pingen", "lob"]


@pytest.fixture(params=KINDS)
def provider_row(request, acme):
    # a kind other than the print room talks to its fake on loopback: `<kind>_provider_fields`
    # gives the settings and credentials that point it there
    fields = ({} if request.param == "local"
              else request.getfixturevalue(f"{request.param}_provider_fields"))
    return PostalProvider.objects.create(company=acme, name=f"Contract {request.param}",
                                         kind=request.param,
                                         settings={"price_per_letter": "0.85",
                                                   "price_per_sheet": "0.10",
                                                   **fields.get("settings", {})},
                                         credentials=fields.get("credentials", ""))


def _submitted(provider, letter: Letter):
    """Submit as the worker does: the provider's answer is written down on the letter."""
    result = provider.submit(letter, _pdf(letter))
    Letter.objects.filter(pk=letter.pk).update(state="submitted",
                                               provider_ref=result.provider_id)
    letter.refresh_from_db()
    return result


def _printed(request, provider_row, letter: Letter, manager) -> None:
    """Move a submitted letter on to printed at the provider (the print room: a person marks
    its batch printed; elsewhere the kind's fake is told, through `<kind>_driver`)."""
    if provider_row.kind == "local":
        lifecycle.mark_batch_printed(letter.batch, actor=manager)
    else:
        request.getfixturevalue(f"{provider_row.kind}_driver").printed(letter)


@pytest.fixture
def queued(bob, invoice, provider_row):
    return services.send_by_post(invoice, actor=bob,
                                 options=services.LetterOptions(provider=provider_row))


def _pdf(letter: Letter) -> bytes:
    from mailroom.core.blobs import attachment_path

    return attachment_path(letter.pdf_sha256).read_bytes()


def test_submit_twice_with_one_key_is_one_letter(request, queued, provider_row):
    provider = provider_for(provider_row)
    first = provider.submit(queued, _pdf(queued))
    again = provider.submit(queued, _pdf(queued))
    assert first.provider_id and again.provider_id == first.provider_id
    assert first.state == "submitted"
    if provider_row.kind == "local":
        queued.refresh_from_db()
        assert queued.batch.letters.count() == 1 and queued.batch.letter_count == 1
    else:  # the service's fake counts the letters it really made
        assert request.getfixturevalue(f"{provider_row.kind}_fake").created == 1


def test_cancel_before_printing_and_refuse_after(request, bob, mia, invoice, queued,
                                                 provider_row):
    provider = provider_for(provider_row)
    _submitted(provider, queued)
    provider.cancel(queued)  # still allowed
    queued.refresh_from_db()
    if provider_row.kind == "local":
        assert queued.batch_id is None

    other = services.send_by_post(invoice, actor=bob,
                                  options=services.LetterOptions(provider=provider_row))
    _submitted(provider, other)
    _printed(request, provider_row, other, mia)
    other.refresh_from_db()
    with pytest.raises(ProviderError) as refused:
        provider.cancel(other)
    assert refused.value.message


def test_price_and_connection_test_answer_in_plain_words(request, queued, provider_row, mia):
    price, currency = provider_for(provider_row).price(queued)
    # the print room counts in the company's currency; a service in its own (its fake says)
    expected = ("EUR" if provider_row.kind == "local"
                else request.getfixturevalue(f"{provider_row.kind}_fake").currency)
    assert isinstance(price, Decimal) and price > 0 and currency == expected
    ok, message = provider_services.test_provider(provider_row, actor=mia)
    assert ok and message


class Signed(LocalPrintRoom):
    """A provider whose webhooks are signed with HMAC-SHA256 of the body (the shape Pingen
    and Lob use), keyed by the provider's credentials."""

    kind = "test-signed"

    def submit(self, letter, pdf):
        return SubmitResult(provider_id=f"s-{letter.pk}")

    def parse_webhook(self, request):
        expected = hmac.new(self.row.credentials.encode(), request.body,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
            raise ProviderError("BAD_SIGNATURE", "The webhook signature does not match.")
        body = json.loads(request.body)
        return [(body["letter"], StatusEvent(body["state"], body["message"],
                                             external_id=body["id"]))]


def test_webhooks_are_verified_and_a_replay_changes_nothing(client, acme, bob, invoice):
    register_provider(Signed)
    row = PostalProvider.objects.create(company=acme, name="Signed", kind="test-signed",
                                        credentials="hook-secret")
    letter = services.send_by_post(invoice, actor=bob,
                                   options=services.LetterOptions(provider=row))
    tasks.letters_step("w")
    letter.refresh_from_db()
    body = json.dumps({"letter": letter.provider_ref, "state": "dispatched",
                       "message": "Handed to the post.", "id": "evt-1"}).encode()
    url = reverse("letters:webhook", args=[row.pk])

    def post(signature: str):
        return client.post(url, body, content_type="application/json",
                           HTTP_X_SIGNATURE=signature)

    good = hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert post("0" * 64).status_code == 403  # forged
    letter.refresh_from_db()
    assert letter.state == "submitted"
    assert post(good).json() == {"recorded": 1, "ignored": 0}
    assert post(good).json() == {"recorded": 0, "ignored": 0}  # replayed
    letter.refresh_from_db()
    assert letter.state == "dispatched"
    assert letter.events.filter(external_id="evt-1").count() == 1
