"""The Lob provider against a fake Lob on loopback (tests/letters/fakes/lob.py): the fields it
posts, every error answer in plain words with the right next step (retry, pause, error), the
US-only rule, cancel, the status poll, and webhooks (forged, stale, replayed)."""

# ruff: noqa: F811 - the fixtures imported from the fake's module are the tests' arguments

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from mailroom.letters import lifecycle, provider_services, services, tasks
from mailroom.letters.models import Letter, PostalProvider
from mailroom.letters.providers import provider_for
from mailroom.outgoing.models import OutgoingMail
from tests.letters.fakes.lob import (  # noqa: F401 - fixtures
    error,
    lob_fake,
    lob_row,
    lob_us,
)


def _queue(record, actor, row, **options) -> Letter:
    return services.send_by_post(record, actor=actor,
                                 options=services.LetterOptions(provider=row, **options))


def _posted(fake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST" and r["path"] == "/v1/letters"]


def _due(letter: Letter) -> None:
    Letter.objects.filter(pk=letter.pk).update(next_attempt_at=timezone.now())


def test_the_worker_posts_the_letter_with_lobs_fields_and_the_idempotency_key(
        lob_fake, lob_row, bob, invoice):
    letter = _queue(invoice, bob, lob_row, postage="registered", color=True)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "submitted" and letter.provider_ref.startswith("ltr_")
    assert letter.provider_ref in lob_fake.letters and lob_fake.created == 1
    assert letter.currency == "USD" and letter.price is not None and letter.price > 0
    assert "Accepted by Lob as ltr_" in letter.events.last().message

    [sent] = _posted(lob_fake)
    headers, fields = sent["headers"], sent["fields"]
    assert headers["idempotency-key"] == str(letter.idempotency_key)
    scheme, _, value = headers["authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(value).decode() == f"{lob_fake.api_key}:"
    assert sent["files"]["file"] == letter.pdf_size
    assert {key: fields[key] for key in (
        "to[name]", "to[address_line1]", "to[address_city]", "to[address_state]",
        "to[address_zip]", "to[address_country]", "from[company]", "from[address_line1]",
        "from[address_line2]", "from[address_state]", "from[address_zip]")} == {
        "to[name]": "Ada Lovelace", "to[address_line1]": "742 Evergreen Terrace",
        "to[address_city]": "Springfield", "to[address_state]": "OR",
        "to[address_zip]": "97403", "to[address_country]": "US",
        "from[company]": "Acme Corp", "from[address_line1]": "185 Berry Street",
        "from[address_line2]": "Suite 6100", "from[address_state]": "CA",
        "from[address_zip]": "94107"}
    # registered postage goes first class with Lob's certified service; US #10 window layout
    assert fields["color"] == "true" and fields["double_sided"] == "true"
    assert fields["mail_type"] == "usps_first_class" and fields["extra_service"] == "certified"
    assert fields["address_placement"] == "top_first_page"
    assert fields["use_type"] == "operational"
    assert fields["metadata[mailroom_letter]"] == str(letter.pk)


def test_standard_postage_and_another_window_follow_the_settings(lob_fake, lob_row, bob,
                                                                  invoice):
    PostalProvider.objects.filter(pk=lob_row.pk).update(
        window_standard="din5008a", settings={**lob_row.settings, "mail_type": "usps_standard"})
    lob_row.refresh_from_db()
    letter = _queue(invoice, bob, lob_row, duplex=False)
    tasks.letters_step("w")
    [sent] = _posted(lob_fake)
    assert sent["fields"]["mail_type"] == "usps_standard"
    assert "extra_service" not in sent["fields"]
    assert sent["fields"]["address_placement"] == "insert_blank_page"
    assert sent["fields"]["double_sided"] == "false"
    letter.refresh_from_db()
    assert letter.state == "submitted"


FINAL = [
    (error(422, "failed_deliverability_strictness",
           "The to address doesn't meet strictness requirements."),
     "INVALID_ADDRESS", "Lob refused the address", "Correct the postal address"),
    (error(422, "invalid_file", "file is not a valid PDF"),
     "REJECTED_FILE", "Lob refused the letter's PDF", "Check the document"),
    (error(422, "foreign_return_address", "from.address_country must be US for letters."),
     "INVALID_ADDRESS", "Lob refused the address", "return address"),
]


@pytest.mark.parametrize("answer,code,words,action", FINAL, ids=["address", "file", "from"])
def test_a_refusal_puts_the_letter_in_error_in_plain_words(lob_fake, lob_row, bob, mia,
                                                           invoice, answer, code, words, action):
    lob_fake.fail_next(answer)
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "error" and letter.error_code == code
    assert words in letter.error_message and answer[1]["error"]["message"] in letter.error_message
    assert action in letter.error_action
    assert lob_fake.created == 0
    # the retry path: fixed at Lob's end, Retry posts it
    lifecycle.retry(letter, actor=mia)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "submitted" and lob_fake.created == 1


TRANSIENT = [
    (error(429, "rate_limit_exceeded", "Requests were sent too quickly.", {"Retry-After": "7"}),
     "RATE_LIMITED", "Lob asks to wait 7 second(s)"),
    (error(503, "service_unavailable", "The Lob servers are temporarily unavailable."),
     "LOB_UNAVAILABLE", "a problem on its side (HTTP 503)"),
    (error(500, "internal_server_error", "An error has occurred on Lob's servers."),
     "LOB_UNAVAILABLE", "a problem on its side (HTTP 500)"),
]


@pytest.mark.parametrize("answer,code,words", TRANSIENT, ids=["429", "503", "500"])
def test_a_busy_or_broken_lob_is_retried_later_with_the_same_key(lob_fake, lob_row, bob,
                                                                 invoice, answer, code, words):
    lob_fake.fail_next(answer)
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "queued" and letter.attempts == 1
    assert letter.error_code == code and words in letter.error_message
    assert letter.next_attempt_at > timezone.now()
    assert "Trying again in 1 minute(s)" in letter.events.last().message

    _due(letter)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "submitted" and lob_fake.created == 1
    keys = {r["headers"]["idempotency-key"] for r in _posted(lob_fake)}
    assert keys == {str(letter.idempotency_key)}


def test_lob_out_of_reach_is_retried_later(lob_fake, lob_row, bob, invoice):
    PostalProvider.objects.filter(pk=lob_row.pk).update(
        settings={**lob_row.settings, "base_url": "http://127.0.0.1:1"})
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "queued" and letter.error_code == "LOB_UNREACHABLE"
    assert "could not reach Lob" in letter.error_message


def test_a_timeout_after_lob_made_the_letter_is_retried_without_a_second_one(
        lob_fake, lob_row, bob, invoice):
    PostalProvider.objects.filter(pk=lob_row.pk).update(
        settings={**lob_row.settings, "timeout_seconds": "0.5"})
    lob_fake.stall_next(2)  # Lob makes the letter, the answer comes too late
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "queued" and letter.error_code == "LOB_TIMEOUT"
    assert "did not answer in time" in letter.error_message and lob_fake.created == 1

    _due(letter)
    tasks.letters_step("w")
    letter.refresh_from_db()
    [made] = lob_fake.letters
    assert letter.state == "submitted" and letter.provider_ref == made
    assert lob_fake.created == 1 and len(_posted(lob_fake)) == 2


ACCOUNT = [
    ("payment", error(401, "payment_method_unverified", "You must have a verified bank account "
                      "or credit card to submit live requests."), "LOB_ACCOUNT"),
    ("402", error(402, "payment_required", "Your account balance is too low."), "LOB_ACCOUNT"),
    ("key", None, "BAD_CREDENTIALS"),
]


@pytest.mark.parametrize("name,answer,code", ACCOUNT, ids=[a[0] for a in ACCOUNT])
def test_an_account_problem_pauses_lob_and_tells_managers_once(lob_fake, lob_row, bob, mia,
                                                               domain, invoice, name, answer,
                                                               code):
    if answer is None:  # a key Lob does not know: the fake's own 401
        PostalProvider.objects.filter(pk=lob_row.pk).update(
            credentials=json.dumps({"api_key": "test_revoked"}))
    else:
        lob_fake.fail_next(answer)
    first = _queue(invoice, bob, lob_row)
    second = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    tasks.letters_step("w")  # paused: Lob is not asked again

    lob_row.refresh_from_db()
    assert lob_row.is_paused() and lob_row.paused_reason.startswith("Lob ")
    assert len(_posted(lob_fake)) == 1 and lob_fake.created == 0
    assert set(Letter.objects.values_list("state", flat=True)) == {"queued"}
    notices = OutgoingMail.objects.filter(subject__contains=f"{lob_row.name} is paused")
    assert notices.count() == 1
    paused = [event for letter in (first, second) for event in letter.events.all()
              if event.payload.get("code") == code]
    assert len(paused) == 1 and "paused: Lob " in paused[0].message

    # fixed in the Lob dashboard (or a new key), Resume: both letters go out
    if answer is None:
        PostalProvider.objects.filter(pk=lob_row.pk).update(credentials=lob_fake.credentials)
        lob_row.refresh_from_db()
    provider_services.resume_provider(lob_row, actor=mia)
    tasks.letters_step("w")
    for letter in (first, second):
        letter.refresh_from_db()
        assert letter.state == "submitted"
    assert lob_fake.created == 2 and notices.count() == 1


def test_a_letter_abroad_is_refused_in_plain_words_before_lob_is_asked(lob_fake, lob_row, bob,
                                                                       customer, invoice):
    customer.street, customer.city, customer.zip, customer.state = "12 Rue de la Paix", \
        "Paris", "75002", ""
    customer.country = "FR"
    customer.save()
    preview = services.prepare(invoice, actor=bob,
                               options=services.LetterOptions(provider=lob_row))
    words = "Lob posts letters only to addresses in the United States"
    assert any(words in problem and "FR" in problem for problem in preview.problems)

    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == "error" and letter.error_code == "INVALID_ADDRESS"
    assert words in letter.error_message and letter.error_action
    assert lob_fake.requests == []


def test_cancel_while_lob_allows_it_and_a_plain_refusal_after(lob_fake, lob_row, bob, mia,
                                                               invoice):
    letter = _queue(invoice, bob, lob_row)
    other = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    other.refresh_from_db()

    lifecycle.cancel(letter, actor=mia)
    letter.refresh_from_db()
    assert letter.state == "cancelled" and lob_fake.letters[letter.provider_ref]["deleted"]

    lob_fake.mail(other.provider_ref)  # the cancellation window closed
    with pytest.raises(ValidationError) as refused:
        lifecycle.cancel(other, actor=mia)
    assert "can no longer be cancelled" in " ".join(refused.value.messages)
    other.refresh_from_db()
    assert other.state == "submitted"


def test_the_status_poll_follows_lobs_tracking_events(lob_fake, lob_row, bob, invoice):
    letter = _queue(invoice, bob, lob_row, postage="registered")
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert tasks.poll_letters() == 0  # nothing new yet: the send date is ahead

    lob_fake.mail(letter.provider_ref)
    assert tasks.poll_letters() == 1
    letter.refresh_from_db()
    assert letter.state == "printed"

    lob_fake.track(letter.provider_ref, "Mailed", "SAN FRANCISCO CA")
    lob_fake.track(letter.provider_ref, "In Transit")
    assert tasks.poll_letters() == 2
    letter.refresh_from_db()
    assert letter.state == "dispatched"
    assert letter.tracking_number == lob_fake.letters[letter.provider_ref]["tracking_number"]
    lob_fake.track(letter.provider_ref, "Delivered")
    assert tasks.poll_letters() == 1 and tasks.poll_letters() == 0
    letter.refresh_from_db()
    assert letter.state == "delivered"
    assert "Handed to USPS. (SAN FRANCISCO CA)" in letter.events.values_list("message",
                                                                            flat=True)


def _post(client, row, body: bytes, headers: dict):
    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
    return client.post(reverse("letters:webhook", args=[row.pk]), body,
                       content_type="application/json", headers=headers)


def test_webhooks_forged_stale_and_replayed_change_nothing(client, lob_fake, lob_row, bob,
                                                           invoice):
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    ref = letter.provider_ref
    lob_fake.track(ref, "Mailed")
    body, headers = lob_fake.webhook(ref, "letter.mailed")

    forged = {**headers, "Lob-Signature": "0" * 64}
    assert _post(client, lob_row, body, forged).status_code == 403
    tampered = body.replace(b"letter.mailed", b"letter.delivered")
    assert _post(client, lob_row, tampered, headers).status_code == 403
    unsigned = {"Lob-Signature-Timestamp": headers["Lob-Signature-Timestamp"]}
    assert _post(client, lob_row, body, unsigned).status_code == 403
    old_body, old_headers = lob_fake.webhook(ref, "letter.mailed",
                                             timestamp_ms=int((time.time() - 600) * 1000))
    stale = _post(client, lob_row, old_body, old_headers)
    assert stale.status_code == 403 and "too old" in stale.json()["detail"]
    letter.refresh_from_db()
    assert letter.state == "submitted"

    assert _post(client, lob_row, body, headers).json() == {"recorded": 1, "ignored": 0}
    assert _post(client, lob_row, body, headers).json() == {"recorded": 0, "ignored": 0}
    letter.refresh_from_db()
    assert letter.state == "dispatched"
    # the poll sees the same tracking event: no second line for it
    assert tasks.poll_letters() == 0
    assert letter.events.filter(state="dispatched").count() == 1

    body, headers = lob_fake.webhook(ref, "letter.returned_to_sender")
    assert _post(client, lob_row, body, headers).json() == {"recorded": 1, "ignored": 0}
    letter.refresh_from_db()
    assert letter.state == "returned"

    # another resource's event, or a letter Mailroom never sent: acknowledged, ignored
    stranger = json.loads(body)
    stranger["body"]["id"] = stranger["reference_id"] = "ltr_unknown"
    lob_fake.letters["ltr_unknown"] = stranger["body"]
    body, headers = lob_fake.webhook("ltr_unknown", "letter.delivered")
    assert _post(client, lob_row, body, headers).json() == {"recorded": 0, "ignored": 1}
    body, headers = lob_fake.webhook(ref, "postcard.delivered")
    assert _post(client, lob_row, body, headers).json() == {"recorded": 0, "ignored": 0}


BODIES = [
    (b"not json", 400, None),
    (b"[]", 400, None),
    (b'{"event_type": "letter.mailed", "body": "ltr_1"}', 200, {"recorded": 0, "ignored": 0}),
    (b'{"id": "evt_1", "event_type": {"id": "letter.mailed"}, "body": {"id": "ltr_1", '
     b'"tracking_events": {"name": "Mailed"}}}', 200, {"recorded": 0, "ignored": 1}),
]


@pytest.mark.parametrize("body,status,answer", BODIES, ids=["text", "list", "flat", "odd"])
def test_a_signed_webhook_of_an_odd_shape_is_a_clear_answer_never_a_crash(
        client, lob_fake, lob_row, body, status, answer):
    response = _post(client, lob_row, body, lob_fake.sign(body))
    assert response.status_code == status
    assert response.json() == answer if answer else response.json()["detail"]


def test_a_timestamp_in_seconds_is_understood_too(client, lob_fake, lob_row, bob, invoice):
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    body, _ = lob_fake.webhook(letter.provider_ref, "letter.delivered")
    headers = lob_fake.sign(body, timestamp_ms=int(time.time()))  # seconds, not milliseconds
    assert _post(client, lob_row, body, headers).json() == {"recorded": 1, "ignored": 0}


def test_without_a_webhook_secret_every_webhook_is_refused(client, lob_fake, lob_row, bob,
                                                           invoice):
    letter = _queue(invoice, bob, lob_row)
    tasks.letters_step("w")
    letter.refresh_from_db()
    PostalProvider.objects.filter(pk=lob_row.pk).update(
        credentials=json.dumps({"api_key": lob_fake.api_key}))
    body, headers = lob_fake.webhook(letter.provider_ref, "letter.delivered")
    answer = _post(client, lob_row, body, headers)
    assert answer.status_code == 403 and "No webhook secret" in answer.json()["detail"]


def test_connection_test_says_what_works_and_what_does_not(lob_fake, lob_row, mia):
    ok, message = provider_services.test_provider(lob_row, actor=mia)
    assert ok and "Lob accepts the API key (test key" in message
    assert any(r["path"] == "/v1/addresses" for r in lob_fake.requests)

    lob_row.credentials = json.dumps({"api_key": "live_unknown"})
    ok, message = provider_services.test_provider(lob_row, actor=mia)
    assert not ok and "Lob does not accept the API key" in message

    lob_row.credentials = lob_fake.credentials
    lob_row.settings = {**lob_row.settings, "base_url": "http://lob.example.com"}
    ok, message = provider_services.test_provider(lob_row, actor=mia)
    assert not ok and "not an https:// address" in message

    lob_row.settings = {**lob_row.settings, "base_url": f"{lob_fake.url}/v1"}  # /v1 twice
    ok, message = provider_services.test_provider(lob_row, actor=mia)
    assert not ok and "does not lead to Lob's letters API" in message

    lob_row.settings = {}
    lob_row.credentials = ""
    ok, message = provider_services.test_provider(lob_row, actor=mia)
    assert not ok and "No Lob API key" in message


def test_the_price_estimate_comes_from_the_settings(lob_row):
    letter = Letter(company=lob_row.company, provider=lob_row, sheets=2, color=True,
                    postage="registered", address_parts={
                        "name": "Ada", "street": "1 Main St", "city": "Springfield",
                        "state": "OR", "zip": "97403", "country": "US"})
    lob_row.settings = {"price_per_letter": "0.80", "price_per_sheet": "0.10",
                        "price_color_per_sheet": "0.20", "price_extra_service": "4.00"}
    assert provider_for(lob_row).price(letter) == (Decimal("5.40"), "USD")
    lob_row.settings = {}
    assert provider_for(lob_row).price(letter) == (None, "USD")
