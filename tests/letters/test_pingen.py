"""The Pingen provider against the fake Pingen on loopback: what it sends, one token for many
letters, every error answer in plain words with the right retry path, signed webhooks (a forged
one refused, a replay changes nothing), the status poll and cancelling."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from mailroom.core.blobs import attachment_path
from mailroom.letters import lifecycle, provider_services, services, tasks
from mailroom.letters.models import Letter, PostalProvider, WindowStandard
from mailroom.letters.providers import provider_for
from mailroom.letters.providers.pingen_api import PingenConfig
from mailroom.outgoing.models import OutgoingMail
from tests.letters.fakes.pingen import (
    IN_PROGRESS,
    INVALID_ADDRESS,
    NO_CREDIT,
    RATE_LIMITED,
    REJECTED_PDF,
    SERVER_ERROR,
    UNAUTHENTICATED,
    FakePingen,
)

State = Letter.State


CREATE = ("POST", "/letters")  # the request that creates a letter


@pytest.fixture
def fake():
    running = FakePingen().start()
    yield running
    running.stop()


@pytest.fixture
def pingen(acme, fake):
    return PostalProvider.objects.create(company=acme, name="Pingen", kind="pingen",
                                         settings=fake.settings,
                                         credentials=fake.credentials)


def _send(invoice, bob, provider, **options) -> Letter:
    return services.send_by_post(invoice, actor=bob,
                                 options=services.LetterOptions(provider=provider, **options))


def _creates(fake: FakePingen) -> list[dict]:
    """The headers of every request that asked Pingen to create a letter."""
    return [headers for method, path, headers in fake.requests
            if method == "POST" and path.endswith("/letters")]


def _step() -> None:
    tasks.letters_step("w")


def _fresh(letter: Letter) -> Letter:
    letter.refresh_from_db()
    return letter


def test_a_letter_goes_to_pingen_as_asked_with_its_idempotency_key(bob, invoice, pingen,
                                                                   fake):
    letter = _send(invoice, bob, pingen, color=True, duplex=False, postage="priority")
    _step()
    letter = _fresh(letter)
    assert letter.state == State.SUBMITTED
    sent = fake.letters[letter.provider_ref]["attributes"]
    assert sent["address_position"] == "left"  # DIN 5008: the window on the left
    assert (sent["delivery_product"], sent["print_mode"], sent["print_spectrum"]) == (
        "fast", "simplex", "color")
    assert sent["auto_send"] is True
    assert letter.price == Decimal("1.25") and letter.currency == "EUR"
    assert [h["Idempotency-Key"] for h in _creates(fake)] == [str(letter.idempotency_key)]
    uploaded = [u["pdf"] for u in fake.uploads.values() if u["pdf"] is not None]
    assert uploaded == [attachment_path(letter.pdf_sha256).read_bytes()]
    assert letter.events.last().message == "Accepted by Pingen (status: validating)."


def test_postage_and_window_map_to_pingen_products_and_address_position(
        acme, bob, invoice, pingen, fake):
    pingen.window_standard = WindowStandard.SN010130
    pingen.save()
    standard = _send(invoice, bob, pingen)
    registered = _send(invoice, bob, pingen, postage="registered")
    _step()
    products = {letter.pk: fake.letters[_fresh(letter).provider_ref]["attributes"]
                for letter in (standard, registered)}
    assert products[standard.pk]["delivery_product"] == "cheap"
    assert products[registered.pk]["delivery_product"] == "registered"
    assert {p["address_position"] for p in products.values()} == {"right"}  # Swiss window
    assert products[standard.pk]["print_mode"] == "duplex"
    assert products[standard.pk]["print_spectrum"] == "grayscale"


def test_one_token_serves_many_letters_and_the_status_poll(bob, invoice, pingen, fake):
    letters = [_send(invoice, bob, pingen) for _ in range(3)]
    _step()
    assert {_fresh(letter).state for letter in letters} == {State.SUBMITTED}
    tasks.poll_letters()
    assert fake.created == 3
    assert fake.token_requests == 1


def test_submitting_again_with_the_same_key_gives_the_same_letter(bob, invoice, pingen,
                                                                  fake):
    letter = _send(invoice, bob, pingen)
    provider = provider_for(pingen)
    pdf = attachment_path(letter.pdf_sha256).read_bytes()
    first, again = provider.submit(letter, pdf), provider.submit(letter, pdf)
    assert again.provider_id == first.provider_id
    assert "Already accepted" in again.message
    assert (fake.created, fake.create_requests) == (1, 2)


@pytest.mark.parametrize(("answer", "code", "words"), [
    (INVALID_ADDRESS, "INVALID_ADDRESS", "Pingen refused the recipient's address"),
    (REJECTED_PDF, "PDF_REJECTED", "Pingen cannot print the letter's PDF"),
])
def test_a_refused_letter_is_in_error_with_the_reason_and_what_to_do(
        bob, invoice, pingen, fake, answer, code, words):
    letter = _send(invoice, bob, pingen)
    fake.fail_next(answer, on=CREATE)
    _step()
    letter = _fresh(letter)
    assert letter.state == State.ERROR and letter.error_code == code
    assert words in letter.error_message
    assert answer[1]["errors"][0]["detail"] in letter.error_message  # what Pingen said
    assert letter.error_action
    assert fake.created == 0


@pytest.mark.parametrize(("answer", "code", "words"), [
    (RATE_LIMITED, "RATE_LIMITED", "It asks to wait 30 seconds"),
    (SERVER_ERROR, "PINGEN_UNAVAILABLE", "Pingen had a problem of its own (HTTP 503)"),
    (IN_PROGRESS, "IN_PROGRESS", "still handling an earlier attempt"),
])
def test_rate_limits_and_pingen_outages_are_retried_later(bob, invoice, pingen, fake,
                                                          answer, code, words):
    letter = _send(invoice, bob, pingen)
    fake.fail_next(answer, on=CREATE)
    _step()
    letter = _fresh(letter)
    assert letter.state == State.QUEUED and letter.error_code == code
    assert words in letter.error_message
    assert letter.attempts == 1 and letter.next_attempt_at > timezone.now()

    Letter.objects.filter(pk=letter.pk).update(next_attempt_at=timezone.now())
    _step()  # the retry goes through
    letter = _fresh(letter)
    assert letter.state == State.SUBMITTED and letter.error_code == ""
    assert fake.created == 1


def test_pingen_out_of_reach_is_retried_later(bob, invoice, pingen, fake):
    letter = _send(invoice, bob, pingen)
    fake.stop()
    _step()
    letter = _fresh(letter)
    assert letter.state == State.QUEUED and letter.error_code == "NETWORK"
    assert "could not reach Pingen" in letter.error_message


def test_no_credit_pauses_the_provider_and_tells_managers_once(bob, mia, domain, invoice,
                                                               pingen, fake):
    first, second = _send(invoice, bob, pingen), _send(invoice, bob, pingen)
    fake.fail_next(NO_CREDIT, on=CREATE)
    _step()
    _step()  # paused: nothing more is tried
    pingen.refresh_from_db()
    assert pingen.is_paused() and "not enough credit" in pingen.paused_reason
    assert {_fresh(first).state, _fresh(second).state} == {State.QUEUED}
    notices = OutgoingMail.objects.filter(subject__contains="Pingen is paused")
    assert notices.count() == 1
    assert len(_creates(fake)) == 1  # the second letter waits: not even tried

    provider_services.resume_provider(pingen, actor=mia)  # topped up
    _step()
    assert {_fresh(first).state, _fresh(second).state} == {State.SUBMITTED}
    assert notices.count() == 1


def test_a_letter_pingen_keeps_until_credit_comes_says_so(bob, invoice, pingen, fake):
    fake.initial_status = "awaiting_credits"  # prepaid: Pingen keeps it, posts it once paid
    letter = _send(invoice, bob, pingen)
    _step()
    letter = _fresh(letter)
    assert letter.state == State.SUBMITTED and letter.provider_ref in fake.letters
    assert "top up the Pingen balance" in letter.events.last().message


def test_bad_credentials_pause_the_queue_and_a_revoked_token_is_renewed(
        bob, mia, invoice, pingen, fake):
    wrong = json.loads(fake.credentials) | {"client_secret": "not-the-secret"}
    PostalProvider.objects.filter(pk=pingen.pk).update(credentials=json.dumps(wrong))
    pingen.refresh_from_db()
    letter = _send(invoice, bob, pingen)
    _step()
    letter = _fresh(letter)
    pingen.refresh_from_db()
    # every letter would fail alike: they wait, the provider is paused with the reason
    assert letter.state == State.QUEUED and pingen.is_paused()
    assert "Pingen refused the client ID and secret" in pingen.paused_reason
    ok, message = provider_services.test_provider(pingen, actor=mia)
    assert not ok and "refused the client ID and secret" in message

    PostalProvider.objects.filter(pk=pingen.pk).update(credentials=fake.credentials)
    provider_services.resume_provider(pingen, actor=mia)
    _step()
    assert _fresh(letter).state == State.SUBMITTED
    other = _send(invoice, bob, pingen)
    fake.fail_next(UNAUTHENTICATED)  # the token was revoked at Pingen meanwhile
    _step()
    assert _fresh(other).state == State.SUBMITTED


def test_connection_test_reads_the_organisation(mia, pingen, fake):
    ok, message = provider_services.test_provider(pingen, actor=mia)
    assert ok and "Acme Print" in message and "120.5 EUR" in message


@pytest.mark.parametrize("changes", [
    {"api_url": "http://pingen.example.com"},
    {"environment": "moon"},
    {"organisation_id": ""},
])
def test_unsafe_or_missing_settings_are_refused_in_plain_words(mia, pingen, changes):
    pingen.settings = {**pingen.settings, **changes}
    pingen.save()
    ok, message = provider_services.test_provider(pingen, actor=mia)
    assert not ok and "Pingen" in message and "Postal providers" in message


def test_environments_name_the_real_pingen_addresses(pingen):
    pingen.settings = {"organisation_id": "org", "environment": "staging"}
    config = PingenConfig.from_row(pingen)
    assert (config.api_url, config.identity_url) == ("https://api-staging.pingen.com",
                                                     "https://identity-staging.pingen.com")
    pingen.settings = {"organisation_id": "org"}
    assert PingenConfig.from_row(pingen).api_url == "https://api.pingen.com"


def test_price_comes_from_the_calculator_or_the_settings_estimate(bob, invoice, pingen,
                                                                  fake):
    letter = _send(invoice, bob, pingen)
    price, currency = provider_for(pingen).price(letter)
    assert currency == "EUR" and price == Decimal(str(round(0.95 + 0.10 * letter.pages, 2)))
    pingen.settings = {**pingen.settings, "price_per_letter": "1.10"}
    fake.stop()
    assert provider_for(pingen).price(letter) == (Decimal("1.10"), "EUR")


def _submitted(invoice, bob, pingen) -> Letter:
    letter = _send(invoice, bob, pingen)
    _step()
    return _fresh(letter)


def test_signed_webhooks_move_the_letter_and_a_replay_or_forgery_changes_nothing(
        client, bob, invoice, pingen, fake):
    letter = _submitted(invoice, bob, pingen)
    event = fake.advance(letter.provider_ref, "sent", "transferred_to_distributor",
                                "Transferred to distributor", tracking_number="RR123456789CH")
    body, headers = fake.webhook(letter.provider_ref, "sent", event)
    url = reverse("letters:webhook", args=[pingen.pk])

    def post(signature: str):
        return client.post(url, body, content_type=headers["Content-Type"],
                           HTTP_SIGNATURE=signature)

    forged = hmac.new(b"someone-else", body, hashlib.sha256).hexdigest()
    assert post(forged).status_code == 403
    assert post("").status_code == 403
    assert _fresh(letter).state == State.SUBMITTED
    assert post(headers["Signature"]).json() == {"recorded": 1, "ignored": 0}
    assert post(headers["Signature"]).json() == {"recorded": 0, "ignored": 0}  # replayed
    letter = _fresh(letter)
    assert letter.state == State.DISPATCHED and letter.tracking_number == "RR123456789CH"
    assert letter.events.filter(external_id=event["id"]).count() == 1

    tasks.poll_letters()  # the poll knows the same event by its id: nothing twice
    assert letter.events.filter(external_id=event["id"]).count() == 1


def test_an_issue_webhook_puts_the_letter_in_error_with_pingens_words(
        client, bob, invoice, pingen, fake):
    letter = _submitted(invoice, bob, pingen)
    event = fake.advance(letter.provider_ref, "action_required", "file_not_a4_portrait",
                                "File is not A4 portrait")
    body, headers = fake.webhook(letter.provider_ref, "issues", event)
    answer = client.post(reverse("letters:webhook", args=[pingen.pk]), body,
                         content_type=headers["Content-Type"],
                         HTTP_SIGNATURE=headers["Signature"])
    assert answer.json() == {"recorded": 1, "ignored": 0}
    letter = _fresh(letter)
    assert letter.state == State.ERROR
    assert letter.events.last().message == "Pingen: File is not A4 portrait."


def test_webhooks_without_a_signing_key_are_refused(client, bob, invoice, pingen, fake):
    letter = _submitted(invoice, bob, pingen)
    event = fake.advance(letter.provider_ref, "sent", "transferred_to_distributor",
                                "Transferred to distributor")
    body, headers = fake.webhook(letter.provider_ref, "sent", event)
    secrets = json.loads(fake.credentials)
    del secrets["webhook_signing_key"]
    PostalProvider.objects.filter(pk=pingen.pk).update(credentials=json.dumps(secrets))
    answer = client.post(reverse("letters:webhook", args=[pingen.pk]), body,
                         content_type=headers["Content-Type"],
                         HTTP_SIGNATURE=headers["Signature"])
    assert answer.status_code == 403 and "signing key" in answer.json()["detail"]
    assert _fresh(letter).state == State.SUBMITTED


def test_the_status_poll_follows_the_letter_to_the_door(bob, invoice, pingen, fake):
    letter = _submitted(invoice, bob, pingen)
    fake.advance(letter.provider_ref, "printing", "processing", "Processing")
    tasks.poll_letters()
    assert _fresh(letter).state == State.PRINTED
    fake.advance(letter.provider_ref, "sent", "transferred_to_distributor",
                        "Transferred to distributor", tracking_number="RR1CH")
    first = tasks.poll_letters()
    letter = _fresh(letter)
    assert letter.state == State.DISPATCHED and letter.tracking_number == "RR1CH"
    assert first >= 1 and tasks.poll_letters() == 0  # nothing new: nothing recorded


def test_cancel_while_pingen_allows_it_and_a_plain_refusal_after(bob, mia, invoice, pingen,
                                                                 fake):
    letter = _submitted(invoice, bob, pingen)
    lifecycle.cancel(letter, actor=mia)
    assert _fresh(letter).state == State.CANCELLED
    assert fake.letters[letter.provider_ref]["attributes"]["status"] == "cancelled"

    printing = _submitted(invoice, bob, pingen)
    fake.advance(printing.provider_ref, "printing", "processing", "Processing")
    with pytest.raises(ValidationError) as refused:
        lifecycle.cancel(printing, actor=mia)
    assert "no longer lets this letter be cancelled" in str(refused.value)
    assert _fresh(printing).state == State.SUBMITTED


def test_a_late_status_never_moves_a_letter_back(bob, invoice, pingen, fake):
    letter = _submitted(invoice, bob, pingen)
    Letter.objects.filter(pk=letter.pk).update(state=State.DELIVERED,
                                               updated_at=timezone.now() - timedelta(hours=1))
    lifecycle.record_provider_events(letter, provider_for(pingen).status(letter))
    assert _fresh(letter).state == State.DELIVERED
